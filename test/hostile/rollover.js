// Hostile rows: `mcpki acme account rollover NAME` against a home whose account files were tampered with.
// Each row registers a real account at an mcpki acme-server (harness.js), then changes the accounts folder or
// the key files the way another user or a careless restore could: the rollover must refuse before the CA
// hears of a new key, write no key anywhere and follow no symlink. The first row is the control: an intact
// account rolls over.
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  lchownSync,
  mkdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { run } from '../helpers.js';
import { asNobody, EXIT, lit, registerAccount } from './harness.js';

const NOBODY = 65534;
const UNSAFE = { status: EXIT.UNSAFE_PATH, code: 'UNSAFE_PATH' };
const ROLLOVER = ['acme', 'account', 'rollover', 'acct'];
const QUICK = 15_000;

/** A private key of nobody's own, made as nobody (what they would plant). */
function nobodyKey(path) {
  asNobody('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
  asNobody('chmod', ['600', path]);
}

export const CASES = [
  {
    title: 'rollover of an intact account works (the control for the rows below)',
    setup: (ctx) => {
      const accounts = registerAccount(ctx);
      ctx.oldKey = readFileSync(join(accounts, 'acct.key'), 'utf8');
    },
    args: ROLLOVER,
    status: 0,
    check: (ctx) => {
      const key = join(ctx.home, 'acme', 'accounts', 'acct.key');
      assert.notEqual(readFileSync(key, 'utf8'), ctx.oldKey, 'the key was replaced');
      const shown = run('openssl', ['pkey', '-in', key, '-noout']);
      assert.equal(shown.status, 0, shown.stderr);
    },
  },
  {
    title: 'rollover with the accounts folder writable by everyone (0777)',
    setup: (ctx) => chmodSync(registerAccount(ctx), 0o777),
    args: ROLLOVER,
    ...UNSAFE,
    message: [/acme\/accounts: .*writable by everyone \(mode 0777\)/],
    hint: /chmod go-w/,
    json: true,
  },
  {
    title: 'rollover with a sticky world-writable accounts folder (1777): not good enough for keys',
    setup: (ctx) => chmodSync(registerAccount(ctx), 0o1777),
    args: ROLLOVER,
    ...UNSAFE,
    message: [/acme\/accounts: the ACME accounts folder is writable by everyone \(mode 1777\)/],
  },
  {
    title: 'rollover with a group-writable accounts folder (0770)',
    setup: (ctx) => chmodSync(registerAccount(ctx), 0o770),
    args: ROLLOVER,
    ...UNSAFE,
    message: [/writable by its group \(mode 0770\)/],
  },
  {
    title: 'rollover with a world-writable acme/ folder above the accounts folder',
    setup: (ctx) => {
      registerAccount(ctx);
      chmodSync(join(ctx.home, 'acme'), 0o777);
    },
    args: ROLLOVER,
    ...UNSAFE,
    message: [/home\/acme: .*writable by everyone/],
  },
  {
    title: 'rollover with the accounts folder owned by nobody, who planted a rollover key of their own',
    setup: (ctx) => {
      const accounts = registerAccount(ctx);
      chownSync(accounts, NOBODY, NOBODY);
      chmodSync(join(ctx.home), 0o711);
      chmodSync(join(ctx.home, 'acme'), 0o711);
      chmodSync(ctx.root, 0o755);
      nobodyKey(join(accounts, 'acct.key.rollover'));
    },
    args: ROLLOVER,
    ...UNSAFE,
    message: [/acme\/accounts: .*owned by uid 65534/],
    hint: /chown/,
    json: true,
  },
  {
    title: 'rollover with the accounts folder replaced by a symlink nobody owns, to a folder of theirs',
    world: true,
    setup: (ctx) => {
      const accounts = registerAccount(ctx);
      asNobody('mkdir', [join(ctx.public, 'keys')]);
      nobodyKey(join(ctx.public, 'keys', 'acct.key'));
      renameSync(accounts, join(ctx.work, 'accounts.real'));
      symlinkSync(join(ctx.public, 'keys'), accounts);
      lchownSync(accounts, NOBODY, NOBODY);
    },
    args: ROLLOVER,
    ...UNSAFE,
    message: [/acme\/accounts: it is a symlink owned by uid 65534/],
  },
  {
    title: 'rollover with the account key replaced by a symlink to another key (ours, root-owned)',
    setup: (ctx) => {
      const accounts = registerAccount(ctx);
      renameSync(join(accounts, 'acct.key'), join(ctx.work, 'other.key'));
      symlinkSync(join(ctx.work, 'other.key'), join(accounts, 'acct.key'));
    },
    args: ROLLOVER,
    ...UNSAFE,
    message: [/acct\.key: key of ACME account "acct" is a symlink/],
    check: (ctx) => assert.match(readFileSync(join(ctx.work, 'other.key'), 'utf8'), /PRIVATE KEY/),
  },
  {
    title: 'rollover with a rollover key that is a symlink to a file of ours: refused, the file left alone',
    setup: (ctx) => {
      const accounts = registerAccount(ctx);
      writeFileSync(join(ctx.work, 'victim'), 'the victim\n', { mode: 0o600 });
      symlinkSync(join(ctx.work, 'victim'), join(accounts, 'acct.key.rollover'));
    },
    args: ROLLOVER,
    ...UNSAFE,
    message: [/acct\.key\.rollover: unfinished rollover key of ACME account "acct" is a symlink/],
    json: true,
  },
  {
    title: 'rollover with a FIFO where the rollover key would be (must not hang)',
    setup: (ctx) => {
      const made = run('mkfifo', [join(registerAccount(ctx), 'acct.key.rollover')]);
      assert.equal(made.status, 0, made.stderr);
    },
    args: ROLLOVER,
    ...UNSAFE,
    message: [/acct\.key\.rollover: .* is not a regular file/],
    timeout: QUICK,
  },
  {
    title: 'rollover with the account key readable by everyone (0644)',
    setup: (ctx) => chmodSync(join(registerAccount(ctx), 'acct.key'), 0o644),
    args: ROLLOVER,
    ...UNSAFE,
    message: [/acct\.key: .*accessible by group or others \(mode 0644\)/],
    hint: /chmod 600/,
  },
  {
    title: 'rollover with the account key owned by nobody',
    setup: (ctx) => chownSync(join(registerAccount(ctx), 'acct.key'), NOBODY, NOBODY),
    args: ROLLOVER,
    ...UNSAFE,
    message: [/acct\.key: .*owned by uid 65534/],
  },
  {
    title: 'rollover with the account key gone',
    setup: (ctx) => {
      const accounts = registerAccount(ctx);
      renameSync(join(accounts, 'acct.key'), join(ctx.work, 'acct.key'));
    },
    args: ROLLOVER,
    status: EXIT.NOT_FOUND,
    code: 'ACME_ACCOUNT_MISSING',
    message: [/acct\.key does not exist/],
  },
  {
    title: 'rollover of an account name with control characters is shown escaped',
    setup: (ctx) => registerAccount(ctx),
    args: ['acme', 'account', 'rollover', 'ac\u001b[2Jct\u202e'],
    status: [EXIT.NOT_FOUND, EXIT.INVALID_INPUT],
    message: [lit('ac\\e[2Jct\\u202e')],
    json: true,
  },
];
