// Revocation: revoked serials appear in the CRL signed by the intermediate, and OpenSSL rejects them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mcpki, run, tempDir } from './helpers.js';

function crlCheck(home, crl, cert) {
  return run('openssl', ['verify', '-x509_strict', '-crl_check', '-CAfile', join(home, 'ca', 'root.crt'), '-untrusted', join(home, 'ca', 'intermediate.crt'), '-CRLfile', crl, cert]);
}

test('revoked certificates appear in the CRL and fail openssl verify -crl_check', () => {
  const { dir, cleanup } = tempDir();
  try {
    assert.equal(mcpki(['--home', dir, 'init']).status, 0);
    const keep = mcpki(['--home', dir, '--json', 'issue', 'server', 'keep', 'keep.localhost']).json;
    const gone = mcpki(['--home', dir, '--json', 'issue', 'client', 'gone', 'gone@example.test']).json;
    const empty = mcpki(['--home', dir, '--json', 'crl']).json;
    assert.equal(empty.revoked.length, 0);
    assert.equal(crlCheck(dir, empty.paths[0], gone.paths.cert).status, 0, 'not revoked yet');

    const revoked = mcpki(['--home', dir, '--json', 'revoke', 'gone', '--reason', 'keyCompromise']);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.equal(revoked.json.certificate.state, 'revoked');

    const out = join(dir, 'published.crl.pem');
    const crl = mcpki(['--home', dir, '--json', 'crl', '--out', out]).json;
    assert.deepEqual(crl.revoked.map((r) => r.serial), [gone.certificate.serial]);
    assert.equal(Number(crl.number), Number(empty.number) + 1, 'CRL numbers increase');

    const text = run('openssl', ['crl', '-in', out, '-noout', '-text']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`Serial Number: ${gone.certificate.serial}`, 'i'));
    assert.match(text.stdout, /Key Compromise/);
    assert.match(text.stdout, /X509v3 CRL Number/);
    const issuer = run('openssl', ['x509', '-in', join(dir, 'ca', 'intermediate.crt'), '-noout', '-subject']).stdout.replace(/^subject=/, '').trim();
    assert.ok(text.stdout.includes(`Issuer: ${issuer}`), 'signed by the intermediate');

    const rejected = crlCheck(dir, out, gone.paths.cert);
    assert.notEqual(rejected.status, 0);
    assert.match(rejected.stdout + rejected.stderr, /certificate revoked/);
    assert.equal(crlCheck(dir, out, keep.paths.cert).status, 0, 'others still verify');

    const events = mcpki(['--home', dir, '--json', 'events']).json.events.map((e) => e.type);
    assert.deepEqual(events, ['ca.created', 'certificate.issued', 'certificate.issued', 'crl.generated', 'certificate.revoked', 'crl.generated']);
  } finally {
    cleanup();
  }
});

test('after rotate-intermediate, certificates of the old intermediate can still be revoked', () => {
  const { dir, cleanup } = tempDir();
  try {
    assert.equal(mcpki(['--home', dir, 'init']).status, 0);
    const old = mcpki(['--home', dir, '--json', 'issue', 'server', 'old', 'old.localhost']).json;
    const before = mcpki(['--home', dir, '--json', 'ca', 'show']).json;
    const rotated = mcpki(['--home', dir, '--json', 'ca', 'rotate-intermediate']);
    assert.equal(rotated.status, 0, rotated.stderr);
    assert.notEqual(rotated.json.intermediate.serial, before.intermediate.serial);
    assert.equal(rotated.json.root.serial, before.root.serial);
    const fresh = mcpki(['--home', dir, '--json', 'issue', 'server', 'new', 'new.localhost']).json;
    // the old leaf still chains through its own (retired) intermediate, shipped in its fullchain
    assert.equal(run('openssl', ['verify', '-CAfile', old.paths.ca, '-untrusted', old.paths.fullchain, old.paths.cert]).status, 0);
    assert.equal(run('openssl', ['verify', '-CAfile', fresh.paths.ca, '-untrusted', fresh.paths.fullchain, fresh.paths.cert]).status, 0);

    assert.equal(mcpki(['--home', dir, 'revoke', old.certificate.serial]).status, 0);
    const crl = mcpki(['--home', dir, '--json', 'crl']).json;
    const rejected = run('openssl', ['verify', '-crl_check', '-CAfile', old.paths.ca, '-untrusted', old.paths.fullchain, '-CRLfile', crl.paths[0], old.paths.cert]);
    assert.match(rejected.stdout + rejected.stderr, /certificate revoked/);
    const ok = run('openssl', ['verify', '-crl_check', '-CAfile', fresh.paths.ca, '-untrusted', fresh.paths.fullchain, '-CRLfile', crl.paths[0], fresh.paths.cert]);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  } finally {
    cleanup();
  }
});
