// The hostile-input suite's harness. Each file in test/hostile/ (but this one) exports CASES, a table of
// rows run by test/hostile.test.js through the real CLI. A failing row must exit with its documented code,
// print one `error: …` line naming the problem and one `hint: …` line naming the fix, print nothing on
// stdout, and leave every file under the case folder (home, targets, inventory) byte for byte as it was.
//
// A row:
//   title     what is wrong
//   home      'ca' (copy of an initialised CA, the default) | 'enc' (encrypted root) | 'empty' | 'none'
//             (for an ACME account, setup calls registerAccount(ctx): a real one at a running mcpki acme-server)
//   world     true: the case folder is 0755 and ctx.public is a world-writable sticky folder (like /tmp),
//             so attacker steps can run as another user (asNobody)
//   setup     (ctx) => void, runs before the snapshot; ctx = { root, home, work, public? }
//   homeArg   (ctx) => the --home value (default ctx.home)
//   args      array, or (ctx) => array; --home is prepended
//   env       extra environment
//   input     standard input
//   status    the documented exit code (or a list); 0 means the command must succeed (then `check` says
//             what must hold, and files may change unless `unchanged: true`)
//   code      the McpkiError code expected in --json output
//   message   RegExp (or list of RegExps) the `error:` line must match
//   hint      RegExp the `hint:` line must match (default: any non-empty hint)
//   json      also run the case with --json and check {error:{code,message,hint,exitCode[,details]}}
//   check     (ctx, result) => void, extra assertions after the run
//   timeout   ms for the command (default 60 s)
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import { BIN, mcpki, run, tempDir } from '../helpers.js';

// No secret or home may leak in from the environment that runs the tests.
for (const name of [
  'MCPKI_ROOT_PASSPHRASE',
  'MCPKI_P12_PASSWORD',
  'MCPKI_EAB_HMAC',
  'MCPKI_HOME',
  'MCPKI_DEBUG',
  'FORCE_COLOR',
])
  delete process.env[name];

export const PASSPHRASE = 'correct-horse-battery-staple';

// The documented table (src/errors.ts, `mcpki --help`, docs/cli.md).
export const EXIT = {
  INTERNAL: 1,
  USAGE: 2,
  INVALID_INPUT: 3,
  CA_MISSING: 4,
  EXISTS: 5,
  NOT_PERMITTED: 6,
  STORE: 7,
  FILESYSTEM: 8,
  GIT_GUARD: 9,
  NOT_FOUND: 10,
  TRUST: 11,
  PASSPHRASE: 12,
  ACME: 13,
  NETWORK: 15,
  DEPLOY: 16,
  SOME_FAILED: 17,
  SERVICE: 18,
  UNSAFE_PATH: 22,
  INSTALL: 23,
};

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** A pattern that matches the literal text (e.g. the offending value, which the message must name). */
export const lit = (text) => new RegExp(escape(text));

/** Every entry under a folder, with type, owner, size, mode and content hash. */
/** A hash of every row of every table (read-only), or of the bytes when the file is not a readable database. */
function inventoryRows(path) {
  let db;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const hash = createHash('sha256');
    for (const { name } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all())
      hash.update(`${name}\n${JSON.stringify(db.prepare(`SELECT * FROM "${name}"`).raw().all())}\n`);
    return hash.digest('hex');
  } catch {
    return `bytes:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
  } finally {
    db?.close();
  }
}

export function snapshot(root) {
  const entries = {};
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      // SQLite's shared-memory index of the WAL, rebuilt by the first process that opens the inventory: not state
      if (name.endsWith('.db-shm')) continue;
      // the inventory is mcpki.db and its WAL together (a checkpoint moves pages from one to the other): its rows
      if (name === 'mcpki.db-wal') continue;
      const path = join(dir, name);
      if (name === 'mcpki.db' && lstatSync(path).isFile()) {
        const st = lstatSync(path);
        entries[path.slice(root.length + 1)] =
          `inventory mode=${(st.mode & 0o7777).toString(8)} uid=${st.uid} gid=${st.gid} rows=${inventoryRows(path)}`;
        continue;
      }
      const st = lstatSync(path);
      const rel = path.slice(root.length + 1);
      const mode = (st.mode & 0o7777).toString(8);
      const owner = `uid=${st.uid} gid=${st.gid}`;
      if (st.isDirectory()) {
        entries[rel] = `dir mode=${mode} ${owner}`;
        walk(path);
      } else if (st.isSymbolicLink()) {
        entries[rel] = `symlink -> ${readlinkSync(path)} ${owner}`;
      } else if (st.isFile()) {
        entries[rel] =
          `file size=${st.size} mode=${mode} ${owner} sha256=${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
      } else {
        entries[rel] = `other mode=${mode} ${owner}`;
      }
    }
  };
  if (existsSync(root)) walk(root);
  return entries;
}

export function diffSnapshots(beforeSnap, afterSnap) {
  const changes = [];
  for (const [path, desc] of Object.entries(beforeSnap)) {
    if (!(path in afterSnap)) changes.push(`removed ${path} (${desc})`);
    else if (afterSnap[path] !== desc) changes.push(`changed ${path}: ${desc} -> ${afterSnap[path]}`);
  }
  for (const [path, desc] of Object.entries(afterSnap))
    if (!(path in beforeSnap)) changes.push(`created ${path} (${desc})`);
  return changes;
}

// ---------------------------------------------------------------------------------------------------
// Shared CAs, created once per process and copied into each case's home.

let shared; // { dir, cleanup }
const caseDirs = [];
const homes = {};

let acmeServer; // { child, directory, caBundle }: an mcpki acme-server on its own home, for ACME accounts

export async function setUpSharedCas() {
  shared = tempDir('mcpki-hostile-shared-');
  homes.ca = join(shared.dir, 'ca-home');
  homes.enc = join(shared.dir, 'enc-home');
  const plain = mcpki(['--home', homes.ca, 'init']);
  assert.equal(plain.status, 0, `init failed: ${plain.stderr}`);
  const enc = mcpki(['--home', homes.enc, 'init', '--encrypt-root'], { env: { MCPKI_ROOT_PASSPHRASE: PASSPHRASE } });
  assert.equal(enc.status, 0, `init --encrypt-root failed: ${enc.stderr}`);
  acmeServer = await startAcmeServer(join(shared.dir, 'acme-server-home'));
}

/** `mcpki acme-server` on a home of its own, on a free loopback port; resolves once it listens. */
async function startAcmeServer(home) {
  const made = mcpki(['--home', home, 'init']);
  assert.equal(made.status, 0, `init of the ACME server's home failed: ${made.stderr}`);
  const child = spawn(process.execPath, [BIN, '--home', home, '--json', 'acme-server', '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const directory = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`acme-server did not start: ${err}`)), 30_000);
    child.stderr.on('data', (chunk) => (err += chunk));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      try {
        const url = JSON.parse(out).directories[0];
        clearTimeout(timer);
        resolve(url);
      } catch {
        // not the whole document yet
      }
    });
    child.on('exit', (code) => reject(new Error(`acme-server exited ${code}: ${err}`)));
  });
  return { child, directory, caBundle: join(home, 'ca', 'root.crt') };
}

/** Registers ACME account `name` in the case's home at the running acme-server (a real account, a real key). */
export function registerAccount(ctx, name = 'acct') {
  const made = mcpki([
    '--home',
    ctx.home,
    'acme',
    'account',
    'register',
    '--name',
    name,
    '--directory',
    acmeServer.directory,
    '--agree-tos',
    '--ca-bundle',
    acmeServer.caBundle,
  ]);
  assert.equal(made.status, 0, `acme account register failed: ${made.stderr}`);
  return join(ctx.home, 'acme', 'accounts');
}

export async function tearDown() {
  const child = acmeServer?.child;
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
  }
  for (const dir of caseDirs) rmSync(dir, { recursive: true, force: true });
  shared?.cleanup();
}

/**
 * A fresh case folder: ROOT/home (a copy of a shared CA, an empty folder, or absent) and ROOT/work (an empty
 * folder for output paths, git repositories, batch files…). With `world`, ROOT and ROOT/work are 0755 and
 * ROOT/public is 01777, so another user can reach them. The whole of ROOT is snapshotted.
 */
export function prepareCase(homeKind = 'ca', { world = false } = {}) {
  const { dir: root } = tempDir('mcpki-hostile-case-');
  caseDirs.push(root);
  const home = join(root, 'home');
  const work = join(root, 'work');
  mkdirSync(work);
  if (homeKind === 'ca' || homeKind === 'enc')
    cpSync(homes[homeKind], home, { recursive: true, preserveTimestamps: true });
  else if (homeKind === 'empty') mkdirSync(home, { mode: 0o700 });
  else assert.equal(homeKind, 'none');
  const ctx = { root, home, work };
  if (world) {
    chmodSync(root, 0o755);
    chmodSync(work, 0o755);
    ctx.public = join(root, 'public');
    mkdirSync(ctx.public);
    chmodSync(ctx.public, 0o1777);
  }
  return ctx;
}

/** Runs a program as the unprivileged user nobody (the attacker); asserts it worked unless `mayFail`. */
export function asNobody(cmd, args, { mayFail = false } = {}) {
  const result = run('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', cmd, ...args]);
  if (!mayFail) assert.equal(result.status, 0, `as nobody: ${cmd} ${args.join(' ')}: ${result.stderr}`);
  return result;
}

export function gitInit(dir) {
  mkdirSync(dir, { recursive: true });
  const result = run('git', ['init', '-q', dir]);
  assert.equal(result.status, 0, `git init failed: ${result.stderr}`);
}

function asList(value) {
  return Array.isArray(value) ? value : [value];
}

function runCase(row, { json }) {
  const ctx = prepareCase(row.home ?? 'ca', { world: row.world });
  row.setup?.(ctx);
  const home = row.homeArg ? row.homeArg(ctx) : ctx.home;
  const args = typeof row.args === 'function' ? row.args(ctx) : row.args;
  const argv = [...(home === null ? [] : ['--home', home]), ...(json ? ['--json'] : []), ...args];
  const beforeSnap = snapshot(ctx.root);
  const result = mcpki(argv, { env: row.env, timeout: row.timeout, input: row.input });
  const afterSnap = snapshot(ctx.root);
  return { ctx, argv, result, changes: diffSnapshots(beforeSnap, afterSnap) };
}

function describeRun(argv, result) {
  const shown = argv.map((a) => (a.length > 200 ? `${a.slice(0, 200)}…(${a.length} chars)` : a));
  return `\n  $ mcpki ${shown.map((a) => (/[\s*]/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n  exit: ${result.status}\n  stderr: ${JSON.stringify(result.stderr.slice(0, 2000))}\n  stdout: ${JSON.stringify(result.stdout.slice(0, 600))}`;
}

/** Checks one row's plain run; returns the list of problems (empty when the row holds). */
export function checkPlain(row) {
  const { ctx, argv, result, changes } = runCase(row, { json: false });
  const where = describeRun(argv, result);
  const problems = [];
  if (!asList(row.status).includes(result.status))
    problems.push(`exit code ${result.status}, expected ${asList(row.status).join(' or ')}`);
  if (row.status !== 0) {
    const lines = result.stderr.split('\n');
    const errorLine = lines.find((l) => l.startsWith('error: '));
    const hintLine = lines.find((l) => l.startsWith('hint: '));
    if (!errorLine) problems.push('no "error: …" line on stderr');
    else
      for (const pattern of asList(row.message ?? []))
        if (!pattern.test(errorLine)) problems.push(`error line does not match ${pattern}`);
    if (!hintLine || hintLine.trim() === 'hint:') problems.push('no "hint: …" line on stderr');
    else if (row.hint && !row.hint.test(hintLine.slice('hint: '.length)))
      problems.push(`hint line does not match ${row.hint}`);
    if (result.stdout !== '') problems.push('printed something on stdout on failure');
  }
  if (/this is a bug/.test(result.stderr)) problems.push('reported as an internal error ("this is a bug")');
  if ((row.status !== 0 || row.unchanged) && changes.length > 0)
    problems.push(`files changed:\n    ${changes.join('\n    ')}`);
  if (problems.length === 0) row.check?.(ctx, result);
  return { problems, where };
}

/** Checks one row's --json run. */
export function checkJson(row) {
  const { ctx, argv, result, changes } = runCase(row, { json: true });
  const where = describeRun(argv, result);
  const problems = [];
  if (!asList(row.status).includes(result.status))
    problems.push(`exit code ${result.status}, expected ${asList(row.status).join(' or ')}`);
  const error = result.json?.error;
  if (!result.json || typeof error !== 'object' || error === null) {
    problems.push('stdout is not a JSON document {"error": {...}}');
  } else {
    const keys = Object.keys(result.json);
    if (keys.length !== 1) problems.push(`top-level keys ${keys.join(',')}, expected only "error"`);
    // "details" (optional): every error of a file that has several (mcpki.yaml), one string each
    // "fix": the settings the hint names (or null), for each surface to word its own way
    const expectedKeys = [
      'code',
      'exitCode',
      'fix',
      'hint',
      'message',
      ...('details' in error ? ['details'] : []),
    ].sort();
    if (JSON.stringify(Object.keys(error).sort()) !== JSON.stringify(expectedKeys))
      problems.push(`error keys ${Object.keys(error).join(',')}`);
    if (
      'details' in error &&
      (!Array.isArray(error.details) ||
        error.details.length === 0 ||
        !error.details.every((d) => typeof d === 'string' && !d.includes('\n')))
    )
      problems.push('details is not a list of one-line strings');
    if (row.code && error.code !== row.code) problems.push(`code ${error.code}, expected ${row.code}`);
    if (error.exitCode !== result.status)
      problems.push(`exitCode ${error.exitCode} differs from the process exit code ${result.status}`);
    if (typeof error.message !== 'string' || error.message.includes('\n'))
      problems.push('message is not a one-line string');
    else
      for (const pattern of asList(row.message ?? []))
        if (!pattern.test(error.message)) problems.push(`message does not match ${pattern}`);
    if (typeof error.hint !== 'string' || error.hint.length === 0) problems.push('no hint');
    else if (row.hint && !row.hint.test(error.hint)) problems.push(`hint does not match ${row.hint}`);
  }
  if (changes.length > 0) problems.push(`files changed:\n    ${changes.join('\n    ')}`);
  if (problems.length === 0) row.check?.(ctx, result);
  return { problems, where };
}
