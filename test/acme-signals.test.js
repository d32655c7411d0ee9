// An ACME order that fails or is interrupted, against a real ACME server (Pebble): every cleanup hook runs,
// the order's pending authorizations are deactivated at the CA (RFC 8555 §7.5.2, fetched back from Pebble to
// check), SIGINT/SIGTERM exit 130/143, and what can be checked locally is checked before the order exists.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Agent } from 'node:https';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { BIN, mcpki, mcpkiAsync, tempDir } from './helpers.js';
import { freePorts, hasPebble, startPebble } from './pebble.js';

const skip = !hasPebble() && 'Pebble is not installed (apt-get install pebble)';
const require = createRequire(import.meta.url);

/**
 * A dns-01 hook that logs "ACTION DOMAIN PID" to LOG, then sets/clears the TXT record through challtestsrv.
 * `failOn`: present of this domain exits 1; `sleepOn`: present of this domain sleeps 60 s first.
 */
function writeHook(dir, { failOn = '', sleepOn = '' } = {}) {
  const path = join(dir, `hook-${Math.random().toString(36).slice(2)}.sh`);
  const log = `${path}.log`;
  writeFileSync(
    path,
    `#!/bin/sh
action="$1"; domain="$2"; fqdn="$3"; value="$4"
echo "$action $domain $$" >> '${log}'
if [ "$action" = present ] && [ "$domain" = '${failOn}' ]; then echo "no zone for $domain" >&2; exit 1; fi
if [ "$action" = present ] && [ "$domain" = '${sleepOn}' ]; then sleep 60; fi
if [ "$action" = present ]; then
  curl -sf -X POST -d "{\\"host\\":\\"$fqdn\\",\\"value\\":\\"$value\\"}" "$CHALLTESTSRV/set-txt" >/dev/null
else
  curl -sf -X POST -d "{\\"host\\":\\"$fqdn\\"}" "$CHALLTESTSRV/clear-txt" >/dev/null
fi
`,
  );
  chmodSync(path, 0o755);
  const calls = () =>
    existsSync(log)
      ? readFileSync(log, 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(' '))
      : [];
  return { path, calls };
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what, check, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('failed and interrupted ACME orders', { skip }, () => {
  let pebble;
  let work;
  let home;
  let status;
  const env = () => ({ CHALLTESTSRV: pebble.challtestsrvUrl });

  before(async () => {
    pebble = await startPebble();
    work = tempDir('mcpki-acme-signals-');
    home = join(work.dir, 'home');
    const registered = mcpki([
      '--home',
      home,
      '--json',
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
    ]);
    assert.equal(registered.status, 0, registered.stderr + registered.stdout);
    const account = registered.json.account;
    // an independent ACME client, logged in as the same account, reads the authorizations back from Pebble
    const acme = require('acme-client');
    acme.axios.defaults.httpsAgent = new Agent({ ca: readFileSync(pebble.caBundlePath) });
    const client = new acme.Client({
      directoryUrl: pebble.directoryUrl,
      accountKey: readFileSync(account.keyPath),
      accountUrl: account.accountUrl,
    });
    status = async (orderUrl) => {
      const order = await client.getOrder({ url: orderUrl });
      const authorizations = await client.getAuthorizations(order);
      return authorizations.map((a) => `${a.wildcard ? '*.' : ''}${a.identifier.value}=${a.status}`).sort();
    };
  });
  after(async () => {
    await pebble?.stop();
    work?.cleanup();
  });

  /** The acme.issue.failed events of NAME (newest first). */
  function failures(name) {
    const events = mcpki(['--home', home, '--json', 'events', '--type', 'acme.issue.failed', '--name', name]);
    assert.equal(events.status, 0, events.stderr);
    return events.json.events;
  }

  test('a failing present hook: every presented record is cleaned up and the pending authorizations are deactivated', async () => {
    const hook = writeHook(work.dir, { failOn: 'b.fail.test' });
    const result = await mcpkiAsync(
      [
        '--home',
        home,
        'acme',
        'issue',
        'fail',
        '-d',
        'a.fail.test',
        '-d',
        'b.fail.test',
        '-d',
        'c.fail.test',
        '--challenge',
        'dns-01',
        '--dns-hook',
        hook.path,
      ],
      { env: env() },
    );
    assert.equal(result.status, 13, result.stderr);
    assert.match(
      result.stderr,
      /dns-01 present hook for b\.fail\.test failed \(exit code 1\).*no zone for b\.fail\.test/,
    );
    // the CA lists the authorizations in its own order: presents run up to the failing one
    const calls = hook.calls();
    const presented = calls
      .filter(([action]) => action === 'present')
      .map(([, domain]) => domain)
      .sort();
    const cleaned = calls
      .filter(([action]) => action === 'cleanup')
      .map(([, domain]) => domain)
      .sort();
    assert.ok(presented.includes('b.fail.test'));
    assert.deepEqual(cleaned, presented, 'every presented record is removed, the failed one too');
    const [event] = failures('fail');
    assert.ok(event, 'the failure is on record');
    assert.equal(event.detail.code, 'CHALLENGE_FAILED');
    assert.match(event.detail.order, /^https:\/\/127\.0\.0\.1:\d+\//);
    assert.equal(event.detail.deactivated.length, 3);
    assert.deepEqual(await status(event.detail.order), [
      'a.fail.test=deactivated',
      'b.fail.test=deactivated',
      'c.fail.test=deactivated',
    ]);
  });

  test('a challenge the CA rejects: the other pending authorizations are deactivated', async () => {
    // http-01 on a port Pebble does not connect to: the responder runs, the validation fails
    const [port] = await freePorts(1);
    const result = await mcpkiAsync([
      '--home',
      home,
      'acme',
      'issue',
      'wrongport',
      '-d',
      'x.wrongport.test',
      '-d',
      'y.wrongport.test',
      '--http-port',
      String(port),
      '--http-host',
      '127.0.0.1',
    ]);
    assert.equal(result.status, 13, result.stderr);
    const error = result.stderr.split('\n').find((l) => l.startsWith('error:'));
    assert.equal(error.match(/challenge for/g)?.length, 1, `the prefix is said once: ${error}`);
    assert.match(
      error,
      new RegExp(`port ${pebble.httpPort} of [xy]\\.wrongport\\.test was not reachable`),
      'names the port the CA used',
    );
    assert.match(error, new RegExp(`the responder here listened on port ${port}`));
    const [event] = failures('wrongport');
    const states = await status(event.detail.order);
    assert.equal(states.length, 2);
    assert.ok(
      states.every((s) => /=(deactivated|invalid)$/.test(s)),
      states.join(', '),
    );
    assert.ok(!states.some((s) => s.endsWith('=pending')), 'nothing left pending');
  });

  for (const [signal, code, where] of [
    ['SIGTERM', 143, 'present'],
    ['SIGINT', 130, 'propagation'],
  ]) {
    test(`${signal} during the ${where === 'present' ? 'present hook' : 'propagation wait'}: the hook is stopped, every cleanup runs, the authorizations are deactivated, exit ${code}`, async () => {
      const name = `sig${code}`;
      const domains = [`a.${name}.test`, `b.${name}.test`];
      const hook = writeHook(work.dir, where === 'present' ? { sleepOn: domains[1] } : {});
      const args = [
        '--home',
        home,
        'acme',
        'issue',
        name,
        ...domains.flatMap((d) => ['-d', d]),
        '--challenge',
        'dns-01',
        '--dns-hook',
        hook.path,
      ];
      if (where === 'propagation') args.push('--dns-propagation-seconds', '60');
      const child = spawn(process.execPath, [BIN, ...args], {
        env: { ...process.env, NO_COLOR: '1', ...env() },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise((resolve) => child.on('exit', (status, sig) => resolve({ status, sig })));
      // interrupt once the hook runs for the domain it sleeps on, or (the wait) once any present ran
      await until('the present hook', () =>
        hook
          .calls()
          .some(([action, domain]) => action === 'present' && (where === 'propagation' || domain === domains[1])),
      );
      await new Promise((r) => setTimeout(r, 300));
      const started = Date.now();
      child.kill(signal);
      const { status: exitStatus, sig } = await exited;
      assert.equal(sig, null, `mcpki was killed by ${sig} instead of cleaning up`);
      assert.equal(exitStatus, code, stderr);
      assert.ok(Date.now() - started < 15_000, 'stopped without waiting for the hook or the wait to end');
      assert.match(stderr, new RegExp(`interrupted by ${signal}`));
      const calls = hook.calls();
      const presented = calls
        .filter(([action]) => action === 'present')
        .map(([, domain]) => domain)
        .sort();
      const cleaned = calls
        .filter(([action]) => action === 'cleanup')
        .map(([, domain]) => domain)
        .sort();
      assert.deepEqual(cleaned, presented, 'a cleanup for every present');
      assert.ok(presented.length >= 1);
      for (const [action, , pid] of calls)
        if (action === 'present') assert.equal(alive(Number(pid)), false, 'no hook left running');
      const [event] = failures(name);
      assert.equal(event.detail.interrupted, signal);
      assert.deepEqual(await status(event.detail.order), domains.map((d) => `${d}=deactivated`).sort());
    });
  }

  test('SIGTERM during apply (dns-01 present hook): cleanup runs, authorizations deactivated, no failure counted, exit 143', async () => {
    const hook = writeHook(work.dir, { sleepOn: 'apply.sigterm.test' });
    const config = join(work.dir, 'apply-signal.yaml');
    writeFileSync(
      config,
      `version: 1
certificates:
  - name: applysig
    issuer: acme:pebble
    names: [apply.sigterm.test]
    challenge: { type: dns-01, hook: [${JSON.stringify(hook.path)}] }
`,
    );
    const child = spawn(process.execPath, [BIN, '--home', home, 'apply', '-c', config], {
      env: { ...process.env, NO_COLOR: '1', ...env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise((resolve) => child.on('exit', (status, sig) => resolve({ status, sig })));
    await until('the present hook', () => hook.calls().some(([action]) => action === 'present'));
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGTERM');
    const { status: exitStatus, sig } = await exited;
    assert.equal(sig, null, 'mcpki was killed instead of cleaning up');
    assert.equal(exitStatus, 143, stderr);
    assert.deepEqual(
      hook.calls().map(([action, domain]) => `${action} ${domain}`),
      ['present apply.sigterm.test', 'cleanup apply.sigterm.test'],
    );
    const [event] = failures('applysig');
    assert.equal(event.detail.interrupted, 'SIGTERM');
    assert.deepEqual(await status(event.detail.order), ['apply.sigterm.test=deactivated']);
    const plan = mcpki(['--home', home, '--json', 'renew', '--dry-run', '-c', config]);
    assert.equal(plan.status, 0, plan.stderr);
    assert.equal(plan.json.plan[0].failures, 0, 'an interrupt is not a failure: no backoff');
    assert.equal(plan.json.plan[0].due, true);
  });

  test('a busy http-01 port is a local error before any order (not exit 13)', async () => {
    const blocker = net.createServer();
    await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = blocker.address().port;
    try {
      const result = await mcpkiAsync([
        '--home',
        home,
        '--json',
        'acme',
        'issue',
        'busy',
        '-d',
        'busy.test',
        '--http-port',
        String(port),
        '--http-host',
        '127.0.0.1',
      ]);
      assert.equal(result.status, 18, result.stdout);
      const { error } = JSON.parse(result.stdout);
      assert.equal(error.code, 'LISTEN_FAILED');
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port} is already in use`));
      assert.doesNotMatch(error.message, /CA refused/);
      assert.deepEqual(failures('busy'), [], 'no order was placed');
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  test('a missing webroot or dns hook is refused before any order', async () => {
    const missingWebroot = await mcpkiAsync([
      '--home',
      home,
      'acme',
      'issue',
      'noroot',
      '-d',
      'noroot.test',
      '--webroot',
      join(work.dir, 'no-such-webroot'),
    ]);
    assert.equal(missingWebroot.status, 3, missingWebroot.stderr);
    assert.match(missingWebroot.stderr, /webroot .*no-such-webroot is not a folder/);
    const missingHook = await mcpkiAsync([
      '--home',
      home,
      'acme',
      'issue',
      'nohook',
      '-d',
      'nohook.test',
      '--challenge',
      'dns-01',
      '--dns-hook',
      join(work.dir, 'no-such-hook'),
    ]);
    assert.equal(missingHook.status, 3, missingHook.stderr);
    assert.match(missingHook.stderr, /the dns-01 hook .*no-such-hook does not exist/);
    assert.deepEqual(failures('noroot'), []);
    assert.deepEqual(failures('nohook'), [], 'no order was placed');
  });
});

describe('registration messages against a CA that requires EAB', { skip }, () => {
  const HMAC = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W';
  let pebble;
  let work;
  before(async () => {
    pebble = await startPebble({ eab: { 'kid-1': HMAC } });
    work = tempDir('mcpki-acme-eab-');
  });
  after(async () => {
    await pebble?.stop();
    work?.cleanup();
  });

  test('without --agree-tos the hint prints the terms-of-service link of the directory', async () => {
    const directory = await new Promise((resolve, reject) => {
      const request = require('node:https').get(
        pebble.directoryUrl,
        { ca: readFileSync(pebble.caBundlePath) },
        (response) => {
          let body = '';
          response.on('data', (d) => (body += d));
          response.on('end', () => resolve(JSON.parse(body)));
        },
      );
      request.on('error', reject);
    });
    const link = directory.meta?.termsOfService;
    assert.equal(typeof link, 'string', 'Pebble publishes a terms-of-service link');
    const home = join(work.dir, 'tos');
    const result = mcpki([
      '--home',
      home,
      '--json',
      'acme',
      'account',
      'register',
      '--directory',
      pebble.directoryUrl,
      '--ca-bundle',
      pebble.caBundlePath,
    ]);
    assert.equal(result.status, 3, result.stdout);
    const { error } = result.json;
    assert.ok(error.hint.includes(link), `the hint gives ${link}: ${error.hint}`);
    assert.match(error.hint, /--agree-tos/);
    assert.equal(existsSync(join(home, 'mcpki.db')), false, 'nothing was recorded');
  });

  test('a wrong EAB HMAC key: the hint is about the EAB key, not about revocation', async () => {
    const home = join(work.dir, 'eab');
    const hmacFile = join(work.dir, 'wrong-hmac');
    writeFileSync(hmacFile, `${'A'.repeat(64)}\n`, { mode: 0o600 });
    const result = mcpki([
      '--home',
      home,
      '--json',
      'acme',
      'account',
      'register',
      '--directory',
      pebble.directoryUrl,
      '--ca-bundle',
      pebble.caBundlePath,
      '--agree-tos',
      '--eab-kid',
      'kid-1',
      '--eab-hmac-file',
      hmacFile,
    ]);
    assert.equal(result.status, 13, result.stdout);
    const { error } = result.json;
    assert.match(error.message, /External Account Binding/);
    assert.match(error.hint, /--eab-kid/);
    assert.match(error.hint, /HMAC/);
    assert.doesNotMatch(error.hint, /revoke/);
    // and the right key works
    writeFileSync(hmacFile, `${HMAC}\n`, { mode: 0o600 });
    const good = mcpki([
      '--home',
      home,
      '--json',
      'acme',
      'account',
      'register',
      '--directory',
      pebble.directoryUrl,
      '--ca-bundle',
      pebble.caBundlePath,
      '--agree-tos',
      '--eab-kid',
      'kid-1',
      '--eab-hmac-file',
      hmacFile,
    ]);
    assert.equal(good.status, 0, good.stdout + good.stderr);
  });

  test('a non-PEM --ca-bundle is refused at once, not reported later as an untrusted server', async () => {
    const bundle = join(work.dir, 'not-pem.txt');
    writeFileSync(bundle, 'just text\n');
    const result = mcpki([
      '--home',
      join(work.dir, 'bundle'),
      '--json',
      'acme',
      'account',
      'register',
      '--directory',
      pebble.directoryUrl,
      '--ca-bundle',
      bundle,
      '--agree-tos',
    ]);
    assert.equal(result.status, 3, result.stdout);
    assert.equal(result.json.error.code, 'INVALID_INPUT');
    assert.match(result.json.error.message, /holds no PEM certificate/);
  });
});
