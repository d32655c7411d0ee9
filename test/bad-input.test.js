// Bad input through the real CLI: every case must fail with the documented exit code, a one-line
// `error: …` naming the problem, a `hint: …` naming the fix, and must leave every file exactly as it was
// (path, type, size, mode, sha256) — nothing lost, nothing half-written, nothing created.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { hasCommand, mcpki, ROOT, run, tempDir } from './helpers.js';

// No secret or home may leak in from the environment that runs the tests.
for (const name of ['MCPKI_ROOT_PASSPHRASE', 'MCPKI_P12_PASSWORD', 'MCPKI_HOME', 'MCPKI_DEBUG', 'FORCE_COLOR'])
  delete process.env[name];

const PASSPHRASE = 'correct-horse-battery-staple';

// The documented table (src/errors.ts, `mcpki --help`).
const EXIT = {
  USAGE: 2,
  INVALID_INPUT: 3,
  CA_MISSING: 4,
  EXISTS: 5,
  NOT_PERMITTED: 6,
  STORE: 7,
  FILESYSTEM: 8,
  GIT_GUARD: 9,
  NOT_FOUND: 10,
  PASSPHRASE: 12,
};

/** mcpki.db overwritten with garbage, with the WAL the last command left beside it (which holds the newest pages). */
function corruptInventory(home) {
  writeFileSync(join(home, 'mcpki.db'), Buffer.alloc(8192, 0xa5));
  for (const suffix of ['-wal', '-shm']) rmSync(join(home, `mcpki.db${suffix}`), { force: true });
}

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** A pattern that matches the literal text (e.g. the offending value, which the message must name). */
const lit = (text) => new RegExp(escape(text));

// ---------------------------------------------------------------------------------------------------
// Snapshots: every entry under a folder, with type, size, mode and content hash.

function snapshot(root) {
  const entries = {};
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      // SQLite's shared-memory index of the WAL, rebuilt by the first process that opens the inventory: not state
      if (name.endsWith('.db-shm')) continue;
      const path = join(dir, name);
      const st = lstatSync(path);
      const rel = path.slice(root.length + 1);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        entries[rel] = `dir mode=${mode}`;
        walk(path);
      } else if (st.isSymbolicLink()) {
        entries[rel] = `symlink -> ${readlinkSync(path)}`;
      } else if (st.isFile()) {
        entries[rel] =
          `file size=${st.size} mode=${mode} sha256=${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
      } else {
        entries[rel] = `other mode=${mode}`;
      }
    }
  };
  if (existsSync(root)) walk(root);
  return entries;
}

function diffSnapshots(beforeSnap, afterSnap) {
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
// Shared CAs, created once and copied into each case's home.

let shared; // { dir, cleanup }
let caHome; // an initialised CA (default name constraints, plain root key)
let encHome; // an initialised CA with an encrypted root key
const caseDirs = [];

before(() => {
  shared = tempDir('mcpki-bad-shared-');
  caHome = join(shared.dir, 'ca-home');
  encHome = join(shared.dir, 'enc-home');
  const plain = mcpki(['--home', caHome, 'init']);
  assert.equal(plain.status, 0, `init failed: ${plain.stderr}`);
  const enc = mcpki(['--home', encHome, 'init', '--encrypt-root'], { env: { MCPKI_ROOT_PASSPHRASE: PASSPHRASE } });
  assert.equal(enc.status, 0, `init --encrypt-root failed: ${enc.stderr}`);
});

after(() => {
  for (const dir of caseDirs) rmSync(dir, { recursive: true, force: true });
  shared?.cleanup();
});

/**
 * A fresh case folder: ROOT/home (a copy of a shared CA, an empty folder, or absent) and ROOT/work (an empty
 * folder for output paths, git repositories, batch files…). The whole of ROOT is snapshotted.
 */
function prepareCase(homeKind) {
  const { dir: root } = tempDir('mcpki-bad-case-');
  caseDirs.push(root);
  const home = join(root, 'home');
  const work = join(root, 'work');
  mkdirSync(work);
  if (homeKind === 'ca') cpSync(caHome, home, { recursive: true, preserveTimestamps: true });
  else if (homeKind === 'enc') cpSync(encHome, home, { recursive: true, preserveTimestamps: true });
  else if (homeKind === 'empty') mkdirSync(home, { mode: 0o700 });
  else assert.equal(homeKind, 'none');
  return { root, home, work };
}

function gitInit(dir) {
  mkdirSync(dir, { recursive: true });
  const result = run('git', ['init', '-q', dir]);
  assert.equal(result.status, 0, `git init failed: ${result.stderr}`);
}

const issueServer = (...rest) => ['issue', 'server', ...rest];

// ---------------------------------------------------------------------------------------------------
// The table.
//
//   title     what is wrong
//   home      'ca' (copy of an initialised CA, the default) | 'enc' (encrypted root) | 'empty' | 'none'
//   setup     (ctx) => void, runs before the snapshot; ctx = { root, home, work }
//   homeArg   (ctx) => the --home value (default ctx.home)
//   args      array, or (ctx) => array; --home is prepended
//   env       extra environment
//   status    the documented exit code (or a list of acceptable documented codes)
//   code      the McpkiError code expected in --json output
//   message   RegExp (or list of RegExps) the `error:` line must match
//   hint      RegExp the `hint:` line must match (default: any non-empty hint)
//   json      also run the case with --json and check {error:{code,message,hint,exitCode}}
//   check     (ctx) => void, extra assertions after the run

const CASES = [
  // --- subject alternative names -----------------------------------------------------------------
  {
    title: 'SAN with a space',
    args: issueServer('x', 'exa mple.test'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: [lit('exa mple.test'), /white space/],
    json: true,
  },
  {
    title: 'SAN with a leading hyphen (after --)',
    args: issueServer('x', '--', '-bad.test'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: lit('-bad.test'),
  },
  // commander reads "-bad.test" as an option; whatever the code, the user needs a hint (use -- before it)
  {
    title: 'SAN with a leading hyphen (bare)',
    args: issueServer('x', '-bad.test'),
    status: [EXIT.USAGE, EXIT.INVALID_INPUT],
    message: lit('-bad.test'),
  },
  {
    title: 'SAN with an empty label',
    args: issueServer('x', 'a..test'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: lit('a..test'),
  },
  {
    title: 'SAN with two wildcards',
    args: issueServer('x', '*.*.test'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: [lit('*.*.test'), /wildcard/],
  },
  {
    title: 'SAN with a wildcard in a middle label',
    args: issueServer('x', 'foo.*.test'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: [lit('foo.*.test'), /wildcard/],
  },
  {
    title: 'too-broad wildcard *.test',
    args: issueServer('x', '*.test'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: [lit('*.test'), /wildcard/],
    hint: /\*\.example\.test/,
  },
  {
    title: 'SAN with a 64-character label',
    args: issueServer('x', `${'a'.repeat(64)}.test`),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: lit('a'.repeat(64)),
    hint: /63/,
  },
  {
    title: 'SAN 300.1.1.1 (not an IP, not a host name)',
    args: issueServer('x', '300.1.1.1'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: lit('300.1.1.1'),
  },
  {
    title: 'SPIFFE ID with an upper-case trust domain',
    args: issueServer('x', 'spiffe://UPPER/x'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: [lit('spiffe://UPPER/x'), /lower-case/],
  },
  {
    title: 'e-mail address with two @',
    args: ['issue', 'client', 'x', 'user@@x.test'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: lit('user@@x.test'),
  },
  {
    title: 'DNS name outside the name constraints',
    args: issueServer('x', 'example.com'),
    status: EXIT.NOT_PERMITTED,
    code: 'NAME_NOT_PERMITTED',
    message: [lit('"example.com"'), /name constraints/],
    hint: /--permit/,
    json: true,
  },
  {
    title: 'IP address outside the name constraints',
    args: issueServer('x', '10.0.0.1'),
    status: EXIT.NOT_PERMITTED,
    code: 'NAME_NOT_PERMITTED',
    message: [lit('"10.0.0.1"'), /name constraints/],
    hint: /--permit/,
  },
  {
    title: 'server certificate with no SANs',
    args: issueServer('nosans'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: [lit('"nosans"'), /no names/],
    hint: /localhost/,
  },
  {
    title: 'certificate name ../evil',
    args: issueServer('../evil', 'evil.test'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: lit('"../evil"'),
  },

  // --- key types and lifetimes ---------------------------------------------------------------------
  {
    title: 'issue with unknown key type rsa-1024',
    args: issueServer('x', 'x.test', '--key', 'rsa-1024'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_KEY_TYPE',
    message: lit('"rsa-1024"'),
    hint: /ec-p256/,
    json: true,
  },
  {
    title: 'init with unknown key type rsa-1024',
    home: 'none',
    args: ['init', '--key', 'rsa-1024'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_KEY_TYPE',
    message: lit('"rsa-1024"'),
    hint: /ec-p256/,
  },
  {
    title: '--days 0',
    args: issueServer('x', 'x.test', '--days', '0'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_DAYS',
    message: [/--days/, /398/, /got 0/],
  },
  {
    title: '--days 400',
    args: issueServer('x', 'x.test', '--days', '400'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_DAYS',
    message: [/--days/, /398/, /got 400/],
  },
  {
    title: '--days abc (usage error)',
    args: issueServer('x', 'x.test', '--days', 'abc'),
    status: EXIT.USAGE,
    code: 'USAGE',
    message: [/--days/, /abc/],
    json: true,
  },
  {
    title: 'unknown option --dayz (usage error)',
    args: issueServer('x', 'x.test', '--dayz', '3'),
    status: EXIT.USAGE,
    message: /--dayz/,
  },
  { title: 'missing certificate name (usage error)', args: ['issue', 'server'], status: EXIT.USAGE, message: /name/ },
  { title: 'crl --days 0', args: ['crl', '--days', '0'], status: EXIT.INVALID_INPUT, message: [/--days/, /got 0/] },

  // --- the CA ---------------------------------------------------------------------------------------
  {
    title: 'issue before init (empty home)',
    home: 'empty',
    args: issueServer('x', 'x.test'),
    status: EXIT.CA_MISSING,
    code: 'CA_MISSING',
    message: /no CA/,
    hint: /mcpki init/,
    json: true,
  },
  {
    title: 'issue before init (home does not exist)',
    home: 'none',
    args: issueServer('x', 'x.test'),
    status: EXIT.CA_MISSING,
    code: 'CA_MISSING',
    message: /no CA/,
    hint: /mcpki init/,
  },
  {
    title: 'init twice with other options, without --force',
    args: ['init', '--key', 'ec-p384'],
    status: EXIT.EXISTS,
    code: 'CA_EXISTS',
    message: /already exists/,
    hint: /--force/,
  },
  {
    title: '--permit with host bits set',
    home: 'none',
    args: ['init', '--permit', '10.0.0.1/8'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: [lit('10.0.0.1/8'), /host bits/],
    hint: lit('10.0.0.0/8'),
  },
  {
    title: '--permit together with --no-name-constraints',
    home: 'none',
    args: ['init', '--permit', '.corp.example', '--no-name-constraints'],
    status: EXIT.USAGE,
    code: 'USAGE',
    message: [/--permit/, /--no-name-constraints/],
  },
  {
    title: 'unreadable intermediate key (corrupt CA)',
    setup: ({ home }) => writeFileSync(join(home, 'ca', 'intermediate.key'), 'garbage\n', { mode: 0o600 }),
    args: issueServer('x', 'x.test'),
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /unreadable|corrupt|cannot read/,
    hint: /backup|--force/,
  },

  // --- the inventory ----------------------------------------------------------------------------------
  {
    title: 'corrupt database: list',
    setup: ({ home }) => corruptInventory(home),
    args: ['list'],
    status: EXIT.STORE,
    code: 'STORE_CORRUPT',
    message: [lit('mcpki.db'), /not a valid SQLite database/],
    hint: /mv /,
    json: true,
  },
  {
    title: 'corrupt database: issue',
    setup: ({ home }) => corruptInventory(home),
    args: issueServer('x', 'x.test'),
    status: EXIT.STORE,
    code: 'STORE_CORRUPT',
    message: [lit('mcpki.db'), /not a valid SQLite database/],
    hint: /mv /,
  },
  {
    title: 'database from a newer mcpki (schema version 99)',
    setup: ({ home }) => {
      const script =
        'import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute("PRAGMA user_version=99")\nc.commit()\nc.close()';
      const result = run('python3', ['-c', script, join(home, 'mcpki.db')]);
      assert.equal(result.status, 0, result.stderr);
    },
    args: ['list'],
    status: EXIT.STORE,
    code: 'STORE_VERSION',
    message: /schema version 99/,
    hint: /upgrade/,
  },
  {
    title: 'database path is a folder',
    setup: ({ home }) => {
      rmSync(join(home, 'mcpki.db'));
      mkdirSync(join(home, 'mcpki.db'));
    },
    args: ['list'],
    status: [EXIT.STORE, EXIT.FILESYSTEM],
    message: lit('mcpki.db'),
  },

  // --- unusable homes and output folders (the tests run as root: chmod does not stop root) ------------
  {
    title: '--home is a regular file (list)',
    setup: ({ work }) => writeFileSync(join(work, 'file'), 'not a folder\n'),
    homeArg: ({ work }) => join(work, 'file'),
    args: ['list'],
    status: EXIT.FILESYSTEM,
    code: 'HOME_UNUSABLE',
    message: lit('file'),
    hint: /--home/,
    json: true,
  },
  {
    title: '--home is a regular file (init)',
    setup: ({ work }) => writeFileSync(join(work, 'file'), 'not a folder\n'),
    homeArg: ({ work }) => join(work, 'file'),
    args: ['init'],
    status: EXIT.FILESYSTEM,
    code: 'HOME_UNUSABLE',
    message: lit('file'),
    hint: /--home/,
  },
  {
    title: '--home under a regular file',
    setup: ({ work }) => writeFileSync(join(work, 'file'), 'not a folder\n'),
    homeArg: ({ work }) => join(work, 'file', 'home'),
    args: issueServer('x', 'x.test'),
    status: EXIT.FILESYSTEM,
    code: 'HOME_UNUSABLE',
    message: lit(join('file', 'home')),
    hint: /--home/,
  },
  {
    // mkdir in /proc fails even for root (list creates no home, so init)
    title: '--home under /proc',
    homeArg: () => '/proc/mcpki-bad-input-test',
    args: ['init'],
    status: EXIT.FILESYSTEM,
    code: 'HOME_UNUSABLE',
    message: lit('/proc/mcpki-bad-input-test'),
    hint: /--home/,
    timeout: 8_000,
  },
  {
    title: '--out is a regular file',
    setup: ({ work }) => writeFileSync(join(work, 'file'), 'not a folder\n'),
    args: ({ work }) => issueServer('x', 'x.test', '--out', join(work, 'file')),
    status: EXIT.FILESYSTEM,
    message: lit(join('work', 'file')),
    hint: /--out/,
  },
  {
    title: '--out under a regular file',
    setup: ({ work }) => writeFileSync(join(work, 'file'), 'not a folder\n'),
    args: ({ work }) => issueServer('x', 'x.test', '--out', join(work, 'file', 'certs')),
    status: EXIT.FILESYSTEM,
    message: lit(join('work', 'file', 'certs')),
    hint: /--out/,
  },

  // --- the git guard ---------------------------------------------------------------------------------
  {
    title: 'key inside a git work tree that does not ignore it',
    setup: ({ work }) => gitInit(join(work, 'repo')),
    args: ({ work }) => issueServer('gx', 'gx.test', '--out', join(work, 'repo', 'certs')),
    status: EXIT.GIT_GUARD,
    code: 'GIT_TRACKED_PATH',
    message: [lit(join('repo', 'certs', 'gx.key')), /git/],
    hint: /\.gitignore.*--allow-git|--allow-git.*\.gitignore/,
    json: true,
  },

  // --- look-ups and revocation -----------------------------------------------------------------------
  {
    title: 'show an unknown name',
    args: ['show', 'nope'],
    status: EXIT.NOT_FOUND,
    code: 'NOT_FOUND',
    message: lit('"nope"'),
    hint: /mcpki list/,
    json: true,
  },
  {
    title: 'revoke an unknown name',
    args: ['revoke', 'nope'],
    status: EXIT.NOT_FOUND,
    code: 'NOT_FOUND',
    message: lit('"nope"'),
    hint: /mcpki list/,
  },
  {
    title: 'revoke twice',
    setup: ({ home }) => {
      assert.equal(mcpki(['--home', home, ...issueServer('twice', 'twice.test')]).status, 0);
      assert.equal(mcpki(['--home', home, 'revoke', 'twice']).status, 0);
    },
    args: ['revoke', 'twice'],
    status: EXIT.EXISTS,
    code: 'ALREADY_REVOKED',
    message: [/twice/, /already revoked/],
    json: true,
  },
  {
    title: 'unknown revocation reason',
    setup: ({ home }) => assert.equal(mcpki(['--home', home, ...issueServer('rr', 'rr.test')]).status, 0),
    args: ['revoke', 'rr', '--reason', 'bogus'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: lit('"bogus"'),
    hint: /keyCompromise/,
  },
  {
    title: 'list --expiring soon',
    args: ['list', '--expiring', 'soon'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: lit('"soon"'),
    hint: /30d/,
  },

  // --- batches ---------------------------------------------------------------------------------------
  {
    title: 'batch with one bad line among good ones',
    setup: ({ work }) =>
      writeFileSync(join(work, 'batch.txt'), 'server b1 b1.test\nserver b2 bad..test\nserver b3 b3.test 127.0.0.1\n'),
    args: ({ work }) => ['issue', 'batch', join(work, 'batch.txt'), '--out', join(work, 'out')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: [/b2/, lit('bad..test')],
    json: true,
    check: ({ home, work }) => {
      assert.equal(existsSync(join(work, 'out')), false, 'no output folder');
      const list = mcpki(['--home', home, '--json', 'list', '--all']);
      assert.equal(list.status, 0, list.stderr);
      assert.deepEqual(
        list.json.certificates.filter((c) => /^b\d$/.test(c.name)),
        [],
        'no certificate of the batch is in the inventory',
      );
    },
  },
  {
    title: 'batch with the same name twice',
    setup: ({ work }) =>
      writeFileSync(
        join(work, 'dup.json'),
        JSON.stringify([
          { name: 'd1', sans: ['d1.test'] },
          { name: 'd1', sans: ['d2.test'] },
        ]),
      ),
    args: ({ work }) => ['issue', 'batch', join(work, 'dup.json')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: /d1/,
  },
  {
    title: 'batch file that is not valid JSON',
    setup: ({ work }) => writeFileSync(join(work, 'bad.json'), '[{"name": "j1", "sans": ["j1.test"]'),
    args: ({ work }) => ['issue', 'batch', join(work, 'bad.json')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: /JSON/,
  },
  {
    title: 'batch JSON with "sans" as a string instead of a list',
    setup: ({ work }) => writeFileSync(join(work, 'sans.json'), JSON.stringify([{ name: 's1', sans: 's1.test' }])),
    args: ({ work }) => ['issue', 'batch', join(work, 'sans.json')],
    status: EXIT.INVALID_INPUT,
    message: [/s1/, /sans/],
  },
  {
    title: 'batch JSON with "days" as a string',
    setup: ({ work }) =>
      writeFileSync(join(work, 'days.json'), JSON.stringify([{ name: 'd1', sans: ['d1.test'], days: '30' }])),
    args: ({ work }) => ['issue', 'batch', join(work, 'days.json')],
    status: EXIT.INVALID_INPUT,
    // "got 30" for an in-range value is confusing: the message must say the value is not a number
    message: [/days/, /"30"|string|not a number/],
  },
  {
    title: 'batch file that does not exist',
    args: ({ work }) => ['issue', 'batch', join(work, 'missing.txt')],
    status: [EXIT.INVALID_INPUT, EXIT.FILESYSTEM],
    message: lit('missing.txt'),
    hint: /^(?!.*bug).*/,
  },

  // --- passphrases (stdin is never a TTY here) --------------------------------------------------------
  {
    title: 'init --encrypt-root with no passphrase available',
    home: 'none',
    args: ['init', '--encrypt-root'],
    status: EXIT.PASSPHRASE,
    code: 'PASSPHRASE_MISSING',
    message: /passphrase/,
    hint: /MCPKI_ROOT_PASSPHRASE|--passphrase-file/,
    json: true,
  },
  {
    title: 'init --encrypt-root with a short passphrase',
    home: 'none',
    env: { MCPKI_ROOT_PASSPHRASE: 'short' },
    args: ['init', '--encrypt-root'],
    status: EXIT.PASSPHRASE,
    code: 'PASSPHRASE_MISSING',
    message: /shorter than 8/,
  },
  {
    title: 'init --passphrase-file that does not exist',
    home: 'none',
    args: ({ work }) => ['init', '--encrypt-root', '--passphrase-file', join(work, 'nope.txt')],
    status: EXIT.PASSPHRASE,
    code: 'PASSPHRASE_MISSING',
    message: lit('nope.txt'),
  },
  {
    title: 'rotate-intermediate on an encrypted root without passphrase',
    home: 'enc',
    args: ['ca', 'rotate-intermediate'],
    status: EXIT.PASSPHRASE,
    code: 'PASSPHRASE_MISSING',
    message: [/encrypted/, /passphrase/],
    hint: /MCPKI_ROOT_PASSPHRASE|--passphrase-file/,
    json: true,
  },
  {
    title: 'rotate-intermediate with a wrong passphrase (environment)',
    home: 'enc',
    env: { MCPKI_ROOT_PASSPHRASE: 'not-the-passphrase' },
    args: ['ca', 'rotate-intermediate'],
    status: EXIT.PASSPHRASE,
    code: 'PASSPHRASE_WRONG',
    message: /decrypted|wrong|passphrase/,
    json: true,
  },
  {
    title: 'rotate-intermediate with a wrong passphrase (file)',
    home: 'enc',
    setup: ({ work }) => writeFileSync(join(work, 'pass.txt'), 'not-the-passphrase\n', { mode: 0o600 }),
    args: ({ work }) => ['ca', 'rotate-intermediate', '--passphrase-file', join(work, 'pass.txt')],
    status: EXIT.PASSPHRASE,
    code: 'PASSPHRASE_WRONG',
    message: /decrypted|wrong|passphrase/,
  },
  {
    title: '--p12-password-file that does not exist',
    args: ({ work }) => issueServer('p', 'p.test', '--p12', '--p12-password-file', join(work, 'nope.txt')),
    status: EXIT.PASSPHRASE,
    code: 'PASSPHRASE_MISSING',
    message: lit('nope.txt'),
  },
];

function asList(value) {
  return Array.isArray(value) ? value : [value];
}

function runCase(row, { json }) {
  const ctx = prepareCase(row.home ?? 'ca');
  row.setup?.(ctx);
  const home = row.homeArg ? row.homeArg(ctx) : ctx.home;
  const args = typeof row.args === 'function' ? row.args(ctx) : row.args;
  const argv = ['--home', home, ...(json ? ['--json'] : []), ...args];
  const beforeSnap = snapshot(ctx.root);
  const result = mcpki(argv, { env: row.env, timeout: row.timeout });
  const afterSnap = snapshot(ctx.root);
  return { ctx, argv, result, changes: diffSnapshots(beforeSnap, afterSnap) };
}

function describeRun(argv, result) {
  return `\n  $ mcpki ${argv.map((a) => (/[\s*]/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n  exit: ${result.status}\n  stderr: ${JSON.stringify(result.stderr)}\n  stdout: ${JSON.stringify(result.stdout.slice(0, 600))}`;
}

describe('bad input: documented exit code, error + hint, nothing changed', () => {
  test('the table has at least 25 cases', () => assert.ok(CASES.length >= 25, `${CASES.length} cases`));

  for (const row of CASES) {
    test(row.title, () => {
      const { ctx, argv, result, changes } = runCase(row, { json: false });
      const where = describeRun(argv, result);
      const problems = [];
      if (!asList(row.status).includes(result.status))
        problems.push(`exit code ${result.status}, expected ${asList(row.status).join(' or ')}`);
      const lines = result.stderr.split('\n');
      const errorLine = lines.find((l) => l.startsWith('error: '));
      const hintLine = lines.find((l) => l.startsWith('hint: '));
      if (!errorLine) problems.push('no "error: …" line on stderr');
      else
        for (const pattern of asList(row.message))
          if (!pattern.test(errorLine)) problems.push(`error line does not match ${pattern}`);
      if (!hintLine || hintLine.trim() === 'hint:') problems.push('no "hint: …" line on stderr');
      else if (row.hint && !row.hint.test(hintLine.slice('hint: '.length)))
        problems.push(`hint line does not match ${row.hint}`);
      if (/this is a bug/.test(result.stderr)) problems.push('reported as an internal error ("this is a bug")');
      if (result.stdout !== '') problems.push('printed something on stdout on failure');
      if (changes.length > 0) problems.push(`files changed:\n    ${changes.join('\n    ')}`);
      assert.deepEqual(problems, [], `${row.title}:${where}`);
      row.check?.(ctx, result);
    });

    if (row.json) {
      test(`${row.title} (--json)`, () => {
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
          if (
            JSON.stringify(Object.keys(error).sort()) !== JSON.stringify(['code', 'exitCode', 'fix', 'hint', 'message'])
          )
            problems.push(`error keys ${Object.keys(error).join(',')}`);
          if (row.code && error.code !== row.code) problems.push(`code ${error.code}, expected ${row.code}`);
          if (error.exitCode !== result.status)
            problems.push(`exitCode ${error.exitCode} differs from the process exit code ${result.status}`);
          if (typeof error.message !== 'string' || error.message.includes('\n'))
            problems.push('message is not a one-line string');
          else
            for (const pattern of asList(row.message))
              if (!pattern.test(error.message)) problems.push(`message does not match ${pattern}`);
          if (typeof error.hint !== 'string' || error.hint.length === 0) problems.push('no hint');
          else if (row.hint && !row.hint.test(error.hint)) problems.push(`hint does not match ${row.hint}`);
        }
        if (changes.length > 0) problems.push(`files changed:\n    ${changes.join('\n    ')}`);
        assert.deepEqual(problems, [], `${row.title} (--json):${where}`);
        row.check?.(ctx, result);
      });
    }
  }
});

describe('git guard: what may pass', () => {
  test('the same path succeeds once .gitignore ignores it', () => {
    const ctx = prepareCase('ca');
    const repo = join(ctx.work, 'repo');
    gitInit(repo);
    writeFileSync(join(repo, '.gitignore'), 'certs/\n');
    const out = join(repo, 'certs');
    const result = mcpki(['--home', ctx.home, ...issueServer('gx', 'gx.test', '--out', out)]);
    assert.equal(result.status, 0, result.stderr);
    assert.ok(existsSync(join(out, 'gx.key')));
    assert.ok(existsSync(join(out, 'gx.crt')));
    assert.equal(
      run('git', ['-C', repo, 'check-ignore', '-q', join(out, 'gx.key')]).status,
      0,
      'the key is git-ignored',
    );
  });

  test('--allow-git writes the key into a git work tree that does not ignore it', () => {
    const ctx = prepareCase('ca');
    const repo = join(ctx.work, 'repo');
    gitInit(repo);
    const out = join(repo, 'certs');
    const result = mcpki(['--home', ctx.home, ...issueServer('gx', 'gx.test', '--out', out, '--allow-git')]);
    assert.equal(result.status, 0, result.stderr);
    assert.ok(existsSync(join(out, 'gx.key')));
    const list = mcpki(['--home', ctx.home, '--json', 'list']);
    assert.deepEqual(
      list.json.certificates.map((c) => c.name),
      ['gx'],
    );
  });
});

describe('sanity: the shared CA works', () => {
  test(
    'a good request on a copy of the shared CA succeeds and verifies',
    { skip: !hasCommand('openssl') && 'openssl missing' },
    () => {
      const ctx = prepareCase('ca');
      const result = mcpki(['--home', ctx.home, '--json', ...issueServer('ok', 'ok.test', '127.0.0.1')]);
      assert.equal(result.status, 0, result.stderr);
      const verify = run('openssl', [
        'verify',
        '-CAfile',
        join(ctx.home, 'ca', 'root.crt'),
        '-untrusted',
        join(ctx.home, 'ca', 'intermediate.crt'),
        result.json.paths.cert,
      ]);
      assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    },
  );
});

// ---------------------------------------------------------------------------------------------------
// Special files, messages and the installation (issue 8, items 12, 15 and 21).

/** A copy of the built package in another folder; node_modules links to ours, but for `replace`d packages. */
function copyPackage(dir, replace = {}) {
  for (const name of ['bin', 'dist', 'package.json', 'templates'])
    cpSync(join(ROOT, name), join(dir, name), { recursive: true });
  mkdirSync(join(dir, 'node_modules'));
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (name.startsWith('.') || name in replace) continue;
    symlinkSync(realpathSync(join(ROOT, 'node_modules', name)), join(dir, 'node_modules', name));
  }
  for (const [name, make] of Object.entries(replace)) make(join(dir, 'node_modules', name));
  return join(dir, 'bin', 'mcpki.js');
}

function runBin(bin, args, env = {}) {
  const result = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', ...env },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('special files, messages and the installation', () => {
  test('better-sqlite3 without its native module (npm install --ignore-scripts): exit 23 naming it and the fix, never "move mcpki.db aside"', () => {
    const { dir, cleanup } = tempDir('mcpki-install-');
    try {
      const home = join(dir, 'home');
      assert.equal(mcpki(['--home', home, 'init']).status, 0);
      const bin = copyPackage(join(dir, 'pkg'), {
        // the JavaScript of the package, without build/Release/better_sqlite3.node
        'better-sqlite3': (to) => {
          const from = realpathSync(join(ROOT, 'node_modules', 'better-sqlite3'));
          mkdirSync(to);
          cpSync(join(from, 'package.json'), join(to, 'package.json'));
          cpSync(join(from, 'lib'), join(to, 'lib'), { recursive: true });
        },
      });
      const before = snapshot(home);
      for (const args of [['list'], ['issue', 'server', 'web', 'web.localhost']]) {
        const plain = runBin(bin, ['--home', home, ...args]);
        assert.equal(plain.status, 23, plain.stderr);
        assert.match(plain.stderr, /^error: .*native module of better-sqlite3 is missing/m);
        assert.match(plain.stderr, /^hint: .*npm rebuild better-sqlite3/m);
        assert.doesNotMatch(plain.stderr, /move it aside|\.broken|inventory error|this is a bug/);
      }
      const json = runBin(bin, ['--home', home, '--json', 'list']);
      assert.equal(json.status, 23);
      assert.equal(JSON.parse(json.stdout).error.code, 'INSTALL_INCOMPLETE');
      assert.deepEqual(diffSnapshots(before, snapshot(home)), []);
    } finally {
      cleanup();
    }
  });

  test('a missing dependency is an incomplete installation naming the package, not a bug', () => {
    const { dir, cleanup } = tempDir('mcpki-install-');
    try {
      const bin = copyPackage(join(dir, 'pkg'), { yaml: () => {} });
      writeFileSync(join(dir, 'mcpki.yaml'), 'version: 1\ncertificates: []\n');
      const result = runBin(bin, ['--home', join(dir, 'home'), 'apply', '-c', join(dir, 'mcpki.yaml')]);
      assert.equal(result.status, 23, result.stderr);
      assert.match(result.stderr, /^error: the package yaml is missing/m);
      assert.doesNotMatch(result.stderr, /this is a bug/);
    } finally {
      cleanup();
    }
  });

  test('the code cache made at build time does not put the build folder into stacks: they name the installed bundle', () => {
    const { dir, cleanup } = tempDir('mcpki-installed-');
    try {
      const bin = copyPackage(join(dir, 'pkg'));
      // the copy uses the cache built in ROOT (otherwise this test would prove nothing)
      const probe = spawnSync(
        process.execPath,
        ['-e', `console.log(require(${JSON.stringify(bin)}).script?.cachedDataRejected)`],
        { encoding: 'utf8' },
      );
      assert.equal(probe.stdout.trim(), 'false', `the code cache was not used: ${probe.stdout} ${probe.stderr}`);
      // any error will do: with MCPKI_DEBUG the frames follow the hint
      const result = runBin(bin, ['--home', join(dir, 'home'), 'issue', 'server', 'web'], { MCPKI_DEBUG: '1' });
      assert.ok(result.status > 1, result.stderr);
      const frames = result.stderr.split('\n').filter((line) => /^\s+at /.test(line));
      assert.ok(
        frames.some((line) => line.includes(join(dir, 'pkg', 'dist', 'cli.cjs:'))),
        `no frame names the installed bundle:\n${result.stderr}`,
      );
      assert.ok(!result.stderr.includes(join(ROOT, 'dist')), `a frame names the build folder:\n${result.stderr}`);
    } finally {
      cleanup();
    }
  });

  test('issue batch - with /dev/zero as standard input stops at the size limit (exit 3)', () => {
    const { dir, cleanup } = tempDir();
    try {
      const started = Date.now();
      const result = run(
        'sh',
        [
          '-c',
          `exec "${process.execPath}" "${join(ROOT, 'bin', 'mcpki.js')}" --home "${join(dir, 'home')}" issue batch - < /dev/zero`,
        ],
        { timeout: 60_000 },
      );
      assert.equal(result.status, 3, result.stderr);
      assert.match(result.stderr, /^error: the batch from standard input is over \d+ bytes$/m);
      assert.ok(Date.now() - started < 30_000);
    } finally {
      cleanup();
    }
  });

  test("apply: a FIFO as a p12 target's passwordFile fails that certificate at once, nothing hangs", () => {
    const { dir, cleanup } = tempDir();
    try {
      const home = join(dir, 'home');
      assert.equal(mcpki(['--home', home, 'init']).status, 0);
      assert.equal(run('mkfifo', [join(dir, 'pass')]).status, 0);
      writeFileSync(
        join(dir, 'mcpki.yaml'),
        'version: 1\ncertificates:\n  - name: p\n    names: [p.localhost]\n    targets:\n      - { type: p12, path: out/p.p12, passwordFile: pass }\n',
      );
      const result = mcpki(['--home', home, 'apply', '-c', join(dir, 'mcpki.yaml')], { timeout: 30_000 });
      assert.equal(result.status, 17, `${result.stdout}\n${result.stderr}`);
      assert.match(result.stdout, /password file .*pass is a FIFO, not a regular file/);
      assert.ok(!existsSync(join(dir, 'out', 'p.p12')));
    } finally {
      cleanup();
    }
  });

  test('safeText: escapes every control character, cuts long words and long texts with their length', async () => {
    const { safeText, MAX_VALUE_CHARS, MAX_MESSAGE_CHARS } = await import('../dist/cli/output.js');
    assert.equal(
      safeText('a\u0000b\u001bc\r\nd\u202ee\u2028f\u2029g\u0085h\ud800'),
      'a\\0b\\ec\\r\\nd\\u202ee\\u2028f\\u2029g\\x85h\\ud800',
    );
    assert.equal(safeText('plain text, ünïcödé and emoji 🔒 stay'), 'plain text, ünïcödé and emoji 🔒 stay');
    const word = 'x'.repeat(5000);
    assert.equal(safeText(`name "${word}" is bad`), `name "${'x'.repeat(MAX_VALUE_CHARS - 1)}…(5002 chars) is bad`);
    const long = safeText('ab '.repeat(10_000_000));
    assert.ok(long.length < MAX_MESSAGE_CHARS + 30, `${long.length}`);
    assert.match(long, /…\(30000000 chars\)$/);
  });
});
