// Renewal at scale: N declared local-CA certificates (default 10,000) in one mcpki.yaml.
//   1. `mcpki renew --dry-run` plan time once all are issued (target ≤ 4× node -e 0), median of --runs, next to
//      `node -e 0`, `mcpki --version` and the plan's floor (bench/floor.cjs plan) measured in the same rounds;
//   2. a full renewal of --due certificates (default 1,000, forced) with their targets written (target ≤ 4 s);
//   3. the resident memory of `mcpki serve` holding them, idle (15 s) after its first check and after a later one
//      (target ≤ 75 MB), next to the same service holding one certificate (the floor); also 2 s after the
//      check, and as the systemd unit starts it (node --max-semi-space-size=1).
// Usage: node bench/renewal.js [--certs 10000] [--due 1000] [--runs 5] [--check]
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SQLITE,
  bundleFloor,
  checkBuild,
  createRate,
  fail,
  fmtMs,
  fmtRatio,
  median,
  pageFaultMicros,
  parseArgs,
  printTable,
  removeStartupVariables,
  round,
  startupVariablesLine,
  summary,
} from './common.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'mcpki.js');
const NODE = process.execPath;
// issue 9: plan ≤ 4× `node -e 0` (same rounds), 1,000 forced renewals with targets ≤ 4 s, serve idle RSS ≤ 75 MB
const TARGETS = { planRatio: 4, renewMs: 4000, idleRssMb: 75 };

const USAGE = `usage: node bench/renewal.js [options]

  --certs N    declared certificates (default 10000)
  --due N      certificates renewed in the forced run (default 1000; at most --certs)
  --runs N     timed runs of each measurement (default 5)
  --out FILE   result file (default bench/results/renewal.json)
  --check      exit with status 1 when a target is missed
  --keep-env   keep NODE_EXTRA_CA_CERTS and NODE_OPTIONS (removed by default, as bench/run.js does)
  -h, --help   this text

Build first: npm run build`;

function parseOptions(argv) {
  const opts = parseArgs(
    argv,
    USAGE,
    {
      certs: 10_000,
      due: 1000,
      runs: 5,
      out: join(ROOT, 'bench', 'results', 'renewal.json'),
      check: false,
      keepEnv: false,
    },
    {
      '--keep-env': { key: 'keepEnv', set: true },
      '--certs': { int: 1 },
      '--due': { int: 1 },
      '--runs': { int: 1 },
      '--out': {},
      '--check': { set: true },
    },
  );
  if (opts.due > opts.certs) fail('--due cannot exceed --certs');
  return opts;
}

function timed(args, env = {}) {
  const started = process.hrtime.bigint();
  const result = spawnSync(args[0], args.slice(1), {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', ...env },
    maxBuffer: 256 * 1024 * 1024,
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0)
    fail(`${args.slice(1).join(' ')} failed (${result.status}): ${(result.stderr || result.stdout).slice(-2000)}`);
  return { ms, stdout: result.stdout };
}

function writeConfig(dir, n) {
  const lines = ['version: 1', 'certificates:'];
  for (let i = 0; i < n; i++) {
    lines.push(
      `  - name: c${i}`,
      `    names: [c${i}.localhost]`,
      '    targets:',
      `      - { type: fullchain, path: deploy/c${i}.crt }`,
      `      - { type: key, path: deploy/c${i}.key }`,
    );
  }
  const path = join(dir, 'mcpki.yaml');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

const IDLE_AFTER_CHECK_MS = 15_000; // the service collects 10 s after each check (src/service/serve.ts)
const EARLY_AFTER_CHECK_MS = 2_000;

const rssMb = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m)[1]) / 1024;

/**
 * One `mcpki serve` (with `nodeFlags` before the script, as a unit file may start it): RSS 2 s and 15 s after
 * its first full check, then after a later check (SIGHUP: re-read the file, check again).
 */
async function serveRss(home, config, nodeFlags = []) {
  const child = spawn(NODE, [...nodeFlags, BIN, '--home', home, 'serve', '-c', config], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  const checks = () => log.split('"check.done"').length - 1;
  const waitForCheck = async (n) => {
    for (let i = 0; i < 1200 && checks() < n; i++) await new Promise((r) => setTimeout(r, 100));
    if (checks() < n) fail(`mcpki serve did not finish check ${n} in 120 s`);
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  try {
    await waitForCheck(1);
    await sleep(EARLY_AFTER_CHECK_MS);
    const early = rssMb(child.pid);
    await sleep(IDLE_AFTER_CHECK_MS - EARLY_AFTER_CHECK_MS);
    const first = rssMb(child.pid);
    child.kill('SIGHUP');
    await waitForCheck(2);
    await sleep(IDLE_AFTER_CHECK_MS);
    return { early, first, later: rssMb(child.pid) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.on('close', r));
  }
}

/** Medians of `runs` serve processes. */
async function idleRss(home, config, runs, nodeFlags) {
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(await serveRss(home, config, nodeFlags));
  const pick = (key) => round(median(samples.map((s) => s[key])), 1);
  return { early: pick('early'), first: pick('first'), later: pick('later'), samples };
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  const removedVariables = removeStartupVariables(opts.keepEnv);
  checkBuild();
  const scratch = mkdtempSync(join(os.tmpdir(), 'mcpki-bench-renewal-'));
  const cleanup = () => rmSync(scratch, { recursive: true, force: true });
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    const home = join(scratch, 'home');
    mkdirSync(join(scratch, 'deploy'));
    timed([NODE, BIN, '--home', home, 'init']);
    const config = writeConfig(scratch, opts.certs);
    console.log(
      `mcpki renewal benchmark — ${opts.certs} declared certificates, ${opts.due} renewed, ${os.cpus().length} cores, Node ${process.version}`,
    );
    const variables = startupVariablesLine(removedVariables, opts.keepEnv);
    if (variables) console.log(variables);
    const faultMicros = pageFaultMicros();
    console.log(`memory: a page touched for the first time costs ${faultMicros} µs (page fault)`);
    const first = timed([NODE, BIN, '--home', home, 'apply', '-c', config]);
    console.log(
      `first apply (issue ${opts.certs} and write ${opts.certs * 2} target files): ${fmtMs(first.ms)} (untimed setup, for context)`,
    );

    const floorScript = bundleFloor(scratch);
    const samples = { baseline: [], version: [], plan: [], planFloor: [] };
    for (let round = 0; round < opts.runs; round++) {
      samples.baseline.push(timed([NODE, '-e', '0']).ms);
      samples.version.push(timed([NODE, BIN, '--version']).ms);
      const plan = timed([NODE, BIN, '--home', home, '--json', 'renew', '--dry-run', '-c', config]);
      if (JSON.parse(plan.stdout).plan.length !== opts.certs) fail('the plan does not list every certificate');
      samples.plan.push(plan.ms);
      // the floor (bench/floor.cjs): the same inputs read, the same JSON written, no checks
      const floorPlan = timed([NODE, floorScript, 'plan', home, config, SQLITE]);
      if (JSON.parse(floorPlan.stdout).plan.length !== opts.certs)
        fail('the floor plan does not list every certificate');
      samples.planFloor.push(floorPlan.ms);
    }
    const forced = Array.from({ length: opts.due }, (_, i) => ['--force', `c${i}`]).flat();
    // renewals replace files: on a file system slow to create them (bench/README.md) they are slow too
    const createsPerSecond = createRate(scratch);
    console.log(`file system: creates ${createsPerSecond.toLocaleString('en-US')} files/s before the forced renewals`);
    const renew = [];
    for (let round = 0; round < Math.min(3, opts.runs); round++) {
      const result = timed([NODE, BIN, '--home', home, '--json', 'renew', '-c', config, ...forced]);
      const renewed = JSON.parse(result.stdout).items.filter((i) => i.action === 'renewed').length;
      if (renewed !== opts.due) fail(`expected ${opts.due} renewals, got ${renewed}`);
      renew.push(result.ms);
    }
    // the floor: the same service holding one certificate
    const floorHome = join(scratch, 'floor-home');
    mkdirSync(join(scratch, 'floor'));
    timed([NODE, BIN, '--home', floorHome, 'init']);
    const floorConfig = join(scratch, 'floor.yaml');
    writeFileSync(
      floorConfig,
      'version: 1\ncertificates:\n  - name: one\n    names: [one.localhost]\n    targets:\n      - { type: fullchain, path: floor/one.crt }\n      - { type: key, path: floor/one.key }\n',
    );
    timed([NODE, BIN, '--home', floorHome, 'apply', '-c', floorConfig]);
    const serveRuns = Math.min(3, opts.runs);
    const floor = await idleRss(floorHome, floorConfig, serveRuns, []);
    const idle = await idleRss(home, config, serveRuns, []);
    const unitFlags = ['--max-semi-space-size=1']; // as templates/systemd/mcpki.service starts it
    const unit = await idleRss(home, config, serveRuns, unitFlags);
    const rss = Math.max(idle.first, idle.later);

    const results = {
      pageFaultMicros: faultMicros,
      createFilesPerSecond: createsPerSecond,
      baseline: summary(samples.baseline),
      version: summary(samples.version),
      plan: summary(samples.plan),
      planFloor: summary(samples.planFloor),
      renew: summary(renew),
      idleRssMb: round(rss, 1),
      serveRssMb: {
        floor,
        plain: idle,
        unit: { flags: unitFlags, ...unit },
        idleAfterCheckMs: IDLE_AFTER_CHECK_MS,
        earlyAfterCheckMs: EARLY_AFTER_CHECK_MS,
      },
    };
    const planRatio = results.plan.median / results.baseline.median;
    const targets = [
      {
        name: `renew --dry-run of ${opts.certs} / node -e 0`,
        value: round(planRatio),
        limit: TARGETS.planRatio,
        pass: planRatio <= TARGETS.planRatio,
      },
      {
        name: `renewal of ${opts.due} with targets`,
        value: results.renew.median,
        limit: TARGETS.renewMs,
        pass: results.renew.median <= TARGETS.renewMs,
      },
      { name: 'idle RSS of serve', value: rss, limit: TARGETS.idleRssMb, pass: rss <= TARGETS.idleRssMb, unit: 'MB' },
    ];
    console.log('');
    printTable(
      ['measurement', 'median', 'range', 'vs node -e 0', 'target'],
      [
        [
          'node -e 0 (baseline)',
          fmtMs(results.baseline.median),
          `${fmtMs(results.baseline.min)} – ${fmtMs(results.baseline.max)}`,
          '1.00×',
          '',
        ],
        [
          'mcpki --version',
          fmtMs(results.version.median),
          `${fmtMs(results.version.min)} – ${fmtMs(results.version.max)}`,
          fmtRatio(results.version.median / results.baseline.median),
          '',
        ],
        [
          `renew --dry-run (${opts.certs})`,
          fmtMs(results.plan.median),
          `${fmtMs(results.plan.min)} – ${fmtMs(results.plan.max)}`,
          fmtRatio(planRatio),
          `≤ ${TARGETS.planRatio}× ${targets[0].pass ? 'PASS' : 'FAIL'}`,
        ],
        [
          `floor: the same plan (bench/floor.cjs)`,
          fmtMs(results.planFloor.median),
          `${fmtMs(results.planFloor.min)} – ${fmtMs(results.planFloor.max)}`,
          fmtRatio(results.planFloor.median / results.baseline.median),
          `mcpki ${fmtRatio(results.plan.median / results.planFloor.median)} of it`,
        ],
        [
          `renew ${opts.due} (forced, targets written)`,
          fmtMs(results.renew.median),
          `${fmtMs(results.renew.min)} – ${fmtMs(results.renew.max)}`,
          fmtRatio(results.renew.median / results.baseline.median),
          `≤ ${TARGETS.renewMs / 1000} s ${targets[1].pass ? 'PASS' : 'FAIL'}`,
        ],
        [
          `serve idle RSS, ${IDLE_AFTER_CHECK_MS / 1000} s after a check`,
          `${results.idleRssMb} MB`,
          `first ${idle.first}, later ${idle.later}`,
          `floor ${floor.first}`,
          `≤ ${TARGETS.idleRssMb} MB ${targets[2].pass ? 'PASS' : 'FAIL'}`,
        ],
      ],
    );
    console.log('');
    printTable(
      [
        'serve RSS (MB, median of ' + serveRuns + ')',
        `${EARLY_AFTER_CHECK_MS / 1000} s after 1st check`,
        `${IDLE_AFTER_CHECK_MS / 1000} s after 1st`,
        `${IDLE_AFTER_CHECK_MS / 1000} s after a later`,
      ],
      [
        ['1 certificate (floor)', String(floor.early), String(floor.first), String(floor.later)],
        [`${opts.certs} certificates`, String(idle.early), String(idle.first), String(idle.later)],
        [
          `${opts.certs}, node ${unitFlags.join(' ')} (systemd unit)`,
          String(unit.early),
          String(unit.first),
          String(unit.later),
        ],
      ],
    );
    mkdirSync(dirname(opts.out), { recursive: true });
    writeFileSync(
      opts.out,
      JSON.stringify({ benchmark: 'mcpki-renewal', options: opts, firstApplyMs: first.ms, results, targets }, null, 2),
    );
    console.log(`\n${targets.filter((t) => t.pass).length}/${targets.length} targets met; raw samples in ${opts.out}`);
    if (opts.check && !targets.every((t) => t.pass)) process.exitCode = 1;
  } finally {
    cleanup();
  }
}

await main();
