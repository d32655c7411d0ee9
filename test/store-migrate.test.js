// `mcpki store migrate --to postgres://…` of a 10,000-certificate SQLite inventory: every table arrives with the
// same rows (counted and hashed here, independently of mcpki's own comparison), the SQLite file keeps its bytes,
// a target that is not empty is refused with nothing written, and a wrong password or an unreachable server is
// STORE_UNAVAILABLE (exit 7) in one line that never shows the password.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Store } from '../dist/store/store.js';
import { mcpki, tempDir } from './helpers.js';
import { freePorts } from './pebble.js';
import { hasPostgres, postgresMissingReason, startPostgres } from './postgres.js';

const skip = hasPostgres() ? false : postgresMissingReason();
const COUNT = 10_000;
// the home is SQLite here, whatever the PostgreSQL pass says
const SQLITE = { MCPKI_STORE: undefined };

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** Rows of a table in id order, each value as text: the same digest from either database. */
function digestRows(rows, columns) {
  const hash = createHash('sha256');
  for (const row of rows) hash.update(JSON.stringify(columns.map((c) => (row[c] == null ? null : String(row[c])))));
  return { rows: rows.length, sha256: hash.digest('hex') };
}

const CERTIFICATE_COLUMNS = ['id', 'name', 'serial', 'status', 'not_after', 'fingerprint', 'pem', 'thumbprint', 'sans'];
const EVENT_COLUMNS = ['id', 'type', 'name', 'serial', 'at'];

async function pgRows(url, sql) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('store migrate of a 10,000-certificate inventory', { skip }, () => {
  let cluster;
  let base;
  let temp;
  let home;
  let database;
  before(async () => {
    cluster = await startPostgres();
    base = await cluster.createDatabase('migrate');
    temp = tempDir('mcpki-store-migrate-');
    home = join(temp.dir, 'home');
    assert.equal(mcpki(['--home', home, 'init'], { env: SQLITE }).status, 0);
    const issued = mcpki(['--home', home, 'issue', 'server', 'seed', 'seed.localhost', '--json'], { env: SQLITE });
    assert.equal(issued.status, 0, issued.stderr);
    assert.equal(mcpki(['--home', home, 'revoke', 'seed'], { env: SQLITE }).status, 0);
    // 10,000 more through the Store API (the same statements issue uses), each with its own serial and event
    database = join(home, 'mcpki.db');
    const store = Store.open(database);
    try {
      const seed = store.findCertificate('seed');
      for (let i = 0; i < COUNT; i++) {
        const serial = (0x100000 + i).toString(16).toUpperCase();
        store.addCertificate({
          name: `host-${i}.localhost`,
          kind: 'server',
          serial,
          subject: `CN=host-${i}.localhost`,
          sans: [{ type: 'dns', value: `host-${i}.localhost` }],
          issuer: seed.issuer,
          issuerSerial: seed.issuerSerial,
          profile: null,
          keyType: seed.keyType,
          notBefore: seed.notBefore,
          notAfter: seed.notAfter,
          fingerprint: sha256(`fingerprint ${i}`),
          pem: seed.pem,
          paths: { cert: `/srv/certs/host-${i}.crt`, key: `/srv/certs/host-${i}.key` },
        });
        store.addEvent({ type: 'issue', name: `host-${i}.localhost`, serial, detail: { i } });
      }
    } finally {
      store.close();
    }
  });
  after(async () => {
    await cluster?.stop();
    temp?.cleanup();
  });

  test('counts and checksums equal, the SQLite file unchanged, a second copy refused with nothing written', async (t) => {
    const before = sha256(readFileSync(database));
    const filesBefore = readdirSync(home).sort();
    const url = `${base}?schema=big`;
    const started = Date.now();
    const r = mcpki(['--home', home, 'store', 'migrate', '--to', url, '--json'], { env: SQLITE, timeout: 300_000 });
    const seconds = (Date.now() - started) / 1000;
    assert.equal(r.status, 0, r.stderr);
    t.diagnostic(`store migrate of ${COUNT + 1} certificates and their events: ${seconds.toFixed(1)} s`);
    const tables = Object.fromEntries(r.json.tables.map((row) => [row.table, row]));
    assert.equal(tables.certificates.rows, COUNT + 1);
    assert.ok(tables.events.rows >= COUNT + 2);

    // compared here too, from each database's own rows
    const sqlite = new Database(database, { readonly: true, fileMustExist: true });
    try {
      for (const [table, columns] of [
        ['certificates', CERTIFICATE_COLUMNS],
        ['events', EVENT_COLUMNS],
        ['authorities', ['id', 'serial', 'role', 'pem']],
      ]) {
        const sql = `SELECT ${columns.join(', ')} FROM ${table} ORDER BY id`;
        const mine = digestRows(sqlite.prepare(sql).all(), columns);
        const theirs = digestRows(await pgRows(url, sql.replace(table, `big.${table}`)), columns);
        assert.deepEqual(theirs, mine, table);
        assert.equal(tables[table].rows, mine.rows);
      }
      const settings = sqlite.prepare('SELECT key, value FROM settings ORDER BY key').all();
      assert.deepEqual(await pgRows(url, 'SELECT key, value FROM big.settings ORDER BY key'), settings);
    } finally {
      sqlite.close();
    }
    assert.equal(sha256(readFileSync(database)), before, 'the SQLite file keeps its bytes');
    // a read-only reader of a WAL database may leave SQLite's -shm and an empty -wal; nothing else is new
    assert.deepEqual(
      readdirSync(home)
        .filter((f) => !/^mcpki\.db-(shm|wal)$/.test(f))
        .sort(),
      filesBefore,
    );
    assert.equal(existsSync(`${database}-wal`) ? statSync(`${database}-wal`).size : 0, 0, 'nothing in the WAL');

    // the copy is a working inventory: the revoked seed is revoked there, a new certificate gets the next id
    const list = mcpki(['--home', home, '--store', url, 'show', 'seed', '--json'], { env: SQLITE });
    assert.equal(list.status, 0, list.stderr);
    assert.equal(list.json.certificate.status, 'revoked');
    const next = mcpki(['--home', home, '--store', url, 'issue', 'server', 'after', 'after.localhost', '--json'], {
      env: SQLITE,
    });
    assert.equal(next.status, 0, next.stderr);
    const [{ max }] = await pgRows(url, 'SELECT MAX(id) AS max FROM big.certificates');
    assert.equal(Number(max), COUNT + 2);

    // a target that is not empty: refused, nothing written
    const countsBefore = await pgRows(
      url,
      'SELECT (SELECT COUNT(*) FROM big.certificates) AS c, (SELECT COUNT(*) FROM big.events) AS e',
    );
    const again = mcpki(['--home', home, 'store', 'migrate', '--to', url], { env: SQLITE, timeout: 120_000 });
    assert.equal(again.status, 5, again.stderr);
    assert.match(again.stderr, /is not empty \(\d+ rows in \w+\)/);
    assert.deepEqual(
      await pgRows(url, 'SELECT (SELECT COUNT(*) FROM big.certificates) AS c, (SELECT COUNT(*) FROM big.events) AS e'),
      countsBefore,
    );
    assert.equal(sha256(readFileSync(database)), before);
  });

  test('a wrong password and an unreachable server: STORE_UNAVAILABLE, exit 7, one line without the password', async () => {
    const [closed] = await freePorts(1);
    const wrong = new URL(base);
    wrong.password = 'Wr0ngPassw0rd';
    wrong.searchParams.set('schema', 'nope');
    const away = new URL(wrong);
    away.port = String(closed);
    for (const target of [wrong.toString(), away.toString()]) {
      const r = mcpki(['--home', home, 'store', 'migrate', '--to', target, '--json'], { env: SQLITE });
      assert.equal(r.status, 7, r.stderr);
      assert.equal(r.json?.error?.code ?? r.json?.code, 'STORE_UNAVAILABLE', r.stdout);
      const human = mcpki(['--home', home, 'store', 'migrate', '--to', target], { env: SQLITE });
      assert.equal(human.status, 7);
      const errorLine = human.stderr.split('\n').filter((l) => l.startsWith('error:'));
      assert.equal(errorLine.length, 1, human.stderr);
      assert.match(
        errorLine[0],
        /^error: the inventory postgres:\/\/mcpki_test@127\.0\.0\.1:\d+\/migrate\?schema=nope /,
      );
      for (const text of [human.stderr, human.stdout, r.stdout, r.stderr]) {
        assert.doesNotMatch(text, /Wr0ngPassw0rd/);
        assert.doesNotMatch(text, new RegExp(cluster.password));
      }
    }
    const [{ n }] = await pgRows(
      base,
      "SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = 'nope'",
    );
    assert.equal(Number(n), 0, 'nothing created');
  });
});
