// Renewal state per host on a shared PostgreSQL inventory (issue 12): three homes, three real `mcpki serve`
// processes, one certificate declared by all three. After the one renewal, further checks on each host leave
// its deployed files alone (same inode, mtime and ctime, no reload hook), each host keeps its own deployed
// fingerprint, failures and next check, and a failure on one host is not shown by the others. Checked with a
// real PostgreSQL (test/postgres.js) and openssl.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, lstatSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BIN, mcpki, run, tempDir } from './helpers.js';
import { startPostgres, hasPostgres, postgresMissingReason } from './postgres.js';

const skip = hasPostgres() ? false : postgresMissingReason();
const NAME = 'shared';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function serialOf(path) {
  const r = run('openssl', ['x509', '-in', path, '-noout', '-serial']);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().replace(/^serial=/, '');
}

/** Three homes with the first one's CA files, each declaring NAME with its own targets and reload hook. */
function fleet(dir, store) {
  const env = { MCPKI_STORE: store };
  const hosts = ['a', 'b', 'c'].map((id) => {
    const root = join(dir, id);
    mkdirSync(root, { mode: 0o700 });
    const host = {
      id,
      root,
      env,
      home: join(root, 'home'),
      config: join(root, 'mcpki.yaml'),
      log: join(root, 'reloads.log'),
      deploy: join(root, 'deploy'),
    };
    const hook = join(root, 'reload.sh');
    writeFileSync(hook, `#!/bin/sh\necho "$MCPKI_SERIAL" >> ${host.log}\n`);
    chmodSync(hook, 0o755);
    writeFileSync(
      host.config,
      `version: 1
certificates:
  - name: ${NAME}
    names: [shared.localhost]
    days: 30
    targets:
      - { type: fullchain, path: deploy/shared.crt }
      - { type: key, path: deploy/shared.key }
    hooks:
      reload: [[${hook}]]
`,
    );
    return host;
  });
  const init = mcpki(['--home', hosts[0].home, 'init'], { env });
  assert.equal(init.status, 0, init.stderr);
  for (const host of hosts.slice(1)) {
    mkdirSync(host.home, { mode: 0o700 });
    cpSync(join(hosts[0].home, 'ca'), join(host.home, 'ca'), { recursive: true });
  }
  return hosts;
}

function serve(host) {
  const child = spawn(
    process.execPath,
    [BIN, '--home', host.home, 'serve', '--config', host.config, '--schedule', '0 0 1 1 *'],
    { env: { ...process.env, NO_COLOR: '1', ...host.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited, output: () => output, checks: () => output.match(/check\.done/g)?.length ?? 0 };
}

async function waitFor(what, check, timeoutMs, describeState) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}\n${describeState()}`);
    await sleep(200);
  }
}

/**
 * What a rewrite would change: each target's link (a deploy replaces it with a rename) and the file behind
 * it (a new version is a new inode), with their inode, mtime and ctime.
 */
function filesOf(host) {
  const out = {};
  for (const file of ['shared.crt', 'shared.key']) {
    const path = join(host.deploy, file);
    const link = lstatSync(path, { bigint: true });
    const real = statSync(path, { bigint: true });
    out[file] = [link.ino, link.mtimeNs, link.ctimeNs, real.ino, real.mtimeNs, real.ctimeNs].map(String);
  }
  return out;
}

/**
 * strace attached to a running process and its threads, recording the calls that open, rename, link or
 * remove a file; resolves once attached, to a function that detaches it.
 */
async function trace(pid, out) {
  const child = spawn(
    'strace',
    [
      '-f',
      '-o',
      out,
      '-e',
      'trace=open,openat,openat2,creat,rename,renameat,renameat2,link,linkat,symlink,symlinkat,unlink,unlinkat',
      '-p',
      String(pid),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let said = '';
  child.stderr.on('data', (d) => (said += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  await waitFor(
    `strace to attach to ${pid}`,
    () => said.includes(`Process ${pid} attached`),
    10_000,
    () => said,
  );
  return async () => {
    child.kill('SIGINT');
    await exited;
  };
}

const reloadsOf = (host) => readFileSync(host.log, 'utf8').trim().split('\n');

describe('renewal state per host on one PostgreSQL inventory', { skip }, () => {
  let pg;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  test('after the one renewal, further checks on each host rewrite nothing; each host keeps its own state', async (t) => {
    const temp = tempDir('mcpki-fleet-state-');
    t.after(temp.cleanup);
    const url = await pg.createDatabase('fleet_state');
    const hosts = fleet(temp.dir, url);
    const [a, b, c] = hosts;
    for (const host of hosts) {
      const r = mcpki(['--home', host.home, 'apply', '--config', host.config, '--json'], { env: host.env });
      assert.equal(r.status, 0, r.stderr + r.stdout);
    }
    const oldSerial = serialOf(join(a.deploy, 'shared.crt'));

    const services = hosts.map(serve);
    t.after(() => services.forEach((s) => s.child.kill('SIGKILL')));
    const state = () => services.map((s, i) => `--- ${hosts[i].id}\n${s.output()}`).join('\n');
    await waitFor('every service to check once', () => services.every((s) => s.checks() >= 1), 60_000, state);
    // the one renewal: the certificate revoked, every host told to check at once
    const revoked = mcpki(['--home', a.home, 'revoke', NAME], { env: a.env });
    assert.equal(revoked.status, 0, revoked.stderr);
    for (const s of services) s.child.kill('SIGHUP');
    await waitFor(
      'all three hosts to deploy the renewed certificate',
      () => hosts.every((h) => serialOf(join(h.deploy, 'shared.crt')) !== oldSerial),
      90_000,
      state,
    );
    // every host has finished the check that deployed it (a host that found the lock taken checks again a
    // second later): the services are quiet once none has written anything for two seconds
    await waitFor('the checks to finish', () => services.every((s) => s.checks() >= 2), 60_000, state);
    let quiet = { length: state().length, since: Date.now() };
    await waitFor(
      'the services to be quiet',
      () => {
        const length = state().length;
        if (length !== quiet.length) quiet = { length, since: Date.now() };
        return Date.now() - quiet.since >= 2000;
      },
      60_000,
      state,
    );
    const newSerial = serialOf(join(a.deploy, 'shared.crt'));
    const files = hosts.map(filesOf);
    const reloads = hosts.map(reloadsOf);
    for (const [i, host] of hosts.entries()) {
      assert.equal(serialOf(join(host.deploy, 'shared.crt')), newSerial, host.id);
      assert.equal(reloads[i].at(-1).toUpperCase(), newSerial.toUpperCase(), `${host.id}: reloaded for the renewal`);
    }

    // three more rounds of checks, host after host, each reading what the others saved; every file operation
    // of the services traced (strace attached to each, all threads)
    const traces = await Promise.all(services.map((s, i) => trace(s.child.pid, join(hosts[i].root, 'strace.txt'))));
    const mark = services.map((s) => s.output().length);
    for (let round = 0; round < 3; round++) {
      for (const s of services) {
        const before = s.checks();
        s.child.kill('SIGHUP');
        await waitFor('the check', () => s.checks() > before, 60_000, state);
      }
    }
    await Promise.all(traces.map((stop) => stop()));
    for (const [i, host] of hosts.entries()) {
      const touched = readFileSync(join(host.root, 'strace.txt'), 'utf8')
        .split('\n')
        .filter((line) => line.includes(host.deploy));
      assert.deepEqual(touched, [], `${host.id}: no file under its deploy folder opened, renamed or linked`);
      assert.deepEqual(filesOf(host), files[i], `${host.id}: the deployed files were not rewritten`);
      assert.deepEqual(reloadsOf(host), reloads[i], `${host.id}: no reload hook ran`);
    }
    for (const s of services) s.child.kill('SIGTERM');
    assert.deepEqual(
      (await Promise.all(services.map((s) => s.exited))).map((e) => e.code),
      [0, 0, 0],
      state(),
    );
    // each of those checks reports nothing changed and nothing failed
    for (const [i, s] of services.entries()) {
      const done = s
        .output()
        .slice(mark[i])
        .split('\n')
        .filter((line) => line.includes('"check.done"'))
        .map((line) => JSON.parse(line));
      assert.ok(done.length >= 3, `${hosts[i].id}: three checks\n${s.output()}`);
      for (const check of done) assert.deepEqual([check.changed, check.failed], [false, 0], JSON.stringify(check));
    }

    // one row per host, each with its own targets in its deployed fingerprint
    const rows = (await pg.query('SELECT scope, name, deployed FROM renewal_state ORDER BY scope', [], 'fleet_state'))
      .rows;
    assert.deepEqual(
      rows.map((r) => [r.scope, r.name]),
      hosts.map((h) => [`${hostname()}:${h.home}`, NAME]).sort(),
    );
    for (const host of hosts) {
      const row = rows.find((r) => r.scope === `${hostname()}:${host.home}`);
      const deployed = JSON.parse(row.deployed);
      assert.equal(deployed.serial, newSerial, host.id);
      assert.deepEqual(
        deployed.files.map((f) => f[0]),
        [join(host.deploy, 'shared.crt'), join(host.deploy, 'shared.key')],
        `${host.id}: its own files`,
      );
    }

    // a failure on host c is c's alone: its list shows it, a's and b's do not
    rmSync(c.deploy, { recursive: true });
    writeFileSync(c.deploy, 'not a folder\n');
    const failed = mcpki(['--home', c.home, 'apply', '--config', c.config, '--json'], { env: c.env });
    assert.notEqual(failed.status, 0, failed.stdout);
    assert.equal(failed.json.items[0].failures, 1, failed.stdout);
    const renewal = (host) => {
      const r = mcpki(['--home', host.home, 'list', '--json'], { env: host.env });
      assert.equal(r.status, 0, r.stderr);
      return r.json.certificates.find((x) => x.name === NAME).renewal;
    };
    assert.equal(renewal(c).failures, 1);
    assert.ok(renewal(c).lastError, 'c shows its error');
    for (const host of [a, b]) {
      assert.equal(renewal(host).failures, 0, `${host.id}: c's failure is not ${host.id}'s`);
      assert.equal(renewal(host).lastError, null, host.id);
    }
    // and a's next check is not pulled into c's backoff: its dry run is not backing off
    const plan = mcpki(['--home', a.home, 'renew', '--dry-run', '--config', a.config, '--json'], { env: a.env });
    assert.equal(plan.status, 0, plan.stderr);
    assert.notEqual(plan.json.plan[0].code, 'backoff', plan.stdout);
    assert.equal(plan.json.plan[0].failures, 0, plan.stdout);
  });
});
