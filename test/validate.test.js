// `mcpki validate` and `apply --dry-run`: the declaration checked and the plan shown, nothing changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mcpki, tempDir } from './helpers.js';

const YAML = `version: 1
certificates:
  - name: api
    names: [api.localhost, 127.0.0.1]
    days: 30
    targets:
      - { type: cert, path: deploy/api.crt }
      - { type: key, path: deploy/api.key }
`;

test('validate and apply --dry-run: a valid mcpki.yaml is checked and planned, and nothing is written', () => {
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  const config = join(dir, 'mcpki.yaml');
  try {
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    writeFileSync(config, YAML);
    const db = join(home, 'mcpki.db');
    const before = { size: statSync(db).size, mtime: statSync(db).mtimeMs, bytes: readFileSync(db) };
    for (const args of [
      ['validate', '-c', config],
      ['apply', '--dry-run', '-c', config],
    ]) {
      const result = mcpki(['--home', home, '--json', ...args]);
      assert.equal(result.status, 0, result.stdout + result.stderr);
      assert.equal(result.json.valid, true);
      assert.equal(result.json.certificates, 1);
      assert.equal(result.json.targets, 2);
      assert.deepEqual(
        result.json.plan.map((p) => [p.name, p.due]),
        [['api', true]],
      );
      const human = mcpki(['--home', home, ...args]);
      assert.equal(human.status, 0);
      assert.match(human.stdout, /valid: .*mcpki\.yaml declares 1 certificate\(s\) with 2 target\(s\)/);
      assert.match(human.stdout, /api .*due/);
      assert.match(human.stdout, /nothing was changed/);
    }
    assert.ok(!existsSync(join(dir, 'deploy')), 'no target written');
    assert.ok(!existsSync(join(home, 'cache')), 'not even the parse cache');
    assert.ok(!existsSync(join(home, 'certs')), 'nothing issued');
    assert.deepEqual(readFileSync(db), before.bytes, 'the inventory is unchanged');
    // after an apply, the plan says it is current
    assert.equal(mcpki(['--home', home, 'apply', '-c', config], { cwd: dir }).status, 0);
    const current = mcpki(['--home', home, '--json', 'validate', '-c', config]);
    assert.deepEqual(
      current.json.plan.map((p) => [p.name, p.due]),
      [['api', false]],
    );
  } finally {
    cleanup();
  }
});

test('validate on an invalid mcpki.yaml: exit 3 with every error listed and its line', () => {
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  const config = join(dir, 'mcpki.yaml');
  try {
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    writeFileSync(
      config,
      'version: 1\ncertificates:\n  - name: x\n    names: [x.localhost]\n    dayz: 3\n  - name: y\n    names: [y.localhost]\n    targets:\n      - { type: cert, path: a.crt, mode: 0640 }\n',
    );
    for (const args of [
      ['validate', '-c', config],
      ['apply', '--dry-run', '-c', config],
    ]) {
      const result = mcpki(['--home', home, ...args]);
      assert.equal(result.status, 3, result.stdout + result.stderr);
      assert.match(result.stderr, /mcpki\.yaml has 2 errors/);
      assert.match(result.stderr, /mcpki\.yaml:5:\d+ certificates\[0\]/);
      assert.match(result.stderr, /mcpki\.yaml:9:\d+ certificates\[1\]\.targets\[0\]\.mode/);
      const json = mcpki(['--home', home, '--json', ...args]);
      assert.equal(json.status, 3);
      assert.equal(json.json.error.details.length, 2);
    }
    const missing = mcpki(['--home', home, 'validate', '-c', join(dir, 'none.yaml')]);
    assert.equal(missing.status, 10, missing.stderr);
    assert.match(missing.stderr, /no declaration file/);
  } finally {
    cleanup();
  }
});
