// Hostile rows: `mcpki sign CSR`. The request is a file someone else made, read as root: a FIFO, a device,
// a huge file, a symlink another user planted (to a root-only key, a FIFO, through a folder), names with
// control characters; and the --out path planted as a symlink or a FIFO, or in a folder another user owns.
// Each is refused before anything is signed: no certificate recorded, no file written, nothing followed.
import assert from 'node:assert/strict';
import { chownSync, mkdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mcpki, run } from '../helpers.js';
import { asNobody, EXIT, lit } from './harness.js';

const QUICK = 15_000; // a hang is a failure
const UNSAFE = { status: EXIT.UNSAFE_PATH, code: 'UNSAFE_PATH' };
const NOBODY = 65534;
const ESC = '\u001b';

/** A PKCS#10 request made by openssl (as `user`: 'root' or 'nobody'), its key beside it. */
function csr(path, { san = 'DNS:app.localhost', cn = 'app', user = 'root' } = {}) {
  const args = [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${path}.key`,
    '-subj',
    `/CN=${cn}`,
    '-addext',
    `subjectAltName=${san}`,
    '-out',
    path,
  ];
  if (user === 'nobody') asNobody('openssl', args);
  else {
    const made = run('openssl', args);
    assert.equal(made.status, 0, made.stderr);
  }
  return path;
}

/** Nothing was recorded: the inventory has no certificate besides what `init` made. */
function nothingSigned(ctx) {
  const listed = mcpki(['--home', ctx.home, '--json', 'list', '--all']);
  assert.equal(listed.status, 0, listed.stderr);
  assert.deepEqual(listed.json.certificates, [], 'a certificate was recorded');
}

export const CASES = [
  // ---- the request: special, huge, planted -----------------------------------------------------------------
  {
    title: 'sign: the request is a FIFO nobody writes (must not hang)',
    setup: (ctx) => assert.equal(run('mkfifo', [join(ctx.work, 'app.csr')]).status, 0),
    args: (ctx) => ['sign', join(ctx.work, 'app.csr')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/certificate request .*app\.csr is a FIFO, not a regular file/],
    hint: /regular file/,
    timeout: QUICK,
    json: true,
  },
  {
    title: 'sign /dev/zero',
    args: ['sign', '/dev/zero'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [lit('certificate request /dev/zero is a character device, not a regular file')],
    timeout: QUICK,
  },
  {
    title: 'sign a 100 MB request, refused by its size without reading it',
    setup: (ctx) => {
      writeFileSync(join(ctx.work, 'huge.csr'), '');
      truncateSync(join(ctx.work, 'huge.csr'), 100 * 1024 * 1024);
    },
    args: (ctx) => ['sign', join(ctx.work, 'huge.csr')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/huge\.csr is 104857600 bytes; the limit is 4194304/],
    timeout: QUICK,
    json: true,
  },
  {
    title: 'sign a folder',
    args: (ctx) => ['sign', ctx.work],
    status: EXIT.INVALID_INPUT,
    message: [/certificate request .*work is a folder/],
  },
  {
    title: 'sign a symlink nobody planted in a shared folder, to the intermediate CA key (not read for them)',
    world: true,
    setup: (ctx) => asNobody('ln', ['-s', join(ctx.home, 'ca', 'intermediate.key'), join(ctx.public, 'app.csr')]),
    args: (ctx) => ['sign', join(ctx.public, 'app.csr')],
    ...UNSAFE,
    message: [/public\/app\.csr is a symlink owned by uid 65534, not by this user \(uid 0\) or root/],
    hint: /path of the file itself/,
    check: nothingSigned,
    json: true,
  },
  {
    title: 'sign a symlink nobody planted, to a FIFO of theirs (must not hang)',
    world: true,
    setup: (ctx) => {
      asNobody('mkfifo', [join(ctx.public, 'pipe')]);
      asNobody('ln', ['-s', join(ctx.public, 'pipe'), join(ctx.public, 'app.csr')]);
    },
    args: (ctx) => ['sign', join(ctx.public, 'app.csr')],
    ...UNSAFE,
    message: [/app\.csr is a symlink owned by uid 65534/],
    timeout: QUICK,
  },
  {
    title: 'sign a request through a folder symlink nobody planted (public/csrs -> a folder of ours)',
    world: true,
    setup: (ctx) => {
      mkdirSync(join(ctx.work, 'csrs'));
      csr(join(ctx.work, 'csrs', 'app.csr'));
      asNobody('ln', ['-s', join(ctx.work, 'csrs'), join(ctx.public, 'csrs')]);
    },
    args: (ctx) => ['sign', join(ctx.public, 'csrs', 'app.csr')],
    ...UNSAFE,
    message: [/public\/csrs is a symlink owned by uid 65534/],
    check: nothingSigned,
  },
  {
    title: 'sign a request nobody left in a shared folder, for a name outside the constraints',
    world: true,
    setup: (ctx) => csr(join(ctx.public, 'bank.csr'), { san: 'DNS:www.bank.example', cn: 'bank', user: 'nobody' }),
    args: (ctx) => ['sign', join(ctx.public, 'bank.csr')],
    status: EXIT.NOT_PERMITTED,
    code: 'NAME_NOT_PERMITTED',
    message: [lit('www.bank.example')],
    check: nothingSigned,
    json: true,
  },
  {
    title: 'sign a request whose DNS name holds ESC sequences: refused, shown escaped',
    setup: (ctx) => csr(join(ctx.work, 'esc.csr'), { san: `DNS:we${ESC}[31mb.localhost` }),
    args: (ctx) => ['sign', join(ctx.work, 'esc.csr')],
    status: EXIT.INVALID_INPUT,
    message: [/we\\u001b\[31mb\.localhost|we\\e\[31mb\.localhost/, /characters a name cannot have/],
    check: (ctx, result) => {
      if (result.stderr.includes(ESC)) throw new Error('raw ESC on stderr');
      nothingSigned(ctx);
    },
    json: true,
  },
  {
    title: 'sign --name with control characters',
    setup: (ctx) => csr(join(ctx.work, 'app.csr')),
    args: (ctx) => ['sign', join(ctx.work, 'app.csr'), '--name', `app${ESC}]0;owned\u0007`],
    status: EXIT.INVALID_INPUT,
    message: [lit('app\\e]0;owned\\x07')],
    check: (ctx, result) => {
      if (result.stderr.includes(ESC)) throw new Error('raw ESC on stderr');
    },
  },
  // ---- --out: planted, special, in a folder another user owns ----------------------------------------------
  {
    title: 'sign --out a symlink nobody planted in a shared folder (to a file of ours): not followed',
    world: true,
    setup: (ctx) => {
      csr(join(ctx.work, 'app.csr'));
      writeFileSync(join(ctx.work, 'victim'), 'the victim\n');
      asNobody('ln', ['-s', join(ctx.work, 'victim'), join(ctx.public, 'app.crt')]);
    },
    args: (ctx) => ['sign', join(ctx.work, 'app.csr'), '--out', join(ctx.public, 'app.crt')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/--out .*app\.crt is not a regular file/],
    check: (ctx) => {
      assert.equal(readFileSync(join(ctx.work, 'victim'), 'utf8'), 'the victim\n');
      nothingSigned(ctx);
    },
    json: true,
  },
  {
    title: 'sign --out a FIFO nobody planted (must not hang, not written into)',
    world: true,
    setup: (ctx) => {
      csr(join(ctx.work, 'app.csr'));
      asNobody('mkfifo', [join(ctx.public, 'app.crt')]);
    },
    args: (ctx) => ['sign', join(ctx.work, 'app.csr'), '--out', join(ctx.public, 'app.crt')],
    status: EXIT.INVALID_INPUT,
    message: [/--out .*app\.crt is not a regular file/],
    timeout: QUICK,
    check: nothingSigned,
  },
  {
    title: 'sign --out into a folder owned by nobody',
    setup: (ctx) => {
      csr(join(ctx.work, 'app.csr'));
      mkdirSync(join(ctx.work, 'out'));
      chownSync(join(ctx.work, 'out'), NOBODY, NOBODY);
    },
    args: (ctx) => ['sign', join(ctx.work, 'app.csr'), '--out', join(ctx.work, 'out', 'app.crt')],
    ...UNSAFE,
    message: [/out: the --out folder is owned by uid 65534/],
    hint: /chown|folder that only this user/,
    check: nothingSigned,
    json: true,
  },
  {
    title: 'sign --out through a folder symlink nobody planted',
    world: true,
    setup: (ctx) => {
      csr(join(ctx.work, 'app.csr'));
      mkdirSync(join(ctx.work, 'victim'));
      asNobody('ln', ['-s', join(ctx.work, 'victim'), join(ctx.public, 'certs')]);
    },
    args: (ctx) => ['sign', join(ctx.work, 'app.csr'), '--out', join(ctx.public, 'certs', 'app.crt')],
    ...UNSAFE,
    message: [/certs: it is a symlink owned by uid 65534/],
    check: nothingSigned,
  },
];
