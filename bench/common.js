// Helpers shared by bench/run.js and bench/acme.js: statistics, formatting, progress, finding tools.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'mcpki.js');
const NODE = process.execPath;

/** bench/floor.cjs, the floors the start-up and plan measurements are compared with */
export const FLOOR = join(ROOT, 'bench', 'floor.cjs');
/** better-sqlite3's package folder, for the floors (they load its addon as mcpki does) */
export const SQLITE = dirname(createRequire(join(ROOT, 'package.json')).resolve('better-sqlite3/package.json'));

/**
 * bench/floor.cjs bundled with better-sqlite3's JavaScript into DIR/floor.cjs (esbuild, a development dependency
 * the build uses too), as mcpki's commands are bundled: the floor then pays for none of the per-file loading a
 * program can avoid. Returns the bundle's path.
 */
export function bundleFloor(dir) {
  const { buildSync } = createRequire(join(ROOT, 'package.json'))('esbuild');
  const outfile = join(dir, 'floor.cjs');
  buildSync({
    entryPoints: [FLOOR],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile,
    minifyWhitespace: true,
    logLevel: 'warning',
  });
  return outfile;
}

export const round = (x, digits = 3) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);
export const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
export const fmtRatio = (r) => `${r.toFixed(2)}×`;
export const pad = (text, width) => text + ' '.repeat(Math.max(0, width - text.length));
export const padStart = (text, width) => ' '.repeat(Math.max(0, width - text.length)) + text;

export function median(values) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function summary(samples) {
  return { n: samples.length, median: median(samples), min: Math.min(...samples), max: Math.max(...samples), samples };
}

export function printTable(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells) =>
    cells
      .map((c, i) => (i === 0 ? pad(c ?? '', widths[i]) : padStart(c ?? '', widths[i])))
      .join('  ')
      .trimEnd();
  console.log('  ' + line(header));
  for (const row of rows) console.log('  ' + line(row));
}

export function progress(text) {
  if (process.stderr.isTTY) process.stderr.write(`\r\u001b[K${text}`);
}

export function progressDone() {
  if (process.stderr.isTTY) process.stderr.write('\r\u001b[K');
}

export function findOnPath(name) {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(2);
}

/**
 * A benchmark's command line: `--flag VALUE` or `--flag=VALUE`; -h/--help prints `usage`. `spec` maps each flag
 * to how it is read: `{ int: MIN }` a whole number ≥ MIN, `{ set: VALUE }` takes no argument and stores VALUE,
 * `{ read(value, opts) }` anything else (it may call fail), `{}` a plain string. `key` names the option in the
 * result (default: the flag in camelCase).
 */
export function parseArgs(argv, usage, defaults, spec) {
  const opts = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] =
      argv[i].startsWith('--') && argv[i].includes('=') ? argv[i].split(/=(.*)/s) : [argv[i], undefined];
    if (flag === '-h' || flag === '--help') {
      console.log(usage);
      process.exit(0);
    }
    const rule = spec[flag];
    if (!rule) fail(`unknown option ${argv[i]}\n\n${usage}`);
    const key = rule.key ?? flag.replace(/^--/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());
    if ('set' in rule) {
      opts[key] = rule.set;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) fail(`${flag} needs a value\n\n${usage}`);
    if ('int' in rule) {
      if (!/^\d+$/.test(value) || Number(value) < rule.int)
        fail(`${flag} needs a whole number ≥ ${rule.int}, got ${value}\n\n${usage}`);
      opts[key] = Number(value);
    } else opts[key] = rule.read ? rule.read(value, opts) : value;
  }
  return opts;
}

const BUILD_HINT = 'build first: npm run build';

/** Stops when the command line does not start; warns when dist/ is older than src/. Returns the stale files. */
export function checkBuild() {
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) fail(`dist/index.js is missing: ${BUILD_HINT}`);
  // the command line must start (whatever bin/mcpki.js loads: dist/cli/main.js, or a bundle)
  const probe = spawnSync(NODE, [BIN, '--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (probe.status !== 0)
    fail(
      `\`node bin/mcpki.js --version\` fails: ${
        (probe.stderr || probe.error?.message || '')
          .trim()
          .split('\n')
          .find((l) => /error/i.test(l)) ?? `exit ${probe.status}`
      }\n${BUILD_HINT}`,
    );
  // warn when a source file is newer than its compiled output (numbers would describe old code)
  const stale = [];
  let newestSource = 0;
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const mtime = statSync(path).mtimeMs;
        newestSource = Math.max(newestSource, mtime);
        const out = join(ROOT, 'dist', relative(join(ROOT, 'src'), path)).replace(/\.ts$/, '.js');
        if (!existsSync(out) || statSync(out).mtimeMs < mtime) stale.push(relative(ROOT, path));
      }
    }
  };
  walk(join(ROOT, 'src'));
  // bundles in dist/ (e.g. dist/cli.cjs) must be newer than every source file
  for (const entry of readdirSync(join(ROOT, 'dist'))) {
    if (/\.(c|m)js$/.test(entry) && statSync(join(ROOT, 'dist', entry)).mtimeMs < newestSource)
      stale.push(`dist/${entry} (bundle)`);
  }
  if (stale.length)
    console.error(
      `bench: warning: dist/ is older than ${stale.slice(0, 3).join(', ')}${stale.length > 3 ? ` and ${stale.length - 3} more` : ''}; ${BUILD_HINT}\n`,
    );
  return stale;
}

/**
 * Variables that make every Node process do more at start-up than a bare `node` on a default system:
 * NODE_EXTRA_CA_CERTS (Node parses each certificate of the file before the first line runs: with a system
 * bundle of ~140 certificates, `node -e 0` took 58 ms instead of 21 ms on the project's VM) and NODE_OPTIONS.
 * They are removed from this process's environment, which every measured process inherits, so that the
 * baseline is a bare `node` and mcpki's ratio to it is its own cost (with them, ratios looked up to a third
 * better than they are). `--keep-env` keeps them. Returns what was removed, for the report.
 */
export function removeStartupVariables(keep) {
  const removed = {};
  for (const name of ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS']) {
    if (process.env[name] === undefined) continue;
    removed[name] = process.env[name];
    if (!keep) delete process.env[name];
  }
  return removed;
}

/** The header line about removeStartupVariables. */
export function startupVariablesLine(removed, kept) {
  const names = Object.keys(removed);
  if (names.length === 0) return undefined;
  return kept
    ? `environment: ${names.join(', ')} kept (--keep-env): every process, the baseline too, pays for it at start-up`
    : `environment: ${names.join(', ')} removed for every measured process (each makes Node do more at start-up than a bare node; --keep-env keeps them)`;
}

/**
 * Microseconds the kernel takes to give this process a page it touches for the first time (median of three
 * fresh 32 MiB buffers). A bare machine takes well under 1 µs; a virtual machine can take over 10 µs, and then
 * every page any process touches counts: `node -e 0` alone touches about 1,900.
 */
export function pageFaultMicros(pages = 8192) {
  const samples = [];
  const kept = []; // alive until all three are measured, so that each is a new mapping
  for (let i = 0; i < 3; i++) {
    const buffer = Buffer.allocUnsafeSlow(pages * 4096);
    kept.push(buffer);
    const start = process.hrtime.bigint();
    for (let at = 0; at < buffer.length; at += 4096) buffer[at] = 1;
    samples.push(Number(process.hrtime.bigint() - start) / 1000 / pages);
  }
  return round(median(samples), 2);
}

/**
 * Small files (no fsync) created per second in a fresh folder under `dir`, left there until the caller's
 * scratch is removed (removing them would slow the next creations: see bench/README.md on ext4 without a
 * journal). Shows a file system in a slow phase.
 */
export function createRate(dir, count = 400) {
  const probe = mkdtempSync(join(dir, 'create-probe-'));
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) writeFileSync(join(probe, `f${i}`), 'x');
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  return round((count * 1000) / ms, 0);
}
