// Renewal at fleet scale: what a plan or a check over many declared certificates costs in system calls, and
// that the batched paths give the same answers as the one-at-a-time ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, mcpki, run, storeEnv, tempDir } from './helpers.js';

/** `count` certificates, each with a fullchain and a key target in deploy/ (a file set). */
function fleet(count) {
  const temp = tempDir('mcpki-fleet-');
  const home = join(temp.dir, 'home');
  assert.equal(mcpki(['--home', home, 'init']).status, 0);
  const names = Array.from({ length: count }, (_, i) => `f${i}`);
  const config = join(temp.dir, 'mcpki.yaml');
  writeFileSync(
    config,
    'version: 1\ncertificates:\n' +
      names
        .map(
          (n) =>
            `  - name: ${n}\n    names: [${n}.localhost]\n    targets:\n` +
            `      - { type: fullchain, path: deploy/${n}.crt }\n      - { type: key, path: deploy/${n}.key }\n`,
        )
        .join(''),
  );
  return { ...temp, home, config, names, deploy: join(temp.dir, 'deploy') };
}

/** Runs mcpki under `strace -f -c` for the given calls; returns its result and the count of each call. */
function traced(f, calls, args) {
  const counts = join(f.dir, `strace-${Math.random().toString(16).slice(2)}.txt`);
  const result = run(
    'strace',
    ['-f', '-c', '-o', counts, '-e', `trace=${calls.join(',')}`, process.execPath, BIN, '--home', f.home, ...args],
    { timeout: 120_000, env: { ...process.env, ...storeEnv(['--home', f.home]) } },
  );
  const seen = {};
  for (const line of readFileSync(counts, 'utf8').split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (m) seen[m[2]] = Number(m[1]);
  }
  return { result, seen };
}

test('a plan over 150 certificates reads the inventory in one read transaction, not two locks per certificate', (t) => {
  if (run('strace', ['-V']).status !== 0) return t.skip('strace is not installed');
  if (process.env.MCPKI_TEST_POSTGRES) return t.skip('counts SQLite file locks');
  const f = fleet(150);
  try {
    assert.equal(mcpki(['--home', f.home, 'apply', '-c', f.config]).status, 0);
    const { result, seen } = traced(f, ['fcntl'], ['--json', 'renew', '--dry-run', '-c', f.config]);
    assert.equal(result.status, 0, result.stderr);
    const plan = JSON.parse(result.stdout).plan;
    assert.equal(plan.length, 150);
    const list = mcpki(['--home', f.home, '--json', 'list']).json;
    for (const item of plan) {
      const record = (list.certificates ?? list).find((c) => c.name === item.name);
      assert.equal(item.serial, record.serial, `${item.name}: the plan names the certificate on record`);
      assert.equal(item.due, false, `${item.name}: just issued, not due`);
    }
    // SQLite takes and drops a WAL read lock with fcntl around every statement outside a transaction: one
    // lookup of the certificate and one of its renewal state per name made about 8 calls per certificate
    assert.ok((seen.fcntl ?? 0) < 150, `fewer fcntl calls than certificates, got ${JSON.stringify(seen)}`);
  } finally {
    f.cleanup();
  }
});

/**
 * A script that starts the service (lowMemory as given) on an empty declaration, then runs a hot function and
 * prints V8's optimization status of it (bit 0x10: optimized by TurboFan).
 */
function optimizedAfterStart(lowMemory) {
  const temp = tempDir('mcpki-fleet-opt-');
  try {
    const config = join(temp.dir, 'mcpki.yaml');
    writeFileSync(config, 'version: 1\ncertificates: []\n');
    const script = `
      import { createContext, loadConfig, startService } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
      const context = createContext({ home: ${JSON.stringify(join(temp.dir, 'home'))} });
      const service = await startService(context, {
        loadConfig: () => loadConfig(${JSON.stringify(config)}),
        schedule: '0 0 1 1 *',
        lowMemory: ${lowMemory},
        scheduler: { runOnStart: false },
      });
      function hot(n) { let s = 0; for (let i = 0; i < n; i++) s += (i * 7) % 13; return s; }
      %PrepareFunctionForOptimization(hot);
      hot(1000); hot(1000);
      %OptimizeFunctionOnNextCall(hot);
      hot(1000);
      for (let i = 0; i < 20000; i++) hot(100);
      console.log(%GetOptimizationStatus(hot));
      await service.stop();`;
    const file = join(temp.dir, 'probe.mjs');
    writeFileSync(file, script);
    const result = run(process.execPath, ['--allow-natives-syntax', file], { timeout: 60_000 });
    assert.equal(result.status, 0, result.stderr);
    return (Number(result.stdout.trim()) & 0x10) !== 0;
  } finally {
    temp.cleanup();
  }
}

test('serve with lowMemory turns V8 optimizing compiler off for the process; without it the process keeps it', () => {
  if (process.env.MCPKI_TEST_POSTGRES) return; // no inventory is opened here
  assert.equal(optimizedAfterStart(false), true, 'a hot function is optimized in an ordinary process');
  assert.equal(optimizedAfterStart(true), false, 'and not once the low-memory service started');
});

test('a large mcpki.yaml and its cached parsed form are read in 64 KiB pieces, and the cache is used', async () => {
  const { readInputPieces } = await import('../dist/fs/read.js');
  const { loadConfig } = await import('../dist/index.js');
  const f = fleet(3000); // about 450 KiB of YAML, over 1 MiB of cached JSON
  try {
    const pieces = [];
    const buffers = new Set();
    readInputPieces(f.config, { what: 'declaration file', maxBytes: 4 * 1024 * 1024 }, (piece) => {
      pieces.push(Buffer.from(piece));
      buffers.add(piece.buffer);
    });
    assert.ok(pieces.length > 4, `several pieces, got ${pieces.length}`);
    assert.ok(pieces.every((c) => c.length <= 64 * 1024));
    assert.equal(buffers.size, 1, 'one buffer, reused for every piece');
    assert.ok(Buffer.concat(pieces).equals(readFileSync(f.config)), 'the pieces are the file');
    const cacheDir = join(f.home, 'cache');
    const first = loadConfig(f.config, { cacheDir });
    const entry = readdirSync(cacheDir).find((name) => name.startsWith('config-'));
    const cached = join(cacheDir, entry);
    const written = statSync(cached).mtimeMs;
    assert.ok(statSync(cached).size > 1024 * 1024, 'the cached form spans many pieces');
    const second = loadConfig(f.config, { cacheDir });
    assert.deepEqual(second, first, 'the cached form is the parsed form');
    assert.equal(statSync(cached).mtimeMs, written, 'read from the cache, not written again');
    // one byte changed deep in the cached JSON (not in the first piece): the MAC over the pieces refuses it
    const original = readFileSync(cached);
    const bytes = Buffer.from(original);
    const at = bytes.indexOf('f2999');
    assert.ok(at > 64 * 1024);
    bytes[at + 1] = '3'.charCodeAt(0);
    writeFileSync(cached, bytes);
    const third = loadConfig(f.config, { cacheDir });
    assert.equal(third.certificates[2999].name, 'f2999', 'parsed again from the YAML');
    assert.ok(readFileSync(cached).equals(original), 'and the cache written again, as it was');
  } finally {
    f.cleanup();
  }
});
