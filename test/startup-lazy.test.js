// What `list`, `show` and `--version` do not pay for: node:crypto, node:worker_threads, node:os, node:v8 and node:module
// load when first used (src/cli/build-bundles.ts, bin/load-bundle.js), and the orphaned-intermediate check reads a certificate only for a record a
// retired intermediate issued (src/inventory.ts). The states stay what they were.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, mcpki, storeEnv, tempDir } from './helpers.js';

/** The built-in modules a CLI run loaded (process.moduleLoadList at exit). */
function builtinsLoaded(dir, args) {
  const list = join(dir, 'modules.txt');
  const hook = join(dir, 'hook.cjs');
  writeFileSync(
    hook,
    `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));`,
  );
  const result = spawnSync(process.execPath, ['-r', hook, BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...storeEnv(args) },
  });
  assert.equal(result.status, 0, result.stderr);
  const modules = readFileSync(list, 'utf8').split('\n');
  assert.ok(modules.includes('NativeModule vm'), 'the hook saw the command line load');
  return { modules, stdout: result.stdout };
}

const loads = (modules, name) => modules.includes(`NativeModule ${name}`);

test('list, show and --version load none of node:crypto, node:worker_threads, node:os, node:v8 and node:module; issue still signs', (t) => {
  if (process.env.MCPKI_TEST_POSTGRES) return t.skip('the PostgreSQL store runs in a worker thread');
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const issued = builtinsLoaded(dir, ['--home', home, 'issue', 'server', 'web', 'web.localhost']);
    assert.ok(loads(issued.modules, 'crypto'), 'issue loads node:crypto when it makes the key');
    assert.ok(!loads(issued.modules, 'worker_threads'), 'one certificate starts no worker');
    assert.ok(!loads(issued.modules, 'v8'), "one certificate leaves V8's tiering alone (issue batch tunes it)");
    for (const args of [
      ['--version'],
      ['--home', home, 'list'],
      ['--home', home, '--json', 'list'],
      ['--home', home, 'show', 'web'],
    ]) {
      const { modules } = builtinsLoaded(dir, args);
      for (const name of ['crypto', 'worker_threads', 'os', 'v8', 'module'])
        assert.ok(!loads(modules, name), `mcpki ${args.join(' ')} loaded ${name}`);
    }
    const shown = mcpki(['--home', home, '--json', 'show', 'web']);
    assert.equal(shown.json.certificate.state, 'valid');
  } finally {
    cleanup();
  }
});

test('orphaned and valid states: a replaced CA orphans what it issued, a rotated intermediate does not', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    const ok = (...args) => {
      const r = mcpki(['--home', home, ...args]);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      return r;
    };
    ok('init');
    ok('issue', 'server', 'before-rotation', 'a.localhost');
    ok('ca', 'rotate-intermediate');
    ok('issue', 'server', 'after-rotation', 'b.localhost');
    ok('init', '--force');
    ok('issue', 'server', 'new-ca', 'c.localhost');
    const states = Object.fromEntries(ok('--json', 'list').json.certificates.map((c) => [c.name, c.state]));
    assert.deepEqual(states, { 'before-rotation': 'orphaned', 'after-rotation': 'orphaned', 'new-ca': 'valid' });
    // before init --force: the rotated intermediate still chains to the root, so its certificate stays valid
    const second = join(dir, 'second');
    assert.equal(mcpki(['--home', second, 'init']).status, 0);
    assert.equal(mcpki(['--home', second, 'issue', 'server', 'old-intermediate', 'd.localhost']).status, 0);
    assert.equal(mcpki(['--home', second, 'ca', 'rotate-intermediate']).status, 0);
    const shown = mcpki(['--home', second, '--json', 'show', 'old-intermediate']);
    assert.equal(shown.status, 0, shown.stderr);
    assert.equal(shown.json.certificate.state, 'valid');
    assert.equal(mcpki(['--home', home, '--json', 'show', 'before-rotation']).json.certificate.state, 'orphaned');
    if (!process.env.MCPKI_TEST_POSTGRES) {
      // a record of a retired intermediate is what makes show read certificates (and load node:crypto)
      assert.ok(loads(builtinsLoaded(dir, ['--home', home, 'show', 'before-rotation']).modules, 'crypto'));
      assert.ok(!loads(builtinsLoaded(dir, ['--home', home, 'show', 'new-ca']).modules, 'crypto'));
    }
  } finally {
    cleanup();
  }
});
