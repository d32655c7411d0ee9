// Start-up: what `npm run build` prepares so that one command costs little more than a bare `node`
// (docs/architecture.md, "Start-up cost"). Timings are in bench/, not here; these check the mechanisms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BIN, ROOT, tempDir } from './helpers.js';

/** Runs `code` in a fresh node that has required bin/mcpki.js as `loaded`; returns its JSON output. */
function probe(code) {
  const script = `const loaded = require(${JSON.stringify(BIN)}); (async () => { ${code} })().catch((e) => { console.error(e); process.exitCode = 99; });`;
  const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

test('every command group bundle is loaded with the code cache the build made for it', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    const groups = probe(`
      const write = process.stdout.write; process.stdout.write = () => true;
      for (const args of [['init'], ['issue', 'server', 'web'], ['list'], ['template', 'list'], ['--help']]) await loaded.cli.main(['node', 'mcpki', '--home', ${JSON.stringify(home)}, ...args]);
      process.stdout.write = write;
      console.log(JSON.stringify(loaded.cli.loadedBundles().map((b) => [b.file, b.script?.cachedDataRejected])));`);
    const names = groups.map(([file]) => file.replace(/^.*\//, ''));
    for (const name of ['cli-ca.cjs', 'cli-issue.cjs', 'cli-inventory.cjs', 'cli-template.cjs', 'cli-renew.cjs', 'cli-serve.cjs', 'cli-check.cjs', 'cli-trust.cjs', 'cli-acme.cjs']) {
      assert.ok(names.includes(name), `${name} not loaded: ${names}`);
    }
    for (const [file, rejected] of groups) {
      assert.ok(file.startsWith(join(ROOT, 'dist')), file);
      assert.equal(rejected, false, `${file}: no code cache, or V8 rejected it`);
    }
  } finally {
    cleanup();
  }
});

test('a group bundle is loaded once per process', () => {
  const { dir, cleanup } = tempDir();
  try {
    const count = probe(`
      const write = process.stdout.write; process.stdout.write = () => true;
      for (let i = 0; i < 3; i++) await loaded.cli.main(['node', 'mcpki', '--home', ${JSON.stringify(join(dir, 'home'))}, 'list']);
      process.stdout.write = write;
      console.log(JSON.stringify(loaded.cli.loadedBundles().length));`);
    assert.equal(count, 1);
  } finally {
    cleanup();
  }
});
