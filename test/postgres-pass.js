#!/usr/bin/env node
// The second pass of `npm test`: the test files that exercise the inventory, run again with every home's
// inventory in PostgreSQL (test/helpers.js storeEnv: one schema per home in one throw-away database).
//
//   node test/postgres-pass.js                 the chosen files (FILES below)
//   node test/postgres-pass.js test/x.test.js  only these
//   MCPKI_PG_PASS_TIMES=1 node test/postgres-pass.js   one file at a time, printing how long each took
//
// Without PostgreSQL's initdb/pg_ctl (Debian's `postgresql`) it says so and exits 0, as the PostgreSQL tests of
// the main run skip; with MCPKI_TEST_REQUIRE_POSTGRES=1 that is a failure instead.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './helpers.js';
import { hasPostgres, postgresMissingReason, startPostgres } from './postgres.js';

/**
 * The files whose tests open an inventory. Seconds each took alone under PostgreSQL on a 2-core machine shared
 * with 7 other test runs (load 12–25): inventory 87, init 95,
 * ca 169, sign 61, batch 41, forget 96, crl 120, crl-publish 143, renew-issued 94, apply 218, client-identity
 * 73, concurrency 144, acme-server-store 9, acme-server-cli 33, acme-server-renewal 17. Left out: serve (306: test/store-config.test.js runs `serve` on
 * PostgreSQL in the main run), check (191: live TLS servers, the inventory is incidental). crash runs 30 kills
 * here instead of 200. Tests about the SQLite file itself skip on this pass. The whole pass, 2 at a time: 344 s
 * (73 tests, 7 skipped) while the load fell from 12 to 3.
 */
export const FILES = [
  'inventory',
  'init',
  'ca',
  'sign',
  'batch',
  'forget',
  'crl',
  'crl-publish',
  'renew-issued',
  'apply',
  'client-identity',
  'concurrency',
  'crash',
  'acme-server-store',
  'acme-server-cli',
  'acme-server-renewal',
].map((name) => `test/${name}.test.js`);

function runNode(args, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: 'inherit' });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

async function main() {
  if (!hasPostgres()) {
    const reason = postgresMissingReason();
    if (process.env.MCPKI_TEST_REQUIRE_POSTGRES === '1') {
      console.error(`postgres pass: ${reason}`);
      return 1;
    }
    console.log(`postgres pass: skipped (${reason})`);
    return 0;
  }
  const files = process.argv.slice(2).length > 0 ? process.argv.slice(2) : FILES;
  const cluster = await startPostgres({ maxConnections: 300 });
  try {
    const url = await cluster.createDatabase('mcpki_pass');
    // the password in the URL: children get it through MCPKI_STORE (storeEnv), never on a command line
    const env = { ...process.env, MCPKI_TEST_POSTGRES: url };
    // test/crash.test.js: 30 kills, not 200 (each start of mcpki on PostgreSQL costs a worker and a login)
    env.MCPKI_CRASH_ROUNDS ??= '30';
    delete env.MCPKI_STORE;
    console.log(`postgres pass: ${files.length} files against PostgreSQL on 127.0.0.1:${cluster.port}`);
    if (process.env.MCPKI_PG_PASS_TIMES === '1') {
      const times = [];
      let failed = 0;
      for (const file of files) {
        const started = Date.now();
        const code = await runNode(['--test', join(ROOT, file)], env);
        if (code !== 0) failed++;
        times.push([file, ((Date.now() - started) / 1000).toFixed(1), code]);
      }
      for (const [file, seconds, code] of times)
        console.log(`${seconds.padStart(7)} s  ${code ? 'FAIL' : 'ok  '}  ${file}`);
      return failed ? 1 : 0;
    }
    return await runNode(['--test', '--test-concurrency=2', ...files.map((f) => join(ROOT, f))], env);
  } finally {
    await cluster.stop();
  }
}

process.exitCode = await main();
