#!/usr/bin/env node
// ACME server throughput: `node bench/acme-server.js [--orders 200] [--clients 20] [--rounds 1]` (build first:
// `npm run build`).
//
// The same load against mcpki's ACME server and against Pebble (Debian package `pebble`, started by the test
// harness test/pebble.js with PEBBLE_VA_NOSLEEP=1, no nonce rejection, no authorization reuse), in the same
// run, interleaved when --rounds > 1: --clients acme-client clients, each with its own account (registered
// before timing), place --orders orders between them, as fast as they can. One order is newOrder, the
// authorization, the http-01 challenge answered by one responder in this process (both servers validate
// against 127.0.0.1 on the same port, and resolve the names through the harness's pebble-challtestsrv),
// polling until valid, finalize with a CSR made beforehand, and the certificate download. Reported for each
// server: orders/s over the whole batch, p50/p99 latency of one order (newOrder to certificate), and the
// server's RSS at rest (after start, and after the load), from /proc. Every order must end with a certificate
// for its name: a failed order stops the benchmark. mcpki's server runs in its own process (this script with
// --serve), as Pebble does. The machine's load average is printed with the results, since the ratio is what
// to quote on a shared machine. Results and every latency in bench/results/acme-server.json.
//
// Beside those two, in the same run, the server as `mcpki acme-server` runs it, on its inventory: SQLite (one
// instance), and PostgreSQL (issue 12; Debian's postgresql, a throw-away cluster from test/postgres.js) with one
// instance and with two behind the round-robin proxy of test/tcp-proxy.js (two homes with the same CA files, on
// 127.0.0.2 and 127.0.0.3 at ports of their own, the proxy's address their public URL, as behind a load
// balancer). --no-postgres leaves the PostgreSQL runs out.
//
// A server that does not finish a round (its accounts, its warm-up) within --round-timeout seconds (a Pebble
// round once hung and the run never ended) has its processes killed by PID (SIGKILL), that round reported as
// failed, and no further rounds; the other servers' rounds go on, and the run exits 1 at the end.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { Agent } from 'node:https';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'mcpki.js');

// --- child mode: mcpki's ACME server in its own process ----------------------------------------------------

if (process.argv[2] === '--serve') {
  // MODE: memory (the state in memory, the certificates in the home's SQLite), or inventory (as `mcpki
  // acme-server`: the state in the inventory, STORE: sqlite or a postgres:// URL)
  const [
    home,
    httpPort,
    dnsHost,
    dnsPort,
    mode = 'memory',
    store = 'sqlite',
    host = '127.0.0.1',
    port = '0',
    publicUrl,
  ] = process.argv.slice(3);
  const { createContext } = await import('../dist/context.js');
  const { startAcmeServer } = await import('../dist/acme-server/server.js');
  const { createStoreState } = await import('../dist/acme-server/model.js');
  const { sharedServerOptions } = await import('../dist/acme-server/shared.js');
  const context = createContext({ home, store });
  const server = await startAcmeServer(context, {
    ...(mode === 'inventory'
      ? { state: createStoreState(context.store().acmeServer()), ...sharedServerOptions(context, 1_000_000) }
      : {}),
    listen: [{ host, port: Number(port) }],
    ...(publicUrl ? { publicUrl } : {}),
    validation: {
      httpPort: Number(httpPort),
      tlsPort: 1,
      dnsResolver: { host: dnsHost, port: Number(dnsPort) },
      timeoutMs: 10_000,
    },
    ordersPerHour: 1_000_000,
  });
  process.stdout.write(JSON.stringify({ directory: server.directories[0], address: server.addresses[0] }) + '\n');
  process.on('SIGTERM', () => {
    void server.close().then(() => {
      context.close();
      process.exit(0);
    });
  });
} else {
  await main();
}

// --- the benchmark -----------------------------------------------------------------------------------------

async function main() {
  const { hasPebble, startPebble } = await import('../test/pebble.js');
  const { checkBuild, fail, fmtMs, parseArgs, printTable, round } = await import('./common.js');
  const USAGE = `usage: node bench/acme-server.js [options]

  --orders N    orders per server per round (default 200)
  --clients N   concurrent clients, one account each (default 20)
  --rounds N    rounds, each measuring mcpki then Pebble (default 1)
  --warmup N    untimed orders per client first (default 1)
  --out FILE    result file (default bench/results/acme-server.json)
  --check       exit with status 1 when mcpki's orders/s is below Pebble's
  --profile DIR write a V8 CPU profile of mcpki's server process to DIR (node --cpu-prof)
  --no-postgres leave out the runs on the inventory in PostgreSQL (one and two instances)
  --round-timeout S  a server's round (or its accounts, or its warm-up) not done in S seconds fails: its
                processes are killed by PID and the run goes on without it (default 600)
  -h, --help    this text

Needs the Debian package pebble. Build first: npm run build`;
  const options = parseArgs(
    process.argv.slice(2),
    USAGE,
    {
      orders: 200,
      clients: 20,
      rounds: 1,
      warmup: 1,
      out: join(ROOT, 'bench', 'results', 'acme-server.json'),
      check: false,
      profile: undefined,
      postgres: true,
      roundTimeout: 600,
    },
    {
      '--profile': {},
      '--orders': { int: 1 },
      '--clients': { int: 1 },
      '--rounds': { int: 1 },
      '--warmup': { int: 0 },
      '--out': {},
      '--check': { set: true },
      '--no-postgres': { set: false, key: 'postgres' },
      '--round-timeout': { int: 1, key: 'roundTimeout' },
    },
  );
  checkBuild();
  if (!hasPebble()) fail('Pebble is not installed (Debian package "pebble")');
  const require = createRequire(import.meta.url);
  const acme = require('acme-client');

  const scratch = mkdtempSync(join(os.tmpdir(), 'mcpki-bench-acme-server-'));
  const children = [];
  let pebble;
  let responder;
  let postgres;
  let proxy;
  const cleanup = async () => {
    // a child killed by a signal (a round that timed out) has no exit code but a signal code: it is gone
    const running = (c) => c.exitCode === null && c.signalCode === null;
    for (const child of children) if (running(child)) child.kill('SIGTERM');
    await Promise.all(children.map((c) => (running(c) ? new Promise((r) => c.once('exit', r)) : null)));
    await proxy?.close();
    await postgres?.stop();
    await pebble?.stop();
    responder?.close();
    rmSync(scratch, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    const home = join(scratch, 'home');
    const init = spawnSync(process.execPath, [BIN, '--home', home, 'init'], { encoding: 'utf8' });
    if (init.status !== 0) fail(`mcpki init failed: ${init.stderr}`);
    pebble = await startPebble();

    // one http-01 responder for both servers, on the port both validate
    const tokens = new Map();
    responder = createServer((req, res) => {
      const answer = tokens.get(req.url.slice('/.well-known/acme-challenge/'.length));
      if (answer) res.end(answer);
      else res.writeHead(404).end();
    });
    responder.keepAliveTimeout = 1;
    await new Promise((resolve) => responder.listen(pebble.httpPort, '127.0.0.1', resolve));

    /** mcpki's server in a process of its own; resolves its directory URL once it listens. */
    const serve = async (serveHome, mode, store, host, port, publicUrl) => {
      const child = spawn(
        process.execPath,
        [
          ...(options.profile && mode === 'memory' ? ['--cpu-prof', '--cpu-prof-dir', options.profile] : []),
          fileURLToPath(import.meta.url),
          '--serve',
          serveHome,
          String(pebble.httpPort),
          '127.0.0.1',
          String(pebble.dnsPort),
          mode,
          store,
          host,
          String(port),
          ...(publicUrl ? [publicUrl] : []),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.push(child);
      const { directory, address } = await new Promise((resolve, reject) => {
        let text = '';
        child.stdout.on('data', (d) => {
          text += d;
          if (text.includes('\n')) resolve(JSON.parse(text.split('\n')[0]));
        });
        child.once('exit', (code) => reject(new Error(`mcpki's ACME server exited (${code}) before it listened`)));
      });
      return { child, directory, port: Number(address.split(':').pop()) };
    };
    const memory = await serve(home, 'memory', 'sqlite', '127.0.0.1', 0);
    const child = memory.child;
    const mcpkiDirectory = memory.directory;
    // the runs take turns, so this one may share the home (and its mcpki.db) with the first
    const sqlite = await serve(home, 'inventory', 'sqlite', '127.0.0.1', 0);

    const extra = [];
    const { hasPostgres, postgresMissingReason, startPostgres } = await import('../test/postgres.js');
    if (options.postgres && !hasPostgres())
      process.stderr.write(`bench: no PostgreSQL runs: ${postgresMissingReason()}\n`);
    if (options.postgres && hasPostgres()) {
      const { startRoundRobinProxy } = await import('../test/tcp-proxy.js');
      postgres = await startPostgres();
      const one = await postgres.createDatabase('bench_one');
      const two = await postgres.createDatabase('bench_two');
      // the home's inventory (its CA's records) copied into each database, as an operator moves to PostgreSQL
      for (const url of [one, two]) {
        const moved = spawnSync(process.execPath, [BIN, '--home', home, 'store', 'migrate', '--to', url], {
          encoding: 'utf8',
        });
        if (moved.status !== 0) fail(`mcpki store migrate failed: ${moved.stderr}`);
      }
      const homes = ['pg1', 'pg2a', 'pg2b'].map((name) => join(scratch, `home-${name}`));
      for (const h of homes) cpHome(home, h);
      const single = await serve(homes[0], 'inventory', one, '127.0.0.1', 0);
      extra.push({ name: 'mcpki pg ×1', directoryUrl: single.directory, pids: [single.child.pid] });
      const targets = [
        { host: '127.0.0.2', port: 0 },
        { host: '127.0.0.3', port: 0 },
      ];
      proxy = await startRoundRobinProxy(targets);
      // the instances on ports of their own, the proxy's address as their public URL (--public-url)
      const pair = [];
      for (const [i, target] of targets.entries()) {
        const instance = await serve(homes[1 + i], 'inventory', two, target.host, 0, `https://localhost:${proxy.port}`);
        target.port = instance.port;
        pair.push(instance);
      }
      extra.push({
        name: 'mcpki pg ×2',
        directoryUrl: `https://localhost:${proxy.port}/acme/directory`,
        pids: pair.map((p) => p.child.pid),
      });
    }

    acme.axios.defaults.httpsAgent = new Agent({
      ca: [readFileSync(join(home, 'ca', 'root.crt')), readFileSync(pebble.caBundlePath)],
      keepAlive: true,
      family: 4,
    });
    const servers = [
      { name: 'mcpki', directoryUrl: mcpkiDirectory, pids: [child.pid] },
      { name: 'pebble', directoryUrl: pebble.directoryUrl, pids: [pebble.pids.pebble] },
      { name: 'mcpki sqlite', directoryUrl: sqlite.directory, pids: [sqlite.child.pid] },
      ...extra,
    ];
    /**
     * Runs `work(signal)` for `server` with the round timeout: when it is not done in time, the server's processes
     * are killed by PID, the server is marked failed (no further rounds) and undefined is returned. Work left
     * running stops at its next order (`signal.aborted`) or fails on the dead server; its outcome is ignored.
     */
    async function bounded(server, label, work) {
      const controller = new AbortController();
      let timer;
      const timedOut = new Promise((resolve) => {
        timer = setTimeout(() => resolve(timedOutMark), options.roundTimeout * 1000);
      });
      const running = work(controller.signal);
      running.catch(() => undefined);
      try {
        const outcome = await Promise.race([running, timedOut]);
        if (outcome !== timedOutMark) return outcome;
      } finally {
        clearTimeout(timer);
      }
      controller.abort();
      const killed = killPids(server.pids);
      server.failed = `${label}: no result within ${options.roundTimeout} s; killed ${killed.join(', ') || 'nothing'}`;
      process.stderr.write(` FAILED (${server.failed})\n`);
      return undefined;
    }
    const timedOutMark = Symbol('timed out');

    for (const server of servers) {
      server.rssAtStartKiB = rssKiB(server.pids);
      server.rounds = [];
      server.clients = [];
      const clients = await bounded(server, 'accounts', () =>
        Promise.all(
          Array.from({ length: options.clients }, async () => {
            const client = new acme.Client({
              directoryUrl: server.directoryUrl,
              accountKey: await acme.crypto.createPrivateEcdsaKey(),
              backoffAttempts: 60,
              backoffMin: 20,
              backoffMax: 500,
            });
            await client.createAccount({ termsOfServiceAgreed: true });
            return client;
          }),
        ),
      );
      if (clients) server.clients = clients;
    }

    let sequence = 0;
    /** One order, start to certificate; resolves with its latency in ms. */
    async function order(client, name, csr) {
      const started = performance.now();
      const created = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] });
      const [authz] = await client.getAuthorizations(created);
      const challenge = authz.challenges.find((c) => c.type === 'http-01');
      tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
      try {
        await client.completeChallenge(challenge);
        await client.waitForValidStatus(challenge);
      } finally {
        tokens.delete(challenge.token);
      }
      const finalized = await client.finalizeOrder(created, csr);
      const pem = await client.getCertificate(finalized);
      const elapsed = performance.now() - started;
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`order for ${name}: no certificate`);
      return elapsed;
    }

    async function batch(server, count, label, signal) {
      const names = Array.from({ length: count }, () => `o${++sequence}.bench.test`);
      const csrs = await Promise.all(names.map(async (name) => (await acme.crypto.createCsr({ altNames: [name] }))[1]));
      let next = 0;
      const latencies = [];
      const started = performance.now();
      await Promise.all(
        server.clients.map(async (client) => {
          for (;;) {
            const i = next++;
            if (i >= count || signal?.aborted) return;
            try {
              latencies.push(await order(client, names[i], csrs[i]));
            } catch (error) {
              throw new Error(`${server.name} (${label}): order ${names[i]} failed: ${error.message}`);
            }
          }
        }),
      );
      return { seconds: (performance.now() - started) / 1000, latencies };
    }

    for (const server of servers)
      if (options.warmup > 0 && !server.failed)
        await bounded(server, 'warm-up', (signal) =>
          batch(server, options.warmup * options.clients, 'warm-up', signal),
        );
    for (let r = 0; r < options.rounds; r++) {
      for (const server of servers) {
        if (server.failed) {
          server.rounds.push({ failed: true, skipped: true, reason: server.failed });
          continue;
        }
        const load = os.loadavg();
        process.stderr.write(
          `bench: round ${r + 1}/${options.rounds}, ${server.name}: ${options.orders} orders from ${options.clients} clients…`,
        );
        const measured = await bounded(server, `round ${r + 1}`, (signal) =>
          batch(server, options.orders, `round ${r + 1}`, signal),
        );
        if (!measured) {
          server.rounds.push({ failed: true, reason: server.failed, loadAverageBefore: load.map((x) => round(x, 2)) });
          continue;
        }
        const { seconds, latencies } = measured;
        const sorted = [...latencies].sort((a, b) => a - b);
        const result = {
          ordersPerSecond: options.orders / seconds,
          seconds,
          p50: percentile(sorted, 0.5),
          p99: percentile(sorted, 0.99),
          loadAverageBefore: load.map((x) => round(x, 2)),
          latencies: sorted.map((x) => round(x, 1)),
        };
        server.rounds.push(result);
        process.stderr.write(` ${result.ordersPerSecond.toFixed(1)}/s\n`);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
    for (const server of servers) server.rssAfterKiB = server.failed ? NaN : rssKiB(server.pids);

    // medians over the rounds that finished; a server with none shows "failed"
    const medianOf = (server, key) => median(server.rounds.filter((r) => !r.failed).map((r) => r[key]));
    const failedRounds = (s) => s.rounds.filter((r) => r.failed && !r.skipped).length;
    const rows = servers.map((s) =>
      s.rounds.every((r) => r.failed)
        ? [s.name, 'failed', '-', '-', `${(s.rssAtStartKiB / 1024).toFixed(1)} MiB`, '-']
        : [
            `${s.name}${s.failed ? ` (${failedRounds(s)} round failed)` : ''}`,
            `${medianOf(s, 'ordersPerSecond').toFixed(1)}/s`,
            fmtMs(medianOf(s, 'p50')),
            fmtMs(medianOf(s, 'p99')),
            `${(s.rssAtStartKiB / 1024).toFixed(1)} MiB`,
            s.failed ? '-' : `${(s.rssAfterKiB / 1024).toFixed(1)} MiB`,
          ],
    );
    const [m, p] = servers;
    const ratio = medianOf(m, 'ordersPerSecond') / medianOf(p, 'ordersPerSecond');
    console.log(
      `\n${options.orders} orders (http-01) from ${options.clients} concurrent acme-client clients, ${options.rounds} round(s), median over rounds; ${os.cpus().length} CPUs, load average ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}\n`,
    );
    printTable(['server', 'orders/s', 'p50', 'p99', 'RSS at rest', 'RSS after'], rows);
    console.log(
      `\nmcpki / Pebble orders/s: ${ratio.toFixed(2)}× (target ≥ 1.00×); p50 ${(medianOf(m, 'p50') / medianOf(p, 'p50')).toFixed(2)}×, p99 ${(medianOf(m, 'p99') / medianOf(p, 'p99')).toFixed(2)}×`,
    );
    for (const s of servers) if (s.failed) console.log(`${s.name} failed: ${s.failed}`);
    mkdirSync(dirname(options.out), { recursive: true });
    writeFileSync(
      options.out,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          node: process.version,
          cpus: os.cpus().length,
          loadAverageAfter: os.loadavg().map((x) => round(x, 2)),
          orders: options.orders,
          clients: options.clients,
          ratio: Number.isFinite(ratio) ? round(ratio, 3) : null,
          servers: servers.map((s) => ({
            name: s.name,
            ...(s.failed ? { failed: s.failed } : {}),
            rssAtStartKiB: s.rssAtStartKiB,
            rssAfterKiB: Number.isFinite(s.rssAfterKiB) ? s.rssAfterKiB : null,
            rounds: s.rounds,
          })),
        },
        null,
        2,
      ) + '\n',
    );
    console.log(`results: ${options.out}`);
    if (options.check && !(ratio >= 1)) process.exitCode = 1;
    if (servers.some((s) => s.failed)) process.exitCode = 1;
  } finally {
    await cleanup();
  }
  // keep-alive sockets of acme-client's agent would hold the process open
  process.exit(process.exitCode ?? 0);
}

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function median(values) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** SIGKILL to each PID that is still there; returns those it was sent to. */
function killPids(pids) {
  const killed = [];
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // already gone
    }
  }
  return killed;
}

/** The resident memory of the server's processes, summed (two instances: both). */
function rssKiB(pids) {
  let total = 0;
  for (const pid of pids) {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  }
  return total;
}

/** A second home with the first one's CA files (how another instance is provisioned: docs/acme-server.md). */
function cpHome(from, to) {
  mkdirSync(join(to, 'ca'), { recursive: true, mode: 0o700 });
  for (const file of ['root.crt', 'root-crl.pem', 'intermediate.crt', 'intermediate.key'])
    cpSync(join(from, 'ca', file), join(to, 'ca', file));
}
