// `mcpki issue client NAME --spiffe ID --email ADDRESS`: the identity options land in the certificate as
// OpenSSL reads it (one URI SAN, the e-mail SANs, clientAuth), a SPIFFE ID is checked as the SPIFFE ID and
// X509-SVID standards say, the CA's URI name constraints apply, and `show` reports the identity.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mcpki, run, tempDir } from './helpers.js';

let dir;
let cleanup;
let home;

before(() => {
  ({ dir, cleanup } = tempDir('mcpki-client-identity-'));
  home = join(dir, 'home');
  assert.equal(mcpki(['--home', home, 'init']).status, 0);
});
after(() => cleanup?.());

function opensslText(name, targetHome = home) {
  const text = run('openssl', [
    'x509',
    '-in',
    join(targetHome, 'certs', name, `${name}.crt`),
    '-noout',
    '-ext',
    'subjectAltName,extendedKeyUsage',
    '-subject',
  ]);
  assert.equal(text.status, 0, text.stderr);
  return text.stdout;
}

test('--spiffe and --email become the SAN URI and e-mails; the SPIFFE ID is the identity show reports', () => {
  const issued = mcpki([
    '--home',
    home,
    '--json',
    'issue',
    'client',
    'agent',
    '--spiffe',
    'spiffe://example.test/ns/prod/agent-1',
    '--email',
    'ops@example.test',
    '--email',
    'Alice@Example.test',
  ]);
  assert.equal(issued.status, 0, issued.stderr);
  const text = opensslText('agent');
  assert.match(
    text,
    /URI:spiffe:\/\/example\.test\/ns\/prod\/agent-1, email:ops@example\.test, email:Alice@example\.test/,
  );
  assert.equal(text.match(/URI:/g).length, 1, 'one URI SAN');
  assert.match(text, /TLS Web Client Authentication/);
  const shown = mcpki(['--home', home, '--json', 'show', 'agent']).json.certificate;
  assert.equal(shown.identity, 'spiffe://example.test/ns/prod/agent-1');
  // without a SPIFFE ID the first e-mail is the identity, without either the common name (NAME)
  assert.equal(mcpki(['--home', home, 'issue', 'client', 'mailer', '--email', 'mailer@example.test']).status, 0);
  assert.equal(mcpki(['--home', home, 'issue', 'client', 'plain']).status, 0);
  assert.equal(mcpki(['--home', home, '--json', 'show', 'mailer']).json.certificate.identity, 'mailer@example.test');
  assert.equal(mcpki(['--home', home, '--json', 'show', 'plain']).json.certificate.identity, 'plain');
  // OpenSSL verifies the SVID for client use against the mcpki root
  const verify = run('openssl', [
    'verify',
    '-purpose',
    'sslclient',
    '-CAfile',
    join(home, 'ca', 'root.crt'),
    '-untrusted',
    join(home, 'ca', 'intermediate.crt'),
    join(home, 'certs', 'agent', 'agent.crt'),
  ]);
  assert.equal(verify.status, 0, verify.stderr + verify.stdout);
});

test('a SPIFFE ID that breaks the SPIFFE ID standard is refused, naming the value and the rule; nothing is written', () => {
  const cases = [
    ['spiffe://Example.test/x', /lower-case trust domain/],
    ['SPIFFE://example.test/x', /starts with "spiffe:\/\/" in lower case/],
    ['spiffe://example.test/x?role=admin', /no query or fragment/],
    ['spiffe://example.test/x#frag', /no query or fragment/],
    ['spiffe://example.test:8443/x', /no port or user part/],
    ['spiffe://user@example.test/x', /no port or user part/],
    ['spiffe://example.test/a/../admin', /no "\." or "\.\." segment/],
    ['spiffe://example.test/a//b', /no empty segment/],
    ['spiffe://example.test/a/', /trailing/],
    ['spiffe://example.test/a%2Fb', /no percent-encoding/],
    ['spiffe:///x', /needs a trust domain/],
    ['spiffe://example.test', /needs a path/],
    [`spiffe://example.test/${'a'.repeat(2100)}`, /at most 2048 bytes/],
    ['spiffe://example.test/a\u0007b', /letters, digits/],
  ];
  for (const [id, why] of cases) {
    const result = mcpki(['--home', home, '--json', 'issue', 'client', 'bad', '--spiffe', id]);
    assert.equal(result.status, 3, `${id}: ${result.stdout}`);
    const error = JSON.parse(result.stdout).error;
    assert.equal(error.code, 'INVALID_NAME', id);
    assert.match(error.message, why, id);
    assert.ok(!/[\u0000-\u001f]/.test(error.message), 'the message is one clean line');
    assert.match(error.hint, /spiffe:\/\/trust\.domain\/(path|workload)|shorter/);
  }
  // the same rules for a SPIFFE ID given among the names
  assert.equal(mcpki(['--home', home, 'issue', 'client', 'bad', 'spiffe://example.test/a/../b']).status, 3);
  assert.equal(mcpki(['--home', home, '--json', 'show', 'bad']).json.error.code, 'NOT_FOUND', 'nothing was recorded');
});

test('an X509-SVID has one URI SAN: a second URI next to a SPIFFE ID is refused; --email must be an e-mail address', () => {
  const two = mcpki([
    '--home',
    home,
    'issue',
    'client',
    'two',
    '--spiffe',
    'spiffe://example.test/a',
    'spiffe://example.test/b',
  ]);
  assert.equal(two.status, 3);
  assert.match(two.stderr, /exactly one URI name, got spiffe:\/\/example\.test\/a, spiffe:\/\/example\.test\/b/);
  const mixed = mcpki([
    '--home',
    home,
    'issue',
    'client',
    'two',
    '--spiffe',
    'spiffe://example.test/a',
    'https://example.test/b',
  ]);
  assert.equal(mixed.status, 3, mixed.stderr);
  for (const email of ['not-an-address', 'spiffe://example.test/x', 'a@@example.test', 'localhost']) {
    const result = mcpki(['--home', home, 'issue', 'client', 'two', '--email', email]);
    assert.equal(result.status, 3, email);
    assert.match(result.stderr, /e-mail address/, email);
  }
});

test("a SPIFFE ID outside the CA's permitted URI subtrees is refused before signing; inside it is issued and verifies", () => {
  const corp = join(dir, 'corp');
  assert.equal(
    mcpki(['--home', corp, 'init', '--permit', 'spiffe://prod.corp.example', '--permit', 'localhost']).status,
    0,
  );
  const outside = mcpki(['--home', corp, 'issue', 'client', 'x', '--spiffe', 'spiffe://staging.corp.example/agent']);
  assert.equal(outside.status, 6, outside.stderr);
  assert.match(outside.stderr, /"spiffe:\/\/staging\.corp\.example\/agent" is outside the CA's name constraints/);
  const inside = mcpki(['--home', corp, 'issue', 'client', 'x', '--spiffe', 'spiffe://prod.corp.example/agent']);
  assert.equal(inside.status, 0, inside.stderr);
  const verify = run('openssl', [
    'verify',
    '-purpose',
    'sslclient',
    '-CAfile',
    join(corp, 'ca', 'root.crt'),
    '-untrusted',
    join(corp, 'ca', 'intermediate.crt'),
    join(corp, 'certs', 'x', 'x.crt'),
  ]);
  assert.equal(verify.status, 0, verify.stderr + verify.stdout);
});
