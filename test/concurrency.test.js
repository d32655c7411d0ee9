// Many mcpki processes at once against one home: every process succeeds, serials are unique, the inventory
// holds every record, every certificate verifies with OpenSSL, and SQLite's own integrity check (run by an
// independent implementation: the sqlite3 CLI, else Python's sqlite3 module) passes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { hasCommand, mcpki, mcpkiAsync, run, storeEnv, tempDir } from './helpers.js';
import { MIGRATIONS } from '../dist/store/migrations.js';

for (const name of ['MCPKI_ROOT_PASSPHRASE', 'MCPKI_P12_PASSWORD', 'MCPKI_HOME', 'MCPKI_DEBUG'])
  delete process.env[name];

const N = 20;
const HAS_OPENSSL = hasCommand('openssl');
const HAS_SQLITE3 = hasCommand('sqlite3');
const HAS_PYTHON3 = hasCommand('python3');

/** Runs SQL against the database with the sqlite3 CLI, else with Python's sqlite3 module; returns stdout lines. */
function sql(database, statement) {
  if (HAS_SQLITE3) {
    const result = run('sqlite3', ['-batch', '-noheader', database, statement]);
    assert.equal(result.status, 0, `sqlite3 failed: ${result.stderr}`);
    return result.stdout.trim().split('\n');
  }
  assert.ok(HAS_PYTHON3, 'neither sqlite3 nor python3 is available to check the database independently');
  const script =
    'import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nfor row in c.execute(sys.argv[2]): print("|".join(str(v) for v in row))\nc.close()';
  const result = run('python3', ['-c', script, database, statement]);
  assert.equal(result.status, 0, `python3 sqlite3 failed: ${result.stderr}`);
  return result.stdout.trim().split('\n');
}

/** On the PostgreSQL pass: the home's schema (test/helpers.js storeEnv) and a query on it, with the pg driver. */
const ON_POSTGRES = Boolean(process.env.MCPKI_TEST_POSTGRES);
const schemaOf = (home) => new URL(storeEnv(['--home', home]).MCPKI_STORE).searchParams.get('schema');
async function pgRows(statement) {
  const client = new pg.Client({ connectionString: process.env.MCPKI_TEST_POSTGRES });
  await client.connect();
  try {
    return (await client.query(statement)).rows;
  } finally {
    await client.end();
  }
}

function initHome() {
  const tmp = tempDir('mcpki-concurrency-');
  const home = join(tmp.dir, 'home');
  const init = mcpki(['--home', home, 'init']);
  assert.equal(init.status, 0, `init failed: ${init.stderr}`);
  return { ...tmp, home };
}

function issueConcurrently(home, names) {
  return Promise.all(
    names.map((name) =>
      mcpkiAsync(['--home', home, '--json', 'issue', 'server', name, `${name}.localhost`, '127.0.0.1']),
    ),
  );
}

function parseIssued(result, i) {
  assert.equal(result.status, 0, `process ${i} exited ${result.status}: ${result.stderr}${result.stdout}`);
  let json;
  assert.doesNotThrow(() => (json = JSON.parse(result.stdout)), `process ${i} printed no JSON: ${result.stdout}`);
  assert.ok(json.certificate?.serial, `process ${i}: no serial in ${result.stdout}`);
  return json;
}

function opensslVerify(home, certPath) {
  const result = run('openssl', [
    'verify',
    '-CAfile',
    join(home, 'ca', 'root.crt'),
    '-untrusted',
    join(home, 'ca', 'intermediate.crt'),
    certPath,
  ]);
  assert.equal(result.status, 0, `openssl verify ${certPath}: ${result.stdout}${result.stderr}`);
  assert.match(result.stdout, /: OK\s*$/);
}

/** Every check shared by the scenarios: exit codes, unique serials, inventory, OpenSSL, SQLite integrity. */
async function checkFleet(home, names, results) {
  const issued = results.map(parseIssued);
  const serials = issued.map((j) => j.certificate.serial);
  assert.equal(new Set(serials).size, N, `serials are not distinct: ${serials.join(' ')}`);

  const list = mcpki(['--home', home, '--json', 'list']);
  assert.equal(list.status, 0, list.stderr);
  const certificates = list.json.certificates;
  assert.equal(certificates.length, N, `list shows ${certificates.length} certificates`);
  assert.deepEqual(certificates.map((c) => c.name).sort(), [...names].sort());
  assert.deepEqual(
    certificates.map((c) => c.serial).sort(),
    [...serials].sort(),
    'the inventory holds exactly the serials the processes printed',
  );
  for (const c of certificates) assert.equal(c.state, 'valid', `${c.name} is ${c.state}`);

  const all = mcpki(['--home', home, '--json', 'list', '--all']);
  assert.equal(all.json.certificates.length, N, 'no duplicate or stray records');
  const events = mcpki(['--home', home, '--json', 'events', '--type', 'certificate.issued', '--limit', '1000']);
  assert.equal(events.status, 0, events.stderr);
  assert.equal(events.json.events.length, N, 'one certificate.issued event per process');

  for (const j of issued) {
    const certPem = readFileSync(j.paths.cert, 'utf8');
    const cert = new X509Certificate(certPem);
    assert.equal(
      cert.serialNumber.toUpperCase(),
      j.certificate.serial,
      `${j.paths.cert} holds the serial the process reported`,
    );
    assert.ok(
      cert.checkPrivateKey(createPrivateKey(readFileSync(j.paths.key))),
      `${j.paths.key} matches ${j.paths.cert}`,
    );
    if (HAS_OPENSSL) opensslVerify(home, j.paths.cert);
  }

  if (ON_POSTGRES) {
    const schema = schemaOf(home);
    const [row] = await pgRows(
      `SELECT COUNT(*)::int AS n, COUNT(DISTINCT serial)::int AS d, (SELECT version FROM ${schema}.mcpki_schema) AS v FROM ${schema}.certificates`,
    );
    assert.deepEqual(row, { n: N, d: N, v: MIGRATIONS.length });
  } else {
    const database = join(home, 'mcpki.db');
    assert.deepEqual(sql(database, 'PRAGMA integrity_check'), ['ok']);
    assert.deepEqual(sql(database, 'SELECT COUNT(*), COUNT(DISTINCT serial) FROM certificates'), [`${N}|${N}`]);
    assert.deepEqual(sql(database, 'PRAGMA user_version'), [String(MIGRATIONS.length)], 'every migration ran, once');
    assert.deepEqual(sql(database, 'PRAGMA journal_mode'), ['wal']);
  }

  // no temp file a writer left behind
  const leftovers = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name));
      else if (entry.name.includes('.mcpki-tmp-')) leftovers.push(join(dir, entry.name));
    }
  };
  walk(home);
  assert.deepEqual(leftovers, []);
}

const names = Array.from({ length: N }, (_, i) => `svc-${i + 1}`);

describe(`${N} concurrent mcpki processes`, { timeout: 300_000 }, () => {
  test(`${N} concurrent "issue server" against one initialised home`, async () => {
    const { home, cleanup } = initHome();
    try {
      const results = await issueConcurrently(home, names);
      await checkFleet(home, names, results);
    } finally {
      cleanup();
    }
  });

  test(`${N} concurrent "issue server" on a home whose database has no schema yet (migrations race)`, async () => {
    const { home, cleanup } = initHome();
    try {
      if (ON_POSTGRES) {
        // a schema not made yet: the processes race to create it and run every migration. A home holding a CA
        // refuses an empty inventory (STORE_MISSING), so the race runs on a home without one: list opens it.
        const bare = join(home, '..', 'bare');
        const listed = await Promise.all(
          Array.from({ length: N }, () => mcpkiAsync(['--home', bare, '--json', 'list'])),
        );
        listed.forEach((result, i) => assert.equal(result.status, 0, `process ${i}: ${result.stderr}`));
        const versions = await pgRows(`SELECT version FROM "${schemaOf(bare)}".mcpki_schema`);
        assert.equal(versions.length, 1, 'one version row: the schema was created once');
        const tables = await pgRows(
          `SELECT table_name FROM information_schema.tables WHERE table_schema = '${schemaOf(bare)}' ORDER BY table_name`,
        );
        assert.ok(tables.some((t) => t.table_name === 'certificates') && tables.length >= 16, JSON.stringify(tables));
        return;
      }
      for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(join(home, `mcpki.db${suffix}`), { force: true });
      // an SQLite file without tables (a missing or empty one next to a CA is refused: STORE_MISSING)
      assert.deepEqual(sql(join(home, 'mcpki.db'), 'PRAGMA journal_mode=WAL'), ['wal']);
      const results = await issueConcurrently(home, names);
      await checkFleet(home, names, results);
      const tables = sql(join(home, 'mcpki.db'), "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
      assert.deepEqual(
        tables,
        [
          'acme_accounts',
          'acme_server_accounts',
          'acme_server_authorizations',
          'acme_server_certificates',
          'acme_server_challenges',
          'acme_server_eab_keys',
          'acme_server_nonces',
          'acme_server_order_slots',
          'acme_server_orders',
          'authorities',
          'certificates',
          'crls',
          'events',
          'locks',
          'renewal_state',
          'settings',
          'shared_keys',
        ],
        'the schema was created once',
      );
    } finally {
      cleanup();
    }
  });

  test(`${N} concurrent "issue server" of the SAME name: the files on disk belong together and to the newest record`, async () => {
    const { home, cleanup } = initHome();
    try {
      const results = await Promise.all(
        Array.from({ length: N }, () =>
          mcpkiAsync(['--home', home, '--json', 'issue', 'server', 'same', 'same.localhost', '127.0.0.1']),
        ),
      );
      const issued = results.map(parseIssued);
      assert.equal(new Set(issued.map((j) => j.certificate.serial)).size, N, 'serials are distinct');

      const all = mcpki(['--home', home, '--json', 'list', '--all']);
      assert.equal(all.status, 0, all.stderr);
      const states = all.json.certificates.map((c) => c.state).sort();
      assert.deepEqual(
        states,
        ['valid', ...Array(N - 1).fill('superseded')].sort(),
        'exactly one valid record, the rest superseded',
      );
      const current = mcpki(['--home', home, '--json', 'show', 'same']);
      assert.equal(current.json.certificate.state, 'valid');

      const dir = join(home, 'certs', 'same');
      const cert = new X509Certificate(readFileSync(join(dir, 'same.crt')));
      const key = createPrivateKey(readFileSync(join(dir, 'same.key')));
      const problems = [];
      if (!cert.checkPrivateKey(key))
        problems.push('same.key does not match same.crt (files from different processes)');
      if (cert.serialNumber.toUpperCase() !== current.json.certificate.serial) {
        problems.push(
          `same.crt has serial ${cert.serialNumber.toUpperCase()} but the inventory's valid record is ${current.json.certificate.serial}`,
        );
      }
      const chainFirst = new X509Certificate(
        readFileSync(join(dir, 'same.fullchain.pem'), 'utf8').split(/(?<=-----END CERTIFICATE-----\n)/)[0],
      );
      if (chainFirst.serialNumber !== cert.serialNumber)
        problems.push('same.fullchain.pem starts with a different certificate than same.crt');
      assert.deepEqual(problems, []);
      assert.deepEqual(sql(join(home, 'mcpki.db'), 'PRAGMA integrity_check'), ['ok']);
    } finally {
      cleanup();
    }
  });

  test('10 homes issuing into one --out folder at once, 3 rounds: every run succeeds, each key matches its certificate, no temp files are left', async () => {
    const { dir, home, cleanup } = initHome();
    try {
      const homes = Array.from({ length: 10 }, (_, i) => join(dir, `home-${i}`));
      for (const h of homes) cpSync(home, h, { recursive: true });
      const out = join(dir, 'shared-out');
      for (let round = 0; round < 3; round++) {
        const results = await Promise.all(
          homes.map((h, i) =>
            // copies of one home: on PostgreSQL they share its inventory, as provisioned hosts do
            mcpkiAsync(['--home', h, '--json', 'issue', 'server', `svc-${i}`, `svc-${i}.localhost`, '--out', out], {
              env: storeEnv(['--home', home]),
            }),
          ),
        );
        results.forEach((result, i) =>
          assert.equal(result.status, 0, `round ${round}, home ${i}: ${result.stderr}${result.stdout}`),
        );
        for (let i = 0; i < homes.length; i++) {
          const cert = new X509Certificate(readFileSync(join(out, `svc-${i}.crt`)));
          assert.ok(
            cert.checkPrivateKey(createPrivateKey(readFileSync(join(out, `svc-${i}.key`)))),
            `svc-${i}.key does not match svc-${i}.crt`,
          );
          assert.equal(cert.serialNumber.toUpperCase(), JSON.parse(results[i].stdout).certificate.serial);
        }
        assert.deepEqual(
          readdirSync(out).filter((name) => name.includes('.mcpki-')),
          [],
          `round ${round}: temp files left`,
        );
      }
    } finally {
      cleanup();
    }
  });
});
