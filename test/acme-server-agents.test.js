// The ACME server for MCP agents and the inventory: the `client` profile (clientAuth-only certificates with
// the SPIFFE IDs and e-mail addresses an EAB key allows, e-mail identifiers authorized by the binding), the
// issuer `acme-server:…` in `mcpki list` and `show`, revocation by an account that holds valid authorizations
// for every name (RFC 8555 §7.6), and the per-account order limit. `mcpki acme-server` runs as a process;
// the client is acme-client (npm), the CSRs with identities are made by OpenSSL, the certificates are checked
// by `openssl verify -purpose sslclient` and used by curl in a real mTLS handshake.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { createServer as createHttpsServer, Agent, request as httpsRequest } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { createMemoryState, createStoreState } from '../dist/acme-server/model.js';
import { createContext } from '../dist/context.js';
import { mcpki, run, tempDir, testStore } from './helpers.js';
import { spawnAcmeServer } from './acme-server-helpers.js';

const require = createRequire(import.meta.url);
const acme = require('acme-client');
const HttpClient = require('acme-client/src/http.js');

const SPIFFE = 'spiffe://example.test/agent/x';
const EMAIL = 'agent@example.test';
const REJECTED = 'urn:ietf:params:acme:error:rejectedIdentifier';
const BAD_CSR = 'urn:ietf:params:acme:error:badCSR';

let home;
let cleanup;
let root;
let rootPath;
let intermediatePath;
const tokens = new Map();
let challengeServer;
let server;
let eab;

before(async () => {
  ({ dir: home, cleanup } = tempDir('mcpki-acme-agents-'));
  assert.equal(mcpki(['init', '--home', home]).status, 0);
  rootPath = join(home, 'ca', 'root.crt');
  intermediatePath = join(home, 'ca', 'intermediate.crt');
  root = readFileSync(rootPath, 'utf8');
  challengeServer = createServer((req, res) => {
    const token = req.url.replace('/.well-known/acme-challenge/', '');
    if (tokens.has(token)) res.end(tokens.get(token));
    else res.writeHead(404).end();
  });
  await new Promise((resolve) => challengeServer.listen(0, '127.0.0.1', resolve));
  acme.axios.defaults.httpsAgent = new Agent({ ca: root, keepAlive: false });
  const created = mcpki([
    '--home',
    home,
    '--json',
    'acme-server',
    'eab',
    'create',
    '--name',
    'agents-key',
    '--allow',
    'localhost',
    '--allow-identity',
    SPIFFE,
    '--allow-identity',
    EMAIL,
  ]);
  assert.equal(created.status, 0, created.stderr);
  eab = created.json;
  server = await startServer(['--orders-per-hour', '40']);
});

after(async () => {
  if (server) assert.equal((await server.stop()).code, 0);
  await new Promise((resolve) => challengeServer.close(resolve));
  cleanup?.();
});

async function startServer(args) {
  return spawnAcmeServer(home, [
    '--listen',
    '127.0.0.1:0',
    '--http-port',
    String(challengeServer.address().port),
    ...args,
  ]);
}

async function account({ bound = false } = {}) {
  const client = new acme.Client({
    directoryUrl: server.directoryUrl,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
    ...(bound ? { externalAccountBinding: { kid: eab.kid, hmacKey: eab.hmacKey } } : {}),
  });
  await client.createAccount({ termsOfServiceAgreed: true });
  return client;
}

/** Completes every pending authorization of the order by http-01. */
async function authorize(client, order) {
  for (const authz of await client.getAuthorizations(order)) {
    if (authz.status === 'valid') continue;
    const challenge = authz.challenges.find((c) => c.type === 'http-01');
    tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
    await client.completeChallenge(challenge);
    await client.waitForValidStatus(challenge);
  }
}

async function serverCertificate(client, names) {
  const order = await client.createOrder({ identifiers: names.map(identifier) });
  await authorize(client, order);
  const [, csr] = await acme.crypto.createCsr({ altNames: names });
  return client.getCertificate(await client.finalizeOrder(order, csr));
}

function identifier(name) {
  return { type: /^[\d.]+$/.test(name) ? 'ip' : 'dns', value: name };
}

/** A key and a CSR made by OpenSSL with these subjectAltName entries (e.g. "URI:spiffe://…", "email:…"). */
function opensslCsr(dir, sans, subject = '/O=agent') {
  const key = join(dir, `k-${Math.random().toString(36).slice(2)}.pem`);
  const made = run('openssl', [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-subj',
    subject,
    '-addext',
    `subjectAltName=${sans.join(',')}`,
  ]);
  assert.equal(made.status, 0, made.stderr);
  return { key, csr: made.stdout };
}

/** What acme-client rejects with: the problem type is not kept, so its raw response is read. */
async function refusal(promise) {
  try {
    await promise;
  } catch (error) {
    return { detail: error.message, type: error.type ?? error.response?.data?.type };
  }
  assert.fail('expected a refusal');
}

function problemOf(client) {
  return async (url, payload) => {
    const http = new HttpClient(server.directoryUrl, client.opts.accountKey);
    const nonce = (await acme.axios.head(server.directoryUrl.replace('/directory', '/new-nonce'))).headers[
      'replay-nonce'
    ];
    const data = Buffer.from(
      JSON.stringify(http.createSignedBody(url, payload, { nonce, kid: client.getAccountUrl() })),
    );
    // node:https, not acme-client's axios: that one would wait out a 429's Retry-After by itself
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        url,
        {
          method: 'POST',
          ca: root,
          agent: false,
          headers: { 'content-type': 'application/jose+json', 'content-length': data.length },
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode, headers: res.headers, body: text ? JSON.parse(text) : null });
          });
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  };
}

test('eab create --allow-identity: SPIFFE IDs and e-mail addresses are checked as "issue client" checks them', () => {
  assert.deepEqual(eab.identities, [SPIFFE, EMAIL]);
  assert.deepEqual(eab.allow, ['localhost']);
  const listed = mcpki(['--home', home, '--json', 'acme-server', 'eab', 'list']).json.keys;
  assert.deepEqual(
    listed.map((k) => [k.name, k.allow, k.identities]),
    [['agents-key', ['localhost'], [SPIFFE, EMAIL]]],
  );
  for (const [bad, why] of [
    ['spiffe://example.test', /SPIFFE ID needs a path/],
    ['spiffe://Example.test/x', /lower-case trust domain/],
    ['spiffe://example.test/a/../b', /no "\." or "\.\." segment/],
    ['mailto:agent@example.test', /not a SPIFFE ID or an e-mail address/],
    ['agent\u0007@example.test', /control character/],
    ['spiffe://other.example/agent', /outside the CA's name constraints/],
  ]) {
    const refused = mcpki(['--home', home, 'acme-server', 'eab', 'create', '--name', 'bad', '--allow-identity', bad]);
    assert.notEqual(refused.status, 0, bad);
    assert.match(refused.stderr, why, bad);
  }
  const nameAsIdentity = mcpki(['--home', home, 'acme-server', 'eab', 'create', '--name', 'bad', '--allow', EMAIL]);
  assert.notEqual(nameAsIdentity.status, 0);
  assert.match(nameAsIdentity.stderr, /--allow-identity/);
});

test('profile client: an e-mail identifier authorized by the EAB binding, a SPIFFE ID from the CSR, clientAuth only, and curl authenticates with it over mTLS', async () => {
  const { dir, cleanup: done } = tempDir('mcpki-acme-agent-');
  try {
    const agent = await account({ bound: true });
    const order = await agent.createOrder({ identifiers: [{ type: 'email', value: EMAIL }], profile: 'client' });
    assert.equal(order.status, 'ready', 'nothing to validate: the binding authorizes the address');
    const [authz] = await agent.getAuthorizations(order);
    assert.equal(authz.status, 'valid');
    assert.deepEqual(authz.challenges, []);

    // refused at finalize, each with the problem and a detail that says what to do; the order stays ready
    const cases = [
      [
        ['URI:spiffe://example.test/agent/y', `email:${EMAIL}`],
        REJECTED,
        /spiffe:\/\/example\.test\/agent\/y.*--allow-identity/,
      ],
      [['URI:https://example.test/agent', `email:${EMAIL}`], BAD_CSR, /is not a SPIFFE ID/],
      [[`URI:${SPIFFE}`, 'URI:spiffe://example.test/agent/z', `email:${EMAIL}`], BAD_CSR, /exactly one URI/],
      [
        [`URI:${SPIFFE}`, `email:${EMAIL}`, 'email:boss@example.test'],
        REJECTED,
        /boss@example\.test.*not one of the identities/,
      ],
      [[`URI:${SPIFFE}`, `email:${EMAIL}`, 'DNS:localhost'], BAD_CSR, /localhost not in the order/],
      [[`URI:${SPIFFE}`], BAD_CSR, /agent@example\.test missing/],
    ];
    for (const [sans, type, detail] of cases) {
      const { csr } = opensslCsr(dir, sans);
      const response = await problemOf(agent)(order.finalize, { csr: acme.crypto.getPemBodyAsB64u(csr) });
      assert.equal(response.body?.type, type, `${sans.join(',')}: ${JSON.stringify(response.body)}`);
      assert.match(response.body.detail, detail, sans.join(','));
    }

    const { key, csr } = opensslCsr(dir, [`URI:${SPIFFE}`, `email:${EMAIL}`], `/CN=${EMAIL}`);
    const pem = await agent.getCertificate(await agent.finalizeOrder(order, csr));
    const certPath = join(dir, 'agent.crt');
    writeFileSync(certPath, pem);
    const verify = (purpose) =>
      run('openssl', [
        'verify',
        '-x509_strict',
        '-purpose',
        purpose,
        '-CAfile',
        rootPath,
        '-untrusted',
        intermediatePath,
        certPath,
      ]);
    const asClient = verify('sslclient');
    assert.equal(asClient.status, 0, asClient.stdout + asClient.stderr);
    assert.notEqual(verify('sslserver').status, 0, 'not a server certificate');
    const text = run('openssl', ['x509', '-noout', '-ext', 'subjectAltName,extendedKeyUsage'], { input: pem }).stdout;
    assert.match(text, /URI:spiffe:\/\/example\.test\/agent\/x/);
    assert.match(text, /email:agent@example\.test/);
    assert.match(text, /Extended Key Usage: *\n *TLS Web Client Authentication\n/);
    assert.doesNotMatch(text, /Server Authentication/);

    // mTLS: a Node server that requires a client certificate from the mcpki root; curl presents the agent's
    const issued = mcpki([
      '--home',
      home,
      '--json',
      'issue',
      'server',
      'mtls-peer',
      'localhost',
      '--out',
      join(dir, 'srv'),
    ]);
    assert.equal(issued.status, 0, issued.stderr);
    const https = createHttpsServer(
      {
        key: readFileSync(join(dir, 'srv', 'mtls-peer.key')),
        cert: readFileSync(join(dir, 'srv', 'mtls-peer.fullchain.pem')),
        ca: root,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => res.end(req.socket.getPeerCertificate().subjectaltname),
    );
    await new Promise((resolve) => https.listen(0, '127.0.0.1', resolve));
    try {
      const url = `https://localhost:${https.address().port}/`;
      const curl = (args) =>
        new Promise((resolve) => {
          const child = spawn('curl', [
            '-sS',
            '--cacert',
            rootPath,
            '--resolve',
            `localhost:${https.address().port}:127.0.0.1`,
            ...args,
            url,
          ]);
          let out = '';
          child.stdout.on('data', (d) => (out += d));
          child.stderr.on('data', (d) => (out += d));
          child.on('close', (status) => resolve({ status, out }));
        });
      const authed = await curl(['--cert', certPath, '--key', key]);
      assert.equal(authed.status, 0, authed.out);
      assert.match(authed.out, /URI:spiffe:\/\/example\.test\/agent\/x/);
      const anonymous = await curl([]);
      assert.notEqual(anonymous.status, 0, 'the server requires the client certificate');
    } finally {
      await new Promise((resolve) => https.close(resolve));
    }

    // mcpki list / show: the issuer names the EAB key the account was bound with
    const listed = mcpki(['--home', home, '--json', 'list']).json.certificates.find(
      (c) => c.name === 'agent-example.test',
    );
    assert.ok(listed, 'in the inventory');
    assert.equal(listed.issuer, 'acme-server:agents-key');
    assert.equal(listed.kind, 'client');
    const shown = mcpki(['--home', home, 'show', 'agent-example.test']);
    assert.match(shown.stdout, /issuer +acme-server:agents-key/);
  } finally {
    done();
  }
});

test('profile client at newOrder: e-mail identifiers need the client profile, an EAB key, and to be among its identities', async () => {
  const bound = await account({ bound: true });
  const order = problemOf(bound);
  const newOrder = server.directoryUrl.replace('/directory', '/new-order');
  const serverProfile = await order(newOrder, { identifiers: [{ type: 'email', value: EMAIL }] });
  assert.equal(serverProfile.body.type, REJECTED);
  assert.match(serverProfile.body.detail, /only in clientAuth certificates; order with profile "client"/);
  const other = await order(newOrder, {
    identifiers: [{ type: 'email', value: 'boss@example.test' }],
    profile: 'client',
  });
  assert.equal(other.body.type, REJECTED);
  assert.match(other.body.detail, /not one of the identities external account key agents-key/);
  const outside = await order(newOrder, {
    identifiers: [{ type: 'email', value: 'agent@example.org' }],
    profile: 'client',
  });
  assert.equal(outside.body.type, REJECTED);
  assert.match(outside.body.detail, /outside the CA's name constraints/);
  const unbound = await account();
  const noKey = await problemOf(unbound)(newOrder, {
    identifiers: [{ type: 'email', value: EMAIL }],
    profile: 'client',
  });
  assert.equal(noKey.body.type, REJECTED);
  assert.match(noKey.body.detail, /needs an account bound with an external account key/);

  // a SPIFFE ID in a server profile's CSR
  const { dir, cleanup: done } = tempDir('mcpki-acme-agent-');
  try {
    const serverOrder = await bound.createOrder({ identifiers: [{ type: 'dns', value: 'localhost' }] });
    await authorize(bound, serverOrder);
    const { csr } = opensslCsr(dir, ['DNS:localhost', `URI:${SPIFFE}`]);
    const refused = await problemOf(bound)(serverOrder.finalize, {
      csr: acme.crypto.getPemBodyAsB64u(csr),
    });
    assert.equal(refused.body.type, BAD_CSR);
    assert.match(refused.body.detail, /only in a clientAuth profile/);
  } finally {
    done();
  }
});

test("mcpki list shows an unbound account's certificate with issuer acme-server:ACCOUNT", async () => {
  const client = await account();
  const pem = await serverCertificate(client, ['localhost']);
  const serial = run('openssl', ['x509', '-noout', '-serial'], { input: pem }).stdout.trim().split('=')[1];
  const id = client.getAccountUrl().split('/').pop();
  const shown = mcpki(['--home', home, '--json', 'show', serial]).json.certificate;
  assert.equal(shown.issuer, `acme-server:${id}`);
  const listed = mcpki(['--home', home, 'list']);
  assert.match(listed.stdout, new RegExp(`acme-server:${id}`));
});

test('RFC 8555 §7.6: an account with valid authorizations for every name of a certificate may revoke it; one name short, it may not', async () => {
  const owner = await account();
  const pem = await serverCertificate(owner, ['localhost', '127.0.0.1']);
  const serial = run('openssl', ['x509', '-noout', '-serial'], { input: pem }).stdout.trim().split('=')[1];

  const other = await account();
  const stranger = await refusal(other.revokeCertificate(pem));
  assert.match(stranger.detail, /holds no valid authorization for localhost, 127\.0\.0\.1/);

  // authorized for localhost only
  const first = await other.createOrder({ identifiers: [identifier('localhost')] });
  await authorize(other, first);
  const short = await refusal(other.revokeCertificate(pem));
  assert.match(short.detail, /holds no valid authorization for 127\.0\.0\.1:/);
  assert.equal(mcpki(['--home', home, '--json', 'show', serial]).json.certificate.status, 'valid');

  const second = await other.createOrder({ identifiers: [identifier('127.0.0.1')] });
  await authorize(other, second);
  await other.revokeCertificate(pem, { reason: 4 });
  const shown = mcpki(['--home', home, '--json', 'show', serial]).json.certificate;
  assert.equal(shown.status, 'revoked');
  assert.equal(shown.revocationReason, 'superseded');
  const events = mcpki(['--home', home, '--json', 'events', '--limit', '1000']).json.events;
  const revoked = events.find((e) => e.type === 'acme-server.certificate.revoked' && e.serial === serial);
  assert.match(revoked.detail.by, /authorized for every name/);
  // the CRL the server published lists it
  const crl = run('openssl', ['crl', '-noout', '-text', '-in', join(home, 'ca', 'crl.pem')]);
  assert.match(crl.stdout.replace(/\s/g, ''), new RegExp(`SerialNumber:${serial}`, 'i'));
});

test('orders per hour: over the limit newOrder gets rateLimited with Retry-After, counted per account', async () => {
  const limited = await startServer(['--orders-per-hour', '2']);
  const saved = server;
  server = limited;
  try {
    const client = await account();
    const send = problemOf(client);
    const newOrder = limited.directoryUrl.replace('/directory', '/new-order');
    const payload = { identifiers: [identifier('localhost')] };
    assert.equal((await send(newOrder, payload)).status, 201);
    assert.equal((await send(newOrder, payload)).status, 201);
    const refused = await send(newOrder, payload);
    assert.equal(refused.status, 429);
    assert.equal(refused.body.type, 'urn:ietf:params:acme:error:rateLimited');
    assert.match(refused.body.detail, /placed 2 orders in the last hour/);
    const retryAfter = Number(refused.headers['retry-after']);
    assert.ok(retryAfter > 3500 && retryAfter <= 3600, `Retry-After ${refused.headers['retry-after']}`);
    const fresh = await account();
    assert.equal((await problemOf(fresh)(newOrder, payload)).status, 201, 'another account has its own count');
  } finally {
    server = saved;
    assert.equal((await limited.stop()).code, 0);
  }
});
