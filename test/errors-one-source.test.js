// One definition per concept (issue 9 item 1): the key types, renewBefore's parsed form and the exit codes are
// each written once, and every place that shows them derives its text from that one definition.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_KEY_TYPE, KEY_TYPES } from '../dist/index.js';
import { mcpki } from './helpers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function sourceFiles(dir = join(ROOT, 'src')) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

test('the key types are listed only in src/pki/keys.ts; every --key help derives from KEY_TYPES', () => {
  // a list of two or more key type names written out anywhere else is a second copy
  const list = new RegExp(`(${KEY_TYPES.join('|')})\\W{1,4}(${KEY_TYPES.join('|')})`);
  const copies = sourceFiles().filter((file) => !file.endsWith(join('pki', 'keys.ts')) && list.test(readFileSync(file, 'utf8')));
  assert.deepEqual(copies.map((file) => file.slice(ROOT.length + 1)), []);
  for (const args of [['issue', 'server', '--help'], ['init', '--help'], ['acme', 'issue', '--help']]) {
    const help = mcpki(args).stdout.replace(/\s+/g, ' ');
    assert.ok(help.includes(`key type: ${KEY_TYPES.join(', ')} (default: "${DEFAULT_KEY_TYPE}")`), `${args.join(' ')}: ${help}`);
  }
});

test('the parsed renewBefore type is defined once, below config and renewal', () => {
  const definitions = sourceFiles().filter((file) => /export type RenewBefore\s*=/.test(readFileSync(file, 'utf8')));
  assert.deepEqual(definitions.map((file) => file.slice(ROOT.length + 1)), ['src/duration.ts']);
  assert.doesNotMatch(readFileSync(join(ROOT, 'src/renewal/policy.ts'), 'utf8'), /from '\.\.\/config\//);
  assert.doesNotMatch(readFileSync(join(ROOT, 'src/renewal/runner.ts'), 'utf8'), /renewBeforeText/);
});
