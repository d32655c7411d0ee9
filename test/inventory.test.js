// The inventory through the library API with an injected clock, and `list --expiring` through the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createContext,
  initCa,
  issueCertificate,
  listCertificates,
  findCertificate,
  revokeCertificate,
  listEvents,
} from '../dist/index.js';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { mcpki, run, tempDir, testStore } from './helpers.js';
import { MIGRATIONS } from '../dist/store/migrations.js';

const DAY = 86_400_000;

test('states and time left follow the injected clock', () => {
  const { dir, cleanup } = tempDir();
  let now = new Date('2030-01-01T00:00:00Z');
  const context = createContext({ ...testStore(dir), home: dir, now: () => now });
  try {
    initCa(context);
    const issued = issueCertificate(context, { kind: 'server', name: 'svc', sans: ['svc.localhost'], days: 30 });
    // backdated five minutes, lifetime exactly 30 days
    assert.equal(issued.certificate.notBefore, '2029-12-31T23:55:00.000Z');
    assert.equal(issued.certificate.notAfter, '2030-01-30T23:55:00.000Z');
    const enddate = run('openssl', ['x509', '-in', issued.paths.cert, '-noout', '-enddate']).stdout;
    assert.match(enddate, /Jan 30 23:55:00 2030 GMT/);

    now = new Date(now.getTime() + 10 * DAY);
    let view = findCertificate(context, 'svc');
    assert.equal(view.state, 'valid');
    assert.ok(Math.abs(view.fractionLeft - 20 / 30) < 0.01);
    assert.deepEqual(
      listCertificates(context, { expiringWithinMs: 7 * DAY }).map((c) => c.name),
      [],
    );
    assert.deepEqual(
      listCertificates(context, { expiringWithinMs: 21 * DAY }).map((c) => c.name),
      ['svc'],
    );

    now = new Date(now.getTime() + 25 * DAY);
    view = findCertificate(context, 'svc');
    assert.equal(view.state, 'expired');
    assert.ok(view.secondsLeft < 0);

    const again = issueCertificate(context, { kind: 'server', name: 'svc', sans: ['svc.localhost'] });
    assert.equal(
      findCertificate(context, 'svc').serial,
      again.certificate.serial,
      'a name means its newest certificate',
    );
    assert.equal(
      findCertificate(context, issued.certificate.serial).state,
      'superseded',
      'older ones stay findable by serial',
    );
    assert.equal(listCertificates(context).length, 1);
    assert.equal(listCertificates(context, { all: true }).length, 2);

    revokeCertificate(context, 'svc', 'superseded');
    assert.equal(findCertificate(context, 'svc').state, 'revoked');
    assert.deepEqual(
      listEvents(context).map((e) => [e.type, e.at]),
      [
        ['ca.created', '2030-01-01T00:00:00.000Z'],
        ['certificate.issued', '2030-01-01T00:00:00.000Z'],
        ['certificate.issued', '2030-02-05T00:00:00.000Z'],
        ['certificate.revoked', '2030-02-05T00:00:00.000Z'],
      ],
    );
  } finally {
    context.close();
    cleanup();
  }
});

test('mcpki list --expiring, human and JSON', () => {
  const { dir, cleanup } = tempDir();
  try {
    assert.equal(mcpki(['--home', dir, 'init']).status, 0);
    assert.equal(mcpki(['--home', dir, 'issue', 'server', 'short', 'short.localhost', '--days', '10']).status, 0);
    assert.equal(mcpki(['--home', dir, 'issue', 'server', 'long', 'long.localhost']).status, 0);
    const soon = mcpki(['--home', dir, '--json', 'list', '--expiring', '30d']).json.certificates.map((c) => c.name);
    assert.deepEqual(soon, ['short']);
    const all = mcpki(['--home', dir, 'list']);
    assert.equal(all.status, 0);
    const lines = all.stdout.trim().split('\n');
    assert.match(lines[0], /^NAME\s+KIND\s+STATE\s+LEFT/);
    assert.match(lines[1], /^short\s+server\s+valid\s+9d 23h/);
    assert.match(lines[2], /^long\s+server\s+valid\s+89d 23h/);
    assert.ok(!/\u001b\[/.test(all.stdout), 'no colour without a terminal');
    const colored = mcpki(['--home', dir, 'list'], { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } });
    assert.match(colored.stdout, /\u001b\[32m/);
  } finally {
    cleanup();
  }
});

// --- copies of the inventory (issue 8, item 3) --------------------------------------------------------

import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';

const sqlite = (db, sql) => {
  const result = run('python3', [
    '-c',
    'import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nfor r in c.execute(sys.argv[2]): print("|".join(map(str, r)))\nc.commit()',
    db,
    sql,
  ]);
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim().split('\n').filter(Boolean);
};

test('a copy after every revocation and CA change: 0600 in a 0700 folder, consistent, the newest 5 kept', (t) => {
  if (process.env.MCPKI_TEST_POSTGRES) return t.skip('no SQLite file to back up or restore on the PostgreSQL pass');
  const { dir, cleanup } = tempDir();
  try {
    assert.equal(mcpki(['--home', dir, 'init']).status, 0);
    const backups = join(dir, 'backups');
    const list = () => readdirSync(backups).sort();
    assert.equal(list().length, 1, 'init made one');
    assert.equal((statSync(backups).mode & 0o777).toString(8), '700');
    for (let i = 0; i < 3; i++)
      assert.equal(mcpki(['--home', dir, 'issue', 'client', `c${i}`, `c${i}@x.localhost`]).status, 0);
    assert.equal(list().length, 1, 'issuing is no reason for a copy');
    for (let i = 0; i < 3; i++) assert.equal(mcpki(['--home', dir, 'revoke', `c${i}`]).status, 0);
    assert.equal(mcpki(['--home', dir, 'ca', 'rotate-intermediate']).status, 0);
    const names = list();
    assert.equal(names.length, 5, `${names.join(', ')}: 1 + 3 + 1 made, the newest 5 kept`);
    for (const name of names) {
      assert.match(name, /^mcpki-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z\.db$/);
      assert.equal((statSync(join(backups, name)).mode & 0o777).toString(8), '600');
    }
    const newest = join(backups, names.at(-1));
    assert.deepEqual(sqlite(newest, 'PRAGMA integrity_check'), ['ok']);
    assert.deepEqual(sqlite(newest, "SELECT name FROM certificates WHERE status = 'revoked' ORDER BY name"), [
      'c0',
      'c1',
      'c2',
    ]);
    assert.deepEqual(
      sqlite(newest, "SELECT COUNT(*) FROM authorities WHERE role = 'intermediate'"),
      ['2'],
      'the rotation is in it',
    );
    // one more: the oldest goes
    const made = mcpki(['--home', dir, '--json', 'inventory', 'backup']);
    assert.equal(made.status, 0, made.stderr);
    assert.equal(made.json.backups.length, 5);
    assert.equal(made.json.backups.at(-1), made.json.path);
    assert.ok(!list().includes(names[0]));
  } finally {
    cleanup();
  }
});

test('inventory restore refuses what is not an intact inventory of this CA, a FIFO, and a home in use; nothing changes', (t) => {
  if (process.env.MCPKI_TEST_POSTGRES) return t.skip('no SQLite file to back up or restore on the PostgreSQL pass');
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    const other = join(dir, 'other');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    assert.equal(mcpki(['--home', other, 'init']).status, 0);
    const database = join(home, 'mcpki.db');
    // the rows (mcpki.db's bytes change when a connection checkpoints the WAL the last command left)
    const rows = () => {
      const db = new Database(database, { readonly: true });
      try {
        return db
          .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
          .all()
          .map(({ name }) => JSON.stringify(db.prepare(`SELECT * FROM "${name}"`).all()))
          .join('\n');
      } finally {
        db.close();
      }
    };
    const before = rows();
    const garbage = join(dir, 'garbage.db');
    writeFileSync(garbage, Buffer.alloc(8192, 0x5a));
    const plain = join(dir, 'plain.db');
    sqlite(plain, 'CREATE TABLE t (x)');
    const fifo = join(dir, 'fifo');
    assert.equal(run('mkfifo', [fifo]).status, 0);
    const otherCopy = mcpki(['--home', other, '--json', 'inventory', 'backup']).json.path;
    const cases = [
      { file: garbage, status: 3, message: /garbage\.db is not a usable mcpki inventory: file is not a database/ },
      { file: plain, status: 3, message: /plain\.db is not a usable mcpki inventory: it has no mcpki schema/ },
      { file: fifo, status: 3, message: /fifo is a FIFO, not a regular file/ },
      { file: otherCopy, status: 3, message: /belongs to another CA/ },
      { file: join(dir, 'missing.db'), status: 10, message: /missing\.db does not exist/ },
      { file: database, status: 3, message: /is the inventory itself/ },
    ];
    for (const c of cases) {
      const result = mcpki(['--home', home, '--json', 'inventory', 'restore', c.file], { timeout: 20_000 });
      assert.equal(result.status, c.status, `${c.file}: ${result.stdout}${result.stderr}`);
      assert.match(result.json.error.message, c.message);
      assert.ok(result.json.error.hint.length > 0);
    }
    assert.equal(rows(), before, 'the inventory is untouched');
    assert.ok(
      !readdirSync(home).some((name) => name.includes('replaced') || name.includes('mcpki-tmp')),
      readdirSync(home).join(', '),
    );

    // an apply that holds the home (this test process stands in for it)
    sqlite(
      database,
      `INSERT INTO locks (name, pid, host, acquired_at) VALUES ('apply', ${process.pid}, '${hostname()}', '2030-01-01T00:00:00Z')`,
    );
    const busy = mcpki(['--home', home, '--json', 'inventory', 'restore']);
    assert.equal(busy.status, 18, busy.stdout);
    assert.match(busy.json.error.message, new RegExp(`mcpki apply \\(pid ${process.pid} `));
    sqlite(database, 'DELETE FROM locks');

    const empty = join(dir, 'empty-home');
    mkdirSync(empty);
    const none = mcpki(['--home', empty, '--json', 'inventory', 'restore']);
    assert.equal(none.status, 10, none.stdout);
    assert.match(none.json.error.message, /no copy of the inventory in .*backups/);
    assert.ok(!existsSync(join(empty, 'mcpki.db')));
  } finally {
    cleanup();
  }
});

test('inventory restore removes the temp copies an interrupted restore left in the home (their process is gone)', (t) => {
  if (process.env.MCPKI_TEST_POSTGRES) return t.skip('no SQLite file to back up or restore on the PostgreSQL pass');
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    assert.equal(mcpki(['--home', home, 'inventory', 'backup']).status, 0);
    const gone = run('sh', ['-c', 'echo $$']).stdout.trim(); // a pid whose process has exited
    const stale = join(home, `.mcpki.db.restore.mcpki-tmp-${gone}-0a1b2c3d`);
    writeFileSync(stale, Buffer.alloc(4096), { mode: 0o600 });
    const restored = mcpki(['--home', home, 'inventory', 'restore']);
    assert.equal(restored.status, 0, restored.stderr);
    assert.ok(!existsSync(stale), 'the stale temp copy is still there');
  } finally {
    cleanup();
  }
});

/** RFC 8705 x5t#S256 as openssl and coreutils compute it: base64url of the SHA-256 of the DER, without "=". */
function opensslThumbprint(certFile) {
  const der = run('openssl', ['x509', '-in', certFile, '-outform', 'DER']);
  assert.equal(der.status, 0, der.stderr);
  const result = spawnSync(
    'sh',
    ['-c', 'openssl x509 -in "$1" -outform DER | openssl dgst -sha256 -binary | basenc --base64url', 'sh', certFile],
    { encoding: 'utf8' },
  );
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim().replace(/=+$/, '');
}

test("show --json and list carry each certificate's RFC 8705 thumbprint (x5t#S256), equal to openssl | basenc; show prints it and the client identity", () => {
  const { dir, cleanup } = tempDir();
  try {
    assert.equal(mcpki(['--home', dir, 'init']).status, 0);
    assert.equal(mcpki(['--home', dir, 'issue', 'server', 'web', 'web.localhost']).status, 0);
    assert.equal(
      mcpki(['--home', dir, 'issue', 'client', 'agent', '--spiffe', 'spiffe://example.test/agent']).status,
      0,
    );
    for (const name of ['web', 'agent']) {
      const shown = mcpki(['--home', dir, '--json', 'show', name]).json.certificate;
      const expected = opensslThumbprint(join(dir, 'certs', name, `${name}.crt`));
      assert.match(expected, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(shown.thumbprint, expected, name);
      assert.equal(
        mcpki(['--home', dir, '--json', 'list']).json.certificates.find((c) => c.name === name).thumbprint,
        expected,
      );
      assert.match(
        mcpki(['--home', dir, 'show', name]).stdout,
        new RegExp(`^x5t#S256 +${expected.replace(/-/g, '\\-')}$`, 'm'),
      );
    }
    assert.equal(
      mcpki(['--home', dir, '--json', 'show', 'agent']).json.certificate.identity,
      'spiffe://example.test/agent',
    );
    assert.equal(mcpki(['--home', dir, '--json', 'show', 'web']).json.certificate.identity, null);
    assert.match(mcpki(['--home', dir, 'show', 'agent']).stdout, /^identity +spiffe:\/\/example\.test\/agent$/m);
  } finally {
    cleanup();
  }
});

test('an inventory made before the thumbprint column gets it filled for every existing certificate on first open', (t) => {
  if (process.env.MCPKI_TEST_POSTGRES) return t.skip('an old SQLite file: not on the PostgreSQL pass');
  const { dir, cleanup } = tempDir();
  try {
    assert.equal(mcpki(['--home', dir, 'init']).status, 0);
    for (const name of ['one', 'two']) assert.equal(mcpki(['--home', dir, 'issue', 'client', name]).status, 0);
    assert.equal(mcpki(['--home', dir, 'issue', 'client', 'one']).status, 0); // 'one' twice: a superseded row too
    // back to the schema before the thumbprint migration: the column and the later tables gone, the version
    // that of the migration
    const db = new Database(join(dir, 'mcpki.db'));
    db.exec('ALTER TABLE certificates DROP COLUMN thumbprint');
    db.exec('DROP TABLE shared_keys');
    db.pragma(`user_version = ${MIGRATIONS.findIndex((m) => m.includes('ADD COLUMN thumbprint'))}`);
    db.close();

    const all = mcpki(['--home', dir, '--json', 'list', '--all']).json.certificates;
    assert.equal(all.length, 3);
    for (const certificate of all) {
      const file = join(dir, 'pem-' + certificate.serial);
      writeFileSync(file, mcpki(['--home', dir, 'show', certificate.serial, '--pem']).stdout);
      assert.equal(certificate.thumbprint, opensslThumbprint(file), certificate.serial);
    }
    const after = new Database(join(dir, 'mcpki.db'), { readonly: true });
    assert.equal(after.pragma('user_version', { simple: true }), MIGRATIONS.length);
    assert.equal(after.prepare('SELECT count(*) AS n FROM certificates WHERE thumbprint IS NULL').get().n, 0);
    after.close();
  } finally {
    cleanup();
  }
});
