// Special and huge files (issue 8, items 12 and 18): every file mcpki reads as input must be a regular file
// of bounded size. A FIFO nobody writes, /dev/zero, a folder, a symlink another user planted to one of them,
// or a 100 MB file is refused at once (exit 3) with a message saying what it is — never a hang, never
// memory filled, never "does not exist". A symlink another user owns is not followed at all (exit 22).
import { mkdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../helpers.js';
import { asNobody, EXIT, lit } from './harness.js';

/** A FIFO that nobody opens for writing: reading it with a blocking open would hang forever. */
function fifo(path) {
  const made = run('mkfifo', [path]);
  if (made.status !== 0) throw new Error(`mkfifo ${path}: ${made.stderr}`);
  return path;
}

/** A sparse file of `bytes` (no disk used, but its size is what a reader sees). */
function sparse(path, bytes) {
  writeFileSync(path, '');
  truncateSync(path, bytes);
  return path;
}

const QUICK = 15_000; // a hang is a failure: the command must be done long before this
const notRegular = (what) => [/not a regular file/, new RegExp(what)];

// the file-taking flags, each with the command around it
const FLAGS = [
  { flag: 'issue batch FILE', args: (file) => ['issue', 'batch', file] },
  {
    flag: '--p12-password-file',
    args: (file) => ['issue', 'server', 'web', 'web.localhost', '--p12', '--p12-password-file', file],
  },
  {
    flag: 'issue batch --p12-password-file',
    args: (file, ctx) => ['issue', 'batch', join(ctx.work, 'ok.batch'), '--p12', '--p12-password-file', file],
  },
  { flag: 'check FILE', args: (file) => ['check', file] },
  { flag: 'check --ca', args: (file) => ['check', 'localhost:1', '--ca', file] },
  { flag: 'check --key', args: (file, ctx) => ['check', join(ctx.home, 'ca', 'root.crt'), '--key', file] },
  { flag: 'crl --passphrase-file', args: (file) => ['crl', '--passphrase-file', file] },
  {
    flag: 'acme account register --eab-hmac-file',
    args: (file) => [
      'acme',
      'account',
      'register',
      '--directory',
      'https://127.0.0.1:9/dir',
      '--agree-tos',
      '--eab-kid',
      'kid',
      '--eab-hmac-file',
      file,
    ],
  },
];

const okBatch = (ctx) => writeFileSync(join(ctx.work, 'ok.batch'), 'server web web.localhost\n');

export const CASES = [
  // a FIFO nobody writes, in every file-taking flag
  ...FLAGS.map(({ flag, args }) => ({
    title: `${flag}: a FIFO nobody writes is refused at once`,
    setup: (ctx) => {
      okBatch(ctx);
      fifo(join(ctx.work, 'pipe'));
    },
    args: (ctx) => args(join(ctx.work, 'pipe'), ctx),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [...notRegular('a FIFO'), /pipe/],
    hint: /regular file/,
    timeout: QUICK,
    json: flag === 'check --ca',
  })),
  // /dev/zero, in every file-taking flag
  ...FLAGS.map(({ flag, args }) => ({
    title: `${flag}: /dev/zero is refused as a character device`,
    setup: okBatch,
    args: (ctx) => args('/dev/zero', ctx),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [...notRegular('a character device'), lit('/dev/zero')],
    timeout: QUICK,
    json: flag === 'issue batch FILE',
  })),
  {
    title: 'check --ca /dev/zero says what it is, not "does not exist" (item 18)',
    args: ['check', 'localhost:1', '--ca', '/dev/zero'],
    status: EXIT.INVALID_INPUT,
    message: [/--ca file \/dev\/zero is a character device, not a regular file/],
    check: (ctx, result) => {
      if (/does not exist/.test(result.stderr)) throw new Error(`says "does not exist": ${result.stderr}`);
    },
    timeout: QUICK,
  },
  {
    title: 'issue batch: a 100 MB file is refused by its size, without reading it',
    setup: (ctx) => sparse(join(ctx.work, 'huge.batch'), 100 * 1024 * 1024),
    args: (ctx) => ['issue', 'batch', join(ctx.work, 'huge.batch')],
    status: EXIT.INVALID_INPUT,
    message: [/huge\.batch is 104857600 bytes; the limit is \d+/],
    timeout: QUICK,
  },
  {
    title: '--p12-password-file: a 1 MB password file is refused by its size',
    setup: (ctx) => sparse(join(ctx.work, 'password'), 1024 * 1024),
    args: (ctx) => [
      'issue',
      'server',
      'web',
      'web.localhost',
      '--p12',
      '--p12-password-file',
      join(ctx.work, 'password'),
    ],
    status: EXIT.INVALID_INPUT,
    message: [/password is 1048576 bytes; the limit is 65536/],
  },
  {
    title: 'check FILE: a 5 MB certificate file is refused by its size',
    setup: (ctx) => sparse(join(ctx.work, 'big.pem'), 5 * 1024 * 1024),
    args: (ctx) => ['check', join(ctx.work, 'big.pem')],
    status: EXIT.INVALID_INPUT,
    message: [/big\.pem is 5242880 bytes/],
  },
  {
    title: 'check --ca: a folder is refused as a folder',
    setup: (ctx) => mkdirSync(join(ctx.work, 'cas')),
    args: (ctx) => ['check', 'localhost:1', '--ca', join(ctx.work, 'cas')],
    status: EXIT.INVALID_INPUT,
    message: notRegular('a folder'),
  },
  {
    title: 'issue batch: a folder is refused as a folder',
    args: (ctx) => ['issue', 'batch', ctx.work],
    status: EXIT.INVALID_INPUT,
    message: [/batch file .* is a folder/],
  },
  {
    title: 'check FILE: a folder given as a path is refused as a folder, not taken for a host',
    args: (ctx) => ['check', ctx.work],
    status: EXIT.INVALID_INPUT,
    message: notRegular('a folder'),
  },
  {
    title: 'check --ca: a file without a PEM certificate is refused',
    setup: (ctx) => writeFileSync(join(ctx.work, 'notes.txt'), 'not a certificate\n'),
    args: (ctx) => ['check', 'localhost:1', '--ca', join(ctx.work, 'notes.txt')],
    status: EXIT.INVALID_INPUT,
    message: [/holds no PEM certificate/, /notes\.txt/],
    json: true,
  },
  {
    title: "issue batch: another user's symlink to /dev/zero in a shared folder",
    world: true,
    setup: (ctx) => asNobody('ln', ['-s', '/dev/zero', join(ctx.public, 'requests')]),
    args: (ctx) => ['issue', 'batch', join(ctx.public, 'requests')],
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
    message: [/requests is a symlink owned by uid 65534/],
    hint: /path of the file itself/,
    timeout: QUICK,
    json: true,
  },
  {
    title: "issue batch: another user's FIFO in a shared folder",
    world: true,
    setup: (ctx) => asNobody('mkfifo', [join(ctx.public, 'requests')]),
    args: (ctx) => ['issue', 'batch', join(ctx.public, 'requests')],
    status: EXIT.INVALID_INPUT,
    message: notRegular('a FIFO'),
    timeout: QUICK,
  },
  {
    title: "check --ca: another user's symlink to a FIFO in a shared folder",
    world: true,
    setup: (ctx) => {
      asNobody('mkfifo', [join(ctx.public, 'pipe')]);
      asNobody('ln', ['-s', join(ctx.public, 'pipe'), join(ctx.public, 'ca.pem')]);
    },
    args: (ctx) => ['check', 'localhost:1', '--ca', join(ctx.public, 'ca.pem')],
    status: EXIT.UNSAFE_PATH,
    message: [/ca\.pem is a symlink owned by uid 65534/],
    timeout: QUICK,
  },
  {
    title: 'init --encrypt-root --passphrase-file FIFO: nothing is created',
    home: 'empty',
    setup: (ctx) => fifo(join(ctx.work, 'pass')),
    args: (ctx) => ['init', '--encrypt-root', '--passphrase-file', join(ctx.work, 'pass')],
    status: EXIT.INVALID_INPUT,
    message: notRegular('a FIFO'),
    timeout: QUICK,
  },
];
