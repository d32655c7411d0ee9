// Test harness: a real ACME server (Let's Encrypt's Pebble, Debian package `pebble`) on loopback.
//
//   const pebble = await startPebble({ eab: { 'kid-1': hmacBase64url }, nonceReject: 0 });
//   ... ACME client against pebble.directoryUrl, trusting pebble.caBundlePath ...
//   await pebble.stop();
//
// What it starts (all on 127.0.0.1, on free ports chosen at run time):
// - `pebble-challtestsrv` as a mock DNS server only: its own HTTP-01/HTTPS/TLS-ALPN-01 responders are turned off
//   (by default they would bind :5002/:5003/:5001), it answers every A query with 127.0.0.1 and no AAAA
//   (`-defaultIPv6 ""`), and serves the TXT records set through setTxt()/clearTxt() (its management API).
// - `pebble` with its own config file, its HTTPS certificate issued by a fresh mcpki local CA (so
//   `caBundlePath`, that CA's root, is what an ACME client must trust), `-dnsserver` = challtestsrv, so every
//   name resolves to 127.0.0.1; http-01 and tls-alpn-01 validations connect to 127.0.0.1:httpPort and
//   127.0.0.1:tlsAlpnPort, where the test's own responders listen.
// Environment given to pebble (any PEBBLE_* variable of the calling environment is dropped):
// - PEBBLE_VA_NOSLEEP=1 — no random 0–15 s sleep before each validation;
// - PEBBLE_WFE_NONCEREJECT=options.nonceReject (default 0; Pebble's own default is 5 %);
// - PEBBLE_AUTHZREUSE=options.authzReuse (default 0; Pebble's own default is 50 %): Pebble would otherwise
//   reuse a valid authorization of the same account in a new order half of the time, so the next order would
//   skip the challenge at random — a test of a failing challenge could then pass, and the number of
//   challenges per order (and so the timings) would be random. Even at 0 Pebble 2.4 still reuses one time in
//   100 (it tests `rand.Intn(100) > percent`), so a test that needs a challenge to run again for a name must
//   use an account that has never validated that name;
// - options.env last (e.g. { PEBBLE_CHAIN_LENGTH: '2' }).
// Pebble drops all state and generates a new issuing root at every start: use rootPem().
// stop() kills both (SIGTERM, then SIGKILL), waits for them to exit, removes the temp dir; a process 'exit'
// hook and SIGINT/SIGTERM/SIGHUP hooks kill whatever is left (and remove its temp dir) as a last resort.
import { spawn } from 'node:child_process';
import { writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import dgram from 'node:dgram';
import http from 'node:http';
import https from 'node:https';
import dns from 'node:dns';
import { tempDir, mcpki } from './helpers.js';

export const PEBBLE_BIN = process.env.PEBBLE_BIN ?? '/usr/bin/pebble';
export const CHALLTESTSRV_BIN = process.env.PEBBLE_CHALLTESTSRV_BIN ?? '/usr/bin/pebble-challtestsrv';

/** True when both Pebble binaries are installed (tests can `skip` otherwise). */
export function hasPebble() {
  return existsSync(PEBBLE_BIN) && existsSync(CHALLTESTSRV_BIN);
}

// ---------------------------------------------------------------------------------------------------------
// Last-resort cleanup: every child still running when this process ends is killed.

const live = new Set();
const liveDirs = new Set();
let hooksInstalled = false;

function killAllNow() {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  liveDirs.clear();
}

function installHooks() {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    const onSignal = () => {
      killAllNow();
      process.removeListener(signal, onSignal);
      // Keep the default behaviour (terminate by that signal) unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Ports

function listenTcp(port) {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(server));
  });
}

function closeServer(server) {
  return new Promise((resolve) => server.close(() => resolve()));
}

function bindUdp(port) {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.unref();
    socket.once('error', (error) => {
      socket.close();
      reject(error);
    });
    socket.bind({ address: '127.0.0.1', port, exclusive: true }, () => resolve(socket));
  });
}

/**
 * `count` distinct free TCP ports on 127.0.0.1 (all held open together, then released). With `udp`, the first
 * port is also free for UDP on 127.0.0.1 (for the DNS server, which binds both).
 */
export async function freePorts(count, { udp = false } = {}) {
  for (let attempt = 0; attempt < 20; attempt++) {
    const servers = [];
    let udpSocket;
    try {
      for (let i = 0; i < count; i++) servers.push(await listenTcp(0));
      const ports = servers.map((s) => s.address().port);
      if (udp) udpSocket = await bindUdp(ports[0]);
      return ports;
    } catch {
      // UDP port taken: try another set
    } finally {
      await Promise.all(servers.map(closeServer));
      if (udpSocket) await new Promise((resolve) => udpSocket.close(() => resolve()));
    }
  }
  throw new Error('pebble harness: could not find free loopback ports');
}

/** True when `port` can be bound on 127.0.0.1 (TCP, and UDP too with { udp: true }). */
export async function portIsFree(port, { udp = false } = {}) {
  try {
    const server = await listenTcp(port);
    await closeServer(server);
    if (udp) {
      const socket = await bindUdp(port);
      await new Promise((resolve) => socket.close(() => resolve()));
    }
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Processes

const TAIL_LINES = 40;

function startProcess(name, command, args, env) {
  installHooks();
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let partial = '';
  const onData = (chunk) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop();
    for (const line of parts) {
      lines.push(line);
      if (lines.length > 400) lines.splice(0, lines.length - 400);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const proc = {
    name,
    child,
    exited: false,
    exitInfo: null,
    spawnError: null,
    output: (n = TAIL_LINES) => [...lines, ...(partial ? [partial] : [])].slice(-n).join('\n'),
  };
  proc.exitPromise = new Promise((resolve) => {
    child.once('error', (error) => {
      // spawn failure (e.g. ENOENT): no 'exit' follows
      proc.spawnError = error;
      proc.exited = true;
      live.delete(child);
      resolve();
    });
    child.once('exit', (code, signal) => {
      proc.exited = true;
      proc.exitInfo = signal ? `signal ${signal}` : `exit code ${code}`;
      live.delete(child);
      resolve();
    });
  });
  live.add(child);
  return proc;
}

async function stopProcess(proc, graceMs = 2000) {
  if (!proc || proc.exited) return;
  try {
    proc.child.kill('SIGTERM');
  } catch {
    // gone
  }
  let timer;
  const timedOut = await Promise.race([
    proc.exitPromise.then(() => false),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(true), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut && !proc.exited) {
    try {
      proc.child.kill('SIGKILL');
    } catch {
      // gone
    }
    await proc.exitPromise;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Small HTTP helpers

function request(url, { method = 'GET', body, ca, timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const payload =
      body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = mod.request(
      u,
      {
        method,
        ca,
        agent: false,
        timeout,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeout} ms: ${method} ${url}`)));
    req.on('error', reject);
    req.end(payload);
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `_acme-challenge.NAME.` for NAME, `*.NAME`, or an already complete record name (with or without the dot). */
export function txtRecordName(host) {
  let name = String(host).replace(/\.$/, '');
  if (name.startsWith('*.')) name = name.slice(2);
  if (!name.startsWith('_acme-challenge.')) name = `_acme-challenge.${name}`;
  return `${name}.`;
}

// ---------------------------------------------------------------------------------------------------------

/**
 * Starts pebble-challtestsrv and Pebble on loopback and waits until both answer.
 *
 * @param {object} [options]
 * @param {Record<string,string>} [options.eab] EAB keys { kid: hmacBase64url }: Pebble then requires EAB.
 * @param {number} [options.nonceReject=0] percentage of good nonces Pebble rejects (PEBBLE_WFE_NONCEREJECT).
 * @param {number} [options.authzReuse=0] percentage of valid authorizations Pebble reuses (PEBBLE_AUTHZREUSE).
 * @param {Record<string,string>} [options.env] more environment for pebble (applied last).
 * @param {number} [options.timeoutMs=20000] readiness timeout.
 */
export async function startPebble(options = {}) {
  if (!hasPebble()) {
    throw new Error(`pebble harness: ${PEBBLE_BIN} or ${CHALLTESTSRV_BIN} is missing (Debian package "pebble")`);
  }
  const temp = tempDir('mcpki-pebble-');
  const { dir } = temp;
  installHooks();
  liveDirs.add(dir);
  const cleanup = () => {
    liveDirs.delete(dir);
    temp.cleanup();
  };
  try {
    const home = join(dir, 'home');
    for (const args of [
      ['--home', home, 'init'],
      ['--home', home, 'issue', 'server', 'pebble', 'localhost', '127.0.0.1'],
    ]) {
      const r = mcpki(args);
      if (r.status !== 0)
        throw new Error(`pebble harness: mcpki ${args.slice(2).join(' ')} failed (${r.status}): ${r.stderr}`);
    }
    const caBundlePath = join(home, 'ca', 'root.crt');
    const ca = readFileSync(caBundlePath);

    // A port can be taken by someone else between choosing and binding it: retry with new ports.
    let lastError;
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        return await launch({ options, dir, home, caBundlePath, ca, cleanup });
      } catch (error) {
        lastError = error;
        if (!/address already in use/i.test(String(error.message))) break;
      }
    }
    throw lastError;
  } catch (error) {
    cleanup();
    throw error;
  }
}

async function launch({ options, dir, home, caBundlePath, ca, cleanup }) {
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? 20_000;
  const [dnsPort, listenPort, managementPort, challtestsrvPort, httpPort, tlsAlpnPort] = await freePorts(6, {
    udp: true,
  });

  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${listenPort}`,
      managementListenAddress: `127.0.0.1:${managementPort}`,
      certificate: join(home, 'certs', 'pebble', 'pebble.fullchain.pem'),
      privateKey: join(home, 'certs', 'pebble', 'pebble.key'),
      httpPort,
      tlsPort: tlsAlpnPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: Boolean(options.eab),
      ...(options.eab ? { externalAccountMACKeys: { ...options.eab } } : {}),
    },
  };
  const configPath = join(dir, 'pebble-config.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));

  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PEBBLE_')));
  const pebbleEnv = {
    ...baseEnv,
    PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_WFE_NONCEREJECT: String(options.nonceReject ?? 0),
    PEBBLE_AUTHZREUSE: String(options.authzReuse ?? 0),
    ...(options.env ?? {}),
  };

  const challtestsrv = startProcess(
    'pebble-challtestsrv',
    CHALLTESTSRV_BIN,
    [
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-defaultIPv6',
      '',
      '-defaultIPv4',
      '127.0.0.1',
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-management',
      `127.0.0.1:${challtestsrvPort}`,
    ],
    baseEnv,
  );
  const pebble = startProcess(
    'pebble',
    PEBBLE_BIN,
    ['-config', configPath, '-dnsserver', `127.0.0.1:${dnsPort}`],
    pebbleEnv,
  );
  const procs = [challtestsrv, pebble];

  const directoryUrl = `https://127.0.0.1:${listenPort}/dir`;
  const managementUrl = `https://127.0.0.1:${managementPort}`;
  const challtestsrvUrl = `http://127.0.0.1:${challtestsrvPort}`;

  const describe = (lines = TAIL_LINES) =>
    procs
      .map((p) => {
        const state = p.spawnError
          ? `failed to start: ${p.spawnError.message}`
          : p.exited
            ? `exited (${p.exitInfo})`
            : 'running';
        return `--- ${p.name} (${state}), last output:\n${p.output(lines) || '(none)'}`;
      })
      .join('\n');

  const stopAll = async () => {
    await Promise.all(procs.map((p) => stopProcess(p)));
  };

  // Readiness: Pebble's directory over HTTPS (trusting only the mcpki root), challtestsrv's management API
  // (any HTTP answer), and its DNS server (an A query answered with 127.0.0.1).
  const resolver = new dns.promises.Resolver({ timeout: 300, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsPort}`]);
  const checks = {
    directory: async () => {
      const r = await request(directoryUrl, { ca, timeout: 1000 });
      if (r.status !== 200 || !JSON.parse(r.body).newNonce) throw new Error(`directory: HTTP ${r.status}`);
    },
    challtestsrv: async () => {
      await request(`${challtestsrvUrl}/`, { timeout: 1000 });
    },
    dns: async () => {
      const a = await resolver.resolve4('ready.pebble.test');
      if (!a.includes('127.0.0.1')) throw new Error(`dns: unexpected answer ${a}`);
    },
  };
  const pending = new Set(Object.keys(checks));
  const lastErrors = {};
  const deadline = Date.now() + timeoutMs;
  let failure;
  while (pending.size > 0) {
    const dead = procs.find((p) => p.exited);
    if (dead) {
      failure = `pebble harness: ${dead.name} ${dead.spawnError ? 'failed to start' : 'exited'} before being ready`;
      break;
    }
    if (Date.now() > deadline) {
      failure = `pebble harness: not ready after ${timeoutMs} ms (waiting for ${[...pending].join(', ')}: ${[...pending]
        .map((k) => lastErrors[k])
        .join('; ')})`;
      break;
    }
    await Promise.all(
      [...pending].map(async (name) => {
        try {
          await checks[name]();
          pending.delete(name);
        } catch (error) {
          lastErrors[name] = error.message;
        }
      }),
    );
    if (pending.size > 0) await sleep(25);
  }
  if (failure) {
    // Let a dying process flush its last words before reporting them.
    await sleep(50);
    const detail = describe();
    await stopAll();
    const error = new Error(`${failure}\n${detail}`);
    error.pids = { pebble: pebble.child.pid, challtestsrv: challtestsrv.child.pid };
    error.dir = dir;
    throw error;
  }
  const startupMs = Date.now() - started;

  let stopped;
  const handle = {
    directoryUrl,
    managementUrl,
    caBundlePath,
    challtestsrvUrl,
    httpPort,
    tlsAlpnPort,
    // extras
    dnsPort,
    dnsServer: `127.0.0.1:${dnsPort}`,
    listenPort,
    managementPort,
    challtestsrvPort,
    dir,
    configPath,
    startupMs,
    pids: { pebble: pebble.child.pid, challtestsrv: challtestsrv.child.pid },
    /** The last lines of both processes' output (for assertion messages). */
    logs: (lines = TAIL_LINES) => describe(lines),

    /** Pebble's issuing root (PEM), new at every start. */
    async rootPem() {
      return managementGet('/roots/0');
    },
    /** Pebble's intermediate (PEM). */
    async intermediatePem() {
      return managementGet('/intermediates/0');
    },
    /** Adds a TXT value at `_acme-challenge.HOST.` (HOST may be `*.name` or already the full record name). */
    async setTxt(host, value) {
      await challtestsrvPost('/set-txt', { host: txtRecordName(host), value: String(value) });
    },
    /** Removes every TXT value at `_acme-challenge.HOST.`. */
    async clearTxt(host) {
      await challtestsrvPost('/clear-txt', { host: txtRecordName(host) });
    },
    /** Kills both processes, waits for them to exit, removes the temp dir. Idempotent. */
    stop() {
      stopped ??= (async () => {
        try {
          await stopAll();
        } finally {
          cleanup();
        }
      })();
      return stopped;
    },
  };

  async function managementGet(path) {
    const r = await request(`${managementUrl}${path}`, { ca });
    if (r.status !== 200) throw new Error(`pebble management ${path}: HTTP ${r.status} ${r.body}`);
    return r.body;
  }
  async function challtestsrvPost(path, body) {
    const r = await request(`${challtestsrvUrl}${path}`, { method: 'POST', body });
    if (r.status < 200 || r.status > 299) throw new Error(`pebble-challtestsrv ${path}: HTTP ${r.status} ${r.body}`);
  }
  return handle;
}
