// Hostile rows: `mcpki renew NAME` and `mcpki forget NAME|SERIAL` after the files of an issued certificate were
// tampered with: its folder given to another user or replaced by their symlink, its key or PKCS#12 file
// replaced by a symlink or a FIFO; and names with control characters. renew writes with renames (a symlink in
// place of a file is replaced, never written through) and refuses a folder another user controls before it
// reads or writes anything in it; forget touches no file at all.
import assert from 'node:assert/strict';
import {
  chownSync,
  lchownSync,
  lstatSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { mcpki, run } from '../helpers.js';
import { asNobody, EXIT, lit, snapshot } from './harness.js';

const NOBODY = 65534;
const UNSAFE = { status: EXIT.UNSAFE_PATH, code: 'UNSAFE_PATH' };
const QUICK = 15_000;
const ESC = '\u001b';

/** `issue server web` into ctx.work/out (with --p12 when asked); returns the folder. */
function issued(ctx, ...more) {
  const out = join(ctx.work, 'out');
  const made = mcpki(['--home', ctx.home, 'issue', 'server', 'web', 'web.localhost', '--out', out, ...more]);
  assert.equal(made.status, 0, made.stderr);
  return out;
}

/** A root-only file outside the certificate's folder, that must never be written or read for anyone. */
function victim(ctx) {
  const path = join(ctx.work, 'victim');
  writeFileSync(path, 'root only\n', { mode: 0o600 });
  return path;
}

const victimUntouched = (ctx) => assert.equal(readFileSync(join(ctx.work, 'victim'), 'utf8'), 'root only\n');

/** The folder given to nobody (an admin's chown), who then replaced web.key with a symlink to the victim. */
function handedToNobody(ctx, ...more) {
  const out = issued(ctx, ...more);
  victim(ctx);
  chownSync(out, NOBODY, NOBODY);
  asNobody('sh', ['-c', `rm -f ${out}/web.key && ln -s ${ctx.work}/victim ${out}/web.key`]);
  return out;
}

/** The folder replaced by a symlink nobody owns, to a folder of theirs in the shared folder. */
function redirectedByNobody(ctx, ...more) {
  const out = issued(ctx, ...more);
  asNobody('mkdir', [join(ctx.public, 'theirs')]);
  renameSync(out, join(ctx.work, 'out.real'));
  symlinkSync(join(ctx.public, 'theirs'), out);
  lchownSync(out, NOBODY, NOBODY);
}

export const CASES = [
  // ---- renew NAME ------------------------------------------------------------------------------------------
  {
    title: 'renew NAME whose key file was replaced by a symlink to a root-only file: replaced, not written through',
    setup: (ctx) => {
      const out = issued(ctx);
      victim(ctx);
      rmSync(join(out, 'web.key'));
      symlinkSync(join(ctx.work, 'victim'), join(out, 'web.key'));
    },
    args: ['renew', 'web'],
    status: 0,
    check: (ctx) => {
      victimUntouched(ctx);
      const key = join(ctx.work, 'out', 'web.key');
      const stat = lstatSync(key);
      assert.ok(stat.isFile() && (stat.mode & 0o777) === 0o600, 'web.key is a 0600 regular file again');
      const crt = join(ctx.work, 'out', 'web.crt');
      const pub = (args) => run('openssl', args).stdout;
      assert.equal(
        pub(['pkey', '-in', key, '-pubout']),
        pub(['x509', '-in', crt, '-noout', '-pubkey']),
        'the new key belongs to the new certificate',
      );
    },
  },
  {
    title: 'renew NAME whose folder was given to nobody, who put a symlink to a root-only file in place of the key',
    world: true,
    setup: (ctx) => handedToNobody(ctx),
    args: ['renew', 'web'],
    ...UNSAFE,
    message: [/work\/out: .*owned by uid 65534/],
    hint: /chown|folder that only this user/,
    check: victimUntouched,
    json: true,
  },
  {
    title: 'renew NAME with a PKCS#12 file, its folder given to nobody: refused before the .p12 is read',
    world: true,
    setup: (ctx) => handedToNobody(ctx, '--p12'),
    args: ['renew', 'web'],
    ...UNSAFE,
    message: [/work\/out: .*owned by uid 65534/],
    check: victimUntouched,
  },
  {
    title: 'renew NAME whose folder was replaced by a symlink nobody owns',
    world: true,
    setup: (ctx) => redirectedByNobody(ctx),
    args: ['renew', 'web'],
    ...UNSAFE,
    message: [/work\/out: it is a symlink owned by uid 65534/],
    json: true,
  },
  {
    title:
      'renew NAME with a PKCS#12 file, its folder replaced by a symlink nobody owns: refused, not a password question',
    world: true,
    setup: (ctx) => redirectedByNobody(ctx, '--p12'),
    args: ['renew', 'web'],
    ...UNSAFE,
    message: [/work\/out: it is a symlink owned by uid 65534/],
  },
  {
    title: 'renew NAME whose PKCS#12 file was replaced by a FIFO: said so at once, not taken for a wrong password',
    setup: (ctx) => {
      const out = issued(ctx, '--p12');
      rmSync(join(out, 'web.p12'));
      assert.equal(run('mkfifo', [join(out, 'web.p12')]).status, 0);
    },
    args: ['renew', 'web'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/PKCS#12 file .*web\.p12 is a FIFO, not a regular file/],
    timeout: QUICK,
    json: true,
  },
  {
    title: 'renew NAME with ESC sequences is shown escaped',
    setup: (ctx) => issued(ctx),
    args: ['renew', `web${ESC}[2J`],
    status: [EXIT.NOT_FOUND, EXIT.INVALID_INPUT],
    message: [lit('web\\e[2J')],
    check: (ctx, result) => assert.ok(!result.stderr.includes(ESC), 'raw ESC on stderr'),
    json: true,
  },
  {
    title: 'renew NAME with a right-to-left override is shown escaped',
    setup: (ctx) => issued(ctx),
    args: ['renew', 'bew\u202e'],
    status: [EXIT.NOT_FOUND, EXIT.INVALID_INPUT],
    message: [lit('bew\\u202e')],
  },
  // ---- forget NAME|SERIAL ----------------------------------------------------------------------------------
  {
    title: 'forget NAME with ESC sequences',
    setup: (ctx) => issued(ctx),
    args: ['forget', `web${ESC}[2J`],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/invalid certificate name or serial "web\\(e|u001b)\[2J"/],
    hint: /mcpki list --all/,
    json: true,
  },
  {
    title: 'forget NAME with a right-to-left override (U+202E) is refused as invalid, not looked up',
    setup: (ctx) => issued(ctx),
    args: ['forget', 'bew\u202e'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [lit('invalid certificate name or serial "bew\\u202e"')],
    json: true,
  },
  {
    title: 'forget NAME with a C1 control (CSI, U+009B)',
    setup: (ctx) => issued(ctx),
    args: ['forget', 'web\u009b2J'],
    status: EXIT.INVALID_INPUT,
    message: [lit('"web\\x9b2J"')],
  },
  {
    title:
      'forget NAME whose files were replaced by symlinks to root-only files and whose folder nobody owns: no file touched',
    world: true,
    setup: (ctx) => {
      handedToNobody(ctx);
      asNobody('sh', ['-c', `rm -f ${ctx.work}/out/web.crt && ln -s ${ctx.home}/ca/root.key ${ctx.work}/out/web.crt`]);
      ctx.before = snapshot(ctx.work);
    },
    args: ['forget', 'web'],
    status: 0,
    check: (ctx) => {
      assert.deepEqual(snapshot(ctx.work), ctx.before, 'files on disk changed');
      const listed = mcpki(['--home', ctx.home, '--json', 'list', '--all']);
      assert.deepEqual(listed.json.certificates, [], 'still in the inventory');
    },
  },
];
