// Renewal at scale: N declared local-CA certificates (default 10,000) in one mcpki.yaml.
//   1. `mcpki renew --dry-run` plan time once all are issued (target < 1 s), median of --runs, next to
//      `node -e 0` and `mcpki --version` measured in the same rounds;
//   2. a full renewal of --due certificates (default 1,000, forced) with their targets written (target < 10 s);
//   3. the resident memory of `mcpki serve` holding them, idle after its first check (target < 100 MB).
// Usage: node bench/renewal.js [--certs 10000] [--due 1000] [--runs 5]
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBuild, fail, fmtMs, fmtRatio, median, printTable, round, summary } from './common.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'mcpki.js');
const NODE = process.execPath;
const TARGETS = { planMs: 1000, renewMs: 10_000, idleRssMb: 100 };

function parseArgs(argv) {
  const opts = { certs: 10_000, due: 1000, runs: 5, out: join(ROOT, 'bench', 'results', 'renewal.json') };
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) fail(`${argv[i - 1]} needs a whole number ≥ 1`);
      return v;
    };
    if (argv[i] === '--certs') opts.certs = value();
    else if (argv[i] === '--due') opts.due = value();
    else if (argv[i] === '--runs') opts.runs = value();
    else if (argv[i] === '--out') opts.out = argv[++i];
    else fail(`unknown option ${argv[i]} (options: --certs N --due N --runs N --out FILE)`);
  }
  if (opts.due > opts.certs) fail('--due cannot exceed --certs');
  return opts;
}

function timed(args, env = {}) {
  const started = process.hrtime.bigint();
  const result = spawnSync(args[0], args.slice(1), { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...env }, maxBuffer: 256 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) fail(`${args.slice(1).join(' ')} failed (${result.status}): ${(result.stderr || result.stdout).slice(-2000)}`);
  return { ms, stdout: result.stdout };
}

function writeConfig(dir, n) {
  const lines = ['version: 1', 'certificates:'];
  for (let i = 0; i < n; i++) {
    lines.push(`  - name: c${i}`, `    names: [c${i}.localhost]`, '    targets:', `      - { type: fullchain, path: deploy/c${i}.crt }`, `      - { type: key, path: deploy/c${i}.key }`);
  }
  const path = join(dir, 'mcpki.yaml');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

async function idleRss(home, config) {
  const child = spawn(NODE, [BIN, '--home', home, 'serve', '-c', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  try {
    for (let i = 0; i < 1200 && !log.includes('"check.done"'); i++) await new Promise((r) => setTimeout(r, 100));
    if (!log.includes('"check.done"')) fail('mcpki serve did not finish its first check in 120 s');
    await new Promise((r) => setTimeout(r, 2000)); // idle
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    return Number(status.match(/^VmRSS:\s+(\d+) kB/m)[1]) / 1024;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.on('close', r));
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
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
    console.log(`mcpki renewal benchmark — ${opts.certs} declared certificates, ${opts.due} renewed, ${os.cpus().length} cores, Node ${process.version}`);
    const first = timed([NODE, BIN, '--home', home, 'apply', '-c', config]);
    console.log(`first apply (issue ${opts.certs} and write ${opts.certs * 2} target files): ${fmtMs(first.ms)} (untimed setup, for context)`);

    const samples = { baseline: [], version: [], plan: [] };
    for (let round = 0; round < opts.runs; round++) {
      samples.baseline.push(timed([NODE, '-e', '0']).ms);
      samples.version.push(timed([NODE, BIN, '--version']).ms);
      const plan = timed([NODE, BIN, '--home', home, '--json', 'renew', '--dry-run', '-c', config]);
      if (JSON.parse(plan.stdout).plan.length !== opts.certs) fail('the plan does not list every certificate');
      samples.plan.push(plan.ms);
    }
    const forced = Array.from({ length: opts.due }, (_, i) => ['--force', `c${i}`]).flat();
    const renew = [];
    for (let round = 0; round < Math.min(3, opts.runs); round++) {
      const result = timed([NODE, BIN, '--home', home, '--json', 'renew', '-c', config, ...forced]);
      const renewed = JSON.parse(result.stdout).items.filter((i) => i.action === 'renewed').length;
      if (renewed !== opts.due) fail(`expected ${opts.due} renewals, got ${renewed}`);
      renew.push(result.ms);
    }
    const rss = await idleRss(home, config);

    const results = {
      baseline: summary(samples.baseline),
      version: summary(samples.version),
      plan: summary(samples.plan),
      renew: summary(renew),
      idleRssMb: round(rss, 1),
    };
    const targets = [
      { name: `renew --dry-run of ${opts.certs}`, value: results.plan.median, limit: TARGETS.planMs, pass: results.plan.median < TARGETS.planMs },
      { name: `renewal of ${opts.due} with targets`, value: results.renew.median, limit: TARGETS.renewMs, pass: results.renew.median < TARGETS.renewMs },
      { name: 'idle RSS of serve', value: rss, limit: TARGETS.idleRssMb, pass: rss < TARGETS.idleRssMb, unit: 'MB' },
    ];
    console.log('');
    printTable(
      ['measurement', 'median', 'range', 'vs node -e 0', 'target'],
      [
        ['node -e 0 (baseline)', fmtMs(results.baseline.median), `${fmtMs(results.baseline.min)} – ${fmtMs(results.baseline.max)}`, '1.00×', ''],
        ['mcpki --version', fmtMs(results.version.median), `${fmtMs(results.version.min)} – ${fmtMs(results.version.max)}`, fmtRatio(results.version.median / results.baseline.median), ''],
        [`renew --dry-run (${opts.certs})`, fmtMs(results.plan.median), `${fmtMs(results.plan.min)} – ${fmtMs(results.plan.max)}`, fmtRatio(results.plan.median / results.baseline.median), `< 1 s ${targets[0].pass ? 'PASS' : 'FAIL'}`],
        [`renew ${opts.due} (forced, targets written)`, fmtMs(results.renew.median), `${fmtMs(results.renew.min)} – ${fmtMs(results.renew.max)}`, fmtRatio(results.renew.median / results.baseline.median), `< 10 s ${targets[1].pass ? 'PASS' : 'FAIL'}`],
        ['serve idle RSS', `${results.idleRssMb} MB`, '', '', `< 100 MB ${targets[2].pass ? 'PASS' : 'FAIL'}`],
      ],
    );
    mkdirSync(dirname(opts.out), { recursive: true });
    writeFileSync(opts.out, JSON.stringify({ benchmark: 'mcpki-renewal', options: opts, firstApplyMs: first.ms, results, targets }, null, 2));
    console.log(`\n${targets.filter((t) => t.pass).length}/${targets.length} targets met; raw samples in ${opts.out}`);
  } finally {
    cleanup();
  }
}

await main();
