// Renewal state per home (issue 12) across schema upgrades and `mcpki store migrate`: a SQLite home made before
// the scope column keeps its rows (scope ''), a PostgreSQL inventory of before keeps its rows aside (scope '',
// read by no home), and `store migrate --to` puts the home's rows under its scope in PostgreSQL, where that home
// (and no other) shows them, with counts and checksums equal.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../dist/store/migrations.js';
import { POSTGRES_MIGRATIONS } from '../dist/store/migrations-postgres.js';
import { parseStoreLocation } from '../dist/store/location.js';
import { PostgresConnection } from '../dist/store/postgres.js';
import { Store } from '../dist/store/store.js';
import { mcpki, tempDir } from './helpers.js';
import { hasPostgres, postgresMissingReason, startPostgres } from './postgres.js';

// the homes here are SQLite, whatever the PostgreSQL pass says
const SQLITE = { MCPKI_STORE: undefined };
/** the schema version before renewal state was scoped per home */
const UNSCOPED = MIGRATIONS.findIndex((m) => m.includes('renewal_state_scoped'));
const COLUMNS =
  'name, code, reason, next_check, ari_time, failures, last_attempt, last_success, last_failure, last_error, deployed';

/** A SQLite home with one declared certificate, applied once: one renewal_state row. */
function declaredHome(dir) {
  const home = join(dir, 'home');
  const config = join(dir, 'mcpki.yaml');
  mkdirSync(join(dir, 'deploy'), { mode: 0o700 });
  writeFileSync(
    config,
    `version: 1
certificates:
  - name: web
    names: [web.localhost]
    targets:
      - { type: fullchain, path: deploy/web.crt }
`,
  );
  assert.equal(mcpki(['--home', home, 'init'], { env: SQLITE }).status, 0);
  const applied = mcpki(['--home', home, 'apply', '--config', config, '--json'], { env: SQLITE });
  assert.equal(applied.status, 0, applied.stderr);
  return { home, config, database: join(home, 'mcpki.db') };
}

/** A failure on record for `web` (two in a row), in whichever layout the table has. */
function recordFailures(database) {
  const db = new Database(database);
  try {
    db.prepare(
      `UPDATE renewal_state SET failures = 2, last_failure = ?, last_error = 'the CA said no' WHERE name = 'web'`,
    ).run(new Date().toISOString());
  } finally {
    db.close();
  }
}

test('a SQLite home from before the scope column keeps its renewal state', () => {
  assert.ok(UNSCOPED > 0, 'the scoping migration is found');
  const temp = tempDir('mcpki-state-upgrade-');
  try {
    const { home, database } = declaredHome(temp.dir);
    recordFailures(database);
    // the table as the schema version before had it (no scope column), and that version
    const db = new Database(database);
    try {
      const before = db.prepare(`SELECT ${COLUMNS} FROM renewal_state`).all();
      db.exec(`
        CREATE TABLE renewal_state_old (
          name TEXT PRIMARY KEY, code TEXT, reason TEXT, next_check TEXT, ari_time TEXT,
          failures INTEGER NOT NULL DEFAULT 0, last_attempt TEXT, last_success TEXT, last_failure TEXT,
          last_error TEXT, deployed TEXT
        );
        INSERT INTO renewal_state_old SELECT ${COLUMNS} FROM renewal_state;
        DROP TABLE renewal_state;
        ALTER TABLE renewal_state_old RENAME TO renewal_state;
      `);
      db.pragma(`user_version = ${UNSCOPED}`);
      assert.equal(before.length, 1);
      assert.ok(before[0].deployed, 'a deployed fingerprint on record');
      db.close();

      // any command brings it up to date: the row is there, in this home's scope, every value kept
      const list = mcpki(['--home', home, 'list', '--json'], { env: SQLITE });
      assert.equal(list.status, 0, list.stderr);
      const renewal = list.json.certificates.find((c) => c.name === 'web').renewal;
      assert.equal(renewal.failures, 2);
      assert.equal(renewal.lastError, 'the CA said no');
      const after = new Database(database, { readonly: true });
      try {
        assert.equal(after.pragma('user_version', { simple: true }), MIGRATIONS.length);
        assert.deepEqual(after.prepare(`SELECT ${COLUMNS} FROM renewal_state`).all(), before);
        assert.deepEqual(after.prepare('SELECT scope FROM renewal_state').all(), [{ scope: '' }]);
      } finally {
        after.close();
      }
    } finally {
      if (db.open) db.close();
    }
    // the Store reads and writes that row (one row, not a second one beside it)
    const store = Store.open(database);
    try {
      const state = store.getRenewalState('web');
      assert.equal(state.failures, 2);
      store.saveRenewalState({ ...state, failures: 0, lastError: null });
      assert.deepEqual(
        store.listRenewalStates().map((s) => [s.name, s.failures]),
        [['web', 0]],
      );
    } finally {
      store.close();
    }
  } finally {
    temp.cleanup();
  }
});

const skip = hasPostgres() ? false : postgresMissingReason();

describe('renewal state on PostgreSQL: upgrade and store migrate', { skip }, () => {
  let cluster;
  before(async () => {
    cluster = await startPostgres();
  });
  after(async () => {
    await cluster?.stop();
  });

  test('a PostgreSQL inventory from before the scope column keeps its rows, read by no home', async () => {
    const url = await cluster.createDatabase('state_upgrade');
    const location = parseStoreLocation(url);
    const old = PostgresConnection.open(location);
    try {
      old.migrate(POSTGRES_MIGRATIONS.slice(0, UNSCOPED));
      old.prepare(`INSERT INTO renewal_state (name, failures, last_error) VALUES (?, ?, ?)`).run('web', 3, 'shared');
    } finally {
      old.close();
    }
    const store = Store.openPostgres(location, '/srv/mcpki');
    try {
      assert.equal(store.getRenewalState('web'), undefined, 'the unscoped row is no home’s');
      store.saveRenewalState({
        name: 'web',
        code: 'not-yet',
        reason: null,
        nextCheck: null,
        ariTime: null,
        failures: 0,
        lastAttempt: null,
        lastSuccess: null,
        lastFailure: null,
        lastError: null,
        deployed: null,
      });
      assert.equal(store.getRenewalState('web').failures, 0);
      assert.deepEqual(store.renewalStateNames(), ['web']);
    } finally {
      store.close();
    }
    const rows = (
      await cluster.query('SELECT scope, name, failures FROM renewal_state ORDER BY scope', [], 'state_upgrade')
    ).rows;
    assert.deepEqual(rows, [
      { scope: '', name: 'web', failures: 3 },
      { scope: `${hostname()}:/srv/mcpki`, name: 'web', failures: 0 },
    ]);
  });

  test('two homes on one inventory: their own rows; the chosen ARI time is the certificate’s, on every row', async () => {
    const url = await cluster.createDatabase('state_homes');
    const location = parseStoreLocation(url);
    const a = Store.openPostgres(location, '/srv/a');
    const b = Store.openPostgres(location, '/srv/b');
    const state = (failures, deployed, ariTime) => ({
      name: 'web',
      code: 'not-yet',
      reason: null,
      nextCheck: `2030-01-0${failures + 1}T00:00:00.000Z`,
      ariTime,
      failures,
      lastAttempt: null,
      lastSuccess: null,
      lastFailure: null,
      lastError: failures ? 'no' : null,
      deployed,
    });
    try {
      a.saveRenewalState(state(0, '{"a":1}', null));
      b.saveRenewalState(state(2, '{"b":1}', null));
      assert.equal(a.getRenewalState('web').deployed, '{"a":1}');
      assert.equal(b.getRenewalState('web').deployed, '{"b":1}');
      assert.deepEqual(
        [a, b].map((s) => s.listRenewalStates().map((r) => [r.failures, r.nextCheck])),
        [[[0, '2030-01-01T00:00:00.000Z']], [[2, '2030-01-03T00:00:00.000Z']]],
      );
      // a chooses the ARI moment: b's row has it too, and keeps the rest of its own
      a.saveRenewalState(state(0, '{"a":1}', '2030-02-01T10:00:00.000Z'));
      assert.equal(b.getRenewalState('web').ariTime, '2030-02-01T10:00:00.000Z');
      assert.equal(b.getRenewalState('web').failures, 2);
      assert.equal(b.getRenewalState('web').deployed, '{"b":1}');
      // a save without one does not clear it elsewhere
      b.saveRenewalState(state(1, '{"b":2}', '2030-02-01T10:00:00.000Z'));
      a.saveRenewalState(state(0, '{"a":2}', null));
      assert.equal(b.getRenewalState('web').ariTime, '2030-02-01T10:00:00.000Z');
    } finally {
      a.close();
      b.close();
    }
  });

  test('store migrate into a database that sorts text otherwise (ICU en-US): the tables still compare equal', async (t) => {
    try {
      await cluster.query(
        `CREATE DATABASE state_icu TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`,
      );
    } catch (error) {
      return t.skip(`no ICU collation in this PostgreSQL: ${error.message}`);
    }
    const sorted = (
      await cluster.query(`SELECT n FROM (VALUES ('a-web'), ('B-web'), ('a_web')) AS v (n) ORDER BY n`, [], 'state_icu')
    ).rows.map((r) => r.n);
    assert.notDeepEqual(sorted, ['B-web', 'a-web', 'a_web'], `the database does not sort by bytes: ${sorted}`);
    const temp = tempDir('mcpki-state-icu-');
    try {
      const { home, database } = declaredHome(temp.dir);
      const db = new Database(database);
      try {
        for (const name of ['a-web', 'B-web', 'a_web'])
          db.prepare(`INSERT INTO renewal_state (scope, name, failures) VALUES ('', ?, 1)`).run(name);
      } finally {
        db.close();
      }
      const r = mcpki(['--home', home, 'store', 'migrate', '--to', cluster.url('state_icu'), '--json'], {
        env: SQLITE,
      });
      assert.equal(r.status, 0, r.stderr + r.stdout);
      assert.equal(r.json.tables.find((x) => x.table === 'renewal_state').rows, 4);
    } finally {
      temp.cleanup();
    }
  });

  test('store migrate puts the home’s renewal state under its scope: that home shows it, another does not', async () => {
    const temp = tempDir('mcpki-state-migrate-');
    try {
      const { home, config, database } = declaredHome(temp.dir);
      recordFailures(database);
      const url = await cluster.createDatabase('state_migrate');
      const r = mcpki(['--home', home, 'store', 'migrate', '--to', url, '--json'], { env: SQLITE });
      assert.equal(r.status, 0, r.stderr);
      const copied = r.json.tables.find((t) => t.table === 'renewal_state');
      assert.equal(copied.rows, 1);
      const rows = (await cluster.query('SELECT scope, name, failures FROM renewal_state', [], 'state_migrate')).rows;
      assert.deepEqual(rows, [{ scope: `${hostname()}:${home}`, name: 'web', failures: 2 }]);

      // the migrated home, now on PostgreSQL, shows its state in list and in the renewal plan
      const onPg = { MCPKI_STORE: url };
      const list = mcpki(['--home', home, 'list', '--json'], { env: onPg });
      assert.equal(list.status, 0, list.stderr);
      assert.equal(list.json.certificates.find((c) => c.name === 'web').renewal?.failures, 2, list.stdout);
      const plan = mcpki(['--home', home, 'renew', '--dry-run', '--config', config, '--json'], { env: onPg });
      assert.equal(plan.status, 0, plan.stderr);
      assert.equal(plan.json.plan[0].failures, 2, plan.stdout);
      assert.equal(plan.json.plan[0].lastError, 'the CA said no');
      // a second home on the same inventory has none of it
      const other = join(temp.dir, 'other');
      const otherList = mcpki(['--home', other, 'list', '--json'], { env: onPg });
      assert.equal(otherList.status, 0, otherList.stderr);
      assert.equal(
        otherList.json.certificates.find((c) => c.name === 'web').renewal ?? null,
        null,
        'no renewal state of its own',
      );
    } finally {
      temp.cleanup();
    }
  });
});
