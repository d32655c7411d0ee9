// Batch issuance: one process, many certificates, every one a real certificate OpenSSL accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mcpki, run, tempDir } from './helpers.js';

test('a line file into --out: flat NAME.* files and one ca.crt; every certificate verifies and is recorded', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    const out = join(dir, 'fixtures');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const lines = ['# fleet', ''];
    for (let i = 0; i < 60; i++) lines.push(`server api-${i} api-${i}.localhost 127.0.0.${i + 1}`);
    lines.push('client agent agent@example.test');
    writeFileSync(join(dir, 'requests.txt'), lines.join('\n'));
    const result = mcpki([
      '--home',
      home,
      '--json',
      'issue',
      'batch',
      join(dir, 'requests.txt'),
      '--out',
      out,
      '--days',
      '30',
    ]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.json.issued.length, 61);
    const files = readdirSync(out).sort();
    assert.equal(files.length, 61 * 3 + 1);
    assert.ok(files.includes('ca.crt'));
    assert.ok(!files.some((f) => f.includes('mcpki-tmp')), 'no temp files left');
    const serials = new Set(result.json.issued.map((i) => i.certificate.serial));
    assert.equal(serials.size, 61);
    for (const issued of result.json.issued.filter((_, i) => i % 10 === 0 || i === 60)) {
      const { cert, key, fullchain, ca } = issued.paths;
      const purpose = issued.certificate.kind === 'server' ? 'sslserver' : 'sslclient';
      const verified = run('openssl', [
        'verify',
        '-x509_strict',
        '-purpose',
        purpose,
        '-CAfile',
        ca,
        '-untrusted',
        fullchain,
        cert,
      ]);
      assert.equal(verified.status, 0, verified.stdout + verified.stderr);
      assert.equal((statSync(key).mode & 0o777).toString(8), '600');
      const fromCert = run('openssl', ['x509', '-in', cert, '-noout', '-pubkey']).stdout;
      const fromKey = run('openssl', ['pkey', '-in', key, '-pubout']).stdout;
      assert.equal(fromCert, fromKey, 'key matches certificate');
      assert.equal(run('openssl', ['x509', '-in', cert, '-noout', '-checkend', String(29 * 86400)]).status, 0);
      assert.notEqual(run('openssl', ['x509', '-in', cert, '-noout', '-checkend', String(31 * 86400)]).status, 0);
    }
    const listed = mcpki(['--home', home, '--json', 'list']).json.certificates;
    assert.equal(listed.length, 61);
  } finally {
    cleanup();
  }
});

test('a JSON batch from standard input, with per-entry key types and folders', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const requests = [
      { kind: 'server', name: 'ec', sans: ['ec.test'], key: 'ec-p384' },
      { kind: 'server', name: 'rsa', sans: ['rsa.test'], key: 'rsa-2048', out: join(dir, 'rsa') },
      { kind: 'client', name: 'ed', sans: ['spiffe://example.test/ed'], key: 'ed25519', days: 7 },
    ];
    const result = mcpki(['--home', home, '--json', 'issue', 'batch', '-'], { input: JSON.stringify(requests) });
    assert.equal(result.status, 0, result.stderr);
    const byName = Object.fromEntries(result.json.issued.map((i) => [i.certificate.name, i]));
    assert.equal(byName.rsa.paths.cert, join(dir, 'rsa', 'rsa.crt'));
    assert.equal(byName.ec.paths.cert, join(home, 'certs', 'ec', 'ec.crt'));
    assert.match(
      run('openssl', ['x509', '-in', byName.rsa.paths.cert, '-noout', '-text']).stdout,
      /Public-Key: \(2048 bit\)/,
    );
    assert.match(run('openssl', ['x509', '-in', byName.ec.paths.cert, '-noout', '-text']).stdout, /NIST CURVE: P-384/);
    assert.match(run('openssl', ['x509', '-in', byName.ed.paths.cert, '-noout', '-text']).stdout, /ED25519/);
    for (const issued of Object.values(byName)) {
      const verified = run('openssl', [
        'verify',
        '-x509_strict',
        '-CAfile',
        issued.paths.ca,
        '-untrusted',
        issued.paths.fullchain,
        issued.paths.cert,
      ]);
      assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    }
  } finally {
    cleanup();
  }
});
