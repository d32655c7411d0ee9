#!/usr/bin/env node
// `mcpki check host:port` against a local server: wall time of the whole process for the default probe set,
// as a median and as ratios against baselines measured in the same rounds (`node -e 0`, and one handshake by
// `openssl s_client`). See bench/README.md ("check").
//
// The server is a Node HTTPS server in its own process, presenting a certificate from a fresh mcpki home
// (the healthy case: every timed run must exit 0). Plain Node, no dependencies.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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

const TARGETS = { checkMedianMs: 300 }; // mcpki check host:port, whole process, at most

const USAGE = `usage: node bench/check.js [options]

  --runs N        timed rounds (default 15)
  --warmup N      untimed rounds first (default 2)
  --out FILE      result file (default bench/results/check.json)
  --check         exit with status 1 when the target is missed
  -h, --help      this text

Build first: npm run build`;

function parseOptions(argv) {
  return parseArgs(
    argv,
    USAGE,
    { runs: 15, warmup: 2, out: join(ROOT, 'bench', 'results', 'check.json'), check: false },
    {
      '--runs': { int: 1 },
      '--warmup': { int: 0 },
      '--out': {},
      '--check': { set: true },
    },
  );
}

/** Wall time of one process, spawn to exit (ms); it must exit 0. */
function timed(command, args, what) {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.error) throw new Error(`${what}: ${result.error.message}`);
  if (result.status !== 0)
    throw new Error(`${what} exited with ${result.status ?? result.signal}:\n${result.stderr?.toString().trim()}`);
  return ms;
}

const SERVER = `
import fs from 'node:fs';
import https from 'node:https';
const [key, cert] = process.argv.slice(1);
const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => res.end('ok'));
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

function startServer(key, cert) {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, ['--input-type=module', '-e', SERVER, key, cert], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.once('exit', (code) => reject(new Error(`the test server exited with ${code}`)));
    child.stdout.once('data', (data) => resolve({ child, port: Number(String(data).trim()) }));
  });
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  checkBuild();
  const openssl = findOnPath('openssl');
  const scratch = mkdtempSync(join(os.tmpdir(), 'mcpki-bench-check-'));
  let server;
  const stop = () => {
    server?.child.kill();
    rmSync(scratch, { recursive: true, force: true });
  };
  process.once('SIGINT', () => (stop(), process.exit(130)));
  process.once('SIGTERM', () => (stop(), process.exit(143)));
  try {
    const home = join(scratch, 'home');
    timed(NODE, [BIN, '--home', home, 'init'], 'mcpki init (prepare)');
    const out = join(scratch, 'certs');
    mkdirSync(out);
    timed(
      NODE,
      [BIN, '--home', home, 'issue', 'server', 'bench', 'localhost', '127.0.0.1', '--out', out],
      'mcpki issue server (prepare)',
    );
    const key = join(out, 'bench.key');
    const fullchain = join(out, 'bench.fullchain.pem');
    server = await startServer(key, fullchain);
    const target = `localhost:${server.port}`;
    const machine = {
      cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown',
      cores: os.cpus().length,
      loadAverage: os.loadavg().map((x) => round(x, 2)),
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      node: process.version,
      openssl: openssl ? spawnSync(openssl, ['version'], { encoding: 'utf8' }).stdout.trim() : null,
      gitCommit:
        spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout?.trim() || null,
    };
    console.log(
      `mcpki check benchmark — ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, ${machine.openssl ?? 'no openssl'}; server ${target}`,
    );
    if (machine.loadAverage[0] > machine.cores * 0.75)
      console.log(`warning: load average ${machine.loadAverage[0]} on ${machine.cores} cores; numbers will be noisy`);

    // the default probe set in this process, without Node's start-up: where the time of a check goes
    const { createContext, checkTarget } = await import(pathToFileURL(join(ROOT, 'dist', 'index.js')).href);
    const context = createContext({ home });
    const first = await checkTarget(context, target);
    if (first.exitCode !== 0)
      throw new Error(
        `the benchmark server is not healthy: ${JSON.stringify(first.findings.filter((f) => !['ok', 'info'].includes(f.severity)))}`,
      );

    const steps = [
      ['baseline', () => timed(NODE, ['-e', '0'], 'node -e 0')],
      ...(openssl
        ? [
            [
              'openssl',
              () =>
                timed(
                  openssl,
                  ['s_client', '-connect', `127.0.0.1:${server.port}`, '-servername', 'localhost'],
                  'openssl s_client',
                ),
            ],
          ]
        : []),
      ['version', () => timed(NODE, [BIN, '--version'], 'mcpki --version')],
      ['check', () => timed(NODE, [BIN, '--home', home, 'check', target], 'mcpki check host:port')],
      ['checkFile', () => timed(NODE, [BIN, '--home', home, 'check', fullchain, '--key', key], 'mcpki check FILE')],
    ];
    const samples = Object.fromEntries(steps.map(([name]) => [name, []]));
    samples.inProcess = [];
    for (let round = 0; round < opts.warmup + opts.runs; round++) {
      const warm = round < opts.warmup;
      progress(warm ? `warm-up ${round + 1}/${opts.warmup}` : `round ${round - opts.warmup + 1}/${opts.runs}`);
      for (const [name, run] of steps) {
        const ms = run();
        if (!warm) samples[name].push(ms);
      }
      const start = process.hrtime.bigint();
      await checkTarget(context, target);
      if (!warm) samples.inProcess.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    progressDone();
    context.close();

    const results = Object.fromEntries(
      Object.entries(samples).map(([name, values]) => [name, summary(values.map((v) => round(v)))]),
    );
    const base = results.baseline.median;
    const ossl = results.openssl?.median;
    const rows = [
      ['node -e 0', 'baseline'],
      ['openssl s_client (one handshake)', 'openssl'],
      ['mcpki --version', 'version'],
      ['mcpki check host:port', 'check'],
      ['mcpki check FILE --key KEY', 'checkFile'],
      ['checkTarget() in-process', 'inProcess'],
    ].filter(([, key]) => results[key]);
    for (const [, key] of rows) {
      results[key].ratioToNode = round(results[key].median / base);
      if (ossl) results[key].ratioToOpenssl = round(results[key].median / ossl);
    }
    printTable(
      ['', 'median', 'min', 'max', '/ node -e 0', '/ openssl'],
      rows.map(([label, key]) => [
        label,
        fmtMs(results[key].median),
        fmtMs(results[key].min),
        fmtMs(results[key].max),
        fmtRatio(results[key].ratioToNode),
        ossl ? fmtRatio(results[key].ratioToOpenssl) : '-',
      ]),
    );
    const targets = {
      checkMedianMs: {
        value: results.check.median,
        max: TARGETS.checkMedianMs,
        pass: results.check.median < TARGETS.checkMedianMs,
      },
    };
    console.log(
      `\ntarget: mcpki check host:port median ${fmtMs(results.check.median)} < ${TARGETS.checkMedianMs} ms: ${targets.checkMedianMs.pass ? 'pass' : 'FAIL'}`,
    );
    mkdirSync(dirname(opts.out), { recursive: true });
    writeFileSync(
      opts.out,
      JSON.stringify(
        {
          benchmark: 'mcpki-check',
          machine: { ...machine, loadAverageAtEnd: os.loadavg().map((x) => round(x, 2)) },
          options: opts,
          target,
          results,
          targets,
          allTargetsPass: targets.checkMedianMs.pass,
        },
        null,
        2,
      ) + '\n',
    );
    console.log(`results: ${opts.out}`);
    if (opts.check && !targets.checkMedianMs.pass) process.exitCode = 1;
  } finally {
    stop();
  }
}

main().catch((error) => {
  console.error(`bench: ${error.message}`);
  process.exit(2);
});
