// `store:` in mcpki.yaml: apply, validate and serve keep the inventory where the file says, --store and
// MCPKI_STORE win over it, and a bad value is a validation error with its line that never shows the password.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { BIN, mcpki, tempDir } from './helpers.js';
import { hasPostgres, postgresMissingReason, startPostgres } from './postgres.js';

const skip = hasPostgres() ? false : postgresMissingReason();
// these tests choose the store themselves: no MCPKI_STORE from the PostgreSQL pass
const NO_STORE = { MCPKI_STORE: undefined };

async function certificateNames(url, schema) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1', [schema]);
    if (exists.rowCount === 0) return [];
    const { rows } = await client.query(`SELECT name FROM ${schema}.certificates ORDER BY name`);
    return rows.map((r) => r.name);
  } finally {
    await client.end();
  }
}

function yaml(dir, store, names = ['api'], hook = undefined) {
  const file = join(dir, 'mcpki.yaml');
  writeFileSync(
    file,
    `version: 1
${store === undefined ? '' : `store: ${JSON.stringify(store)}\n`}certificates:
${names.map((n) => `  - name: ${n}\n    names: [${n}.localhost]\n    targets:\n      - { type: fullchain, path: deploy/${n}.crt }\n      - { type: key, path: deploy/${n}.key }\n${hook ? `    hooks: { reload: [${hook}] }\n` : ''}`).join('')}`,
  );
  return file;
}

describe('store: in mcpki.yaml', { skip }, () => {
  let cluster;
  let base;
  const at = (schema) => `${base}?schema=${schema}`;
  before(async () => {
    cluster = await startPostgres();
    base = await cluster.createDatabase('store_config');
  });
  after(async () => {
    await cluster?.stop();
  });

  test('apply and validate use the PostgreSQL inventory the file names; --store and MCPKI_STORE win over it', async () => {
    const temp = tempDir('mcpki-store-config-');
    try {
      const home = join(temp.dir, 'home');
      // the CA's inventory is the one the file names
      const init = mcpki(['--home', home, '--store', at('cfg'), 'init'], { env: NO_STORE });
      assert.equal(init.status, 0, init.stderr);
      const file = yaml(temp.dir, at('cfg'));
      const apply = mcpki(['--home', home, 'apply', '-c', file, '--json'], { env: NO_STORE });
      assert.equal(apply.status, 0, apply.stderr);
      assert.deepEqual(await certificateNames(base, 'cfg'), ['api']);
      assert.equal(existsSync(join(home, 'mcpki.db')), false, 'no SQLite inventory in the home');
      assert.ok(existsSync(join(temp.dir, 'deploy', 'api.crt')));

      // validate reads the same inventory: the plan shows api as valid, nothing to do
      const validate = mcpki(['--home', home, 'validate', '-c', file, '--json'], { env: NO_STORE });
      assert.equal(validate.status, 0, validate.stderr);
      assert.match(validate.stdout, /"api"/);
      assert.doesNotMatch(validate.stdout, /"issue"/);

      // MCPKI_STORE wins over store:, --store over MCPKI_STORE (each home's CA made in the inventory it uses)
      const byEnvHome = join(temp.dir, 'home-env');
      assert.equal(mcpki(['--home', byEnvHome, 'init'], { env: { MCPKI_STORE: at('env') } }).status, 0);
      const hook = join(temp.dir, 'hook.sh');
      writeFileSync(hook, `#!/bin/sh\nenv >> ${join(temp.dir, 'hook.env')}\n`, { mode: 0o755 });
      const byEnv = mcpki(
        ['--home', byEnvHome, 'apply', '-c', yaml(temp.dir, at('cfg'), ['api', 'web'], hook), '--json'],
        { env: { MCPKI_STORE: at('env'), PGPASSWORD: cluster.password } },
      );
      assert.equal(byEnv.status, 0, byEnv.stderr);
      // the store's password reaches no hook: neither MCPKI_STORE with it in the URL nor PGPASSWORD
      const hookEnv = readFileSync(join(temp.dir, 'hook.env'), 'utf8');
      assert.match(hookEnv, /MCPKI_CERT_NAME=api/);
      assert.doesNotMatch(hookEnv, new RegExp(cluster.password));
      assert.doesNotMatch(hookEnv, /^(PGPASSWORD|MCPKI_STORE)=/m);
      assert.deepEqual(await certificateNames(base, 'env'), ['api', 'web']);
      assert.deepEqual(await certificateNames(base, 'cfg'), ['api'], 'store: was not used');
      const byFlagHome = join(temp.dir, 'home-flag');
      assert.equal(mcpki(['--home', byFlagHome, '--store', at('flag'), 'init'], { env: NO_STORE }).status, 0);
      const byFlag = mcpki(
        ['--home', byFlagHome, '--store', at('flag'), 'apply', '-c', yaml(temp.dir, at('cfg'), ['mail']), '--json'],
        { env: { MCPKI_STORE: at('env') } },
      );
      assert.equal(byFlag.status, 0, byFlag.stderr);
      assert.deepEqual(await certificateNames(base, 'flag'), ['mail']);
      assert.deepEqual(await certificateNames(base, 'env'), ['api', 'web']);
      assert.deepEqual(await certificateNames(base, 'cfg'), ['api']);
    } finally {
      temp.cleanup();
    }
  });

  test('serve with store: in its file writes its renewals to PostgreSQL', async () => {
    const temp = tempDir('mcpki-store-config-');
    try {
      const home = join(temp.dir, 'home');
      assert.equal(mcpki(['--home', home, '--store', at('srv'), 'init'], { env: NO_STORE }).status, 0);
      const file = yaml(temp.dir, at('srv'), ['svc']);
      const env = { ...process.env };
      delete env.MCPKI_STORE;
      const child = spawn(process.execPath, [BIN, '--home', home, 'serve', '-c', file], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env,
      });
      let log = '';
      child.stdout.on('data', (d) => (log += d));
      child.stderr.on('data', (d) => (log += d));
      const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
      try {
        for (let i = 0; i < 300 && !/check\.done/.test(log) && child.exitCode === null; i++)
          await new Promise((r) => setTimeout(r, 100));
        assert.match(log, /check\.done/);
      } finally {
        child.kill('SIGTERM');
      }
      assert.equal(await exited, 0, log);
      assert.deepEqual(await certificateNames(base, 'srv'), ['svc']);
      assert.equal(existsSync(join(home, 'mcpki.db')), false);
    } finally {
      temp.cleanup();
    }
  });

  test('a bad store: is an error with its line, and the password is never shown', () => {
    const temp = tempDir('mcpki-store-config-');
    try {
      const home = join(temp.dir, 'home');
      for (const [value, pattern] of [
        ['ftp://db.example/x', /mcpki\.yaml:2:\d+ store: .*scheme ftp is not supported/],
        [
          'postgres://mcpki:Sup3rSecret@db.example/x',
          /mcpki\.yaml:2:\d+ store: .*names no sslmode for the remote host/,
        ],
        ['postgres://mcpki:Sup3rSecret@db.example/x?sslmode=verify-full', /sslmode=verify-full needs sslrootcert/],
        ['postgres://mcpki:Sup3rSecret@127.0.0.1/x?schema=Bad-Name', /schema=Bad-Name is not a plain lower-case name/],
      ]) {
        const r = mcpki(['--home', home, 'validate', '-c', yaml(temp.dir, value)], { env: NO_STORE });
        assert.equal(r.status, 3, `${value}: ${r.stderr}`);
        assert.match(r.stderr, pattern);
        assert.doesNotMatch(r.stdout + r.stderr, /Sup3rSecret/);
      }
      const list = mcpki(['--home', home, 'validate', '-c', yaml(temp.dir, ['postgres://x'])], { env: NO_STORE });
      assert.equal(list.status, 3);
      assert.match(list.stderr, /store: expected sqlite or a postgres:\/\/ URL, got a list/);
    } finally {
      temp.cleanup();
    }
  });
});
