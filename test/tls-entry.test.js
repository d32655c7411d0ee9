// The `mcpki/tls` entry: createTlsReloader with plain file paths, without the inventory. Each import runs in a
// fresh process, which then reports the CommonJS modules it loaded (better-sqlite3 is CommonJS, so an ESM
// import of it lands in the same module cache).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { mcpki, tempDir, ROOT } from './helpers.js';

let home;
let cleanup;
let files;

before(() => {
  ({ dir: home, cleanup } = tempDir());
  assert.equal(mcpki(['--home', home, 'init']).status, 0);
  const result = mcpki(['--home', home, '--json', 'issue', 'server', 'web', 'localhost', '--out', join(home, 'out')]);
  assert.equal(result.status, 0, result.stderr);
  files = { cert: result.json.paths.fullchain ?? result.json.paths.cert, key: result.json.paths.key };
});

after(() => cleanup?.());

/** Runs an ES module (from the package root, so `mcpki` and `mcpki/tls` resolve to this package); returns its JSON output. */
function runModule(source) {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', source], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, MCPKI_HOME: home },
  });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout);
}

const LOADED = `const { createRequire } = await import('node:module');
const loaded = Object.keys(createRequire(import.meta.url).cache);
console.log(JSON.stringify({ sqlite: loaded.filter((p) => p.includes('better-sqlite3')), serial, error }));`;

test('mcpki/tls: createTlsReloader with file paths never loads better-sqlite3', () => {
  const out = runModule(`import { createTlsReloader } from 'mcpki/tls';
const reloader = createTlsReloader(${JSON.stringify(files)});
const serial = reloader.current().serial;
reloader.close();
let error;
try { createTlsReloader({ name: 'web' }); } catch (e) { error = e.code + ': ' + e.message; }
${LOADED}`);
  assert.match(out.serial, /^[0-9A-F]+$/);
  assert.deepEqual(out.sqlite, []);
  assert.match(out.error, /^INVALID_INPUT: mcpki\/tls takes cert and key paths/);
});

test('mcpki: the by-name form looks the certificate up in the inventory (and so loads better-sqlite3)', () => {
  const out = runModule(`import { createTlsReloader } from 'mcpki';
const reloader = createTlsReloader({ name: 'web' });
const serial = reloader.current().serial;
reloader.close();
const error = undefined;
${LOADED}`);
  assert.match(out.serial, /^[0-9A-F]+$/);
  assert.notDeepEqual(out.sqlite, [], 'the check above would not notice better-sqlite3 being loaded');
});
