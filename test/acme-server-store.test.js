// The ACME server's state in the inventory: a server restarted on the same home knows its accounts, orders and
// certificates (acme-client, over TLS on loopback); every account and order is in `mcpki events`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Agent } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { createContext } from '../dist/context.js';
import { startAcmeServer } from '../dist/acme-server/server.js';
import { createStoreState } from '../dist/acme-server/model.js';
import { mcpki, tempDir, testStore } from './helpers.js';

const require = createRequire(import.meta.url);
const acme = require('acme-client');

let home;
let cleanup;
let root;
const tokens = new Map();
let challengeServer;

before(async () => {
  ({ dir: home, cleanup } = tempDir('mcpki-acme-store-'));
  assert.equal(mcpki(['init', '--home', home]).status, 0);
  root = readFileSync(join(home, 'ca', 'root.crt'), 'utf8');
  challengeServer = createServer((req, res) => {
    const token = req.url.replace('/.well-known/acme-challenge/', '');
    if (tokens.has(token)) res.end(tokens.get(token));
    else res.writeHead(404).end();
  });
  await new Promise((resolve) => challengeServer.listen(0, '127.0.0.1', resolve));
  acme.axios.defaults.httpsAgent = new Agent({ ca: root, keepAlive: false });
});

after(async () => {
  await new Promise((resolve) => challengeServer.close(resolve));
  cleanup?.();
});

async function start(port = 0) {
  const context = createContext({ ...testStore(home), home });
  const server = await startAcmeServer(context, {
    listen: [{ host: '127.0.0.1', port }],
    validation: { httpPort: challengeServer.address().port, tlsPort: 1, timeoutMs: 5_000 },
    state: createStoreState(context.store().acmeServer()),
  });
  return {
    server,
    directoryUrl: server.directories[0],
    async stop() {
      await server.close();
      context.close();
    },
  };
}

test('a restarted server knows its accounts, orders and certificates', async () => {
  const first = await start();
  const port = Number(new URL(first.directoryUrl).port);
  const accountKey = await acme.crypto.createPrivateEcdsaKey();
  const client = new acme.Client({ directoryUrl: first.directoryUrl, accountKey });
  await client.createAccount({ termsOfServiceAgreed: true, contact: ['mailto:ops@example.test'] });
  const accountUrl = client.getAccountUrl();
  const order = await client.createOrder({ identifiers: [{ type: 'dns', value: 'localhost' }] });
  const [authz] = await client.getAuthorizations(order);
  const challenge = authz.challenges.find((c) => c.type === 'http-01');
  tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
  await client.completeChallenge(challenge);
  await client.waitForValidStatus(challenge);
  const [, csr] = await acme.crypto.createCsr({ altNames: ['localhost'] });
  const finalized = await client.finalizeOrder(order, csr);
  const pem = await client.getCertificate(finalized);
  await first.stop();

  // a new process on the same home and port: the memory of the first is gone, the inventory is not
  const second = await start(port);
  try {
    const again = new acme.Client({ directoryUrl: second.directoryUrl, accountKey });
    const account = await again.createAccount({ onlyReturnExisting: true });
    assert.equal(again.getAccountUrl(), accountUrl, 'the same account');
    assert.equal(account.status, 'valid');
    assert.deepEqual(account.contact, ['mailto:ops@example.test']);
    const old = await again.getOrder(finalized);
    assert.equal(old.status, 'valid');
    assert.equal(await again.getCertificate(old), pem, 'the certificate downloads again');
    const next = await again.createOrder({ identifiers: [{ type: 'dns', value: 'next.localhost' }] });
    assert.equal(next.status, 'pending');
    // the account's orders list (RFC 8555 §7.1.2.1) has both, from before and after the restart
    const { data: list } = await again.api.apiRequest(account.orders, null, [200]);
    assert.deepEqual(list.orders, [finalized.url, next.url]);
    const stranger2 = new acme.Client({
      directoryUrl: second.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
    });
    await stranger2.createAccount({ termsOfServiceAgreed: true });
    await assert.rejects(stranger2.api.apiRequest(account.orders, null, [200]), /only list its own orders/);

    // a key this server never saw has no account
    const stranger = new acme.Client({
      directoryUrl: second.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
    });
    await assert.rejects(stranger.createAccount({ onlyReturnExisting: true }), /no account exists for this key/);
  } finally {
    await second.stop();
  }

  const events = mcpki(['events', '--home', home, '--json', '--limit', '1000']).json.events.map((e) => e.type);
  assert.equal(events.filter((t) => t === 'acme-server.account.created').length, 2);
  assert.equal(events.filter((t) => t === 'acme-server.order.created').length, 2);
  assert.equal(events.filter((t) => t === 'acme-server.certificate.issued').length, 1);
});

test("an EAB HMAC key is sealed to the intermediate's key: it opens with that key only, and tampering is detected", async () => {
  const { generateKeyPairSync } = await import('node:crypto');
  const { sealEabKey, openEabKey, eabKeyLookup, createEabKey } = await import('../dist/acme-server/eab.js');
  const { loadIssuingCa } = await import('../dist/pki/ca.js');
  const context = createContext({ ...testStore(home), home });
  try {
    const ca = loadIssuingCa(context);
    const secret = Buffer.alloc(32, 9);
    const sealed = sealEabKey(ca.key, 'eab-x', secret);
    assert.ok(!Buffer.from(sealed, 'base64url').includes(secret));
    assert.deepEqual(openEabKey(ca.key, 'eab-x', sealed), secret);
    assert.throws(() => openEabKey(ca.key, 'eab-y', sealed), 'bound to its kid');
    assert.throws(
      () => openEabKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, 'eab-x', sealed),
      'another CA key cannot open it',
    );
    const bytes = Buffer.from(sealed, 'base64url');
    bytes[14] ^= 1;
    assert.throws(() => openEabKey(ca.key, 'eab-x', bytes.toString('base64url')), 'tampering is detected');

    const created = createEabKey(context, { name: 'lookup' });
    const lookup = eabKeyLookup(context);
    assert.deepEqual(lookup(created.kid).key, Buffer.from(created.hmacKey, 'base64url'));
    assert.equal(lookup('eab-unknown'), undefined);
    assert.throws(() => createEabKey(context, { name: 'bad\nname' }), /EAB key name/);
    assert.throws(() => createEabKey(context, { name: 'x', allow: ['*.'] }), /allow entry/);
  } finally {
    context.close();
  }
});
