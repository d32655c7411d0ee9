// The code is formatted by Prettier (width 120, single quotes: .prettierrc.json), so a diff shows what changed and
// not how someone's editor wraps lines. `npm run format` rewrites the tree; this test is what keeps it so in CI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

const PRETTIER = join(ROOT, 'node_modules', 'prettier', 'bin', 'prettier.cjs');

test('src/, test/, bench/ and bin/ are formatted as Prettier formats them (npm run format)', () => {
  assert.ok(existsSync(PRETTIER), 'prettier is a devDependency: run npm ci');
  const result = spawnSync(process.execPath, [PRETTIER, '--list-different', 'src', 'test', 'bench', 'bin'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 300_000,
  });
  assert.equal(result.stderr, '');
  assert.equal(result.stdout, '', `not formatted (run npm run format):\n${result.stdout}`);
  assert.equal(result.status, 0);
});
