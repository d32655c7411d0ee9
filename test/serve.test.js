// mcpki serve: in-process with an injected clock (renewals happen when the policy says, hooks once per
// renewal), and as a real process (metrics scraped, one per home, SIGHUP with a bad file, SIGTERM exits 0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { createContext, loadConfig } from '../dist/index.js';
import { startService } from '../dist/service/serve.js';
import { BIN, mcpki, run, tempDir, testStore, storeEnv } from './helpers.js';
import { freePorts } from './pebble.js';

function setup() {
  const temp = tempDir('mcpki-serve-');
  const home = join(temp.dir, 'home');
  assert.equal(mcpki(['--home', home, 'init']).status, 0);
  const hook = join(temp.dir, 'reload.sh');
  writeFileSync(hook, `#!/bin/sh\necho "$MCPKI_CERT_NAME $MCPKI_SERIAL" >> ${join(temp.dir, 'reloads.log')}\n`);
  chmodSync(hook, 0o755);
  const config = join(temp.dir, 'mcpki.yaml');
  const certificate = (name, days) => `  - name: ${name}
    names: [${name}.localhost]
    days: ${days}
    targets:
      - { type: fullchain, path: deploy/${name}.crt }
      - { type: key, path: deploy/${name}.key }
    hooks:
      reload: [[${hook}]]
`;
  writeFileSync(
    config,
    `version: 1\ncertificates:\n${certificate('short', 2)}${certificate('week', 7)}${certificate('month', 30)}`,
  );
  const reloads = () =>
    existsSync(join(temp.dir, 'reloads.log'))
      ? readFileSync(join(temp.dir, 'reloads.log'), 'utf8').trim().split('\n')
      : [];
  return { ...temp, home, config, reloads, deploy: join(temp.dir, 'deploy') };
}

function fetchText(url) {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

test('in-process with an injected clock: each certificate renews before expiry, targets rewritten, one reload per renewal', async () => {
  const s = setup();
  let now = new Date();
  const context = createContext({ ...testStore(s.home), home: s.home, now: () => now });
  const service = await startService(context, {
    loadConfig: () => loadConfig(s.config),
    schedule: '0 0 1 1 *',
    scheduler: { runOnStart: false, now: () => now },
  });
  try {
    assert.equal(await service.checkNow(), true);
    assert.deepEqual(
      service.lastResult.items.map((i) => i.action),
      ['issued', 'issued', 'issued'],
    );
    assert.equal(s.reloads().length, 3);
    const renewals = { short: 1, week: 1, month: 1 };
    // walk 40 days in 6-hour steps; at every step no served certificate may be expired
    for (let hours = 6; hours <= 40 * 24; hours += 6) {
      now = new Date(Date.now() + hours * 3_600_000);
      await service.checkNow();
      for (const item of service.lastResult.items) {
        if (item.action === 'renewed') renewals[item.name]++;
        assert.notEqual(item.action, 'failed', JSON.stringify(item.error));
        const enddate = new Date(
          run('openssl', ['x509', '-in', join(s.deploy, `${item.name}.crt`), '-noout', '-enddate'])
            .stdout.trim()
            .replace('notAfter=', ''),
        );
        assert.ok(enddate > now, `${item.name} served while valid at +${hours} h`);
      }
    }
    // counting the first issuance: 2-day certificates renew at half their life (daily), 7-day ones at half
    // (every 3.5 days, seen at the next 6-hour check), 30-day ones with 1/3 left (days 20 and 40)
    assert.ok(renewals.short >= 40 && renewals.short <= 42, `short issued ${renewals.short} times`);
    assert.ok(renewals.week >= 11 && renewals.week <= 13, `week issued ${renewals.week} times`);
    assert.equal(renewals.month, 3);
    assert.equal(s.reloads().length, renewals.short + renewals.week + renewals.month, 'one reload per renewal');
  } finally {
    await service.stop();
    context.close();
    s.cleanup();
  }
});

test('as a process: metrics carry each not-after, a second serve refuses, SIGHUP keeps a good file, SIGTERM exits 0', async () => {
  const s = setup();
  const [port] = await freePorts(1);
  const child = spawn(
    process.execPath,
    [BIN, '--home', s.home, 'serve', '-c', s.config, '--metrics', `127.0.0.1:${port}`],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...storeEnv(['--home', s.home]) } },
  );
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  const waitFor = async (pattern) => {
    for (let i = 0; i < 100 && !pattern.test(log); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(log, pattern);
  };
  try {
    await waitFor(/"event":"check\.done"/);
    const events = log
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.deepEqual(
      events.filter((e) => e.event === 'renewal.done').map((e) => e.name),
      ['short', 'week', 'month'],
    );

    const metrics = await fetchText(`http://127.0.0.1:${port}/metrics`);
    assert.equal(metrics.status, 200);
    for (const line of metrics.body.trim().split('\n'))
      assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{(\w+="(?:[^"\\]|\\.)*",?)*\})? -?[\d.e+]+)$/, line);
    for (const name of ['short', 'week', 'month']) {
      const sample = metrics.body.match(
        new RegExp(`^mcpki_certificate_not_after_seconds\\{name="${name}",[^}]*\\} (\\d+)$`, 'm'),
      );
      assert.ok(sample, `not-after of ${name}`);
      const enddate = Date.parse(
        run('openssl', ['x509', '-in', join(s.deploy, `${name}.crt`), '-noout', '-enddate'])
          .stdout.trim()
          .replace('notAfter=', ''),
      );
      assert.equal(Number(sample[1]) * 1000, enddate);
    }
    assert.equal((await fetchText(`http://127.0.0.1:${port}/healthz`)).status, 200);

    const second = mcpki(['--home', s.home, 'serve', '-c', s.config]);
    assert.equal(second.status, 18);
    assert.match(second.stderr, new RegExp(`already running for this home \\(PID ${child.pid}`));

    const good = readFileSync(s.config, 'utf8');
    writeFileSync(s.config, good + 'bogus: 1\n');
    child.kill('SIGHUP');
    await waitFor(/"event":"config\.invalid"/);
    writeFileSync(s.config, good);
    assert.equal((await fetchText(`http://127.0.0.1:${port}/healthz`)).status, 200, 'still serving with the old file');

    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(log, /"event":"service\.stopped"/);
    assert.ok(!existsSync(join(s.home, 'serve.lock')), 'the lock is released');
  } finally {
    child.kill('SIGKILL');
    await exited;
    s.cleanup();
  }
});
