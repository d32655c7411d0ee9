#!/usr/bin/env node
// mcpki performance benchmark: `npm run bench` (build first: `npm run build`). See bench/README.md.
//
// 1. Start-up: `mcpki issue server` as a spawned process (fresh name each run, prepared home), interleaved
//    with the baseline `node -e 0`, reported as a median and as a ratio to the baseline's median.
//    `mcpki --version` and `mcpki init` are measured in the same rounds for context.
// 2. Batch throughput, ECDSA P-256: `mcpki issue batch FILE --out DIR` (whole process), the library's
//    issueBatch() in this process (no Node start-up), and mkcert spawned once per certificate.
// 3. A table on stdout and every raw sample in bench/results/latest.json.
//
// Plain Node, no dependencies. All scratch files live in one folder under os.tmpdir(), removed only at the
// end: deleting thousands of files between measurements can make the next measurement's file creation
// slower on some file systems (ext4 without a journal skips recently freed inodes one by one).
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  SQLITE,
  bundleFloor,
  checkBuild,
  fail,
  findOnPath,
  fmtMs,
  fmtRatio,
  median,
  createRate,
  pageFaultMicros,
  parseArgs,
  printTable,
  progress,
  progressDone,
  removeStartupVariables,
  round,
  startupVariablesLine,
  summary,
} from './common.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'mcpki.js');
const NODE = process.execPath;
/** The key of the --against tree's samples of a command: 'issue' → 'againstIssue'. */
const againstKey = (key) => `against${key[0].toUpperCase()}${key.slice(1)}`;
/** each measured command and the floor row it is compared with (bench/floor.cjs) */
const FLOOR_OF = [
  ['issue', 'floorIssue'],
  ['version', 'floorPrint'],
  ['list', 'floorList'],
  ['show', 'floorList'],
];

// issue 9 ("Speed"): medians, ratios to `node -e 0` measured in the same rounds
const TARGETS = {
  issueRatio: 1.25, // mcpki issue server / node -e 0, at most (home on the ordinary disk)
  commandRatio: 1.15, // mcpki list, show NAME and --version / node -e 0, at most
  batchCertsPerSecond: 2500, // certificates per second, at least (2,000 P-256, whole process)
};

// ---------------------------------------------------------------------------------------------------
// options

const USAGE = `usage: node bench/run.js [options]    (or: npm run bench -- [options])

  --runs N        spawned runs per command in the start-up test (default 10)
  --warmup N      untimed warm-up rounds before the start-up test (default 2)
  --batch N       certificates per batch (default 2000)
  --repeats N     batch repetitions; the median is reported (default 5)
  --mkcert N      mkcert processes per repetition, 0 to skip (default 200)
  --no-mkcert     skip the mkcert comparison
  --against DIR   another built mcpki tree (e.g. a checkout of main): its \`issue batch\` runs in the same
                  repetitions, and its issue, list, show and --version in the same start-up rounds,
                  interleaved; the tables give this tree over that one
  --only PART     run only "startup" or only "batch"
  --out FILE      result file (default bench/results/latest.json)
  --check         exit with status 1 when a target is missed
  --keep-env      keep NODE_EXTRA_CA_CERTS and NODE_OPTIONS for the measured processes (removed by default:
                  each makes every Node start do more than a bare node does; see bench/README.md)
  -h, --help      this text

Build first: npm run build`;

function parseOptions(argv) {
  return parseArgs(
    argv,
    USAGE,
    {
      runs: 10,
      warmup: 2,
      batch: 2000,
      repeats: 5,
      mkcert: 200,
      out: join(ROOT, 'bench', 'results', 'latest.json'),
      check: false,
      only: undefined,
      against: undefined,
      keepEnv: false,
    },
    {
      '--runs': { int: 1 },
      '--warmup': { int: 0 },
      '--batch': { int: 1 },
      '--repeats': { int: 1 },
      '--mkcert': { int: 0 },
      '--no-mkcert': { key: 'mkcert', set: 0 },
      '--out': {},
      '--against': {
        read: (value) => {
          const bin = join(value, 'bin', 'mcpki.js');
          try {
            readFileSync(bin);
          } catch {
            fail(`--against ${value}: no bin/mcpki.js there (give a built mcpki tree)`);
          }
          return bin;
        },
      },
      '--check': { set: true },
      '--keep-env': { key: 'keepEnv', set: true },
      '--only': {
        read: (value) =>
          value === 'startup' || value === 'batch' ? value : fail(`--only takes startup or batch\n\n${USAGE}`),
      },
    },
  );
}

// ---------------------------------------------------------------------------------------------------
// statistics and formatting

const fmtRate = (r) => `${Math.round(r).toLocaleString('en-US')}/s`;

// ---------------------------------------------------------------------------------------------------
// running processes

/** Runs a command to completion and returns its wall time in milliseconds (spawn to exit). */
function timed(command, args, { env, what } = {}) {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: env ?? process.env,
    maxBuffer: 64 * 1024 * 1024,
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.error) throw new Error(`${what ?? command}: ${result.error.message}`);
  if (result.status !== 0)
    throw new Error(
      `${what ?? command} exited with ${result.status ?? result.signal}:\n${result.stderr?.toString().trim()}`,
    );
  return ms;
}

const mcpki = (...args) => [BIN, ...args];

function commandOutput(command, args) {
  const r = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/**
 * Untimed barrier before a timed batch: flushes what earlier steps left dirty (mkcert does not fsync) and
 * the journal work of deleting the previous repetition's 8,000 files, so that one measurement does not
 * pay for another's clean-up. Best effort: `sync` is absent on Windows.
 */
function settle() {
  spawnSync('sync', [], { stdio: 'ignore' });
}

/** fsync latency of the scratch file system (ms, of 50 small appends): mcpki fsyncs every file it writes. */
function fsyncLatency(dir) {
  const path = join(dir, 'fsync-probe');
  const fd = openSync(path, 'w');
  const lat = [];
  try {
    for (let i = 0; i < 50; i++) {
      writeSync(fd, Buffer.alloc(512, i));
      const start = process.hrtime.bigint();
      fsyncSync(fd);
      lat.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  } finally {
    closeSync(fd);
    unlinkSync(path);
  }
  lat.sort((a, b) => a - b);
  return { p50: round(lat[25]), p90: round(lat[45]), max: round(lat[49]) };
}

/** Bytes a run keeps on disk until its end (4 files and a folder per certificate, ~4 KiB each). */
function diskNeeded(opts) {
  return (
    (opts.batch * (opts.against ? 3 : 2) * (opts.repeats + 1) + opts.mkcert * (opts.repeats + 1)) * 5 * 4096 +
    64 * 1048576
  );
}

// ---------------------------------------------------------------------------------------------------
// checks

function machineInfo(mkcertPath) {
  const cpus = os.cpus();
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const depVersion = (name) => {
    try {
      return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      return undefined;
    }
  };
  return {
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism?.() ?? cpus.length,
    totalMemoryMiB: Math.round(os.totalmem() / 1048576),
    loadAverage: os.loadavg().map((x) => round(x, 2)),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    openssl: process.versions.openssl,
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
    nodeOptions: process.env.NODE_OPTIONS || null,
    tmpdir: os.tmpdir(),
    mcpkiVersion: pkg.version,
    gitCommit: commandOutput('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) ?? null,
    dependencies: { commander: depVersion('commander'), 'better-sqlite3': depVersion('better-sqlite3') },
    mkcert: mkcertPath ? { path: mkcertPath, version: commandOutput(mkcertPath, ['-version']) ?? 'unknown' } : null,
  };
}

// ---------------------------------------------------------------------------------------------------
// 1. start-up: one command per process

function benchStartup(opts, scratch) {
  const home = join(scratch, 'startup-home');
  timed(NODE, mcpki('--home', home, 'init'), { what: 'mcpki init (prepare)' });
  timed(NODE, mcpki('--home', home, 'issue', 'server', 'shown', 'shown.localhost'), { what: 'mcpki issue (prepare)' });
  let serial = 0;
  const issueArgs = () => {
    const name = `startup-${++serial}`;
    return mcpki('--home', home, 'issue', 'server', name, `${name}.localhost`, '127.0.0.1');
  };
  let inits = 0;
  const initArgs = () => mcpki('--home', join(scratch, `init-${++inits}`), 'init');
  // --against: the other tree's issue, list, show and --version in the same rounds, with its own home
  const other = opts.against;
  const otherHome = join(scratch, 'startup-home-against');
  let otherSerial = 0;
  if (other) {
    timed(NODE, [other, '--home', otherHome, 'init'], { what: 'against: mcpki init (prepare)' });
    timed(NODE, [other, '--home', otherHome, 'issue', 'server', 'shown', 'shown.localhost'], {
      what: 'against: mcpki issue (prepare)',
    });
  }
  const otherIssueArgs = () => {
    const name = `startup-${++otherSerial}`;
    return [other, '--home', otherHome, 'issue', 'server', name, `${name}.localhost`, '127.0.0.1'];
  };
  const againstSteps = other
    ? [
        ['againstIssue', () => timed(NODE, otherIssueArgs(), { what: 'against: mcpki issue server' })],
        ['againstVersion', () => timed(NODE, [other, '--version'], { what: 'against: mcpki --version' })],
        ['againstList', () => timed(NODE, [other, '--home', otherHome, 'list'], { what: 'against: mcpki list' })],
        [
          'againstShow',
          () => timed(NODE, [other, '--home', otherHome, 'show', 'shown'], { what: 'against: mcpki show' }),
        ],
      ]
    : [];
  // the floors (bench/floor.cjs): the same durable work done by a bare script, in a folder of its own
  const floorDir = join(scratch, 'startup-floor');
  const floorScript = bundleFloor(scratch);
  timed(NODE, [floorScript, 'prepare', floorDir, SQLITE], { what: 'floor (prepare)' });
  let floorSerial = 0;
  const floor = (...args) => [floorScript, ...args];
  const mine = [
    ['baseline', () => timed(NODE, ['-e', '0'], { what: 'node -e 0' })],
    [
      'floorIssue',
      () =>
        timed(NODE, floor('issue', floorDir, SQLITE, join(home, 'ca'), `f${++floorSerial}`), { what: 'floor issue' }),
    ],
    ['issue', () => timed(NODE, issueArgs(), { what: 'mcpki issue server' })],
    ['floorPrint', () => timed(NODE, floor('print'), { what: 'floor print' })],
    ['version', () => timed(NODE, mcpki('--version'), { what: 'mcpki --version' })],
    ['floorList', () => timed(NODE, floor('list', floorDir, SQLITE), { what: 'floor list' })],
    ['list', () => timed(NODE, mcpki('--home', home, 'list'), { what: 'mcpki list' })],
    ['show', () => timed(NODE, mcpki('--home', home, 'show', 'shown'), { what: 'mcpki show' })],
    ['init', () => timed(NODE, initArgs(), { what: 'mcpki init' })],
  ];
  // each of the other tree's commands next to this tree's same command: after it in even rounds, before it in
  // odd ones, since a command that follows a heavier one (an issue) starts with colder caches
  const againstOf = new Map(againstSteps.map((step) => [step[0], step]));
  const pairedSteps = (otherFirst) =>
    mine.flatMap((step) => {
      const against = againstOf.get(againstKey(step[0]));
      if (!against) return [step];
      return otherFirst ? [against, step] : [step, against];
    });
  const steps = pairedSteps(false);
  const stepsOtherFirst = pairedSteps(true);
  for (let w = 0; w < opts.warmup; w++) {
    progress(`start-up: warm-up ${w + 1}/${opts.warmup}`);
    for (const [, run] of steps) run();
  }
  const samples = Object.fromEntries(mine.map(([key]) => [key, []]));
  for (const [key] of againstSteps) samples[key] = [];
  // CPU time of each command's processes, summed over the rounds (childrenCpuMs counts in 10 ms steps, but
  // the kernel adds each reaped child's exact time: the sum over N runs is right to 10 ms, the mean to 10/N)
  const cpu = Object.fromEntries(Object.keys(samples).map((key) => [key, 0]));
  for (let r = 0; r < opts.runs; r++) {
    progress(`start-up: round ${r + 1}/${opts.runs}`);
    // one round = baseline, issue, version, init: noise that lasts a moment hits the baseline and mcpki alike
    for (const [key, run] of r % 2 === 0 ? steps : stepsOtherFirst) {
      const before = childrenCpuMs();
      samples[key].push(run());
      cpu[key] += childrenCpuMs() - before;
    }
  }
  progressDone();
  // the issued certificates really exist (a silent no-op would look fast)
  const issued = readdirSync(join(home, 'certs')).length;
  if (issued !== serial + 1)
    throw new Error(`expected ${serial + 1} issued certificates in ${home}/certs, found ${issued}`);
  const floorIssued = readdirSync(join(floorDir, 'certs')).length;
  if (floorIssued !== floorSerial)
    throw new Error(`expected ${floorSerial} floor certificates in ${floorDir}/certs, found ${floorIssued}`);

  const base = median(samples.baseline);
  const result = {};
  for (const [key, values] of Object.entries(samples)) {
    const s = summary(values.map((v) => round(v)));
    // paired ratios (sample i over the baseline of the same round) as a cross-check of the ratio of medians
    result[key] = {
      ...s,
      ratioToBaseline: round(median(values) / base),
      medianPairedRatio: round(median(values.map((v, i) => v / samples.baseline[i]))),
      // CPU time (user + system) per process, a mean: what the command costs whatever the disk and the load do
      // to its wall time; null where /proc/self/stat is missing
      cpuMeanMs: Number.isFinite(cpu[key]) ? round(cpu[key] / opts.runs, 1) : null,
      cpuRatioToBaseline: Number.isFinite(cpu[key]) && cpu.baseline > 0 ? round(cpu[key] / cpu.baseline) : null,
    };
  }
  // each command over its floor: ratio of medians, and the median of per-round ratios
  for (const [key, floorKey] of FLOOR_OF) {
    result[key].ratioToFloor = round(median(samples[key]) / median(samples[floorKey]));
    result[key].medianPairedRatioToFloor = round(median(samples[key].map((v, i) => v / samples[floorKey][i])));
  }
  // this tree over the other, per command: ratio of medians, and the median of per-round ratios
  for (const key of ['issue', 'version', 'list', 'show']) {
    const theirs = samples[againstKey(key)];
    if (!theirs) continue;
    result[key].ratioToAgainst = round(median(samples[key]) / median(theirs));
    result[key].medianPairedRatioToAgainst = round(median(samples[key].map((v, i) => v / theirs[i])));
  }
  if (other) result.againstBin = other;
  return result;
}

// ---------------------------------------------------------------------------------------------------
// 2. batch throughput

function batchNames(n) {
  return Array.from({ length: n }, (_, i) => `b${i + 1}`);
}

function batchFile(names) {
  return names.map((name) => `server ${name} ${name}.localhost\n`).join('');
}

/** Private keys written under `dir`, whatever the layout (DIR/NAME.key or DIR/NAME/NAME.key). */
function countKeys(dir) {
  return readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('.key')).length;
}

/**
 * CPU time (user + system, ms) of the child processes this one has waited for, their own children included:
 * cutime + cstime of /proc/self/stat (Linux, 10 ms steps); undefined elsewhere. Machine load stretches wall
 * time far more than CPU time, so the batch reports both.
 */
function childrenCpuMs() {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) * 10; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/**
 * `mcpki issue batch FILE --out DIR` in a fresh home: wall time of the whole process and its CPU time
 * (`bin`: another tree's).
 */
function batchProcess(scratch, file, n, tag, bin = BIN) {
  const home = join(scratch, `batch-home-${tag}`);
  const out = join(scratch, `batch-out-${tag}`);
  timed(NODE, [bin, '--home', home, 'init'], { what: 'mcpki init (prepare)' });
  settle();
  const cpuBefore = childrenCpuMs();
  const ms = timed(NODE, [bin, '--home', home, 'issue', 'batch', file, '--out', out], { what: 'mcpki issue batch' });
  const cpuAfter = childrenCpuMs();
  const made = countKeys(out);
  if (made !== n) throw new Error(`mcpki issue batch: expected ${n} keys under ${out}, found ${made}`);
  return { ms, cpuMs: cpuBefore === undefined ? undefined : cpuAfter - cpuBefore };
}

/**
 * The library in this process: createContext + initCa (untimed), then parseBatch + issueBatch (timed), with
 * the output folder passed the way `issue batch --out DIR` passes it (as the requests' default outDir).
 */
async function batchInProcess(lib, scratch, text, n, tag) {
  const home = join(scratch, `lib-home-${tag}`);
  const out = join(scratch, `lib-out-${tag}`);
  const context = lib.createContext({ home });
  try {
    lib.initCa(context);
    settle();
    const start = process.hrtime.bigint();
    const issued = await lib.issueBatch(context, lib.parseBatch(text, { outDir: out }));
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (issued.length !== n) throw new Error(`issueBatch returned ${issued.length} certificates, expected ${n}`);
    const made = countKeys(out);
    if (made !== n) throw new Error(`issueBatch: expected ${n} keys under ${out}, found ${made}`);
    return ms;
  } finally {
    context.close();
  }
}

/** mkcert, one process per certificate, CAROOT in a scratch folder whose CA was created beforehand. */
function mkcertLoop(mkcertPath, env, scratch, names, tag) {
  const out = join(scratch, `mkcert-out-${tag}`);
  mkdirSync(out);
  settle();
  const start = process.hrtime.bigint();
  for (const name of names) {
    timed(
      mkcertPath,
      ['-ecdsa', '-cert-file', join(out, `${name}.crt`), '-key-file', join(out, `${name}.key`), `${name}.localhost`],
      { env, what: 'mkcert' },
    );
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const made = readdirSync(out).filter((f) => f.endsWith('.crt')).length;
  if (made !== names.length) throw new Error(`mkcert: expected ${names.length} certificates in ${out}, found ${made}`);
  return ms;
}

/**
 * The physical ceiling: `openssl speed -seconds 3 ecdsap256` signatures per second, on every core at once
 * (`-multi`). OpenSSL 3.0 does not time P-256 key generation; it is one fixed-base scalar multiplication, as
 * a signature is, so a certificate (one key, one signature) is counted as two signatures.
 */
function opensslCeiling() {
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const r = spawnSync(
    'openssl',
    ['speed', '-seconds', '3', ...(cores > 1 ? ['-multi', String(cores)] : []), 'ecdsap256'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  // "256 bits ecdsa (nistp256)   0.0000s   0.0001s  49843.5  18834.6" (with -multi: "ecdsa (nistp256) ... sign/s verify/s" summed)
  const line = (r.stdout ?? '')
    .split('\n')
    .reverse()
    .find((l) => /nistp256/.test(l));
  const numbers = line?.match(/[\d.]+(?=\s|$)/g)?.map(Number);
  if (r.status !== 0 || !numbers || numbers.length < 2) return null;
  const signPerSecond = numbers[numbers.length - 2];
  return {
    command: `openssl speed -seconds 3${cores > 1 ? ` -multi ${cores}` : ''} ecdsap256`,
    signPerSecond,
    certsPerSecond: round(signPerSecond / 2, 1),
  };
}

async function benchBatch(opts, scratch, mkcertPath) {
  const lib = await import(pathToFileURL(join(ROOT, 'dist', 'index.js')).href);
  const names = batchNames(opts.batch);
  const text = batchFile(names);
  const file = join(scratch, 'batch.txt');
  writeFileSync(file, text);

  // warm-up: page cache for node, the modules and better-sqlite3's addon; JIT for the in-process path
  const warmNames = names.slice(0, Math.min(50, names.length));
  const warmText = batchFile(warmNames);
  const warmFile = join(scratch, 'warm.txt');
  writeFileSync(warmFile, warmText);
  progress('batch: warm-up');
  batchProcess(scratch, warmFile, warmNames.length, 'warm');
  if (opts.against) batchProcess(scratch, warmFile, warmNames.length, 'warm-against', opts.against);
  await batchInProcess(lib, scratch, warmText, warmNames.length, 'warm');

  let mkcertEnv;
  const mkcertNames = names.slice(0, Math.min(opts.mkcert, names.length));
  if (mkcertPath && mkcertNames.length) {
    const caroot = join(scratch, 'mkcert-caroot');
    mkdirSync(caroot);
    mkcertEnv = { ...process.env, CAROOT: caroot };
    // first run creates mkcert's CA (untimed), as `mcpki init` is untimed
    const first = join(scratch, 'mkcert-first');
    mkdirSync(first);
    timed(
      mkcertPath,
      ['-ecdsa', '-cert-file', join(first, 'x.crt'), '-key-file', join(first, 'x.key'), 'x.localhost'],
      { env: mkcertEnv, what: 'mkcert (create CA)' },
    );
  }

  const samples = { process: [], against: [], inProcess: [], mkcert: [], processCpu: [], againstCpu: [] };
  const processRun = (list, cpuList, run) => {
    const { ms, cpuMs } = run;
    list.push(ms);
    if (cpuMs !== undefined) cpuList.push(cpuMs);
  };
  for (let r = 0; r < opts.repeats; r++) {
    // interleaved: process, in-process, mkcert, then again
    progress(`batch: repetition ${r + 1}/${opts.repeats}: mcpki issue batch (${opts.batch})`);
    processRun(samples.process, samples.processCpu, batchProcess(scratch, file, opts.batch, r));
    if (opts.against) {
      progress(`batch: repetition ${r + 1}/${opts.repeats}: issue batch of ${opts.against} (${opts.batch})`);
      processRun(
        samples.against,
        samples.againstCpu,
        batchProcess(scratch, file, opts.batch, `against-${r}`, opts.against),
      );
    }
    progress(`batch: repetition ${r + 1}/${opts.repeats}: issueBatch() in-process (${opts.batch})`);
    samples.inProcess.push(await batchInProcess(lib, scratch, text, opts.batch, r));
    if (mkcertEnv) {
      progress(`batch: repetition ${r + 1}/${opts.repeats}: mkcert ×${mkcertNames.length}`);
      samples.mkcert.push(mkcertLoop(mkcertPath, mkcertEnv, scratch, mkcertNames, r));
    }
  }
  progressDone();

  const rate = (count, values) => {
    const s = summary(values.map((v) => round(v)));
    return {
      certificates: count,
      wallMs: s,
      certsPerSecond: summary(values.map((v) => round((count * 1000) / v, 1))),
      medianCertsPerSecond: round((count * 1000) / s.median, 1),
    };
  };
  const result = {
    keyType: 'ec-p256',
    process: rate(opts.batch, samples.process),
    inProcess: rate(opts.batch, samples.inProcess),
    mkcert: null,
    against: null,
  };
  // CPU time of the whole process (its children too: the sync shell): certificates per CPU-second
  const cpu = (count, values) =>
    values.length
      ? { cpuMs: summary(values), certsPerCpuSecond: round((count * 1000) / median(values), 1) }
      : { cpuMs: null, certsPerCpuSecond: null };
  Object.assign(result.process, cpu(opts.batch, samples.processCpu));
  if (samples.against.length) {
    result.against = {
      ...rate(opts.batch, samples.against),
      ...cpu(opts.batch, samples.againstCpu),
      bin: opts.against,
    };
    // per repetition: this tree's time over the other's, measured back to back
    result.ratioProcessToAgainst = round(result.process.medianCertsPerSecond / result.against.medianCertsPerSecond, 2);
    result.medianPairedRatioToAgainst = round(median(samples.against.map((ms, i) => ms / samples.process[i])), 2);
  }
  result.ceiling = opensslCeiling();
  if (result.ceiling)
    result.ratioProcessToCeiling = round(result.process.medianCertsPerSecond / result.ceiling.certsPerSecond, 3);
  if (samples.mkcert.length) {
    result.mkcert = {
      ...rate(mkcertNames.length, samples.mkcert),
      command: 'mkcert -ecdsa -cert-file F -key-file K NAME.localhost (one process per certificate)',
    };
    result.ratioProcessToMkcert = round(result.process.medianCertsPerSecond / result.mkcert.medianCertsPerSecond, 2);
    result.ratioInProcessToMkcert = round(
      result.inProcess.medianCertsPerSecond / result.mkcert.medianCertsPerSecond,
      2,
    );
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  const removedVariables = removeStartupVariables(opts.keepEnv);
  const stale = checkBuild();
  const mkcertPath = opts.mkcert > 0 ? findOnPath('mkcert') : undefined;
  const machine = machineInfo(mkcertPath);
  const started = new Date();
  const t0 = performance.now();

  console.log(
    `mcpki ${machine.mcpkiVersion}${machine.gitCommit ? ` (${machine.gitCommit})` : ''} benchmark — ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, ${machine.platform}`,
  );
  const variables = startupVariablesLine(removedVariables, opts.keepEnv);
  if (variables) console.log(variables);
  machine.startupVariables = { names: Object.keys(removedVariables), kept: opts.keepEnv };
  if (opts.mkcert > 0 && !mkcertPath)
    console.log('mkcert not found on PATH: skipping the mkcert comparison (install it, e.g. apt-get install mkcert)');
  const busy = machine.loadAverage[0] > machine.cores * 0.75;
  if (busy)
    console.log(
      `warning: 1-minute load average ${machine.loadAverage[0]} on ${machine.cores} cores: the machine is busy, expect noisy numbers (ratios suffer less than absolute times)`,
    );

  const scratch = mkdtempSync(join(os.tmpdir(), 'mcpki-bench-'));
  const cleanup = () => rmSync(scratch, { recursive: true, force: true });
  const onSignal = (signal) => {
    progressDone();
    cleanup();
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  if (opts.only === 'startup') opts.mkcert = 0;
  const need = opts.only === 'startup' ? 64 * 1048576 : diskNeeded(opts);
  try {
    const fsStat = statfsSync(scratch);
    const free = fsStat.bavail * fsStat.bsize;
    if (free < need) {
      cleanup();
      fail(
        `${os.tmpdir()} has ${Math.round(free / 1048576)} MiB free; this run keeps about ${Math.round(need / 1048576)} MiB until it ends (smaller --batch or --repeats, or TMPDIR=elsewhere)`,
      );
    }
  } catch {
    // statfs unsupported: go ahead
  }
  let startup, batch;
  try {
    machine.fsyncLatencyMs = fsyncLatency(scratch);
    machine.createFilesPerSecond = { atStart: createRate(scratch) };
    machine.pageFaultMicros = pageFaultMicros();
    console.log(
      `scratch file system (${os.tmpdir()}): fsync p50 ${machine.fsyncLatencyMs.p50} ms, p90 ${machine.fsyncLatencyMs.p90} ms; creates ${machine.createFilesPerSecond.atStart.toLocaleString('en-US')} files/s`,
    );
    console.log(`memory: a page touched for the first time costs ${machine.pageFaultMicros} µs (page fault)`);

    if (opts.only !== 'batch') startup = benchStartup(opts, scratch);
    if (opts.only !== 'startup') batch = await benchBatch(opts, scratch, mkcertPath);
    machine.createFilesPerSecond.atEnd = createRate(scratch);
  } finally {
    cleanup();
  }

  const targets = [];
  if (startup) {
    targets.push({
      name: 'issue server / node -e 0',
      metric: 'startup.issue.ratioToBaseline',
      value: startup.issue.ratioToBaseline,
      target: `<= ${TARGETS.issueRatio}`,
      pass: startup.issue.ratioToBaseline <= TARGETS.issueRatio,
    });
    for (const [key, command] of [
      ['list', 'list'],
      ['show', 'show NAME'],
      ['version', '--version'],
    ]) {
      targets.push({
        name: `${command} / node -e 0`,
        metric: `startup.${key}.ratioToBaseline`,
        value: startup[key].ratioToBaseline,
        target: `<= ${TARGETS.commandRatio}`,
        pass: startup[key].ratioToBaseline <= TARGETS.commandRatio,
      });
    }
  }
  if (batch) {
    for (const [key, name] of [
      ['process', 'issue batch, whole process, certs/s'],
      ['inProcess', 'issueBatch() in-process, certs/s'],
    ]) {
      targets.push({
        name,
        metric: `batch.${key}.medianCertsPerSecond`,
        value: batch[key].medianCertsPerSecond,
        target: `>= ${TARGETS.batchCertsPerSecond}`,
        pass: batch[key].medianCertsPerSecond >= TARGETS.batchCertsPerSecond,
      });
    }
  }
  const verdict = (t) => (t.pass ? 'PASS' : 'FAIL');

  const targetFor = (metric) => targets.find((t) => t.metric === metric);
  if (startup) {
    console.log(
      `\nstart-up: spawned processes, ${opts.runs} interleaved rounds after ${opts.warmup} warm-up, median [min–max]`,
    );
    const startupRow = (label, s, target) => [
      label,
      fmtMs(s.median),
      `[${fmtMs(s.min)} – ${fmtMs(s.max)}]`,
      fmtRatio(s.ratioToBaseline),
      s.cpuMeanMs === null || s.cpuRatioToBaseline === null
        ? '–'
        : `${fmtMs(s.cpuMeanMs)} ${fmtRatio(s.cpuRatioToBaseline)}`,
      s.ratioToFloor === undefined ? '' : fmtRatio(s.ratioToFloor),
      target ?? '',
    ];
    printTable(
      ['command', 'median', 'range', 'ratio', 'CPU (mean)', 'over floor', 'target'],
      [
        startupRow('node -e 0 (baseline)', startup.baseline),
        startupRow('floor: print a line', startup.floorPrint),
        startupRow('floor: issue (key, 4 files, 1 row)', startup.floorIssue),
        startupRow('floor: list (1 query)', startup.floorList),
        startupRow(
          'mcpki issue server NAME …',
          startup.issue,
          `≤ ${TARGETS.issueRatio}× ${verdict(targetFor('startup.issue.ratioToBaseline'))}`,
        ),
        startupRow(
          'mcpki list',
          startup.list,
          `≤ ${TARGETS.commandRatio}× ${verdict(targetFor('startup.list.ratioToBaseline'))}`,
        ),
        startupRow(
          'mcpki show NAME',
          startup.show,
          `≤ ${TARGETS.commandRatio}× ${verdict(targetFor('startup.show.ratioToBaseline'))}`,
        ),
        startupRow(
          'mcpki --version',
          startup.version,
          `≤ ${TARGETS.commandRatio}× ${verdict(targetFor('startup.version.ratioToBaseline'))}`,
        ),
        startupRow('mcpki init (fresh home)', startup.init),
        ...(startup.againstBin
          ? [
              ['issue', 'issue server NAME …'],
              ['list', 'list'],
              ['show', 'show NAME'],
              ['version', '--version'],
            ].map(([key, label]) =>
              startupRow(
                `against: ${label}`,
                startup[againstKey(key)],
                `this tree ${fmtRatio(startup[key].ratioToAgainst)} (paired ${fmtRatio(startup[key].medianPairedRatioToAgainst)})`,
              ),
            )
          : []),
      ],
    );
    if (startup.againstBin) console.log(`  against: ${startup.againstBin}`);
  }

  if (batch) {
    console.log(
      `\nbatch: ${opts.batch.toLocaleString('en-US')} ec-p256 server certificates, ${opts.repeats} repetitions, median [min–max]`,
    );
    const batchRow = (label, r, target) => [
      label,
      String(r.certificates),
      fmtMs(r.wallMs.median),
      `[${fmtMs(r.wallMs.min)} – ${fmtMs(r.wallMs.max)}]`,
      fmtRate(r.medianCertsPerSecond),
      target ?? '',
    ];
    const rows = [
      batchRow(
        'mcpki issue batch (whole process)',
        batch.process,
        `≥ ${TARGETS.batchCertsPerSecond}/s ${verdict(targetFor('batch.process.medianCertsPerSecond'))}`,
      ),
      batchRow(
        'issueBatch() in-process',
        batch.inProcess,
        `≥ ${TARGETS.batchCertsPerSecond}/s ${verdict(targetFor('batch.inProcess.medianCertsPerSecond'))}`,
      ),
    ];
    if (batch.against) rows.push(batchRow(`issue batch, ${relative(process.cwd(), batch.against.bin)}`, batch.against));
    if (batch.mkcert) rows.push(batchRow('mkcert -ecdsa, 1 process/cert', batch.mkcert));
    printTable(['', 'certs', 'wall', 'range', 'rate', 'target'], rows);
    if (batch.ceiling) {
      console.log(
        `  ceiling (${batch.ceiling.command}: ${fmtRate(batch.ceiling.signPerSecond)} signatures, so ${fmtRate(batch.ceiling.certsPerSecond)} key + signature): mcpki reaches ${(batch.ratioProcessToCeiling * 100).toFixed(1)}%`,
      );
    }
    if (batch.process.cpuMs) {
      const cpuLine = (label, r) =>
        `${label} ${fmtMs(r.cpuMs.median)} of CPU (user + system) = ${Math.round(r.certsPerCpuSecond).toLocaleString('en-US')} certificates per CPU-second`;
      console.log(
        `  CPU time, whole process: ${cpuLine('this tree', batch.process)}${batch.against?.cpuMs ? `; ${cpuLine('the other', batch.against)}` : ''}`,
      );
    }
    if (batch.against) {
      console.log(
        `  this tree / ${batch.against.bin}: ${fmtRatio(batch.ratioProcessToAgainst)} (median of per-repetition ratios ${fmtRatio(batch.medianPairedRatioToAgainst)})`,
      );
    }
    if (batch.mkcert) {
      console.log(
        `  mcpki / mkcert throughput: ${fmtRatio(batch.ratioProcessToMkcert)} (whole process), ${fmtRatio(batch.ratioInProcessToMkcert)} (in-process)`,
      );
    }
  }

  const elapsed = (performance.now() - t0) / 1000;
  const result = {
    benchmark: 'mcpki',
    schema: 1,
    startedAt: started.toISOString(),
    durationSeconds: round(elapsed, 1),
    options: {
      only: opts.only ?? 'all',
      runs: opts.runs,
      warmup: opts.warmup,
      batch: opts.batch,
      repeats: opts.repeats,
      mkcert: batch?.mkcert ? batch.mkcert.certificates : 0,
      against: opts.against ?? null,
    },
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((x) => round(x, 2)) },
    busyMachineWarning: busy,
    staleBuild: stale,
    startup: startup ?? null,
    batch: batch ?? null,
    targets,
    allTargetsPass: targets.every((t) => t.pass),
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(result, null, 2) + '\n');
  console.log(
    `\n${targets.filter((t) => t.pass).length}/${targets.length} targets met; ${elapsed.toFixed(0)} s; raw samples in ${relative(process.cwd(), opts.out) || opts.out}`,
  );
  if (opts.check && !result.allTargetsPass) process.exitCode = 1;
}

main().catch((error) => {
  progressDone();
  console.error(`bench: ${error.stack ?? error}`);
  process.exitCode = 1;
});
