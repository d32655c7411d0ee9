// bench/floor.cjs, the floor rows of bench/run.js's start-up table and of bench/renewal.js's plan: its `issue` really
// does the durable work the table says (a key from a real P-256 pair, a signature the CA's key made, four files
// with mcpki's modes, one row), its `list` reads that row back, and its `plan` prints what `mcpki --json renew
// --dry-run` prints. A floor that did less would make mcpki look slower than it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, verify, X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SQLITE, bundleFloor } from '../bench/common.js';
import { ROOT, tempDir } from './helpers.js';

function run(...args) {
  const result = spawnSync(process.execPath, args, { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

test('the issue floor writes a signed certificate, its key and the chain durably, and list reads its row', () => {
  const { dir, cleanup } = tempDir('mcpki-floor-');
  try {
    const home = join(dir, 'home');
    run(join(ROOT, 'bin', 'mcpki.js'), '--home', home, 'init');
    // the bundle the benchmarks run (bench/floor.cjs with better-sqlite3's JavaScript inside)
    const FLOOR = bundleFloor(dir);
    const floor = join(dir, 'floor');
    run(FLOOR, 'prepare', floor, SQLITE);
    assert.equal(run(FLOOR, 'issue', floor, SQLITE, join(home, 'ca'), 'one'), 'issued one\n');
    const folder = join(floor, 'certs', 'one');
    const key = createPrivateKey(readFileSync(join(folder, 'one.key')));
    assert.equal(key.asymmetricKeyDetails.namedCurve, 'prime256v1');
    assert.equal(statSync(join(folder, 'one.key')).mode & 0o777, 0o600);
    const pem = readFileSync(join(folder, 'one.crt'), 'utf8');
    const body = Buffer.from(pem.replace(/-----[A-Z ]+-----|\n/g, ''), 'base64');
    const caCert = new X509Certificate(readFileSync(join(home, 'ca', 'intermediate.crt')));
    assert.ok(verify('sha256', body.subarray(0, 400), caCert.publicKey, body.subarray(400)));
    assert.equal(readFileSync(join(folder, 'one.fullchain.pem'), 'utf8'), pem + caCert.toString());
    assert.equal(readFileSync(join(folder, 'ca.crt'), 'utf8'), caCert.toString());
    assert.match(run(FLOOR, 'list', floor, SQLITE), /^one {2}\d{4}-\d\d-\d\dT/);
  } finally {
    cleanup();
  }
});

test('the plan floor prints the same JSON as mcpki --json renew --dry-run', () => {
  const { dir, cleanup } = tempDir('mcpki-floor-plan-');
  try {
    const home = join(dir, 'home');
    const config = join(dir, 'mcpki.yaml');
    const declared = ['one', 'two', 'three'].map(
      (name) =>
        `  - name: ${name}\n    names: [${name}.localhost]\n    targets:\n      - { type: fullchain, path: out/${name}.crt }\n      - { type: key, path: out/${name}.key }\n`,
    );
    writeFileSync(config, `version: 1\ncertificates:\n${declared.join('')}`);
    const FLOOR = bundleFloor(dir);
    const mcpki = (...args) => run(join(ROOT, 'bin', 'mcpki.js'), '--home', home, ...args);
    mcpki('init');
    mcpki('apply', '-c', config);
    const expected = mcpki('--json', 'renew', '--dry-run', '-c', config);
    assert.equal(JSON.parse(expected).plan.length, 3);
    assert.equal(run(FLOOR, 'plan', home, config, SQLITE), expected);
  } finally {
    cleanup();
  }
});
