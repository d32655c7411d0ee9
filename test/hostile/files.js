// Hostile rows: files, folders and writes. Folders another user owns or can write (issue --out, the home,
// ca/), symlinks planted by another user (run as nobody), CA keys readable by others, target modes with
// setuid/setgid/sticky bits or group-writable keys, the git guard through a symlink, a multi-file write
// whose second rename fails, an empty --home, and a missing home that must not be created.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mcpki } from '../helpers.js';
import { asNobody, EXIT, gitInit, lit } from './harness.js';

const NOBODY = 65534;
const UNSAFE = { status: EXIT.UNSAFE_PATH, code: 'UNSAFE_PATH' };

/** A folder owned by nobody, as an admin's mistake (chown) would leave it. */
function nobodyDir(path, mode = 0o755) {
  mkdirSync(path, { recursive: true });
  chownSync(path, NOBODY, NOBODY);
  chmodSync(path, mode);
}

function config(ctx, targets) {
  const path = join(ctx.work, 'mcpki.yaml');
  const lines = targets.map(
    (t) => `      - { type: ${t.type}, path: ${join(ctx.work, 'out', t.file)}, mode: "${t.mode}"${t.extra ?? ''} }`,
  );
  writeFileSync(
    path,
    `version: 1\ncertificates:\n  - name: web\n    names: [web.localhost]\n    targets:\n${lines.join('\n')}\n`,
  );
  return path;
}

const modeRow = (title, type, file, mode, hint, extra) => ({
  title,
  setup: (ctx) => {
    ctx.config = config(ctx, [{ type, file, mode, extra }]);
    if (extra) writeFileSync(join(ctx.work, 'p12.pass'), 'secret\n', { mode: 0o600 });
  },
  args: (ctx) => ['apply', '-c', ctx.config],
  status: EXIT.INVALID_INPUT,
  code: 'INVALID_INPUT',
  message: [/mcpki\.yaml has 1 error/],
  hint: Array.isArray(hint) ? hint[0] : hint,
  check: (ctx) => assert.ok(!existsSync(join(ctx.work, 'out')), 'no target folder was created'),
});

export const CASES = [
  // ---- item 1: issue --out into folders another user owns or can write ----------------------------------
  {
    title: 'issue --out under a folder nobody created in a sticky world-writable folder',
    world: true,
    setup: (ctx) => asNobody('sh', ['-c', `mkdir -p ${ctx.public}/shared`]),
    args: (ctx) => ['issue', 'server', 'web', 'web.localhost', '--out', join(ctx.public, 'shared', 'tls')],
    ...UNSAFE,
    message: [/shared/, /owned by uid 65534/],
    hint: /chown|folder that only this user/,
    json: true,
  },
  {
    title: 'issue --out through a symlink nobody planted (shared/tls -> /victim)',
    world: true,
    setup: (ctx) => {
      mkdirSync(join(ctx.work, 'victim'));
      writeFileSync(join(ctx.work, 'victim', 'web.key'), 'the victim\n');
      asNobody('sh', ['-c', `mkdir ${ctx.public}/shared && ln -s ${ctx.work}/victim ${ctx.public}/shared/tls`]);
    },
    args: (ctx) => ['issue', 'server', 'web', 'web.localhost', '--out', join(ctx.public, 'shared', 'tls')],
    ...UNSAFE,
    message: /owned by uid 65534/,
    json: true,
  },
  {
    title: 'issue --out a symlink nobody planted directly in the sticky folder',
    world: true,
    setup: (ctx) => {
      mkdirSync(join(ctx.work, 'victim'));
      asNobody('ln', ['-s', join(ctx.work, 'victim'), join(ctx.public, 'tls')]);
    },
    args: (ctx) => ['issue', 'server', 'web', 'web.localhost', '--out', join(ctx.public, 'tls')],
    ...UNSAFE,
    message: [/tls/, /symlink owned by uid 65534/],
    hint: /remove .*tls/,
  },
  {
    title: 'issue --out a folder nobody made, inside it a missing subfolder',
    world: true,
    setup: (ctx) => asNobody('mkdir', [join(ctx.public, 'certs')]),
    args: (ctx) => ['issue', 'server', 'web', 'web.localhost', '--out', join(ctx.public, 'certs', 'a', 'b')],
    ...UNSAFE,
    message: /certs: .*owned by uid 65534/,
  },
  {
    title: 'issue --out a world-writable folder without the sticky bit (0777)',
    setup: (ctx) => {
      mkdirSync(join(ctx.work, 'out'));
      chmodSync(join(ctx.work, 'out'), 0o777);
    },
    args: (ctx) => ['issue', 'server', 'web', 'web.localhost', '--out', join(ctx.work, 'out')],
    ...UNSAFE,
    message: [/out/, /writable by everyone \(mode 0777\)/],
    hint: /chmod go-w/,
    json: true,
  },
  {
    title: 'issue --out a group-writable folder (0775)',
    setup: (ctx) => {
      mkdirSync(join(ctx.work, 'out'));
      chmodSync(join(ctx.work, 'out'), 0o775);
    },
    args: (ctx) => ['issue', 'server', 'web', 'web.localhost', '--out', join(ctx.work, 'out')],
    ...UNSAFE,
    message: /writable by its group \(mode 0775\)/,
    hint: /chmod go-w/,
  },
  {
    title: 'issue --out a missing folder under a world-writable (0777) parent',
    setup: (ctx) => {
      mkdirSync(join(ctx.work, 'open'));
      chmodSync(join(ctx.work, 'open'), 0o777);
    },
    args: (ctx) => ['issue', 'server', 'web', 'web.localhost', '--out', join(ctx.work, 'open', 'out')],
    ...UNSAFE,
    message: /open: .*writable by everyone/,
  },
  {
    title: 'issue --out a folder owned by nobody (0755)',
    setup: (ctx) => nobodyDir(join(ctx.work, 'out')),
    args: (ctx) => ['issue', 'server', 'web', 'web.localhost', '--out', join(ctx.work, 'out')],
    ...UNSAFE,
    message: /owned by uid 65534/,
  },
  {
    title: 'issue --out our symlink to a folder nobody owns',
    setup: (ctx) => {
      nobodyDir(join(ctx.work, 'theirs'));
      symlinkSync(join(ctx.work, 'theirs'), join(ctx.work, 'out'));
    },
    args: (ctx) => ['issue', 'server', 'web', 'web.localhost', '--out', join(ctx.work, 'out')],
    ...UNSAFE,
    message: /theirs: .*owned by uid 65534/,
  },
  {
    title: 'issue --out through a chain of symlinks, the second one planted by nobody',
    world: true,
    setup: (ctx) => {
      mkdirSync(join(ctx.work, 'real'));
      asNobody('ln', ['-s', join(ctx.work, 'real'), join(ctx.public, 'hop')]);
      symlinkSync(join(ctx.public, 'hop'), join(ctx.work, 'out'));
    },
    args: (ctx) => ['issue', 'server', 'web', 'web.localhost', '--out', join(ctx.work, 'out')],
    ...UNSAFE,
    message: /hop: it is a symlink owned by uid 65534/,
  },
  {
    title: 'issue client --out a folder owned by nobody',
    setup: (ctx) => nobodyDir(join(ctx.work, 'out'), 0o700),
    args: (ctx) => ['issue', 'client', 'agent', '--out', join(ctx.work, 'out')],
    ...UNSAFE,
    message: /owned by uid 65534/,
  },
  {
    title: 'issue batch --out a world-writable folder',
    setup: (ctx) => {
      writeFileSync(join(ctx.work, 'batch.txt'), 'server a a.localhost\nserver b b.localhost\n');
      mkdirSync(join(ctx.work, 'out'));
      chmodSync(join(ctx.work, 'out'), 0o777);
    },
    args: (ctx) => ['issue', 'batch', join(ctx.work, 'batch.txt'), '--out', join(ctx.work, 'out')],
    ...UNSAFE,
    message: /writable by everyone/,
  },

  // ---- item 7: a multi-file write whose second rename fails ----------------------------------------------
  {
    title: 're-issue whose second rename fails (a folder in the way of x.crt): all files and the inventory as before',
    setup: (ctx) => {
      const out = join(ctx.work, 'out');
      assert.equal(mcpki(['--home', ctx.home, 'issue', 'server', 'x', 'x.localhost', '--out', out]).status, 0);
      rmSync(join(out, 'x.crt'));
      mkdirSync(join(out, 'x.crt'));
      writeFileSync(join(out, 'x.crt', 'keep'), 'in the way\n');
    },
    args: (ctx) => ['issue', 'server', 'x', 'x.localhost', '--out', join(ctx.work, 'out')],
    status: EXIT.FILESYSTEM,
    code: 'WRITE_FAILED',
    message: [/x\.crt/, /folder is in the way|EISDIR/],
    hint: /previous files were left in place/,
    json: true,
  },

  // ---- item 8: the git guard through a symlink ------------------------------------------------------------
  {
    title: 'issue --out a symlink into a git work tree that does not ignore the key',
    setup: (ctx) => {
      gitInit(join(ctx.work, 'repo'));
      mkdirSync(join(ctx.work, 'repo', 'certs'));
      symlinkSync(join(ctx.work, 'repo', 'certs'), join(ctx.work, 'link'));
    },
    args: (ctx) => ['issue', 'server', 'web', 'web.localhost', '--out', join(ctx.work, 'link')],
    status: EXIT.GIT_GUARD,
    code: 'GIT_TRACKED_PATH',
    message: [/link\/web\.key \(really .*repo\/certs\/web\.key\)/, /git work tree .*repo/],
    hint: /gitignore|--allow-git/,
    json: true,
  },
  {
    title: 'issue --out a missing folder below a symlink into a git work tree',
    setup: (ctx) => {
      gitInit(join(ctx.work, 'repo'));
      symlinkSync(join(ctx.work, 'repo'), join(ctx.work, 'link'));
    },
    args: (ctx) => ['issue', 'server', 'web', 'web.localhost', '--out', join(ctx.work, 'link', 'deep', 'certs')],
    status: EXIT.GIT_GUARD,
    code: 'GIT_TRACKED_PATH',
    message: /repo\/deep\/certs\/web\.key/,
  },
  {
    title: 'issue --out a dangling symlink whose target would be inside a git work tree',
    setup: (ctx) => {
      gitInit(join(ctx.work, 'repo'));
      symlinkSync(join(ctx.work, 'repo', 'later'), join(ctx.work, 'link'));
    },
    args: (ctx) => ['issue', 'server', 'web', 'web.localhost', '--out', join(ctx.work, 'link')],
    status: EXIT.GIT_GUARD,
    message: /repo\/later\/web\.key/,
  },

  // ---- item 10: the home, ca/ and the CA keys ------------------------------------------------------------
  {
    title: 'a world-writable home (0777)',
    setup: (ctx) => chmodSync(ctx.home, 0o777),
    args: ['list'],
    ...UNSAFE,
    message: [lit('home'), /mcpki home is writable by everyone \(mode 0777\)/],
    hint: /chmod go-w/,
    json: true,
  },
  {
    title: 'a sticky world-writable home (1777) is not good enough',
    setup: (ctx) => chmodSync(ctx.home, 0o1777),
    args: ['issue', 'server', 'web', 'web.localhost'],
    ...UNSAFE,
    message: /mcpki home is writable by everyone \(mode 1777\)/,
  },
  {
    title: 'a group-writable home (0770)',
    setup: (ctx) => chmodSync(ctx.home, 0o770),
    args: ['ca', 'show'],
    ...UNSAFE,
    message: /writable by its group/,
  },
  {
    title: 'a home owned by nobody',
    setup: (ctx) => chownSync(ctx.home, NOBODY, NOBODY),
    args: ['issue', 'server', 'web', 'web.localhost'],
    ...UNSAFE,
    message: /home.* owned by uid 65534/,
    hint: /chown/,
    json: true,
  },
  {
    title: 'init into an empty 0777 home owned by nobody',
    home: 'empty',
    setup: (ctx) => nobodyDir(ctx.home, 0o777),
    args: ['init'],
    ...UNSAFE,
    message: /owned by uid 65534/,
    json: true,
  },
  {
    title: 'init into a missing home below a folder nobody owns',
    home: 'none',
    setup: (ctx) => nobodyDir(join(ctx.work, 'theirs')),
    homeArg: (ctx) => join(ctx.work, 'theirs', 'home'),
    args: ['init'],
    ...UNSAFE,
    message: /theirs: .*owned by uid 65534/,
  },
  {
    title: 'a home reached through a symlink nobody planted',
    world: true,
    setup: (ctx) => asNobody('ln', ['-s', ctx.home, join(ctx.public, 'home')]),
    homeArg: (ctx) => join(ctx.public, 'home'),
    args: ['list'],
    ...UNSAFE,
    message: /symlink owned by uid 65534/,
  },
  {
    title: 'a world-writable ca/ folder (0777)',
    setup: (ctx) => chmodSync(join(ctx.home, 'ca'), 0o777),
    args: ['issue', 'server', 'web', 'web.localhost'],
    ...UNSAFE,
    message: [/ca: the CA folder is writable by everyone \(mode 0777\)/],
    hint: /chmod go-w/,
    json: true,
  },
  {
    title: 'a ca/ folder owned by nobody',
    setup: (ctx) => chownSync(join(ctx.home, 'ca'), NOBODY, NOBODY),
    args: ['list'],
    ...UNSAFE,
    message: /CA folder is owned by uid 65534/,
  },
  {
    title: 'an intermediate.key readable by everyone (0644)',
    setup: (ctx) => chmodSync(join(ctx.home, 'ca', 'intermediate.key'), 0o644),
    args: ['issue', 'server', 'web', 'web.localhost'],
    ...UNSAFE,
    message: [/intermediate\.key/, /mode 0644/],
    hint: /chmod 600/,
    json: true,
  },
  {
    title: 'a root.key readable by its group (0640)',
    setup: (ctx) => chmodSync(join(ctx.home, 'ca', 'root.key'), 0o640),
    args: ['ca', 'show'],
    ...UNSAFE,
    message: [/root\.key/, /mode 0640/],
    hint: /chmod 600/,
  },
  {
    title: 'an intermediate.key owned by nobody',
    setup: (ctx) => chownSync(join(ctx.home, 'ca', 'intermediate.key'), NOBODY, NOBODY),
    args: ['issue', 'client', 'agent'],
    ...UNSAFE,
    message: /intermediate CA key is owned by uid 65534/,
  },
  {
    title: 'an intermediate.key replaced by a symlink',
    setup: (ctx) => {
      renameSync(join(ctx.home, 'ca', 'intermediate.key'), join(ctx.work, 'intermediate.key'));
      symlinkSync(join(ctx.work, 'intermediate.key'), join(ctx.home, 'ca', 'intermediate.key'));
    },
    args: ['issue', 'server', 'web', 'web.localhost'],
    ...UNSAFE,
    message: /intermediate CA key is a symlink/,
  },
  {
    title: 'an inventory writable by everyone (0666)',
    setup: (ctx) => chmodSync(join(ctx.home, 'mcpki.db'), 0o666),
    args: ['list'],
    ...UNSAFE,
    message: /mcpki\.db: the inventory is writable by everyone \(mode 0666\)/,
  },
  {
    title: 'an inventory owned by nobody',
    setup: (ctx) => chownSync(join(ctx.home, 'mcpki.db'), NOBODY, NOBODY),
    args: ['issue', 'server', 'web', 'web.localhost'],
    ...UNSAFE,
    message: /inventory is owned by uid 65534/,
  },

  // ---- item 16: target modes ------------------------------------------------------------------------------
  modeRow(
    'a key target with mode 0660 (group may write the key)',
    'key',
    'web.key',
    '0660',
    /mode 0660 lets the group write the private key/,
  ),
  modeRow('a cert target with mode 4755 (setuid)', 'cert', 'web.crt', '4755', /mode 4755 sets the setuid bit/),
  modeRow('a key target with mode 2600 (setgid)', 'key', 'web.key', '2600', /setgid/),
  modeRow('a fullchain target with mode 1644 (sticky)', 'fullchain', 'web.pem', '1644', /sticky/),
  modeRow('a combined target with mode 0620', 'combined', 'web.pem', '0620', /group write the private key/),
  modeRow('a cert target writable by everyone (0666)', 'cert', 'web.crt', '0666', /everyone write/),
  modeRow('a p12 target with mode 6600', 'p12', 'web.p12', '6600', /setuid and setgid/, ', passwordFile: p12.pass'),

  // ---- item 17: traces of failed commands ------------------------------------------------------------------
  {
    title: 'an empty --home is a usage error, not the default home',
    homeArg: () => '',
    args: ['list'],
    status: EXIT.USAGE,
    code: 'USAGE',
    message: /--home is empty/,
    hint: /--home/,
    json: true,
  },
  {
    title: 'list with a missing home does not create it',
    home: 'none',
    args: ['list'],
    status: 0,
    unchanged: true,
    check: (ctx) => assert.ok(!existsSync(ctx.home), 'the home was created'),
  },
];
