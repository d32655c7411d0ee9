// Renewal services on several hosts sharing one PostgreSQL inventory (issue 12): three homes with the same CA
// files, three real `mcpki serve` processes, one certificate declared by all three (same name, same issuer),
// each with its own targets and reload hook. Checked with a real PostgreSQL (test/postgres.js) and openssl.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, mcpki, run, tempDir } from './helpers.js';
import { startPostgres, hasPostgres, postgresMissingReason } from './postgres.js';
import { hasPebble, startPebble } from './pebble.js';

const skip = hasPostgres() ? false : postgresMissingReason();
/** The rows of one statement, run as the cluster's superuser. */
const rowsOf = async (pg, sql, params, dbname) => (await pg.query(sql, params, dbname)).rows;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const NAME = 'shared';

function openssl(args, input) {
  const r = run('openssl', args, input === undefined ? {} : { input });
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** The serial (upper-case hex) of the first certificate in a PEM file, as openssl reads it. */
function serialOf(path) {
  return openssl(['x509', '-in', path, '-noout', '-serial']).replace(/^serial=/, '');
}

/** Three hosts: home + mcpki.yaml + deploy folder + reload log each, the CA files copied from the first. */
function fleet(dir, store, { days, count = 3 }) {
  const env = { MCPKI_STORE: store };
  const hosts = ['a', 'b', 'c'].slice(0, count).map((id) => {
    const root = join(dir, id);
    mkdirSync(root, { mode: 0o700 });
    const home = join(root, 'home');
    const config = join(root, 'mcpki.yaml');
    const log = join(root, 'reloads.log');
    const hook = join(root, 'reload.sh');
    writeFileSync(hook, `#!/bin/sh\necho "$MCPKI_SERIAL" >> ${log}\n`);
    chmodSync(hook, 0o755);
    return { id, root, home, config, log, hook, deploy: join(root, 'deploy'), env };
  });
  const [first, ...others] = hosts;
  const init = mcpki(['--home', first.home, 'init'], { env });
  assert.equal(init.status, 0, init.stderr);
  for (const host of others) {
    mkdirSync(host.home, { mode: 0o700 });
    cpSync(join(first.home, 'ca'), join(host.home, 'ca'), { recursive: true });
  }
  const declare = (host, extra) =>
    writeFileSync(
      host.config,
      `version: 1
certificates:
  - name: ${NAME}
    names: [shared.localhost]
    days: ${days}
${extra}    targets:
      - { type: fullchain, path: deploy/shared.crt }
      - { type: key, path: deploy/shared.key }
    hooks:
      reload: [[${host.hook}]]
`,
    );
  return { hosts, env, declare };
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
  return { child, exited, output: () => output };
}

async function waitFor(what, check, timeoutMs = 60_000, describeState = () => '') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}\n${describeState()}`);
    await sleep(200);
  }
}

/** Every row of every table of the inventory, as text: what someone who reads the database sees. */
async function everything(pg, dbname) {
  const tables = await rowsOf(
    pg,
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    [],
    dbname,
  );
  let text = '';
  for (const { table_name } of tables) {
    const rows = await rowsOf(pg, `SELECT t::text AS row FROM ${table_name} t`, [], dbname);
    text += rows.map((r) => r.row).join('\n');
  }
  return text;
}

describe('several hosts, one PostgreSQL inventory', { skip }, () => {
  let pg;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  test('three mcpki serve processes: one renewal, deployed by all three to their own targets', async (t) => {
    const temp = tempDir('mcpki-fleet-');
    t.after(temp.cleanup);
    const url = await pg.createDatabase('fleet_three');
    const { hosts, declare } = fleet(temp.dir, url, { days: 30 });
    const [a] = hosts;
    // RSA-4096 keys take seconds to make: the renewing host holds the lock that long, while the others check
    for (const host of hosts) declare(host, '    key: rsa-4096\n');
    // the current certificate: issued by host a, deployed by b and c from the inventory
    for (const host of hosts) {
      const r = mcpki(['--home', host.home, 'apply', '--config', host.config, '--json'], { env: host.env });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json.items[0].action, host === a ? 'issued' : 'unchanged', host.id);
    }
    const oldSerial = serialOf(join(a.deploy, 'shared.crt'));
    for (const host of hosts) assert.equal(serialOf(join(host.deploy, 'shared.crt')), oldSerial, host.id);

    const services = hosts.map(serve);
    t.after(() => services.forEach((s) => s.child.kill('SIGKILL')));
    const state = () => services.map((s, i) => `--- ${hosts[i].id}\n${s.output()}`).join('\n');
    await waitFor(
      'every service to check once',
      () => services.every((s) => /check\.done/.test(s.output())),
      30_000,
      state,
    );
    // the renewal window, forced: the key is compromised, the certificate revoked; then every host is told
    // to check at the same moment, and every one finds it due
    const revoked = mcpki(['--home', a.home, 'revoke', NAME, '--reason', 'keyCompromise'], { env: a.env });
    assert.equal(revoked.status, 0, revoked.stderr);
    for (const s of services) s.child.kill('SIGHUP');
    await waitFor(
      'all three hosts to deploy a renewed certificate',
      () =>
        hosts.every(
          (h) => existsSync(join(h.deploy, 'shared.crt')) && serialOf(join(h.deploy, 'shared.crt')) !== oldSerial,
        ),
      90_000,
      state,
    );
    // one more check on every host changes nothing
    await sleep(1500);
    for (const s of services) s.child.kill('SIGTERM');
    const exits = await Promise.all(services.map((s) => s.exited));
    assert.deepEqual(
      exits.map((e) => e.code),
      [0, 0, 0],
      state(),
    );

    const serials = hosts.map((h) => serialOf(join(h.deploy, 'shared.crt')));
    assert.equal(new Set(serials).size, 1, `one certificate on all three hosts: ${serials}`);
    const newSerial = serials[0];
    assert.match(openssl(['x509', '-in', join(a.deploy, 'shared.crt'), '-noout', '-text']), /Public-Key: \(4096 bit\)/);
    // the race happened: the hosts that did not renew found the lock taken, or a newer certificate under it
    const renewedBy = services.filter((s) => /"action":"renewed"/.test(s.output()));
    assert.equal(renewedBy.length, 1, state());
    for (const host of hosts) {
      const crt = join(host.deploy, 'shared.crt');
      const key = join(host.deploy, 'shared.key');
      // the key matches the certificate, and the chain verifies to the fleet's root
      assert.equal(
        openssl(['x509', '-in', crt, '-noout', '-pubkey']),
        openssl(['pkey', '-in', key, '-pubout']),
        `${host.id}: key and certificate match`,
      );
      const chainFile = join(host.root, 'chain.pem');
      const blocks = readFileSync(crt, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g);
      assert.equal(blocks.length, 2, `${host.id}: leaf and intermediate`);
      writeFileSync(chainFile, blocks[1]);
      assert.match(
        openssl(['verify', '-CAfile', join(host.home, 'ca', 'root.crt'), '-untrusted', chainFile, crt]),
        /: OK$/,
      );
      assert.equal(run('stat', ['-L', '-c', '%a', key]).stdout.trim(), '600', `${host.id}: key 0600`);
      // the host's own reload hook ran for the new certificate, once
      const reloads = readFileSync(host.log, 'utf8').trim().split('\n');
      assert.deepEqual(
        reloads.filter((s) => s.toUpperCase() === newSerial.toUpperCase()),
        [reloads.at(-1)],
        `${host.id}: one reload for ${newSerial}: ${reloads}`,
      );
    }

    // exactly one renewal: two certificates of that name in the inventory (the first and the renewed one)
    const rows = await rowsOf(
      pg,
      `SELECT serial, status FROM certificates WHERE name = $1 ORDER BY id`,
      [NAME],
      'fleet_three',
    );
    assert.deepEqual(
      rows.map((r) => r.status),
      ['revoked', 'valid'],
    );
    assert.equal(rows[1].serial.toUpperCase(), newSerial.toUpperCase());
    const issued = await rowsOf(
      pg,
      `SELECT COUNT(*)::int AS n FROM events WHERE name = $1 AND type = 'certificate.issued'`,
      [NAME],
      'fleet_three',
    );
    assert.equal(issued[0].n, 2, 'issued once, renewed once');
    // the key went to the other hosts sealed: no private key anywhere in the database
    const sealed = await rowsOf(pg, 'SELECT serial FROM shared_keys', [], 'fleet_three');
    assert.deepEqual(
      sealed.map((r) => r.serial),
      [rows[1].serial],
    );
    const dump = await everything(pg, 'fleet_three');
    assert.ok(dump.includes(rows[1].serial), 'the dump reads the inventory');
    assert.ok(!/PRIVATE KEY/.test(dump), 'no private key in the clear in PostgreSQL');
    const keyBody = readFileSync(join(a.deploy, 'shared.key'), 'utf8').split('\n')[1];
    assert.ok(!dump.includes(keyBody), 'not even its base64 body');
  });
  test(
    'the host holding the renewal lock is SIGKILLed mid-renewal: its session ends, another host renews',
    {
      skip: !hasPebble() && 'Pebble is not installed (Debian package pebble)',
    },
    async (t) => {
      const pebble = await startPebble();
      t.after(() => pebble.stop());
      const temp = tempDir('mcpki-fleet-kill-');
      t.after(temp.cleanup);
      const url = await pg.createDatabase('fleet_kill');
      const { hosts } = fleet(temp.dir, url, { days: 30, count: 2 });
      const [a, b] = hosts;
      const registered = mcpki(
        [
          '--home',
          a.home,
          'acme',
          'account',
          'register',
          '--directory',
          pebble.directoryUrl,
          '--ca-bundle',
          pebble.caBundlePath,
          '--agree-tos',
          '--name',
          'pebble',
        ],
        { env: a.env },
      );
      assert.equal(registered.status, 0, registered.stderr);
      // host a answers dns-01 through a hook that never finishes (it records its PID): a renewal in the middle
      const stalled = join(a.root, 'stalled.pid');
      const stall = join(a.root, 'dns-hook.sh');
      writeFileSync(stall, `#!/bin/sh\necho $$ > ${stalled}\nexec sleep 600\n`);
      chmodSync(stall, 0o755);
      const declare = (host, key) =>
        writeFileSync(
          host.config,
          `version: 1
certificates:
  - name: ${NAME}
    names: [shared.test]
    issuer: acme:pebble
    key: ${key}
    challenge: ${host === a ? `{ type: dns-01, hook: [${stall}] }` : `{ type: http-01, port: ${pebble.httpPort}, host: 127.0.0.1 }`}
    targets:
      - { type: fullchain, path: deploy/shared.crt }
      - { type: key, path: deploy/shared.key }
    hooks:
      reload: [[${host.hook}]]
`,
        );
      // the current certificate, issued by b and deployed by a
      for (const host of [b, a]) {
        declare(host, 'ec-p256');
        const r = mcpki(['--home', host.home, 'apply', '--config', host.config, '--json'], { env: host.env });
        assert.equal(r.status, 0, r.stderr + r.stdout);
        assert.equal(r.json.items[0].action, host === b ? 'issued' : 'unchanged', host.id);
      }
      const oldSerial = serialOf(join(a.deploy, 'shared.crt'));
      assert.equal(serialOf(join(b.deploy, 'shared.crt')), oldSerial);
      // the fleet moves to P-384 keys: due on both hosts
      for (const host of hosts) declare(host, 'ec-p384');

      const serviceA = serve(a);
      t.after(() => serviceA.child.kill('SIGKILL'));
      await waitFor('host a to be in the middle of its renewal', () => existsSync(stalled), 30_000, serviceA.output);
      const locks = async () =>
        (await rowsOf(pg, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted`, [], 'fleet_kill')).length;
      assert.equal(await locks(), 1, 'host a holds the renewal lock');
      const serviceB = serve(b);
      t.after(() => serviceB.child.kill('SIGKILL'));
      // b sees it due, finds the lock taken, and does not renew while a lives
      await waitFor('host b to check', () => /check\.done/.test(serviceB.output()), 30_000, serviceB.output);
      await sleep(3000);
      const count = async () =>
        (await rowsOf(pg, 'SELECT COUNT(*)::int AS n FROM certificates WHERE name = $1', [NAME], 'fleet_kill'))[0].n;
      assert.equal(await count(), 1, `no renewal while a holds the lock\n${serviceB.output()}`);
      assert.equal(serialOf(join(b.deploy, 'shared.crt')), oldSerial);

      serviceA.child.kill('SIGKILL');
      await serviceA.exited;
      process.kill(Number(readFileSync(stalled, 'utf8')), 'SIGKILL');
      // a's session ended with it: b takes the lock and renews
      await waitFor(
        'host b to renew',
        () => existsSync(join(b.deploy, 'shared.crt')) && serialOf(join(b.deploy, 'shared.crt')) !== oldSerial,
        60_000,
        serviceB.output,
      );
      const newSerial = serialOf(join(b.deploy, 'shared.crt'));
      assert.match(openssl(['x509', '-in', join(b.deploy, 'shared.crt'), '-noout', '-text']), /NIST CURVE: P-384/);
      assert.equal(await count(), 2, 'one renewal');
      assert.equal(serialOf(join(a.deploy, 'shared.crt')), oldSerial, 'a was killed before deploying anything');

      // host a comes back: it deploys b's certificate, it does not renew again
      const again = serve(a);
      t.after(() => again.child.kill('SIGKILL'));
      await waitFor(
        'host a to deploy the renewed certificate',
        () => serialOf(join(a.deploy, 'shared.crt')) === newSerial,
        30_000,
        again.output,
      );
      for (const s of [again, serviceB]) s.child.kill('SIGTERM');
      assert.deepEqual(
        (await Promise.all([again.exited, serviceB.exited])).map((e) => e.code),
        [0, 0],
      );
      assert.equal(await count(), 2, 'still one renewal');
      assert.equal(
        openssl(['x509', '-in', join(a.deploy, 'shared.crt'), '-noout', '-pubkey']),
        openssl(['pkey', '-in', join(a.deploy, 'shared.key'), '-pubout']),
        'a: key and certificate match',
      );
      assert.equal(await locks(), 0, 'no renewal lock left');
    },
  );

  test('PostgreSQL goes away: the service retries with backoff and renews once it is back, without a restart', async (t) => {
    const temp = tempDir('mcpki-fleet-outage-');
    t.after(temp.cleanup);
    const url = await pg.createDatabase('fleet_outage');
    const { hosts, declare } = fleet(temp.dir, url, { days: 1, count: 1 });
    const [a] = hosts;
    // due 20 s after issuance (one day, backdated 5 min, minus 86,080 s): while the database is down
    declare(a, '    renewBefore: 86080s\n');
    const first = mcpki(['--home', a.home, 'apply', '--config', a.config, '--json'], { env: a.env });
    assert.equal(first.status, 0, first.stderr);
    const renewAt = Date.parse(first.json.items[0].nextCheck);
    const oldSerial = serialOf(join(a.deploy, 'shared.crt'));
    const service = serve(a);
    t.after(() => service.child.kill('SIGKILL'));
    await waitFor('the first check', () => /check\.done/.test(service.output()), 30_000, service.output);
    assert.ok(Date.now() < renewAt - 3000, `the database stops before the renewal is due\n${service.output()}`);
    const restarted = pg.restart({ downMs: Math.max(0, renewAt - Date.now()) + 6000 });
    await waitFor(
      'checks that failed on the unreachable inventory',
      () => service.output().match(/"event":"check\.failed".*"code":"STORE_UNAVAILABLE".*"retryAt"/g)?.length >= 2,
      60_000,
      service.output,
    );
    assert.equal(serialOf(join(a.deploy, 'shared.crt')), oldSerial);
    await restarted;
    await waitFor(
      'the renewal after the database returned',
      () => serialOf(join(a.deploy, 'shared.crt')) !== oldSerial,
      60_000,
      service.output,
    );
    service.child.kill('SIGTERM');
    assert.equal((await service.exited).code, 0, service.output());
    const retries = service
      .output()
      .split('\n')
      .filter((line) => line.includes('"STORE_UNAVAILABLE"'))
      .map((line) => JSON.parse(line));
    // backoff: each retry waits longer than the one before
    const waits = retries.map((r) => Date.parse(r.retryAt) - Date.parse(r.at));
    for (let i = 1; i < waits.length; i++) assert.ok(waits[i] > waits[i - 1], `backoff: ${waits}`);
    const rows = await rowsOf(
      pg,
      'SELECT status FROM certificates WHERE name = $1 ORDER BY id',
      [NAME],
      'fleet_outage',
    );
    assert.deepEqual(
      rows.map((r) => r.status),
      ['superseded', 'valid'],
      'renewed once, by the same service process',
    );
  });
  test('a sealed key that was altered, or a host without the CA files, deploys nothing and says why', async (t) => {
    const temp = tempDir('mcpki-fleet-refuse-');
    t.after(temp.cleanup);
    const url = await pg.createDatabase('fleet_refuse');
    const { hosts, declare } = fleet(temp.dir, url, { days: 30 });
    const [a, b, c] = hosts;
    for (const host of hosts) declare(host, '');
    const apply = (host) => mcpki(['--home', host.home, 'apply', '--config', host.config, '--json'], { env: host.env });
    assert.equal(apply(a).json.items[0].action, 'issued');
    const [{ serial, sealed }] = await rowsOf(pg, 'SELECT serial, sealed FROM shared_keys', [], 'fleet_refuse');
    // one bit of the ciphertext flipped: AES-GCM's tag no longer matches
    const bytes = Buffer.from(sealed, 'base64url');
    bytes[20] ^= 1;
    await rowsOf(pg, 'UPDATE shared_keys SET sealed = $1', [bytes.toString('base64url')], 'fleet_refuse');
    const altered = apply(b);
    assert.notEqual(altered.status, 0);
    assert.equal(altered.json.items[0].error.code, 'CA_CORRUPT');
    assert.match(
      altered.json.items[0].error.message,
      new RegExp(`sealed key of certificate ${NAME} \\(${serial}\\) does not open`),
    );
    assert.ok(!existsSync(join(b.deploy, 'shared.key')), 'nothing deployed');
    await rowsOf(pg, 'UPDATE shared_keys SET sealed = $1', [sealed], 'fleet_refuse');
    assert.equal(apply(b).status, 0, 'the row as sealed opens');
    assert.equal(serialOf(join(b.deploy, 'shared.crt')), serialOf(join(a.deploy, 'shared.crt')));
    // a home without ca/: it cannot open the key, and is told what to copy
    rmSync(join(c.home, 'ca'), { recursive: true });
    const noCa = apply(c);
    assert.notEqual(noCa.status, 0);
    assert.equal(noCa.json.items[0].error.code, 'CA_MISSING');
    assert.match(
      noCa.json.items[0].error.message,
      /sealed with the intermediate CA key, which this home does not have/,
    );
    assert.match(noCa.json.items[0].error.hint ?? '', /copy ca\//);
    assert.ok(!existsSync(join(c.deploy, 'shared.key')), 'nothing deployed');
  });
});
