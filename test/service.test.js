// The standalone pieces of `mcpki serve`: the one-instance lock, the metrics/health endpoint, the scheduler.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tempDir, ROOT } from './helpers.js';
import { acquireServiceLock, readServiceLock } from '../dist/service/lock.js';
import {
  renderMetrics,
  startMetricsServer,
  parseListenAddress,
  METRICS_CONTENT_TYPE,
} from '../dist/service/metrics.js';
import { Scheduler, validateSchedule, defaultSchedule } from '../dist/service/scheduler.js';

const LOCK_URL = pathToFileURL(join(ROOT, 'dist', 'service', 'lock.js')).href;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- lock ---------------------------------------------------------------------------------------------------

/** A child process that takes the lock and holds it until killed; resolves once it holds it. */
function holder(home) {
  const code = `import { acquireServiceLock } from ${JSON.stringify(LOCK_URL)};
    acquireServiceLock(process.argv[1]); console.log('held'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code, home], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('held')) resolve(child);
    });
    child.on('exit', (status) => reject(new Error(`holder exited ${status}: ${out}`)));
  });
}

/** A child process that tries once; resolves { status, stdout, stderr }. */
function tryInChild(home, { startAt = 0, holdMs = 0 } = {}) {
  const code = `import { acquireServiceLock } from ${JSON.stringify(LOCK_URL)};
    const startAt = Number(process.argv[2]); while (Date.now() < startAt);
    try { acquireServiceLock(process.argv[1]); console.log('ok'); setTimeout(() => {}, Number(process.argv[3])); }
    catch (e) { console.log('busy'); console.error(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })); process.exitCode = 3; }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code, home, String(startAt), String(holdMs)]);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout: stdout.trim(), stderr })));
}

function exited(child) {
  return new Promise((resolve) =>
    child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()),
  );
}

/** The PID of a process that has exited. */
async function deadPid() {
  const child = spawn(process.execPath, ['-e', '0']);
  await exited(child);
  return child.pid;
}

describe('service lock', () => {
  test('a second acquire in the same process fails at once, naming the PID; release frees it', (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const lock = acquireServiceLock(dir);
    assert.equal(lock.path, join(dir, 'serve.lock'));
    assert.equal(lock.held(), true);
    const info = JSON.parse(readFileSync(lock.path, 'utf8'));
    assert.equal(info.pid, process.pid);
    assert.equal(info.hostname, hostname());
    assert.ok(!Number.isNaN(Date.parse(info.startedAt)));
    const started = Date.now();
    assert.throws(
      () => acquireServiceLock(dir),
      (error) => {
        assert.equal(error.name, 'McpkiError');
        assert.equal(error.code, 'SERVICE_RUNNING');
        assert.equal(error.exitCode, 18);
        assert.match(error.message, new RegExp(`PID ${process.pid}\\b`));
        assert.match(error.hint, new RegExp(`kill ${process.pid}`));
        return true;
      },
    );
    assert.ok(Date.now() - started < 500, 'fails at once');
    const status = readServiceLock(dir);
    assert.equal(status.pid, process.pid);
    assert.equal(status.state, 'alive');
    assert.equal(lock.release(), true);
    assert.equal(existsSync(lock.path), false);
    assert.equal(readServiceLock(dir), null);
    assert.equal(lock.release(), false, 'release is idempotent');
    const again = acquireServiceLock(dir);
    again.release();
    assert.deepEqual(readdirSync(dir), [], 'no temp or claim files left');
  });

  test('a second process fails while the first holds it; after SIGKILL of the holder the lock is taken over', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const child = await holder(dir);
    t.after(() => child.kill('SIGKILL'));
    assert.throws(() => acquireServiceLock(dir), new RegExp(`PID ${child.pid}\\b`));
    const other = await tryInChild(dir);
    assert.equal(other.stdout, 'busy');
    const error = JSON.parse(other.stderr);
    assert.match(error.message, new RegExp(`PID ${child.pid}\\b`));
    assert.match(error.hint, /kill/);

    child.kill('SIGKILL');
    await exited(child);
    assert.equal(readServiceLock(dir).state, 'dead', 'status sees the stale lock');
    const lock = acquireServiceLock(dir);
    assert.equal(JSON.parse(readFileSync(lock.path, 'utf8')).pid, process.pid);
    assert.equal(lock.release(), true);
  });

  test('release by a non-owner does nothing', (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const first = acquireServiceLock(dir);
    first.release();
    const second = acquireServiceLock(dir);
    assert.equal(first.release(), false, 'an old handle does not remove the new holder’s lock');
    assert.equal(second.held(), true);
    // a lock object whose file was replaced (e.g. taken over after it was judged stale) leaves the file alone
    const foreign = {
      version: 1,
      pid: process.ppid,
      hostname: hostname(),
      startedAt: new Date().toISOString(),
      token: 'someone-else',
    };
    writeFileSync(second.path, JSON.stringify(foreign));
    assert.equal(second.held(), false);
    assert.equal(second.release(), false);
    assert.equal(JSON.parse(readFileSync(second.path, 'utf8')).token, 'someone-else');
  });

  test('stale locks: dead PID, reused PID, previous boot, corrupt file; another host is never judged stale', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'serve.lock');
    const base = { version: 1, hostname: hostname(), startedAt: '2025-01-01T00:00:00.000Z', token: 'old' };
    const takeOver = (content) => {
      writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
      const lock = acquireServiceLock(dir);
      assert.equal(JSON.parse(readFileSync(path, 'utf8')).token, lock.info.token);
      lock.release();
    };
    takeOver({ ...base, pid: await deadPid() });
    if (existsSync('/proc/self/stat')) {
      takeOver({ ...base, pid: process.ppid, processStart: '1' }); // alive PID, but not the process that took it
      takeOver({ ...base, pid: process.ppid, bootId: '00000000-0000-0000-0000-000000000000' });
    }
    takeOver('{"pid": 12');
    takeOver('');
    writeFileSync(path, JSON.stringify({ ...base, pid: 1, hostname: 'elsewhere.example' }));
    assert.throws(
      () => acquireServiceLock(dir),
      (error) => /host elsewhere\.example/.test(error.message) && error.hint.includes(path),
    );
    assert.equal(readServiceLock(dir).state, 'unknown');
  });

  test('50 racers under CPU load, also after claimants were killed inside a takeover: exactly one wins, every round', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const burners = Array.from({ length: Math.max(2, availableParallelism()) }, () =>
      spawn(process.execPath, ['-e', 'for(;;);'], { stdio: 'ignore' }),
    );
    t.after(() => burners.forEach((b) => b.kill('SIGKILL')));
    for (let round = 0; round < 4; round++) {
      const stale = {
        version: 1,
        pid: await deadPid(),
        hostname: hostname(),
        startedAt: new Date().toISOString(),
        token: `stale-${round}`,
      };
      writeFileSync(join(dir, 'serve.lock'), JSON.stringify(stale));
      if (round % 2 === 1) {
        // processes killed between creating their claim and renaming: a chain of dead claims for this stale lock
        const c1 = { pid: await deadPid(), hostname: hostname(), token: `dead-claim-${round}`, for: stale.token };
        const c2 = { pid: await deadPid(), hostname: hostname(), token: `dead-claim2-${round}`, for: stale.token };
        writeFileSync(join(dir, `serve.lock.claim-${stale.token}`), JSON.stringify(c1));
        writeFileSync(join(dir, `serve.lock.claim-${c1.token}`), JSON.stringify(c2));
      }
      const startAt = Date.now() + 3000;
      const racers = Array.from({ length: 50 }, () => raceInChild(dir, startAt));
      const results = await Promise.all(racers.map((r) => r.result));
      racers.forEach((r) => r.child.stdin.end()); // winners hold the lock until every racer has answered
      await Promise.all(racers.map((r) => r.closed));
      const winners = results.filter((r) => r.stdout === 'ok');
      assert.equal(
        winners.length,
        1,
        `round ${round}: ${JSON.stringify(results.filter((r) => r.stdout !== 'busy' || !/PID \d+/.test(r.stderr)))}`,
      );
      for (const loser of results.filter((r) => r.stdout !== 'ok'))
        assert.match(JSON.parse(loser.stderr).message, /PID \d+/);
      rmSync(join(dir, 'serve.lock'));
      assert.deepEqual(readdirSync(dir), [], `round ${round}: no claim or temp files left`);
    }
  });
});

/** A racer that holds the lock (if it gets it) until its stdin closes; result resolves once it has answered. */
function raceInChild(home, startAt) {
  const code = `import { acquireServiceLock } from ${JSON.stringify(LOCK_URL)};
    const startAt = Number(process.argv[2]); while (Date.now() < startAt);
    try { acquireServiceLock(process.argv[1]); console.log('ok'); }
    catch (e) { console.log('busy ' + JSON.stringify({ code: e.code, message: e.message, hint: e.hint })); process.exitCode = 3; }
    process.stdin.resume(); process.stdin.on('end', () => process.exit());`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code, home, String(startAt)]);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const closed = new Promise((resolve) => child.on('close', resolve));
  const result = new Promise((resolve) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      const line = stdout.split('\n')[0];
      if (stdout.includes('\n'))
        resolve({ stdout: line.split(' ')[0], stderr: line.slice(line.indexOf(' ') + 1) || stderr });
    });
    closed.then(() => resolve({ stdout: stdout.trim(), stderr }));
  });
  return { child, result, closed };
}

// --- metrics ------------------------------------------------------------------------------------------------

/** A strict reader of the Prometheus text format 0.0.4; returns { families: Map(name → {help, type, samples}) }. */
function parsePrometheus(text) {
  assert.ok(text.endsWith('\n'), 'ends with a line feed');
  const families = new Map();
  const finished = new Set();
  let current;
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
  const family = (name) => {
    if (current && current !== name) finished.add(current);
    assert.ok(!finished.has(name), `family ${name} is not contiguous`);
    current = name;
    if (!families.has(name)) families.set(name, { samples: [] });
    return families.get(name);
  };
  for (const line of text.slice(0, -1).split('\n')) {
    assert.notEqual(line, '', 'no blank lines');
    let m;
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) {
      const f = family(m[1]);
      assert.equal(f.help, undefined, `one HELP for ${m[1]}`);
      assert.equal(f.samples.length, 0, `HELP before samples of ${m[1]}`);
      assert.ok(!/\\[^\\n]/.test(m[2].replace(/\\\\/g, '')), 'HELP escapes only \\\\ and \\n');
      f.help = m[2];
    } else if ((m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      const f = family(m[1]);
      assert.equal(f.type, undefined, `one TYPE for ${m[1]}`);
      assert.equal(f.samples.length, 0, `TYPE before samples of ${m[1]}`);
      f.type = m[2];
    } else {
      assert.ok(!line.startsWith('#'), `unexpected comment: ${line}`);
      // name, optional {labels}, value
      const nameEnd = line.search(/[{ ]/);
      const name = line.slice(0, nameEnd);
      assert.match(name, NAME);
      let rest = line.slice(nameEnd);
      const labels = {};
      if (rest.startsWith('{')) {
        let i = 1;
        while (rest[i] !== '}') {
          const eq = rest.indexOf('=', i);
          const key = rest.slice(i, eq);
          assert.match(key, LABEL, `label name in ${line}`);
          assert.equal(rest[eq + 1], '"', `quoted label value in ${line}`);
          let j = eq + 2;
          let value = '';
          for (;;) {
            const c = rest[j];
            assert.ok(c !== undefined && c !== '\n', `unterminated label value in ${line}`);
            if (c === '\\') {
              const e = rest[j + 1];
              assert.ok(e === '\\' || e === '"' || e === 'n', `bad escape \\${e} in ${line}`);
              value += e === 'n' ? '\n' : e;
              j += 2;
            } else if (c === '"') {
              j++;
              break;
            } else {
              value += c;
              j++;
            }
          }
          assert.ok(!(key in labels), `duplicate label ${key}`);
          labels[key] = value;
          if (rest[j] === ',') j++;
          i = j;
        }
        rest = rest.slice(i + 1);
      }
      const valueMatch = /^ (\S+)( -?\d+)?$/.exec(rest);
      assert.ok(valueMatch, `value in ${line}`);
      const value = valueMatch[1] === '+Inf' ? Infinity : valueMatch[1] === '-Inf' ? -Infinity : Number(valueMatch[1]);
      assert.ok(valueMatch[1] === 'NaN' || !Number.isNaN(value), `numeric value in ${line}`);
      const f = family(name);
      assert.ok(f.type, `TYPE of ${name} before its samples`);
      assert.ok(f.help, `HELP of ${name} before its samples`);
      const key = JSON.stringify(Object.entries(labels).sort());
      assert.ok(!f.samples.some((s) => s.key === key), `duplicate series ${line}`);
      f.samples.push({ labels, value, key });
    }
  }
  return families;
}

const NOT_AFTER = '2031-05-06T07:08:09.000Z';
const snapshot = () => ({
  version: '0.1.0',
  lastCheck: '2030-01-01T00:00:00.000Z',
  scheduler: { ticks: 5, failed: 1, skipped: 2 },
  certificates: [
    {
      name: 'api',
      issuer: 'acme:prod',
      serial: '0a1b2c',
      notAfter: NOT_AFTER,
      nextRenewal: new Date('2031-04-01T00:00:00Z'),
      renewals: { success: 3, failure: 1 },
      deploys: { success: 2, failure: 0 },
      lastSuccess: Date.parse('2030-12-31T00:00:00Z'),
    },
    { name: 'we"ird\\na\nme', issuer: 'local', serial: 'ff', notAfter: '2030-02-02T00:00:00Z' },
    { name: 'pending', issuer: 'local', serial: '', notAfter: null },
  ],
});

describe('metrics', () => {
  test('renderMetrics writes the Prometheus text format, labels escaped', () => {
    const text = renderMetrics(snapshot());
    const families = parsePrometheus(text);
    const value = (name, labels) => {
      const f = families.get(name);
      assert.ok(f, `family ${name}`);
      const s = f.samples.find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v));
      assert.ok(s, `${name} ${JSON.stringify(labels)}`);
      return s.value;
    };
    assert.equal(families.get('mcpki_certificate_not_after_seconds').type, 'gauge');
    assert.equal(
      value('mcpki_certificate_not_after_seconds', { name: 'api', issuer: 'acme:prod', serial: '0a1b2c' }),
      Date.parse(NOT_AFTER) / 1000,
    );
    assert.equal(
      value('mcpki_certificate_not_after_seconds', { name: 'we"ird\\na\nme', issuer: 'local' }),
      Date.parse('2030-02-02T00:00:00Z') / 1000,
    );
    assert.ok(text.includes('name="we\\"ird\\\\na\\nme"'), 'quote, backslash and line feed escaped');
    assert.equal(
      families.get('mcpki_certificate_not_after_seconds').samples.length,
      2,
      'no sample for a certificate not issued yet',
    );
    assert.equal(
      value('mcpki_certificate_next_renewal_seconds', { name: 'api' }),
      Date.parse('2031-04-01T00:00:00Z') / 1000,
    );
    assert.equal(families.get('mcpki_renewals_total').type, 'counter');
    assert.equal(value('mcpki_renewals_total', { name: 'api', result: 'success' }), 3);
    assert.equal(value('mcpki_renewals_total', { name: 'api', result: 'failure' }), 1);
    assert.equal(value('mcpki_renewals_total', { name: 'pending', result: 'failure' }), 0);
    assert.equal(value('mcpki_deploys_total', { name: 'api', result: 'success' }), 2);
    assert.equal(
      value('mcpki_last_success_timestamp_seconds', { name: 'api' }),
      Date.parse('2030-12-31T00:00:00Z') / 1000,
    );
    assert.equal(value('mcpki_up', {}), 1);
    assert.equal(value('mcpki_build_info', { version: '0.1.0' }), 1);
    assert.equal(value('mcpki_last_check_timestamp_seconds', {}), Date.parse('2030-01-01T00:00:00Z') / 1000);
    assert.equal(value('mcpki_scheduler_skipped_total', {}), 2);
    // duplicates would make Prometheus reject the scrape: the first wins
    const dup = snapshot();
    dup.certificates.push({ ...dup.certificates[0], serial: 'other' });
    parsePrometheus(renderMetrics(dup));
    // an empty inventory still says the service is up
    const empty = parsePrometheus(renderMetrics({ version: '1.2.3', certificates: [] }));
    assert.equal(empty.get('mcpki_up').samples[0].value, 1);
  });

  test('the listen address: loopback only unless allowRemote', () => {
    assert.deepEqual(parseListenAddress('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseListenAddress('[::1]:9464'), { host: '::1', port: 9464 });
    assert.deepEqual(parseListenAddress('localhost:1'), { host: '127.0.0.1', port: 1 });
    assert.deepEqual(parseListenAddress('9464'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseListenAddress('0.0.0.0:9464', true), { host: '0.0.0.0', port: 9464 });
    for (const bad of ['0.0.0.0:9464', '[::]:9464', '192.168.1.2:80', 'example.com:9464', '[::ffff:10.0.0.1]:1']) {
      assert.throws(
        () => parseListenAddress(bad),
        (e) =>
          e.code === 'INVALID_INPUT' && /not a loopback address/.test(e.message) && /127\.0\.0\.1:9464/.test(e.hint),
        bad,
      );
    }
    for (const bad of ['', ':9464', '127.0.0.1', '127.0.0.1:99999', '127.0.0.1:x', '::1:9464']) {
      assert.throws(
        () => parseListenAddress(bad),
        (e) => e.code === 'INVALID_INPUT' && /invalid metrics listen address/.test(e.message),
        bad,
      );
    }
  });

  test('the server: /metrics, /healthz, 404 otherwise; refuses 0.0.0.0 by default; close frees the port', async (t) => {
    await assert.rejects(
      startMetricsServer({ listen: '0.0.0.0:9464', snapshot }),
      (e) => e.code === 'INVALID_INPUT' && /loopback/.test(e.message),
    );
    const server = await startMetricsServer({ listen: '127.0.0.1:0', snapshot });
    t.after(() => server.close());
    assert.match(server.address, /^127\.0\.0\.1:\d+$/);
    assert.ok(server.port > 0);

    const metrics = await get(server.port, '/metrics');
    assert.equal(metrics.status, 200);
    assert.equal(metrics.headers['content-type'], METRICS_CONTENT_TYPE);
    assert.match(metrics.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    const families = parsePrometheus(metrics.body);
    assert.equal(families.get('mcpki_certificate_not_after_seconds').samples[0].value, Date.parse(NOT_AFTER) / 1000);

    const health = await get(server.port, '/healthz');
    assert.equal(health.status, 200);
    assert.match(health.headers['content-type'], /application\/json/);
    const body = JSON.parse(health.body);
    assert.equal(body.status, 'ok');
    assert.equal(body.lastCheck, '2030-01-01T00:00:00.000Z');

    assert.equal((await get(server.port, '/')).status, 404);
    assert.equal((await get(server.port, '/metricsx')).status, 404);
    assert.equal((await get(server.port, '/metrics?x=1')).status, 200);
    assert.equal((await get(server.port, '/metrics', 'POST')).status, 405);

    // a second server on the same port fails with a clear error
    await assert.rejects(
      startMetricsServer({ listen: `127.0.0.1:${server.port}`, snapshot }),
      (e) => e.code === 'LISTEN_FAILED' && e.exitCode === 18 && /in use/.test(e.message),
    );

    const port = server.port;
    await get(port, '/metrics', 'GET', true); // leaves a keep-alive connection open: close must not wait for it
    await server.close();
    await server.close(); // idempotent
    await new Promise((resolve, reject) => {
      const probe = createServer();
      probe.once('error', reject);
      probe.listen(port, '127.0.0.1', () => probe.close(resolve));
    });
  });

  test('healthz reports a stale check, and a failing snapshot is a 5xx, not a crash', async (t) => {
    let fail = false;
    const server = await startMetricsServer({
      listen: '127.0.0.1:0',
      maxCheckAgeSeconds: 3600,
      now: () => new Date('2030-01-01T02:00:00Z'),
      snapshot: () => {
        if (fail) throw new Error('inventory busy');
        return snapshot();
      },
    });
    t.after(() => server.close());
    const stale = await get(server.port, '/healthz');
    assert.equal(stale.status, 503);
    assert.equal(JSON.parse(stale.body).status, 'stale');
    fail = true;
    assert.equal((await get(server.port, '/metrics')).status, 500);
    assert.equal((await get(server.port, '/healthz')).status, 503);
    fail = false;
    assert.equal((await get(server.port, '/metrics')).status, 200);
  });
});

function get(port, path, method = 'GET', keepAlive = false) {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method, agent: keepAlive ? new Agent({ keepAlive: true }) : false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

// --- scheduler ----------------------------------------------------------------------------------------------

describe('scheduler', () => {
  test('invalid cron expressions fail with a hint showing an example', () => {
    for (const bad of ['', '* * *', '* * * * * * *', '61 * * * *', 'every hour', '*/0 * * * *', '0 0 30 2 *']) {
      assert.throws(
        () => validateSchedule(bad),
        (e) =>
          e.name === 'McpkiError' &&
          e.code === 'INVALID_INPUT' &&
          e.message.includes('schedule') &&
          /e\.g\. --schedule "17 \* \* \* \*"/.test(e.hint),
        bad,
      );
      assert.throws(
        () => new Scheduler({ schedule: bad, tick: () => {} }),
        (e) => e.code === 'INVALID_INPUT',
        bad,
      );
    }
    assert.throws(
      () => validateSchedule('* * * * *', 'Not/AZone'),
      (e) => e.code === 'INVALID_INPUT' && /time zone/.test(e.message),
    );
    validateSchedule('*/15 * * * *');
    validateSchedule('30 */5 * * * *');
    validateSchedule('@hourly');
  });

  test('the default schedule is hourly at a minute drawn once', () => {
    assert.equal(
      defaultSchedule(() => 0),
      '0 * * * *',
    );
    assert.equal(
      defaultSchedule(() => 0.999999),
      '59 * * * *',
    );
    const s = new Scheduler({ tick: () => {}, random: () => 0.5 });
    assert.equal(s.schedule, '30 * * * *');
    const minutes = new Set(Array.from({ length: 50 }, () => new Scheduler({ tick: () => {} }).schedule));
    assert.ok(minutes.size > 1, 'jitter');
    for (const m of minutes) assert.match(m, /^([0-9]|[1-5][0-9]) \* \* \* \*$/);
  });

  test('per-second schedule: ticks happen', async (t) => {
    const reasons = [];
    const scheduler = new Scheduler({
      schedule: '* * * * * *',
      runOnStart: false,
      tick: ({ reason }) => void reasons.push(reason),
    });
    t.after(() => scheduler.stop());
    scheduler.start();
    await sleep(2300);
    await scheduler.stop();
    assert.ok(reasons.length >= 2 && reasons.length <= 3, `${reasons.length} ticks`);
    assert.ok(reasons.every((r) => r === 'cron'));
    const count = reasons.length;
    await sleep(1200);
    assert.equal(reasons.length, count, 'no tick after stop');
    assert.equal(scheduler.stats().nextRunAt, null);
  });

  test('a slow tick: overlapping ticks are skipped and counted, never two at once; stop waits for it', async (t) => {
    let active = 0;
    let maxActive = 0;
    let finished = 0;
    const skips = [];
    const scheduler = new Scheduler({
      schedule: '* * * * * *',
      runOnStart: true,
      onSkip: (context) => skips.push(context.reason),
      tick: async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await sleep(2600);
        active--;
        finished++;
      },
    });
    t.after(() => scheduler.stop());
    scheduler.start();
    await sleep(2200);
    assert.equal(scheduler.running, true);
    assert.ok(scheduler.stats().skipped >= 1, `skipped ${scheduler.stats().skipped}`);
    assert.ok(skips.every((r) => r === 'cron'));
    assert.equal(await scheduler.runNow(), false, 'a manual run while one is in flight is skipped too');
    const stopped = Date.now();
    await scheduler.stop();
    assert.ok(Date.now() - stopped >= 200, 'stop waited for the tick in flight');
    assert.equal(finished, 1);
    assert.equal(active, 0);
    assert.equal(maxActive, 1);
    assert.equal(scheduler.running, false);
    const stats = scheduler.stats();
    assert.equal(stats.ticks, 1);
    assert.ok(stats.skipped >= 2);
    assert.equal(await scheduler.runNow(), false, 'nothing runs after stop');
  });

  test('wakes up at the nextWakeUp a tick returns when it is earlier than the cron time', async (t) => {
    const ticks = [];
    const started = Date.now();
    const scheduler = new Scheduler({
      schedule: '0 0 1 1 *', // once a year
      minWakeUpDelayMs: 50,
      tick: ({ reason, scheduledFor }) => {
        ticks.push({ reason, at: Date.now(), scheduledFor });
        if (ticks.length === 1) return { nextWakeUp: new Date(Date.now() + 400) };
        if (ticks.length === 2) return { nextWakeUp: new Date(Date.now() - 5000).toISOString() }; // in the past: soon, not a busy loop
        return {};
      },
    });
    t.after(() => scheduler.stop());
    scheduler.start();
    await sleep(800);
    await scheduler.stop();
    assert.deepEqual(
      ticks.map((x) => x.reason),
      ['start', 'wake-up', 'wake-up'],
    );
    assert.ok(ticks[1].at - started >= 380 && ticks[1].at - started < 700, `woke after ${ticks[1].at - started} ms`);
    assert.ok(ticks[2].at - ticks[1].at >= 45, 'a past wake-up is clamped to minWakeUpDelayMs');
    assert.equal(scheduler.stats().failed, 0);
  });

  test('fake clock and timers: the earlier of cron and wake-up wins; failures are counted and do not stop it', async () => {
    let now = Date.parse('2030-06-01T10:00:00Z');
    const timers = [];
    const fake = {
      setTimeout: (callback, ms) => {
        const timer = { callback, at: now + ms, ms };
        timers.push(timer);
        return timer;
      },
      clearTimeout: (timer) => {
        const i = timers.indexOf(timer);
        if (i >= 0) timers.splice(i, 1);
      },
    };
    const fire = async () => {
      assert.equal(timers.length, 1, 'one timer at a time');
      const timer = timers.shift();
      now = timer.at;
      timer.callback();
      await sleep(5); // let the tick settle
      return timer;
    };
    const log = [];
    let answer = {};
    const errors = [];
    const scheduler = new Scheduler({
      schedule: '17 * * * *',
      timeZone: 'UTC',
      runOnStart: false,
      maxTimerMs: 2 ** 31 - 1,
      now: () => new Date(now),
      timers: fake,
      onError: (e) => errors.push(e.message),
      tick: ({ reason, scheduledFor }) => {
        log.push([reason, new Date(now).toISOString(), scheduledFor.toISOString()]);
        if (answer instanceof Error) throw answer;
        return answer;
      },
    });
    scheduler.start();
    assert.equal(scheduler.stats().nextRunAt.toISOString(), '2030-06-01T10:17:00.000Z');
    const next = () => [scheduler.stats().nextReason, scheduler.stats().nextRunAt.toISOString()];

    answer = { nextWakeUp: '2030-06-01T10:20:30Z' }; // earlier than the next cron time, 11:17
    let timer = await fire();
    assert.equal(timer.ms, 17 * 60_000);
    assert.deepEqual(log.at(-1), ['cron', '2030-06-01T10:17:00.000Z', '2030-06-01T10:17:00.000Z']);
    assert.deepEqual(next(), ['wake-up', '2030-06-01T10:20:30.000Z']);

    answer = {};
    timer = await fire();
    assert.equal(timer.ms, 3.5 * 60_000);
    assert.deepEqual(log.at(-1), ['wake-up', '2030-06-01T10:20:30.000Z', '2030-06-01T10:20:30.000Z']);
    assert.deepEqual(next(), ['cron', '2030-06-01T11:17:00.000Z']);

    answer = { nextWakeUp: new Date('2030-06-01T11:10:00Z') }; // already past: now + minWakeUpDelayMs, no busy loop
    await fire();
    assert.deepEqual(next(), ['wake-up', '2030-06-01T11:17:01.000Z']);

    answer = { nextWakeUp: '2030-06-01T13:00:00Z' }; // later than the next cron time: cron first
    await fire();
    assert.equal(log.at(-1)[0], 'wake-up');
    assert.deepEqual(next(), ['cron', '2030-06-01T12:17:00.000Z']);

    answer = new Error('inventory locked');
    await fire();
    assert.deepEqual(errors, ['inventory locked']);
    assert.equal(scheduler.stats().failed, 1);
    assert.equal(scheduler.stats().lastError, 'inventory locked');
    assert.deepEqual(next(), ['cron', '2030-06-01T13:17:00.000Z'], 'after a failure, the cron schedule');

    answer = {};
    await fire();
    assert.deepEqual(log.at(-1), ['cron', '2030-06-01T13:17:00.000Z', '2030-06-01T13:17:00.000Z']);
    assert.equal(scheduler.stats().ticks, 6);
    assert.equal(scheduler.stats().lastError, null);
    await scheduler.stop();
    assert.equal(timers.length, 0, 'stop clears the timer');
  });

  test('timers are capped, and a timer that fires early per the clock re-arms instead of ticking', async () => {
    let now = Date.parse('2030-06-01T10:00:00Z');
    const timers = [];
    const fake = {
      setTimeout: (cb, ms) => (timers.push({ cb, ms }), timers.at(-1)),
      clearTimeout: (h) => timers.includes(h) && timers.splice(timers.indexOf(h), 1),
    };
    let ticks = 0;
    const scheduler = new Scheduler({
      schedule: '0 12 * * *',
      timeZone: 'UTC',
      runOnStart: false,
      now: () => new Date(now),
      timers: fake,
      tick: () => void ticks++,
    });
    scheduler.start();
    assert.equal(timers.at(-1).ms, 300_000, 'at most 5 minutes');
    now += 300_000;
    timers.shift().cb();
    assert.equal(ticks, 0);
    assert.equal(timers.length, 1);
    now = Date.parse('2030-06-01T12:00:00Z'); // e.g. the machine slept: the wall clock jumped
    timers.shift().cb();
    await sleep(1);
    assert.equal(ticks, 1);
    await scheduler.stop();
    assert.equal(timers.length, 0);
  });
});
