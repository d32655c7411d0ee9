#!/usr/bin/env node
// mcpki ACME benchmark: `node bench/acme.js [--runs 5]` (build first: `npm run build`). See bench/README.md.
//
// One certificate (http-01, one fresh DNS name per run: b1.test, b2.test, …) from the same local Pebble,
// obtained by four clients, interleaved in rounds (minimal, mcpki, certbot, lego, then again), each one a
// whole process timed from spawn to exit:
//   minimal  a minimal ESM script that uses acme-client directly (the baseline; written to the scratch folder)
//   mcpki    `mcpki acme issue NAME -d NAME.test --http-port P --http-host 127.0.0.1`
//   certbot  `certbot certonly --standalone …` (Debian package certbot; skipped when not installed)
//   lego     `lego … --http --http.port 127.0.0.1:P … run` (Debian package lego; skipped when not installed)
// plus `node -e 0` in every round, for context (the start-up floor of the two Node clients).
// Every account is registered once beforehand (untimed), and one untimed warm-up round runs first.
// Every run must leave a certificate for exactly its name that `openssl verify` accepts against Pebble's root:
// a failed run stops the benchmark with the tool's output, it is never counted as a (fast) sample.
// Medians, ratios of mcpki's median to each other client's median, targets, and every raw sample in
// bench/results/acme.json. Pebble is started once with the test harness (test/pebble.js) and stopped at the
// end; the scratch folder is removed at the end, also on failure and on Ctrl-C.
//
// Plain Node, no dependencies beyond the project's own (acme-client, for the baseline script).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasPebble, startPebble } from '../test/pebble.js';
import {
  checkBuild,
  fail,
  findOnPath,
  fmtMs,
  fmtRatio,
  median,
  parseArgs,
  printTable,
  progress,
  progressDone,
  round,
  summary,
} from './common.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'mcpki.js');
const NODE = process.execPath;

const TARGETS = {
  minimal: 1.5, // mcpki / minimal acme-client script, at most
  certbot: 0.2, // mcpki / certbot, at most
  lego: 0.1, // mcpki / lego, at most
};

/** The polling of src/acme/client.ts (BACKOFF), used by the baseline too unless --backoff-min says otherwise. */
const MCPKI_BACKOFF = { attempts: 22, min: 20, max: 4000 }; // as src/acme/client.ts

const RUN_TIMEOUT_MS = 120_000;

// ---------------------------------------------------------------------------------------------------
// options

const USAGE = `usage: node bench/acme.js [options]

  --runs N          timed runs per client, interleaved (default 5)
  --warmup N        untimed warm-up rounds first (default 1; lego registers its account in the first)
  --skip CLIENT     leave out minimal, certbot or lego (repeatable; mcpki is always measured)
  --backoff-min MS  the baseline script's first poll delay (default ${MCPKI_BACKOFF.min}, as mcpki's)
  --out FILE        result file (default bench/results/acme.json)
  --check           exit with status 1 when a target is missed
  -h, --help        this text

Needs the Debian packages pebble (required), certbot and lego (each skipped with a message when missing).
Build first: npm run build`;

function parseOptions(argv) {
  return parseArgs(
    argv,
    USAGE,
    {
      runs: 5,
      warmup: 1,
      skip: new Set(),
      backoffMin: MCPKI_BACKOFF.min,
      out: join(ROOT, 'bench', 'results', 'acme.json'),
      check: false,
    },
    {
      '--runs': { int: 1 },
      '--warmup': { int: 0 },
      '--backoff-min': { int: 1 },
      '--skip': {
        read: (client, opts) => {
          if (!['minimal', 'certbot', 'lego'].includes(client))
            fail(`--skip takes minimal, certbot or lego, got ${client}\n\n${USAGE}`);
          return opts.skip.add(client);
        },
      },
      '--out': {},
      '--check': { set: true },
    },
  );
}

// ---------------------------------------------------------------------------------------------------
// statistics and formatting (as in bench/run.js)

// ---------------------------------------------------------------------------------------------------
// processes

/** The child being timed right now (killed on Ctrl-C / SIGTERM). */
let current;

function tail(text, lines = 30) {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/**
 * Runs a command to completion and returns its wall time in milliseconds (spawn to exit). Asynchronous, so
 * that this process keeps reading Pebble's log pipes while a client runs (a full pipe would stall Pebble).
 */
function timed(command, args, { env, what, cwd } = {}) {
  return new Promise((resolve, reject) => {
    let output = '';
    const collect = (chunk) => {
      output += chunk;
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    const start = process.hrtime.bigint();
    const child = spawn(command, args, { env: env ?? process.env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    let ms;
    child.once('exit', () => {
      ms = Number(process.hrtime.bigint() - start) / 1e6;
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      current = undefined;
      reject(new Error(`${what ?? command}: ${error.message}`));
    });
    // 'close' comes after 'exit' once the pipes are drained: the output is complete
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      if (code === 0) resolve(ms);
      else
        reject(
          new Error(
            `${what ?? command} exited with ${code ?? signal}${signal === 'SIGKILL' ? ` (killed after ${RUN_TIMEOUT_MS / 1000} s?)` : ''}:\n$ ${[command, ...args].join(' ')}\n${tail(output)}`,
          ),
        );
    });
  });
}

function commandOutput(command, args) {
  const r = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return r.status === 0 ? (r.stdout || r.stderr).trim() : undefined;
}

function debianVersion(pkg) {
  return commandOutput('dpkg-query', ['-W', '-f=${Version}', pkg]) || undefined;
}

// ---------------------------------------------------------------------------------------------------
// checks

/**
 * The run really produced a certificate: the files exist, the leaf names exactly `domain`, and openssl
 * verifies it against Pebble's root with the intermediates of the same file.
 */
function checkCertificate(what, files, domain, pebbleRoot) {
  for (const path of [files.fullchain, files.key]) {
    if (!existsSync(path)) throw new Error(`${what}: exited 0 but ${path} does not exist`);
  }
  const sanText = spawnSync('openssl', ['x509', '-in', files.fullchain, '-noout', '-ext', 'subjectAltName'], {
    encoding: 'utf8',
  });
  if (sanText.status !== 0) throw new Error(`${what}: openssl cannot read ${files.fullchain}: ${sanText.stderr}`);
  const sans = sanText.stdout
    .split('\n')
    .slice(1)
    .join(',')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (sans.length !== 1 || sans[0] !== `DNS:${domain}`)
    throw new Error(`${what}: ${files.fullchain} is for ${sans.join(', ') || 'no name'}, not DNS:${domain}`);
  const verified = spawnSync(
    'openssl',
    ['verify', '-CAfile', pebbleRoot, '-untrusted', files.fullchain, files.fullchain],
    { encoding: 'utf8' },
  );
  if (verified.status !== 0)
    throw new Error(`${what}: openssl verify rejects ${files.fullchain}: ${verified.stdout}${verified.stderr}`);
  const keyCheck = spawnSync('openssl', ['pkey', '-in', files.key, '-noout'], { encoding: 'utf8' });
  if (keyCheck.status !== 0) throw new Error(`${what}: openssl cannot read the key ${files.key}: ${keyCheck.stderr}`);
}

// ---------------------------------------------------------------------------------------------------
// the baseline: acme-client used directly

const MINIMAL_SCRIPT = `// The baseline of bench/acme.js: acme-client used directly, the fewest steps RFC 8555 needs.
//   node minimal.mjs register DIRECTORY CA_FILE ACCOUNT_FILE
//   node minimal.mjs issue DIRECTORY CA_FILE ACCOUNT_FILE DOMAIN HTTP_PORT OUT_DIR
import { createRequire } from 'node:module';
import http from 'node:http';
import https from 'node:https';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(process.env.BENCH_PROJECT_PACKAGE); // the project's node_modules/acme-client
const acme = require('acme-client');
const [mode, directoryUrl, caFile, accountFile, domain, port, outDir] = process.argv.slice(2);
acme.axios.defaults.httpsAgent = new https.Agent({ ca: readFileSync(caFile) });

if (mode === 'register') {
  const accountKey = await acme.crypto.createPrivateEcdsaKey();
  const client = new acme.Client({ directoryUrl, accountKey });
  await client.createAccount({ termsOfServiceAgreed: true });
  writeFileSync(accountFile, JSON.stringify({ accountKey: accountKey.toString(), accountUrl: client.getAccountUrl() }), { mode: 0o600 });
} else {
  const { accountKey, accountUrl } = JSON.parse(readFileSync(accountFile, 'utf8'));
  const client = new acme.Client({
    directoryUrl,
    accountKey,
    accountUrl,
    backoffAttempts: Number(process.env.BENCH_BACKOFF_ATTEMPTS),
    backoffMin: Number(process.env.BENCH_BACKOFF_MIN),
    backoffMax: Number(process.env.BENCH_BACKOFF_MAX),
  });
  const order = await client.createOrder({ identifiers: [{ type: 'dns', value: domain }] });
  const [authz] = await client.getAuthorizations(order);
  const challenge = authz.challenges.find((c) => c.type === 'http-01');
  const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
  const server = http.createServer((req, res) => {
    if (req.url === '/.well-known/acme-challenge/' + challenge.token) res.end(keyAuthorization);
    else res.writeHead(404).end();
  });
  await new Promise((resolve, reject) => server.once('error', reject).listen(Number(port), '127.0.0.1', resolve));
  try {
    await client.completeChallenge(challenge);
    await client.waitForValidStatus(challenge);
  } finally {
    server.close();
    server.closeAllConnections();
  }
  const key = await acme.crypto.createPrivateEcdsaKey(); // P-256, as mcpki, certbot and lego use by default
  const [, csr] = await acme.crypto.createCsr({ commonName: domain, altNames: [domain] }, key);
  const finalized = await client.finalizeOrder(order, csr);
  const pem = await client.getCertificate(finalized);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'privkey.pem'), key, { mode: 0o600 });
  writeFileSync(join(outDir, 'fullchain.pem'), pem);
}
`;

// ---------------------------------------------------------------------------------------------------
// the clients

/**
 * Each client: `prepare()` (untimed: register the account), `command(name, domain)` → [cmd, args, env],
 * `files(name, domain)` → { fullchain, key } to check afterwards.
 */
function defineClients({ pebble, scratch, opts }) {
  const dir = (name) => {
    const path = join(scratch, name);
    mkdirSync(path, { recursive: true });
    return path;
  };
  const port = String(pebble.httpPort);
  const clients = [];

  // 1. minimal acme-client script (baseline)
  {
    const work = dir('minimal');
    const script = join(work, 'minimal.mjs');
    const accountFile = join(work, 'account.json');
    const env = {
      ...process.env,
      BENCH_PROJECT_PACKAGE: join(ROOT, 'package.json'),
      BENCH_BACKOFF_ATTEMPTS: String(MCPKI_BACKOFF.attempts),
      BENCH_BACKOFF_MIN: String(opts.backoffMin),
      BENCH_BACKOFF_MAX: String(MCPKI_BACKOFF.max),
    };
    clients.push({
      key: 'minimal',
      label: 'acme-client, minimal script',
      skipReason: opts.skip.has('minimal')
        ? 'left out with --skip minimal'
        : existsSync(join(ROOT, 'node_modules', 'acme-client'))
          ? undefined
          : 'node_modules/acme-client is missing (npm install)',
      describe: `node minimal.mjs (acme-client ${depVersion('acme-client')}, account registered beforehand, backoff ${opts.backoffMin}–${MCPKI_BACKOFF.max} ms, ${MCPKI_BACKOFF.attempts} attempts)`,
      prepare: async () => {
        writeFileSync(script, MINIMAL_SCRIPT);
        await timed(NODE, [script, 'register', pebble.directoryUrl, pebble.caBundlePath, accountFile], {
          env,
          what: 'minimal.mjs register',
        });
      },
      command: (name, domain) => [
        NODE,
        [
          script,
          'issue',
          pebble.directoryUrl,
          pebble.caBundlePath,
          accountFile,
          domain,
          port,
          join(work, 'certs', name),
        ],
        env,
      ],
      files: (name) => ({
        fullchain: join(work, 'certs', name, 'fullchain.pem'),
        key: join(work, 'certs', name, 'privkey.pem'),
      }),
    });
  }

  // 2. mcpki acme issue, the whole process
  {
    const home = join(dir('mcpki'), 'home');
    const env = { ...process.env, NO_COLOR: '1' };
    clients.push({
      key: 'mcpki',
      label: 'mcpki acme issue',
      describe:
        'mcpki --home H acme issue NAME -d NAME.test --http-port P --http-host 127.0.0.1 (account registered beforehand)',
      prepare: async () => {
        await timed(NODE, [BIN, '--home', home, 'init'], { env, what: 'mcpki init' });
        await timed(
          NODE,
          [
            BIN,
            '--home',
            home,
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
          { env, what: 'mcpki acme account register' },
        );
      },
      command: (name, domain) => [
        NODE,
        [BIN, '--home', home, 'acme', 'issue', name, '-d', domain, '--http-port', port, '--http-host', '127.0.0.1'],
        env,
      ],
      files: (name) => ({
        fullchain: join(home, 'certs', name, `${name}.fullchain.pem`),
        key: join(home, 'certs', name, `${name}.key`),
      }),
    });
  }

  // 3. certbot (Python, acme library; trusts Pebble's TLS certificate through requests' REQUESTS_CA_BUNDLE)
  {
    const certbot = findOnPath('certbot');
    const work = dir('certbot');
    const dirs = [
      '--config-dir',
      join(work, 'config'),
      '--work-dir',
      join(work, 'work'),
      '--logs-dir',
      join(work, 'logs'),
    ];
    const common = [
      '--server',
      pebble.directoryUrl,
      '--non-interactive',
      '--agree-tos',
      '--register-unsafely-without-email',
      ...dirs,
    ];
    const env = { ...process.env, REQUESTS_CA_BUNDLE: pebble.caBundlePath };
    clients.push({
      key: 'certbot',
      label: 'certbot certonly --standalone',
      skipReason: opts.skip.has('certbot')
        ? 'left out with --skip certbot'
        : certbot
          ? undefined
          : 'certbot is not installed (apt-get install certbot)',
      describe:
        `certbot ${debianVersion('certbot') ?? ''} certonly --standalone --http-01-address 127.0.0.1 --http-01-port P -d NAME.test (account registered beforehand)`.replace(
          '  ',
          ' ',
        ),
      prepare: async () => {
        await timed(certbot, ['register', ...common], { env, what: 'certbot register' });
      },
      command: (name, domain) => [
        certbot,
        ['certonly', '--standalone', '--http-01-port', port, '--http-01-address', '127.0.0.1', '-d', domain, ...common],
        env,
      ],
      files: (name, domain) => ({
        fullchain: join(work, 'config', 'live', domain, 'fullchain.pem'),
        key: join(work, 'config', 'live', domain, 'privkey.pem'),
      }),
    });
  }

  // 4. lego (Go; trusts Pebble's TLS certificate through LEGO_CA_CERTIFICATES). `lego run` registers the
  //    account when there is none in --path: the untimed warm-up round does that.
  {
    const lego = findOnPath('lego');
    const work = dir('lego');
    const env = { ...process.env, LEGO_CA_CERTIFICATES: pebble.caBundlePath };
    clients.push({
      key: 'lego',
      label: 'lego run --http',
      skipReason: opts.skip.has('lego')
        ? 'left out with --skip lego'
        : lego
          ? undefined
          : 'lego is not installed (apt-get install lego)',
      describe:
        `lego ${debianVersion('lego') ?? ''} --http --http.port 127.0.0.1:P --domains NAME.test --path DIR run (account registered by the warm-up run)`.replace(
          '  ',
          ' ',
        ),
      needsWarmup: true,
      prepare: async () => {},
      command: (name, domain) => [
        lego,
        [
          '--server',
          pebble.directoryUrl,
          '--email',
          'x@example.com',
          '--accept-tos',
          '--http',
          '--http.port',
          `127.0.0.1:${port}`,
          '--domains',
          domain,
          '--path',
          work,
          'run',
        ],
        env,
      ],
      files: (name, domain) => ({
        fullchain: join(work, 'certificates', `${domain}.crt`),
        key: join(work, 'certificates', `${domain}.key`),
      }),
    });
  }
  return clients;
}

function depVersion(name) {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------
// cleanup: Pebble (the harness kills it on exit and on signals too), the scratch folder, the running client

const cleanups = [];
function cleanupNow() {
  try {
    current?.kill('SIGKILL');
  } catch {
    // gone
  }
  while (cleanups.length) {
    try {
      cleanups.pop()();
    } catch {
      // best effort
    }
  }
}

function installSignalHandlers() {
  process.on('exit', cleanupNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    const onSignal = () => {
      progressDone();
      console.error(`\nbench: ${signal}: stopping the running client and Pebble, removing scratch files`);
      cleanupNow();
      process.removeListener(signal, onSignal);
      // the Pebble harness has its own handler (it kills Pebble, then re-raises the signal when it is the
      // last handler): re-raise only when no other handler is left, so the process ends by this signal once
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  if (!hasPebble())
    fail('Pebble is not installed (Debian package pebble: /usr/bin/pebble and /usr/bin/pebble-challtestsrv)');
  if (!findOnPath('openssl')) fail('openssl is needed to check the certificates');
  const stale = checkBuild();
  installSignalHandlers();

  const cpus = os.cpus();
  const machine = {
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    totalMemoryMiB: Math.round(os.totalmem() / 1048576),
    loadAverage: os.loadavg().map((x) => round(x, 2)),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    mcpkiVersion: JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version,
    gitCommit: commandOutput('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) ?? null,
    acmeClient: depVersion('acme-client') ?? null,
    pebble: debianVersion('pebble') ?? null,
    certbot: debianVersion('certbot') ?? commandOutput('certbot', ['--version']) ?? null,
    lego: debianVersion('lego') ?? null,
  };
  const started = new Date();
  const t0 = performance.now();
  console.log(
    `mcpki ${machine.mcpkiVersion}${machine.gitCommit ? ` (${machine.gitCommit})` : ''} ACME benchmark — ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, Pebble ${machine.pebble ?? '?'}`,
  );
  const busy = machine.loadAverage[0] > machine.cores * 0.75;
  if (busy)
    console.log(
      `warning: 1-minute load average ${machine.loadAverage[0]} on ${machine.cores} cores: the machine is busy, expect noisy numbers`,
    );

  const scratch = mkdtempSync(join(os.tmpdir(), 'mcpki-bench-acme-'));
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));

  let pebble;
  const samples = {};
  let clients;
  try {
    progress('starting Pebble');
    pebble = await startPebble();
    cleanups.push(() => {
      // synchronous last resort; the normal path awaits pebble.stop() below
      for (const pid of Object.values(pebble.pids)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    });
    const pebbleRoot = join(scratch, 'pebble-root.pem');
    writeFileSync(pebbleRoot, await pebble.rootPem());

    clients = defineClients({ pebble, scratch, opts });
    for (const client of clients) {
      if (client.skipReason) console.log(`skipping ${client.key}: ${client.skipReason}`);
    }
    const active = clients.filter((c) => !c.skipReason);
    for (const client of active) {
      progress(`preparing ${client.key} (account registration, untimed)`);
      await client.prepare();
    }

    let serial = 0;
    const runOnce = async (client) => {
      const name = `b${++serial}`;
      const domain = `${name}.test`;
      const [command, args, env] = client.command(name, domain);
      const ms = await timed(command, args, { env, what: `${client.key} (${domain})`, cwd: scratch });
      checkCertificate(`${client.key} (${domain})`, client.files(name, domain), domain, pebbleRoot);
      return ms;
    };
    const steps = [
      ['node', () => timed(NODE, ['-e', '0'], { what: 'node -e 0' })],
      ...active.map((c) => [c.key, () => runOnce(c)]),
    ];
    const warmup = Math.max(opts.warmup, active.some((c) => c.needsWarmup) ? 1 : 0);
    if (warmup !== opts.warmup)
      console.log('one warm-up round runs anyway: lego registers its account in its first run');
    for (let w = 0; w < warmup; w++) {
      for (const [key, run] of steps) {
        progress(`warm-up ${w + 1}/${warmup}: ${key}`);
        await run();
      }
    }
    for (const [key] of steps) samples[key] = [];
    for (let r = 0; r < opts.runs; r++) {
      // one round = node -e 0, minimal, mcpki, certbot, lego: noise that lasts a while hits all of them
      for (const [key, run] of steps) {
        progress(`round ${r + 1}/${opts.runs}: ${key}`);
        samples[key].push(await run());
      }
    }
    progressDone();
  } finally {
    progressDone();
    await pebble?.stop();
    cleanupNow();
  }

  // ------------------------------------------------------------------------------------------------
  // results

  const base = median(samples.mcpki);
  const result = {};
  for (const [key, values] of Object.entries(samples)) {
    const s = summary(values.map((v) => round(v)));
    result[key] = {
      ...s,
      command: key === 'node' ? 'node -e 0 (context: Node start-up)' : clients.find((c) => c.key === key).describe,
      // mcpki's median over this client's median; and the median of the per-round ratios as a cross-check
      ...(key === 'mcpki' || key === 'node'
        ? {}
        : {
            mcpkiRatio: round(base / median(values)),
            medianPairedMcpkiRatio: round(median(values.map((v, i) => samples.mcpki[i] / v))),
          }),
    };
  }
  const targets = [];
  for (const [key, max] of Object.entries(TARGETS)) {
    const r = result[key];
    const client = clients.find((c) => c.key === key);
    targets.push({
      name: `mcpki / ${client.label}`,
      metric: `clients.${key}.mcpkiRatio`,
      value: r ? r.mcpkiRatio : null,
      target: `<= ${max}`,
      pass: r ? r.mcpkiRatio <= max : null,
      ...(r ? {} : { skipped: client.skipReason }),
    });
  }
  const measured = targets.filter((t) => t.pass !== null);
  const verdict = (t) => (t.pass === null ? 'skipped' : t.pass ? 'PASS' : 'FAIL');

  console.log(
    `\none certificate (http-01, fresh name each run) from a local Pebble, whole processes, ${opts.runs} interleaved rounds after ${opts.warmup} warm-up, median [min–max]`,
  );
  const rows = [];
  const labelOf = (key) =>
    key === 'node'
      ? 'node -e 0 (context)'
      : clients.find((c) => c.key === key).label + (key === 'minimal' ? ' (baseline)' : '');
  for (const key of Object.keys(result)) {
    const r = result[key];
    const t = targets.find((x) => x.metric === `clients.${key}.mcpkiRatio`);
    rows.push([
      labelOf(key),
      fmtMs(r.median),
      `[${fmtMs(r.min)} – ${fmtMs(r.max)}]`,
      key === 'mcpki' || key === 'node' ? '' : fmtRatio(r.mcpkiRatio),
      t ? `≤ ${TARGETS[key]}× ${verdict(t)}` : '',
    ]);
  }
  printTable(['client', 'median', 'range', 'mcpki / it', 'target'], rows);
  for (const t of targets.filter((x) => x.pass === null)) console.log(`  ${t.name}: skipped (${t.skipped})`);

  const elapsed = (performance.now() - t0) / 1000;
  const json = {
    benchmark: 'mcpki-acme',
    schema: 1,
    startedAt: started.toISOString(),
    durationSeconds: round(elapsed, 1),
    options: {
      runs: opts.runs,
      warmup: opts.warmup,
      skip: [...opts.skip],
      baselineBackoffMs: { min: opts.backoffMin, max: MCPKI_BACKOFF.max, attempts: MCPKI_BACKOFF.attempts },
    },
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((x) => round(x, 2)) },
    busyMachineWarning: busy,
    staleBuild: stale,
    pebble: {
      startupMs: pebble?.startupMs ?? null,
      env: { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
    },
    clients: result,
    targets,
    allTargetsPass: measured.length > 0 && measured.every((t) => t.pass),
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(json, null, 2) + '\n');
  console.log(
    `\n${measured.filter((t) => t.pass).length}/${measured.length} targets met${targets.length > measured.length ? ` (${targets.length - measured.length} skipped)` : ''}; ${elapsed.toFixed(0)} s; raw samples in ${relative(process.cwd(), opts.out) || opts.out}`,
  );
  if (opts.check && !json.allTargetsPass) process.exitCode = 1;
}

main().catch((error) => {
  progressDone();
  console.error(`bench: ${error.stack ?? error}`);
  process.exitCode = 1;
});
