// `mcpki sign CSR_FILE`: requests made by `openssl req`, certificates checked by `openssl verify`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { mcpki, run, tempDir } from './helpers.js';

function setup() {
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  assert.equal(mcpki(['--home', home, 'init']).status, 0);
  return { dir, home, cleanup, sign: (args, options) => mcpki(['--home', home, '--json', 'sign', ...args], options) };
}

/** `openssl req` with a fresh key of `keyArgs`; returns the CSR path. */
function csr(dir, file, subject, keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], extra = []) {
  const path = join(dir, file);
  const made = run('openssl', [
    'req',
    '-new',
    ...keyArgs,
    '-nodes',
    '-keyout',
    `${path}.key`,
    '-subj',
    subject,
    ...extra,
    '-out',
    path,
  ]);
  assert.equal(made.status, 0, made.stderr);
  return path;
}

function verify(home, cert, purpose, host) {
  const args = [
    'verify',
    '-CAfile',
    join(home, 'ca', 'root.crt'),
    '-untrusted',
    join(home, 'ca', 'intermediate.crt'),
    '-purpose',
    purpose,
  ];
  if (host) args.push('-verify_hostname', host);
  return run('openssl', [...args, cert]);
}

test('a server CSR from openssl req: signed with the server profile, verified by openssl, recorded with an event', () => {
  const { dir, home, cleanup, sign } = setup();
  try {
    const path = csr(dir, 'app.csr', '/CN=app/O=Evil Corp/OU=admins', undefined, [
      '-addext',
      'subjectAltName=DNS:app.localhost,IP:127.0.0.1',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ]);
    const out = join(dir, 'app.crt');
    const signed = sign([path, '--out', out, '--days', '30']);
    assert.equal(signed.status, 0, signed.stdout + signed.stderr);
    assert.equal(signed.json.certificate.name, 'app');
    assert.equal(signed.json.certificate.kind, 'server');
    assert.deepEqual(signed.json.certificate.sans, [
      { type: 'dns', value: 'app.localhost' },
      { type: 'ip', value: '127.0.0.1' },
    ]);
    assert.ok(signed.json.ignored.includes('extension basicConstraints'), signed.json.ignored.join());
    assert.ok(signed.json.ignored.includes('subject O'));
    const verified = verify(home, out, 'sslserver', 'app.localhost');
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    assert.equal(verify(home, out, 'sslclient').status, 2, 'not a client certificate');
    const text = run('openssl', ['x509', '-in', out, '-noout', '-text']).stdout;
    assert.match(text, /Subject: O ?= ?mcpki development certificate, CN ?= ?app/);
    assert.doesNotMatch(
      text,
      /Evil Corp|admins|CA:TRUE|Certificate Sign/,
      'the request asked for them; the profile has none of them',
    );
    // the certificate is for the request's key
    const certKey = run('openssl', ['x509', '-in', out, '-noout', '-pubkey']).stdout;
    assert.ok(certKey.includes('BEGIN PUBLIC KEY'));
    assert.equal(
      certKey,
      run('openssl', ['pkey', '-in', `${path}.key`, '-pubout']).stdout,
      'the certificate is for the key of the request',
    );
    // the file holds the certificate and the intermediate, as servers take it
    assert.equal((readFileSync(out, 'utf8').match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
    const days =
      (Date.parse(signed.json.certificate.notAfter) - Date.parse(signed.json.certificate.notBefore)) / 86_400_000;
    assert.ok(days > 29.9 && days < 30.1, String(days));
    const shown = mcpki(['--home', home, '--json', 'show', 'app']);
    assert.equal(shown.json.serial ?? shown.json.certificate?.serial, signed.json.certificate.serial);
    const events = mcpki(['--home', home, '--json', 'events']).json.events.filter(
      (e) => e.type === 'certificate.signed',
    );
    assert.equal(events.length, 1);
    assert.equal(events[0].serial, signed.json.certificate.serial);
  } finally {
    cleanup();
  }
});

test('client profile, RSA and Ed25519 keys, a DER request, and the chain on stdout without --out', () => {
  const { dir, home, cleanup, sign } = setup();
  try {
    const agent = csr(
      dir,
      'agent.csr',
      '/CN=agent',
      ['-newkey', 'rsa:2048'],
      ['-addext', 'subjectAltName=URI:spiffe://localhost/agent/1'],
    );
    const out = join(dir, 'agent.crt');
    const signed = sign([agent, '--profile', 'client', '--out', out]);
    assert.equal(signed.status, 0, signed.stdout);
    assert.equal(signed.json.certificate.keyType, 'rsa-2048');
    assert.equal(verify(home, out, 'sslclient').status, 0);
    assert.equal(verify(home, out, 'sslserver').status, 2);
    const ed = csr(dir, 'ed.csr', '/CN=ed.localhost', ['-newkey', 'ed25519']);
    const der = join(dir, 'ed.der');
    assert.equal(run('openssl', ['req', '-in', ed, '-outform', 'DER', '-out', der]).status, 0);
    const human = mcpki(['--home', home, 'sign', der]);
    assert.equal(human.status, 0, human.stderr);
    assert.match(
      human.stderr,
      /signed server certificate ed\.localhost for ed\.localhost \(ed25519\)/,
      'a lone CN that is a host name is the name',
    );
    const printed = join(dir, 'printed.pem');
    writeFileSync(printed, human.stdout);
    assert.equal(verify(home, printed, 'sslserver', 'ed.localhost').status, 0);
  } finally {
    cleanup();
  }
});

test('refused before signing: names outside the constraints, weak or unknown keys, bad signatures, junk and special files', () => {
  const { dir, home, cleanup, sign } = setup();
  try {
    const refuse = (args, status, code, message) => {
      const result = sign(args);
      assert.equal(result.status, status, `${args.join(' ')}: ${result.stdout}${result.stderr}`);
      assert.equal(result.json.error.code, code, args.join(' '));
      assert.match(result.json.error.message, message, args.join(' '));
      assert.ok(result.json.error.hint, 'a hint');
    };
    refuse(
      [csr(dir, 'google.csr', '/CN=x', undefined, ['-addext', 'subjectAltName=DNS:www.google.com'])],
      6,
      'NAME_NOT_PERMITTED',
      /www\.google\.com/,
    );
    refuse(
      [csr(dir, 'ip.csr', '/CN=x', undefined, ['-addext', 'subjectAltName=DNS:x.localhost,IP:10.0.0.1'])],
      6,
      'NAME_NOT_PERMITTED',
      /10\.0\.0\.1/,
    );
    refuse(
      [csr(dir, 'rsa1024.csr', '/CN=x.localhost', ['-newkey', 'rsa:1024'])],
      3,
      'INVALID_KEY_TYPE',
      /1024-bit rsa key/,
    );
    refuse(
      [csr(dir, 'p521.csr', '/CN=x.localhost', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521'])],
      3,
      'INVALID_KEY_TYPE',
      /secp521r1/,
    );
    refuse([csr(dir, 'nonames.csr', '/CN=my service')], 3, 'INVALID_NAME', /asks for no names/);
    refuse(
      [csr(dir, 'sha1.csr', '/CN=x.localhost', ['-newkey', 'rsa:2048', '-sha1'])],
      3,
      'INVALID_INPUT',
      /1\.2\.840\.113549\.1\.1\.5/,
    );
    const many = Array.from({ length: 101 }, (_, i) => `DNS:n${i}.localhost`).join(',');
    refuse(
      [csr(dir, 'many.csr', '/CN=many', undefined, ['-addext', `subjectAltName=${many}`])],
      3,
      'INVALID_INPUT',
      /101 names: at most 100/,
    );
    // one byte of the signed part changed: the signature no longer verifies
    const good = csr(dir, 'good.csr', '/CN=good.localhost');
    const der = Buffer.from(
      readFileSync(good, 'utf8')
        .replace(/-----[^-]+-----/g, '')
        .replace(/\s/g, ''),
      'base64',
    );
    const at = der.indexOf(Buffer.from('good.localhost'));
    der[at] = 'h'.charCodeAt(0);
    const tampered = join(dir, 'tampered.der');
    writeFileSync(tampered, der);
    refuse([tampered], 3, 'INVALID_INPUT', /does not verify/);
    const junk = join(dir, 'junk.csr');
    writeFileSync(junk, 'hello\n');
    refuse([junk], 3, 'INVALID_INPUT', /not a PKCS#10 request/);
    const cert = join(home, 'ca', 'root.crt');
    refuse([cert], 3, 'INVALID_INPUT', /no "CERTIFICATE REQUEST"/);
    const fifo = join(dir, 'fifo');
    assert.equal(run('mkfifo', [fifo]).status, 0);
    refuse([fifo], 3, 'INVALID_INPUT', /not a regular file/);
    refuse([join(dir, 'missing.csr')], 3, 'INVALID_INPUT', /does not exist/);
    refuse([good, '--profile', 'ca'], 3, 'INVALID_INPUT', /unknown profile "ca"/);
    refuse([good, '--days', '400'], 3, 'INVALID_DAYS', /398/);
    refuse([good, '--out', dir], 3, 'INVALID_INPUT', /is a folder/);
    refuse([good, '--name', '../evil'], 3, 'INVALID_NAME', /\.\.\/evil/);
    // nothing was signed or recorded by any refusal
    assert.equal(mcpki(['--home', home, '--json', 'list', '--all']).json.certificates.length, 0);
    assert.ok(!existsSync(join(dir, 'good.crt')));
  } finally {
    cleanup();
  }
});
