// mcpki's ACME server end to end with a real client (acme-client, npm) over TLS on loopback: account,
// order, http-01 validated against a challenge server the test runs, finalize, download; the certificate is
// checked by OpenSSL against the mcpki root. Then policy and hostile requests: a name outside the name
// constraints, replayed nonce, wrong url, another account's order, oversized and unknown-field bodies.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Agent } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { createContext } from '../dist/context.js';
import { startAcmeServer } from '../dist/acme-server/server.js';
import { mcpki, run, tempDir, testStore } from './helpers.js';

const require = createRequire(import.meta.url);
const acme = require('acme-client');
const HttpClient = require('acme-client/src/http.js');
if (process.env.ACME_DEBUG) acme.setLogger((m) => console.error(m));

let home;
let cleanup;
let context;
let server;
let directoryUrl;
let root;
let intermediate;
const tokens = new Map();
let challengeServer;

before(async () => {
  ({ dir: home, cleanup } = tempDir('mcpki-acme-server-'));
  assert.equal(mcpki(['init', '--home', home]).status, 0);
  root = readFileSync(join(home, 'ca', 'root.crt'), 'utf8');
  intermediate = readFileSync(join(home, 'ca', 'intermediate.crt'), 'utf8');
  challengeServer = createServer((req, res) => {
    const token = req.url.replace('/.well-known/acme-challenge/', '');
    if (tokens.has(token)) res.end(tokens.get(token));
    else res.writeHead(404).end();
  });
  await new Promise((resolve) => challengeServer.listen(0, '127.0.0.1', resolve));
  context = createContext({ ...testStore(home), home });
  server = await startAcmeServer(context, {
    listen: [{ host: '127.0.0.1', port: 0 }],
    validation: { httpPort: challengeServer.address().port, tlsPort: 1, timeoutMs: 5_000 },
  });
  directoryUrl = server.directories[0];
  acme.axios.defaults.httpsAgent = new Agent({ ca: root });
});

after(async () => {
  await server?.close();
  await new Promise((resolve) => challengeServer.close(resolve));
  context?.close();
  cleanup?.();
});

async function newClient() {
  const client = new acme.Client({ directoryUrl, accountKey: await acme.crypto.createPrivateEcdsaKey() });
  await client.createAccount({ termsOfServiceAgreed: true, contact: ['mailto:ops@example.test'] });
  return client;
}

function verifyChain(pem) {
  const { dir, cleanup: done } = tempDir('mcpki-acme-verify-');
  try {
    writeFileSync(join(dir, 'leaf.pem'), pem);
    writeFileSync(join(dir, 'root.pem'), root);
    writeFileSync(join(dir, 'intermediate.pem'), intermediate);
    return run('openssl', [
      'verify',
      '-x509_strict',
      '-CAfile',
      join(dir, 'root.pem'),
      '-untrusted',
      join(dir, 'intermediate.pem'),
      join(dir, 'leaf.pem'),
    ]);
  } finally {
    done();
  }
}

test('the directory lists every resource, the profiles and whether EAB is required', async () => {
  const { data } = await acme.axios.get(directoryUrl);
  for (const key of ['newNonce', 'newAccount', 'newOrder', 'revokeCert', 'keyChange'])
    assert.match(data[key], /^https:\/\/127\.0\.0\.1:\d+\/acme\//);
  assert.equal(data.meta.externalAccountRequired, false);
  assert.deepEqual(Object.keys(data.meta.profiles).sort(), ['client', 'default', 'shortlived']);
});

test('acme-client gets a certificate for localhost by http-01 (auto), and OpenSSL verifies it against the mcpki root', async () => {
  const client = await newClient();
  const [key, csr] = await acme.crypto.createCsr({ commonName: 'localhost', altNames: ['localhost'] });
  const pem = await client.auto({
    csr,
    termsOfServiceAgreed: true,
    challengePriority: ['http-01'],
    skipChallengeVerification: true,
    challengeCreateFn: async (authz, challenge, keyAuthorization) => void tokens.set(challenge.token, keyAuthorization),
    challengeRemoveFn: async (authz, challenge) => void tokens.delete(challenge.token),
  });
  assert.ok(key.length > 0);
  const result = verifyChain(pem);
  assert.equal(result.status, 0, result.stderr + result.stdout);
  const text = run('openssl', ['x509', '-noout', '-ext', 'subjectAltName,extendedKeyUsage'], { input: pem }).stdout;
  assert.match(text, /DNS:localhost/);
  assert.match(text, /TLS Web Server Authentication/);
  const listed = mcpki(['list', '--home', home, '--json']).json.certificates;
  assert.ok(
    listed.some((c) => c.name === 'localhost' && c.status === 'valid'),
    JSON.stringify(listed),
  );
});

test('an IP certificate for 127.0.0.1 (RFC 8738) by http-01', async () => {
  const client = await newClient();
  const order = await client.createOrder({ identifiers: [{ type: 'ip', value: '127.0.0.1' }] });
  const [authz] = await client.getAuthorizations(order);
  assert.deepEqual(authz.challenges.map((c) => c.type).sort(), ['http-01', 'tls-alpn-01']);
  const challenge = authz.challenges.find((c) => c.type === 'http-01');
  tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
  await client.completeChallenge(challenge);
  await client.waitForValidStatus(challenge);
  const [, csr] = await acme.crypto.createCsr({ altNames: ['127.0.0.1'] });
  const finalized = await client.finalizeOrder(order, csr);
  const pem = await client.getCertificate(finalized);
  assert.equal(verifyChain(pem).status, 0);
  assert.match(
    run('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], { input: pem }).stdout,
    /IP Address:127\.0\.0\.1/,
  );
});

test('a wrong key authorization fails the challenge with a detail that says what was served', async () => {
  const client = await newClient();
  const order = await client.createOrder({ identifiers: [{ type: 'dns', value: 'localhost' }] });
  const [authz] = await client.getAuthorizations(order);
  const challenge = authz.challenges.find((c) => c.type === 'http-01');
  tokens.set(challenge.token, 'not-the-key-authorization');
  await client.completeChallenge(challenge);
  await assert.rejects(
    client.waitForValidStatus(challenge),
    /answered "not-the-key-authorization", not the key authorization/,
  );
  const again = await client.getOrder(order);
  assert.equal(again.status, 'invalid');
});

test("a name outside the CA's name constraints is refused at newOrder with rejectedIdentifier", async () => {
  const client = await newClient();
  await assert.rejects(client.createOrder({ identifiers: [{ type: 'dns', value: 'example.com' }] }), (error) => {
    assert.match(error.message, /example\.com" is outside the CA's name constraints/);
    return true;
  });
});

// --- hostile requests, made by hand with acme-client's signer ----------------------------------------------

async function rawClient() {
  const accountKey = await acme.crypto.createPrivateEcdsaKey();
  const client = new acme.Client({ directoryUrl, accountKey });
  await client.createAccount({ termsOfServiceAgreed: true });
  const http = new HttpClient(directoryUrl, accountKey);
  return { client, http, kid: client.getAccountUrl() };
}

async function nonce() {
  const res = await acme.axios.head(directoryUrl.replace('/directory', '/new-nonce'));
  return res.headers['replay-nonce'];
}

async function post(url, body, contentType = 'application/jose+json') {
  const res = await acme.axios.post(url, typeof body === 'string' ? body : JSON.stringify(body), {
    headers: { 'content-type': contentType },
    validateStatus: () => true,
    transformResponse: (x) => x,
  });
  return { status: res.status, body: res.data ? JSON.parse(res.data) : null, headers: res.headers };
}

test('hostile requests get the right problem and change nothing', async () => {
  const { http, kid } = await rawClient();
  const newOrderUrl = directoryUrl.replace('/directory', '/new-order');
  const payload = { identifiers: [{ type: 'dns', value: 'localhost' }] };

  // replayed nonce
  const body = http.createSignedBody(newOrderUrl, payload, { nonce: await nonce(), kid });
  assert.equal((await post(newOrderUrl, body)).status, 201);
  const replay = await post(newOrderUrl, body);
  assert.equal(replay.status, 400);
  assert.equal(replay.body.type, 'urn:ietf:params:acme:error:badNonce');
  assert.ok(replay.headers['replay-nonce'], 'a fresh nonce comes with the error');

  // wrong url
  const wrongUrl = await post(
    newOrderUrl,
    http.createSignedBody(newOrderUrl.replace('new-order', 'new-account'), payload, { nonce: await nonce(), kid }),
  );
  assert.equal(wrongUrl.body.type, 'urn:ietf:params:acme:error:unauthorized');

  // a changed payload after signing
  const signed = http.createSignedBody(newOrderUrl, payload, { nonce: await nonce(), kid });
  signed.payload = Buffer.from(JSON.stringify({ identifiers: [{ type: 'dns', value: 'other.localhost' }] })).toString(
    'base64url',
  );
  const tampered = await post(newOrderUrl, signed);
  assert.equal(tampered.body.type, 'urn:ietf:params:acme:error:malformed');
  assert.match(tampered.body.detail, /signature does not verify/);

  // unknown field
  const unknown = await post(
    newOrderUrl,
    http.createSignedBody(newOrderUrl, { ...payload, bogus: 1 }, { nonce: await nonce(), kid }),
  );
  assert.match(unknown.body.detail, /unknown field "bogus"/);

  // wrong content type
  const type = await post(
    newOrderUrl,
    http.createSignedBody(newOrderUrl, payload, { nonce: await nonce(), kid }),
    'application/json',
  );
  assert.equal(type.status, 415);

  // oversized body
  const big = await post(newOrderUrl, 'x'.repeat(70 * 1024));
  assert.equal(big.status, 413);

  // another account's order
  const other = await rawClient();
  const order = await other.client.createOrder(payload);
  const orderUrl = order.url;
  const stolen = await post(orderUrl, http.createSignedBody(orderUrl, null, { nonce: await nonce(), kid }));
  assert.equal(stolen.status, 404);
  assert.equal(stolen.body.type, 'urn:ietf:params:acme:error:unauthorized');

  // a jwk where a kid is required
  const jwkSigned = await post(newOrderUrl, http.createSignedBody(newOrderUrl, payload, { nonce: await nonce() }));
  assert.match(jwkSigned.body.detail, /must be signed with the account key by "kid"/);
});
