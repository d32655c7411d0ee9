// mcpki's ACME server against hostile and wrong requests, made by hand with acme-client's JWS signer over TLS
// on loopback: each gets the RFC 8555 problem it deserves and changes nothing (the server's state sees no
// write, the inventory gets no certificate and no event). Then revokeCert (RFC 8555 §7.6): by the ordering
// account and by the certificate's own key, refused for anyone else, for a bad reason and twice; a revoked
// certificate is in the CRL that OpenSSL reads. And the per-account order rate limit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { createContext } from '../dist/context.js';
import { startAcmeServer } from '../dist/acme-server/server.js';
import { createMemoryState } from '../dist/acme-server/model.js';
import { mcpki, run, tempDir, testStore } from './helpers.js';

const require = createRequire(import.meta.url);
const acme = require('acme-client');
const HttpClient = require('acme-client/src/http.js');

let home;
let cleanup;
let context;
let server;
let directoryUrl;
let root;
const tokens = new Map();
let challengeServer;
/** every write the server makes to its state, in order */
const writes = [];

/** The in-memory state, with each write recorded so a test can tell that a refused request changed nothing. */
function recordingState() {
  const state = createMemoryState();
  for (const method of Object.keys(state)) {
    if (!/^(add|update)/.test(method)) continue;
    const original = state[method];
    state[method] = (...args) => {
      writes.push(method);
      return original(...args);
    };
  }
  return state;
}

before(async () => {
  ({ dir: home, cleanup } = tempDir('mcpki-acme-hostile-'));
  assert.equal(mcpki(['init', '--home', home]).status, 0);
  root = readFileSync(join(home, 'ca', 'root.crt'), 'utf8');
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
    state: recordingState(),
    ordersPerHour: 1000,
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

const resource = (name) => directoryUrl.replace('/directory', `/${name}`);

async function nonce() {
  const res = await acme.axios.head(resource('new-nonce'));
  return res.headers['replay-nonce'];
}

/** A POST with node:https (acme-client's axios would wait out a 429's Retry-After by itself). */
function post(url, body, contentType = 'application/jose+json') {
  const data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: 'POST',
        ca: root,
        agent: false,
        headers: { 'content-type': contentType, 'content-length': data.length },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

async function account(key) {
  const accountKey = key ?? (await acme.crypto.createPrivateEcdsaKey());
  const client = new acme.Client({ directoryUrl, accountKey });
  await client.createAccount({ termsOfServiceAgreed: true });
  const http = new HttpClient(directoryUrl, accountKey);
  const kid = client.getAccountUrl();
  /** a signed POST with a fresh nonce; payload null is POST-as-GET */
  const send = async (url, payload, options = {}) =>
    post(
      url,
      http.createSignedBody(options.signedUrl ?? url, payload, {
        nonce: await nonce(),
        kid: options.jwk ? null : (options.kid ?? kid),
      }),
    );
  return { client, http, kid, send, accountKey };
}

/** An order of `client` for localhost whose http-01 challenge is valid: status ready. */
async function readyOrder(client, names = ['localhost']) {
  const order = await client.createOrder({ identifiers: names.map((value) => ({ type: 'dns', value })) });
  for (const authz of await client.getAuthorizations(order)) {
    const challenge = authz.challenges.find((c) => c.type === 'http-01');
    tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
    await client.completeChallenge(challenge);
    await client.waitForValidStatus(challenge);
  }
  const ready = await client.getOrder(order);
  assert.equal(ready.status, 'ready');
  return ready;
}

async function issued(owner) {
  const order = await readyOrder(owner.client);
  const [key, csr] = await acme.crypto.createCsr({ altNames: ['localhost'] });
  const finalized = await owner.client.finalizeOrder(order, csr);
  const pem = await owner.client.getCertificate(finalized);
  const serial = run('openssl', ['x509', '-noout', '-serial'], { input: pem })
    .stdout.trim()
    .replace(/^serial=/, '')
    .toUpperCase();
  const leafPem = pem.slice(0, pem.indexOf('-----END CERTIFICATE-----') + 25) + '\n';
  return { key, pem, leafPem, serial, der: acme.crypto.getPemBodyAsB64u(leafPem) };
}

function inventorySnapshot() {
  const store = context.store();
  return {
    certificates: store.listCertificates({ all: true }).length,
    events: store.listEvents({ limit: 100_000 }).length,
    revoked: store.listCertificates({ all: true }).filter((c) => c.status === 'revoked').length,
  };
}

/** Runs `request`, checks it got `type` (and `status`), and that neither the state nor the inventory changed. */
async function refusedAndUnchanged(what, request, type, status) {
  const writesBefore = writes.length;
  const inventoryBefore = inventorySnapshot();
  const response = await request();
  assert.equal(response.body?.type, `urn:ietf:params:acme:error:${type}`, `${what}: ${JSON.stringify(response.body)}`);
  if (status !== undefined) assert.equal(response.status, status, what);
  assert.ok(response.headers['replay-nonce'], `${what}: a fresh nonce comes with the error`);
  assert.deepEqual(writes.slice(writesBefore), [], `${what}: the state was written`);
  assert.deepEqual(inventorySnapshot(), inventoryBefore, `${what}: the inventory changed`);
  return response;
}

test('hostile JWS requests get their problem and change nothing', async () => {
  const a = await account();
  const b = await account();
  const newOrder = resource('new-order');
  const payload = { identifiers: [{ type: 'dns', value: 'localhost' }] };

  const signed = a.http.createSignedBody(newOrder, payload, { nonce: await nonce(), kid: a.kid });
  signed.signature = signed.signature.slice(0, -4) + (signed.signature.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  await refusedAndUnchanged('bad signature', () => post(newOrder, signed), 'malformed', 400);

  for (const alg of ['ES384', 'RS256', 'EdDSA']) {
    const body = a.http.createSignedBody(newOrder, payload, { nonce: await nonce(), kid: a.kid });
    body.protected = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(body.protected, 'base64url')), alg }),
    ).toString('base64url');
    const refused = await refusedAndUnchanged(
      `header alg ${alg} with a P-256 account key`,
      () => post(newOrder, body),
      'badSignatureAlgorithm',
      400,
    );
    assert.match(refused.body.detail, new RegExp(`${alg} does not match the account key \\(EC P-256\\)`));
  }

  const once = a.http.createSignedBody(
    newOrder,
    { identifiers: [{ type: 'dns', value: 'replay.localhost' }] },
    { nonce: await nonce(), kid: a.kid },
  );
  assert.equal((await post(newOrder, once)).status, 201);
  await refusedAndUnchanged('replayed nonce', () => post(newOrder, once), 'badNonce', 400);

  await refusedAndUnchanged(
    'a nonce never issued',
    () => post(newOrder, a.http.createSignedBody(newOrder, payload, { nonce: 'AAAAAAAAAAAAAAAAAAAAAA', kid: a.kid })),
    'badNonce',
    400,
  );
  await refusedAndUnchanged(
    'wrong url',
    () => a.send(newOrder, payload, { signedUrl: resource('new-account') }),
    'unauthorized',
    403,
  );
  await refusedAndUnchanged('unknown field', () => a.send(newOrder, { ...payload, bogus: 1 }), 'malformed', 400);
  // a client sending its whole order object (Caddy does) may leave the server's fields empty, never set them
  await refusedAndUnchanged(
    'newOrder asking for status valid',
    () => a.send(newOrder, { ...payload, status: 'valid' }),
    'malformed',
    400,
  );
  await refusedAndUnchanged(
    'newOrder naming a certificate',
    () => a.send(newOrder, { ...payload, certificate: resource('cert/X') }),
    'malformed',
    400,
  );
  await refusedAndUnchanged(
    'newOrder with a notAfter',
    () => a.send(newOrder, { ...payload, notAfter: '2030-01-01T00:00:00Z' }),
    'malformed',
    400,
  );
  const fresh = new HttpClient(directoryUrl, await acme.crypto.createPrivateEcdsaKey());
  await refusedAndUnchanged(
    'newAccount asking for status revoked',
    async () =>
      post(
        resource('new-account'),
        fresh.createSignedBody(
          resource('new-account'),
          { termsOfServiceAgreed: true, status: 'revoked' },
          { nonce: await nonce() },
        ),
      ),
    'malformed',
    400,
  );
  await refusedAndUnchanged(
    'oversized body',
    () => post(newOrder, JSON.stringify({ protected: 'x'.repeat(70 * 1024), payload: '', signature: '' })),
    'malformed',
    413,
  );
  await refusedAndUnchanged(
    "another account's kid (signed with my key)",
    () => a.send(newOrder, payload, { kid: b.kid }),
    'malformed',
    400,
  );
  await refusedAndUnchanged(
    'a kid that names no account',
    () => a.send(newOrder, payload, { kid: resource('account/nobody') }),
    'accountDoesNotExist',
    400,
  );
  await refusedAndUnchanged(
    'jwk where kid is required',
    () => a.send(newOrder, payload, { jwk: true }),
    'malformed',
    400,
  );
  await refusedAndUnchanged(
    'a name outside the constraints',
    () => a.send(newOrder, { identifiers: [{ type: 'dns', value: 'www.example.com' }] }),
    'rejectedIdentifier',
    400,
  );

  // another account's order, authorization and challenge: as if they did not exist
  const order = await b.client.createOrder(payload);
  const [authz] = await b.client.getAuthorizations(order);
  await refusedAndUnchanged("another account's order", () => a.send(order.url, null), 'unauthorized', 404);
  await refusedAndUnchanged("another account's authorization", () => a.send(authz.url, null), 'unauthorized', 404);
  await refusedAndUnchanged(
    "another account's challenge",
    () => a.send(authz.challenges[0].url, {}),
    'unauthorized',
    404,
  );
  await refusedAndUnchanged(
    "finalize another account's order",
    () => a.send(order.finalize, { csr: 'AA' }),
    'unauthorized',
    404,
  );

  await refusedAndUnchanged('POST-as-GET with a payload', () => b.send(order.url, {}), 'malformed', 400);
  const [, csr] = await acme.crypto.createCsr({ altNames: ['localhost'] });
  await refusedAndUnchanged(
    'finalize before ready',
    () => b.send(order.finalize, { csr: acme.crypto.getPemBodyAsB64u(csr) }),
    'orderNotReady',
    403,
  );
});

test('finalize with a CSR for other names, extra names or a weak key is badCSR and changes nothing', async () => {
  const a = await account();
  const order = await readyOrder(a.client);
  const csrFor = async (options) => acme.crypto.getPemBodyAsB64u((await acme.crypto.createCsr(options))[1]);
  await refusedAndUnchanged(
    'CSR for another name',
    async () => a.send(order.finalize, { csr: await csrFor({ altNames: ['other.localhost'] }) }),
    'badCSR',
    400,
  );
  await refusedAndUnchanged(
    'CSR with an extra name',
    async () => a.send(order.finalize, { csr: await csrFor({ altNames: ['localhost', 'extra.localhost'] }) }),
    'badCSR',
    400,
  );
  await refusedAndUnchanged(
    'CSR with another CN',
    async () => a.send(order.finalize, { csr: await csrFor({ commonName: 'cn.localhost', altNames: ['localhost'] }) }),
    'badCSR',
    400,
  );
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  const response = await refusedAndUnchanged(
    'CSR with an RSA-1024 key',
    async () =>
      a.send(order.finalize, {
        csr: acme.crypto.getPemBodyAsB64u((await acme.crypto.createCsr({ altNames: ['localhost'] }, weak))[1]),
      }),
    'badCSR',
    400,
  );
  assert.match(response.body.detail, /1024|rsa/i);
  await refusedAndUnchanged('a CSR that is not DER', () => a.send(order.finalize, { csr: 'AAAA' }), 'badCSR', 400);
  // the order is still ready: the right CSR is then signed
  const [, good] = await acme.crypto.createCsr({ altNames: ['localhost'] });
  const finalized = await a.client.finalizeOrder(order, good);
  assert.equal(finalized.status, 'valid');
});

test('a deactivated account can do nothing more', async () => {
  const a = await account();
  const order = await a.client.createOrder({ identifiers: [{ type: 'dns', value: 'localhost' }] });
  await a.client.updateAccount({ status: 'deactivated' });
  await refusedAndUnchanged(
    'newOrder by a deactivated account',
    () => a.send(resource('new-order'), { identifiers: [{ type: 'dns', value: 'localhost' }] }),
    'unauthorized',
    403,
  );
  await refusedAndUnchanged('reading its order', () => a.send(order.url, null), 'unauthorized', 403);
  await refusedAndUnchanged('reactivating it', () => a.send(a.kid, { status: 'valid' }), 'unauthorized', 403);
  await refusedAndUnchanged(
    'newAccount with its key',
    () => a.send(resource('new-account'), { termsOfServiceAgreed: true }, { jwk: true }),
    'unauthorized',
    403,
  );
});

test('revokeCert by the ordering account: the inventory marks it revoked and the published CRL lists it', async () => {
  const owner = await account();
  const cert = await issued(owner);
  const stranger = await account();
  const revokeUrl = resource('revoke-cert');
  await refusedAndUnchanged(
    'revocation by another account',
    () => stranger.send(revokeUrl, { certificate: cert.der }),
    'unauthorized',
    403,
  );
  await refusedAndUnchanged(
    "revocation signed by a key that is not the certificate's",
    () => stranger.send(revokeUrl, { certificate: cert.der }, { jwk: true }),
    'unauthorized',
    403,
  );
  for (const reason of [2, 6, 7, 8, 10, -1, '1']) {
    await refusedAndUnchanged(
      `revocation reason ${JSON.stringify(reason)}`,
      () => owner.send(revokeUrl, { certificate: cert.der, reason }),
      'badRevocationReason',
      400,
    );
  }
  await refusedAndUnchanged(
    'revokeCert with an unknown field',
    () => owner.send(revokeUrl, { certificate: cert.der, why: 'x' }),
    'malformed',
    400,
  );
  // a certificate this server did not issue (the server's own TLS certificate is in the inventory, not ACME's)
  const own = acme.crypto.getPemBodyAsB64u(server.certificatePem().split(/(?<=-----END CERTIFICATE-----)/)[0]);
  await refusedAndUnchanged(
    'a certificate this ACME server did not issue',
    () => owner.send(revokeUrl, { certificate: own }),
    'unauthorized',
    404,
  );

  const done = await owner.send(revokeUrl, { certificate: cert.der, reason: 1 });
  assert.equal(done.status, 200, JSON.stringify(done.body));
  const listed = mcpki(['show', cert.serial, '--home', home, '--json']).json;
  assert.equal(listed.certificate?.status ?? listed.status, 'revoked', JSON.stringify(listed));
  const crl = run('openssl', ['crl', '-in', join(home, 'ca', 'crl.pem'), '-noout', '-text']);
  assert.equal(crl.status, 0, crl.stderr);
  assert.match(crl.stdout, new RegExp(`Serial Number: ${cert.serial}[\\s\\S]*?Key Compromise`));
  // OpenSSL refuses the chain with the CRL
  const { dir, cleanup: done2 } = tempDir('mcpki-acme-crl-');
  try {
    const leaf = join(dir, 'leaf.pem');
    writeFileSync(leaf, cert.leafPem);
    writeFileSync(join(dir, 'int.pem'), readFileSync(join(home, 'ca', 'intermediate.crt')));
    const verify = run('openssl', [
      'verify',
      '-crl_check',
      '-CRLfile',
      join(home, 'ca', 'crl.pem'),
      '-CAfile',
      join(home, 'ca', 'root.crt'),
      '-untrusted',
      join(dir, 'int.pem'),
      leaf,
    ]);
    assert.notEqual(verify.status, 0);
    assert.match(verify.stdout + verify.stderr, /certificate revoked/);
  } finally {
    done2();
  }
  await refusedAndUnchanged(
    'revoking it again',
    () => owner.send(revokeUrl, { certificate: cert.der }),
    'alreadyRevoked',
    400,
  );
});

test("revokeCert signed with the certificate's own key (jwk), by someone with no account", async () => {
  const owner = await account();
  const cert = await issued(owner);
  const holder = new HttpClient(directoryUrl, cert.key);
  const revokeUrl = resource('revoke-cert');
  const response = await post(
    revokeUrl,
    holder.createSignedBody(revokeUrl, { certificate: cert.der, reason: 4 }, { nonce: await nonce() }),
  );
  assert.equal(response.status, 200, JSON.stringify(response.body));
  const crl = run('openssl', ['crl', '-in', join(home, 'ca', 'crl.pem'), '-noout', '-text']).stdout;
  assert.match(crl, new RegExp(`Serial Number: ${cert.serial}[\\s\\S]*?Superseded`));
  const events = mcpki(['events', '--home', home, '--json']).json;
  const list = Array.isArray(events) ? events : events.events;
  assert.ok(
    list.some(
      (e) =>
        e.type === 'acme-server.certificate.revoked' && e.serial === cert.serial && e.detail.by === 'certificate-key',
    ),
    JSON.stringify(list.slice(0, 5)),
  );
});

test('more orders per hour than the account may place: rateLimited with Retry-After, and nothing created', async () => {
  const limited = await startAcmeServer(context, {
    listen: [{ host: '127.0.0.1', port: 0 }],
    validation: { httpPort: 1, tlsPort: 1 },
    ordersPerHour: 3,
  });
  try {
    const accountKey = await acme.crypto.createPrivateEcdsaKey();
    const client = new acme.Client({ directoryUrl: limited.directories[0], accountKey });
    await client.createAccount({ termsOfServiceAgreed: true });
    for (let i = 0; i < 3; i++) await client.createOrder({ identifiers: [{ type: 'dns', value: 'localhost' }] });
    const http = new HttpClient(limited.directories[0], accountKey);
    const url = limited.directories[0].replace('/directory', '/new-order');
    const fresh = (await acme.axios.head(limited.directories[0].replace('/directory', '/new-nonce'))).headers[
      'replay-nonce'
    ];
    const before = inventorySnapshot();
    const response = await post(
      url,
      http.createSignedBody(
        url,
        { identifiers: [{ type: 'dns', value: 'localhost' }] },
        { nonce: fresh, kid: client.getAccountUrl() },
      ),
    );
    assert.equal(response.status, 429);
    assert.equal(response.body.type, 'urn:ietf:params:acme:error:rateLimited');
    const retryAfter = Number(response.headers['retry-after']);
    assert.ok(retryAfter > 3000 && retryAfter <= 3600, `Retry-After ${response.headers['retry-after']}`);
    assert.deepEqual(inventorySnapshot(), before);
    // another account is not limited by the first one's orders
    const other = new acme.Client({
      directoryUrl: limited.directories[0],
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
    });
    await other.createAccount({ termsOfServiceAgreed: true });
    await other.createOrder({ identifiers: [{ type: 'dns', value: 'localhost' }] });
  } finally {
    await limited.close();
  }
});

test('after "mcpki ca rotate-intermediate" the running server signs with the new intermediate', async () => {
  const owner = await account();
  const before = await issued(owner);
  const oldIntermediate = readFileSync(join(home, 'ca', 'intermediate.crt'), 'utf8');
  const rotated = mcpki(['ca', 'rotate-intermediate', '--home', home]);
  assert.equal(rotated.status, 0, rotated.stderr);
  const newIntermediate = readFileSync(join(home, 'ca', 'intermediate.crt'), 'utf8');
  assert.notEqual(newIntermediate, oldIntermediate);
  const after = await issued(owner);
  const { dir, cleanup: done } = tempDir('mcpki-acme-rotate-');
  try {
    const check = (leaf, intermediate) => {
      writeFileSync(join(dir, 'leaf.pem'), leaf);
      writeFileSync(join(dir, 'int.pem'), intermediate);
      return run('openssl', [
        'verify',
        '-x509_strict',
        '-CAfile',
        join(home, 'ca', 'root.crt'),
        '-untrusted',
        join(dir, 'int.pem'),
        join(dir, 'leaf.pem'),
      ]).status;
    };
    assert.equal(check(before.leafPem, oldIntermediate), 0);
    assert.equal(
      check(after.leafPem, newIntermediate),
      0,
      'the certificate issued after the rotation chains to the new intermediate',
    );
    assert.notEqual(check(after.leafPem, oldIntermediate), 0);
    assert.ok(after.pem.includes(newIntermediate.trim()), 'the chain served is the new intermediate');
  } finally {
    done();
  }
});

test('a request body that never ends is answered 413 once it passes the cap, and changes nothing', async () => {
  const writesBefore = writes.length;
  const inventoryBefore = inventorySnapshot();
  const response = await new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => settle(reject, new Error('no answer within 10 s of passing the cap')), 10_000);
    function settle(how, value) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      how(value);
    }
    const req = httpsRequest(
      resource('new-order'),
      {
        method: 'POST',
        ca: root,
        agent: false,
        headers: { 'content-type': 'application/jose+json', 'transfer-encoding': 'chunked' },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          settle(resolve, { status: res.statusCode, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
          req.destroy();
        });
      },
    );
    req.on('error', (error) => settle(reject, error));
    // 128 KiB, twice the cap, and the body is never ended: a client that would send forever
    req.write(Buffer.alloc(128 * 1024, 0x61));
  });
  assert.equal(response.status, 413);
  assert.equal(response.body.type, 'urn:ietf:params:acme:error:malformed');
  assert.deepEqual(writes.slice(writesBefore), []);
  assert.deepEqual(inventorySnapshot(), inventoryBefore);
});

test("the server's own TLS key is never written: the only private keys in the home are the CA's", () => {
  const keys = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path);
      else if (stat.isFile() && readFileSync(path).includes('PRIVATE KEY-----')) keys.push(path.slice(home.length + 1));
    }
  };
  walk(home);
  // the root, the intermediate, and intermediates retired by the rotation above
  const others = keys.filter((path) => !/^ca\/(root|intermediate|retired\/intermediate-[0-9A-Fa-f]+)\.key$/.test(path));
  assert.deepEqual(others, []);
  assert.ok(keys.includes('ca/intermediate.key'), keys.join(', '));
  const served = server.certificatePem();
  assert.match(served, /BEGIN CERTIFICATE/);
});

test('an EAB HMAC key is shown once and stored only sealed: its bytes are nowhere in the inventory files', () => {
  const created = mcpki(['--home', home, '--json', 'acme-server', 'eab', 'create', '--name', 'sealed']);
  assert.equal(created.status, 0, created.stderr);
  const { hmacKey } = created.json;
  const raw = Buffer.from(hmacKey, 'base64url');
  assert.equal(raw.length, 32);
  const files = ['mcpki.db', 'mcpki.db-wal'].map((name) => join(home, name)).filter((path) => existsSync(path));
  assert.ok(files.length > 0);
  for (const path of files) {
    const bytes = readFileSync(path);
    for (const form of [
      Buffer.from(hmacKey),
      raw,
      Buffer.from(raw.toString('base64')),
      Buffer.from(raw.toString('hex')),
    ])
      assert.equal(bytes.indexOf(form), -1, `${path} holds the HMAC key`);
  }
  const listed = mcpki(['--home', home, '--json', 'acme-server', 'eab', 'list']);
  assert.equal(listed.status, 0, listed.stderr);
  assert.ok(!listed.stdout.includes(hmacKey), 'eab list shows the HMAC key');
});
