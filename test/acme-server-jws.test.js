// The ACME server's request authentication (RFC 8555 §6.2, §6.5, §7.3.4): JWS bodies are made by acme-client's
// own signer (an independent implementation) and by node:crypto for EdDSA, then tampered with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { createRequire } from 'node:module';
import { importAccountKey, parseJws, verifyEabBinding, verifyJws } from '../dist/acme-server/jws.js';
import { jwkThumbprint } from '../dist/pki/keys.js';
import { createMemoryNonceStore } from '../dist/acme-server/nonces.js';

const require = createRequire(import.meta.url);
const HttpClient = require('acme-client/src/http.js');

const URL_NEW_ACCOUNT = 'https://127.0.0.1:8443/acme/new-account';

function pemKey(type, options) {
  return generateKeyPairSync(type, {
    ...options,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
}

/** acme-client's own JWS for `payload`, signed with `privatePem`. */
function clientBody(privatePem, url, payload, opts = { nonce: 'AAAAAAAAAAAAAAAAAAAAAA' }) {
  const http = new HttpClient('https://127.0.0.1:8443/acme/directory', Buffer.from(privatePem));
  return { http, body: http.createSignedBody(url, payload, opts) };
}

function problemOf(fn) {
  try {
    fn();
  } catch (error) {
    return { type: error.type, message: error.message };
  }
  return null;
}

const KEYS = {
  ES256: pemKey('ec', { namedCurve: 'P-256' }),
  ES384: pemKey('ec', { namedCurve: 'P-384' }),
  ES512: pemKey('ec', { namedCurve: 'P-521' }),
  RS256: pemKey('rsa', { modulusLength: 2048 }),
};

for (const [alg, pair] of Object.entries(KEYS)) {
  test(`an acme-client ${alg} request verifies, and the same request with one changed byte does not`, () => {
    const { body } = clientBody(pair.privateKey, URL_NEW_ACCOUNT, { termsOfServiceAgreed: true });
    const jws = parseJws(JSON.stringify(body));
    assert.equal(jws.header.alg, alg);
    assert.equal(jws.header.url, URL_NEW_ACCOUNT);
    assert.deepEqual(jws.payload, { termsOfServiceAgreed: true });
    const key = importAccountKey(jws.header.jwk);
    verifyJws(jws, key);

    const tampered = {
      ...body,
      payload: Buffer.from(JSON.stringify({ termsOfServiceAgreed: false })).toString('base64url'),
    };
    assert.deepEqual(
      problemOf(() => verifyJws(parseJws(JSON.stringify(tampered)), key)),
      { type: 'malformed', message: 'the JWS signature does not verify' },
    );
  });
}

test('EdDSA (Ed25519) account keys verify', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const header = Buffer.from(
    JSON.stringify({ alg: 'EdDSA', url: URL_NEW_ACCOUNT, nonce: 'n', jwk: publicKey.export({ format: 'jwk' }) }),
  ).toString('base64url');
  const payload = Buffer.from('{}').toString('base64url');
  const signature = sign(null, Buffer.from(`${header}.${payload}`), privateKey).toString('base64url');
  const jws = parseJws(JSON.stringify({ protected: header, payload, signature }));
  verifyJws(jws, importAccountKey(jws.header.jwk));
  const other = generateKeyPairSync('ed25519').publicKey;
  assert.equal(problemOf(() => verifyJws(jws, other))?.type, 'malformed');
});

test('POST-as-GET: an empty payload parses as no payload', () => {
  const { body } = clientBody(KEYS.ES256.privateKey, 'https://127.0.0.1:8443/acme/order/1', null, {
    nonce: 'n',
    kid: 'https://127.0.0.1:8443/acme/account/1',
  });
  const jws = parseJws(JSON.stringify(body));
  assert.equal(jws.payload, undefined);
  assert.equal(jws.header.kid, 'https://127.0.0.1:8443/acme/account/1');
});

test('the algorithm must match the key: an ES256 header over a P-384 key is refused', () => {
  const { body } = clientBody(KEYS.ES384.privateKey, URL_NEW_ACCOUNT, {});
  const forged = JSON.parse(Buffer.from(body.protected, 'base64url'));
  forged.alg = 'ES256';
  const jws = parseJws(
    JSON.stringify({ ...body, protected: Buffer.from(JSON.stringify(forged)).toString('base64url') }),
  );
  assert.equal(problemOf(() => verifyJws(jws, importAccountKey(jws.header.jwk)))?.type, 'badSignatureAlgorithm');
});

test('a DER-encoded ECDSA signature (not the JWS form) is refused', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const header = Buffer.from(
    JSON.stringify({ alg: 'ES256', url: URL_NEW_ACCOUNT, nonce: 'n', jwk: publicKey.export({ format: 'jwk' }) }),
  ).toString('base64url');
  const payload = Buffer.from('{}').toString('base64url');
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), privateKey).toString('base64url');
  const jws = parseJws(JSON.stringify({ protected: header, payload, signature }));
  assert.equal(problemOf(() => verifyJws(jws, publicKey))?.type, 'malformed');
});

const HOSTILE = [
  ['not JSON', 'x{', 'malformed', /not JSON/],
  ['an array', '[]', 'malformed', /not a JWS object/],
  ['general serialization', JSON.stringify({ payload: '', signatures: [] }), 'malformed', /flattened/],
  [
    'an unprotected header',
    JSON.stringify({ protected: 'e30', payload: '', signature: '', header: {} }),
    'malformed',
    /unprotected/,
  ],
  [
    'an unknown member',
    JSON.stringify({ protected: 'e30', payload: '', signature: '', extra: 1 }),
    'malformed',
    /unknown member "extra"/,
  ],
  ['padding in base64url', JSON.stringify({ protected: 'e30=', payload: '', signature: '' }), 'malformed', /base64url/],
  ['the none algorithm', hdr({ alg: 'none', url: 'u', jwk: {} }), 'badSignatureAlgorithm', /not supported/],
  ['a MAC algorithm', hdr({ alg: 'HS256', url: 'u', kid: 'k' }), 'badSignatureAlgorithm', /not supported/],
  ['no url', hdr({ alg: 'ES256', jwk: {} }), 'malformed', /no "url"/],
  [
    'both jwk and kid',
    hdr({ alg: 'ES256', url: 'u', jwk: {}, kid: 'k' }),
    'malformed',
    /exactly one of "jwk" and "kid"/,
  ],
  ['neither jwk nor kid', hdr({ alg: 'ES256', url: 'u' }), 'malformed', /exactly one/],
  ['crit', hdr({ alg: 'ES256', url: 'u', kid: 'k', crit: ['b64'] }), 'malformed', /crit/],
  ['a nonce that is not a string', hdr({ alg: 'ES256', url: 'u', kid: 'k', nonce: 5 }), 'badNonce', /not a string/],
];

function hdr(header) {
  return JSON.stringify({
    protected: Buffer.from(JSON.stringify(header)).toString('base64url'),
    payload: '',
    signature: '',
  });
}

for (const [title, body, type, message] of HOSTILE) {
  test(`a JWS with ${title} is refused as ${type}`, () => {
    const result = problemOf(() => parseJws(body));
    assert.equal(result?.type, type);
    assert.match(result.message, message);
  });
}

test('account keys: private material, symmetric keys, small and huge RSA keys are refused', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  assert.match(problemOf(() => importAccountKey(ec.privateKey.export({ format: 'jwk' })))?.message, /private/);
  assert.match(problemOf(() => importAccountKey({ kty: 'oct', k: 'AAAA' }))?.message, /symmetric/);
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
  assert.match(problemOf(() => importAccountKey(small))?.message, /2048 to 8192 bits, not 1024/);
  assert.equal(problemOf(() => importAccountKey({ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }))?.type, 'badPublicKey');
});

test("the JWK thumbprint is RFC 7638 (the RFC's own example key)", () => {
  const key = importAccountKey({
    kty: 'RSA',
    e: 'AQAB',
    n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
  });
  assert.equal(jwkThumbprint(key), 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
});

test("external account binding (acme-client's own): verifies with the right key, refused with another key, URL or account key", () => {
  const hmac = Buffer.from('a'.repeat(32)).toString('base64url');
  const pair = KEYS.ES256;
  const http = new HttpClient('https://x/acme/directory', Buffer.from(pair.privateKey));
  const jwk = http.getJwk();
  const binding = http.createSignedHmacBody(hmac, URL_NEW_ACCOUNT, jwk, { kid: 'team-a' });
  const lookup = (kid) => (kid === 'team-a' ? Buffer.from(hmac, 'base64url') : undefined);
  assert.equal(verifyEabBinding(binding, jwk, URL_NEW_ACCOUNT, lookup), 'team-a');

  assert.match(
    problemOf(() => verifyEabBinding(binding, jwk, URL_NEW_ACCOUNT, () => Buffer.from('other')))?.message,
    /MAC does not verify/,
  );
  assert.match(
    problemOf(() => verifyEabBinding(binding, jwk, 'https://127.0.0.1:8443/acme/other', lookup))?.message,
    /url/,
  );
  assert.match(
    problemOf(() => verifyEabBinding(binding, jwk, URL_NEW_ACCOUNT, () => undefined))?.message,
    /unknown or revoked/,
  );
  const otherJwk = new HttpClient('https://x', Buffer.from(KEYS.ES384.privateKey)).getJwk();
  assert.match(
    problemOf(() => verifyEabBinding(binding, otherJwk, URL_NEW_ACCOUNT, lookup))?.message,
    /another account key/,
  );
  // a nonce in the inner header is not allowed
  const header = { alg: 'HS256', url: URL_NEW_ACCOUNT, kid: 'team-a', nonce: 'n' };
  const p = Buffer.from(JSON.stringify(header)).toString('base64url');
  const payload = Buffer.from(JSON.stringify(jwk)).toString('base64url');
  const signature = createHmac('sha256', Buffer.from(hmac, 'base64url')).update(`${p}.${payload}`).digest('base64url');
  assert.match(
    problemOf(() => verifyEabBinding({ protected: p, payload, signature }, jwk, URL_NEW_ACCOUNT, lookup))?.message,
    /must not have a nonce/,
  );
});

test('nonces are single-use, expire, and unknown or malformed ones are refused', () => {
  let now = 1_000;
  const nonces = createMemoryNonceStore({ lifetimeMs: 100, capacity: 3, now: () => now });
  const a = nonces.issue();
  assert.match(a, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(nonces.consume(a), true);
  assert.equal(nonces.consume(a), false, 'replayed');
  const b = nonces.issue();
  now += 101;
  assert.equal(nonces.consume(b), false, 'expired');
  assert.equal(nonces.consume('AAAAAAAAAAAAAAAAAAAAAA'), false, 'never issued');
  assert.equal(nonces.consume('../../x'), false);
  const issued = [nonces.issue(), nonces.issue(), nonces.issue(), nonces.issue()];
  assert.equal(nonces.consume(issued[0]), false, 'the oldest is dropped past capacity');
  assert.equal(nonces.consume(issued[3]), true);
});
