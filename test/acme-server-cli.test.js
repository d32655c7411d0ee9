// `mcpki acme-server` as a process: it prints its directory, requires EAB when told to (keys made, listed and
// revoked with `eab`, the HMAC key printed once and stored sealed), serves ARI windows that `renew-early`
// moves, checks `replaces`, and exits 0 on SIGTERM. The client is acme-client (npm) over TLS on loopback;
// renewal information is also read with mcpki's own ARI client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { Agent } from 'node:https';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { ariCertificateId, fetchRenewalInfo } from '../dist/index.js';
import { BIN, mcpki, tempDir, storeEnv } from './helpers.js';
import { spawnAcmeServer } from './acme-server-helpers.js';

const require = createRequire(import.meta.url);
const acme = require('acme-client');

let home;
let cleanup;
let root;
const tokens = new Map();
let challengeServer;

before(async () => {
  ({ dir: home, cleanup } = tempDir('mcpki-acme-cli-'));
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

/** Starts `mcpki acme-server --json` and waits for the directory line. */
async function startServer(args, { bare = false } = {}) {
  const listen = bare ? [] : ['--listen', '127.0.0.1:0', '--http-port', String(challengeServer.address().port)];
  return spawnAcmeServer(home, [...listen, ...args]);
}

async function getCertificate(client, name) {
  const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] });
  return finish(client, order, name);
}

async function finish(client, order, name) {
  const [authz] = await client.getAuthorizations(order);
  const challenge = authz.challenges.find((c) => c.type === 'http-01');
  tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
  await client.completeChallenge(challenge);
  await client.waitForValidStatus(challenge);
  const [, csr] = await acme.crypto.createCsr({ altNames: [name] });
  return client.getCertificate(await client.finalizeOrder(order, csr));
}

test('--require-eab: no binding is refused; a key from "eab create" binds, its allow list holds at newOrder, and "eab revoke" stops its accounts', async () => {
  const created = mcpki([
    '--home',
    home,
    '--json',
    'acme-server',
    'eab',
    'create',
    '--name',
    'agents',
    '--allow',
    '*.agents.localhost',
    '--allow',
    'LocalHost',
  ]);
  assert.equal(created.status, 0, created.stderr);
  const { kid, hmacKey } = created.json;
  assert.match(kid, /^eab-[A-Za-z0-9_-]+$/);
  assert.equal(Buffer.from(hmacKey, 'base64url').length, 32);

  const server = await startServer(['--require-eab']);
  try {
    const { data } = await acme.axios.get(server.directoryUrl);
    assert.equal(data.meta.externalAccountRequired, true);
    assert.match(data.renewalInfo, /\/acme\/renewal-info$/);

    const bare = new acme.Client({
      directoryUrl: server.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
    });
    await assert.rejects(bare.createAccount({ termsOfServiceAgreed: true }), /requires an external account binding/);
    const wrong = new acme.Client({
      directoryUrl: server.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      externalAccountBinding: { kid, hmacKey: Buffer.alloc(32, 7).toString('base64url') },
    });
    await assert.rejects(wrong.createAccount({ termsOfServiceAgreed: true }));

    const client = new acme.Client({
      directoryUrl: server.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      externalAccountBinding: { kid, hmacKey },
    });
    await client.createAccount({ termsOfServiceAgreed: true });
    const pem = await getCertificate(client, 'localhost');
    assert.match(pem, /BEGIN CERTIFICATE/);
    await assert.rejects(
      client.createOrder({ identifiers: [{ type: 'dns', value: 'other.localhost' }] }),
      /outside what external account key .* allows/,
    );

    const listed = mcpki(['--home', home, '--json', 'acme-server', 'eab', 'list']).json.keys;
    assert.deepEqual(
      listed.map((k) => [k.kid, k.name, k.status, k.accounts, k.allow]),
      [[kid, 'agents', 'valid', 1, ['*.agents.localhost', 'localhost']]],
    );

    // an order made before the revocation, ready to finalize after it
    const pending = await client.createOrder({ identifiers: [{ type: 'dns', value: 'localhost' }] });
    const [authz] = await client.getAuthorizations(pending);
    const challenge = authz.challenges.find((c) => c.type === 'http-01');
    tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
    await client.completeChallenge(challenge);
    await client.waitForValidStatus(challenge);

    const revoked = mcpki(['--home', home, 'acme-server', 'eab', 'revoke', kid]);
    assert.equal(revoked.status, 0, revoked.stderr);
    const [, csr] = await acme.crypto.createCsr({ altNames: ['localhost'] });
    await assert.rejects(client.finalizeOrder(pending, csr), /was revoked/, 'nothing is issued after the revocation');
    await assert.rejects(
      client.createOrder({ identifiers: [{ type: 'dns', value: 'a2.agents.localhost' }] }),
      /was revoked/,
    );
    assert.equal(
      mcpki(['--home', home, 'acme-server', 'eab', 'revoke', kid]).status,
      5,
      'revoking twice: already done',
    );
    const late = new acme.Client({
      directoryUrl: server.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      externalAccountBinding: { kid, hmacKey },
    });
    await assert.rejects(late.createAccount({ termsOfServiceAgreed: true }), 'a revoked key binds no new account');
  } finally {
    assert.deepEqual(await server.stop(), { code: 0, signal: null }, 'SIGTERM drains and exits 0');
  }

  // the HMAC key is nowhere in the clear: not in the inventory (nor its WAL) and not in the log
  for (const file of readdirSync(home).filter(
    (f) => f.startsWith('mcpki.db') || f.endsWith('.db') || f.endsWith('-wal'),
  )) {
    const bytes = readFileSync(join(home, file));
    assert.ok(
      !bytes.includes(hmacKey) && !bytes.includes(Buffer.from(hmacKey, 'base64url')),
      `${file} holds the HMAC key`,
    );
  }
  const events = mcpki(['--home', home, '--json', 'events', '--limit', '1000']);
  assert.ok(!events.stdout.includes(hmacKey));
  const types = events.json.events.map((e) => e.type);
  for (const type of [
    'acme-server.eab.created',
    'acme-server.eab.revoked',
    'acme-server.account.created',
    'acme-server.order.created',
  ])
    assert.ok(types.includes(type), type);
});

test('ARI: the window is 2/3 to 3/4 of the lifetime, "renew-early" moves it to now, and "replaces" must name the account\'s own certificate', async () => {
  const server = await startServer([]);
  try {
    const { data: directory } = await acme.axios.get(server.directoryUrl);
    const client = new acme.Client({
      directoryUrl: server.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
    });
    await client.createAccount({ termsOfServiceAgreed: true });
    const pem = await getCertificate(client, 'localhost');
    const certId = ariCertificateId(pem);
    const leaf = new (await import('node:crypto')).X509Certificate(pem);
    const from = Date.parse(leaf.validFrom);
    const life = Date.parse(leaf.validTo) - from;

    // mcpki's own ARI client reads the window
    const info = await fetchRenewalInfo(directory.renewalInfo, certId, { ca: root });
    assert.ok(Math.abs(info.window.start.getTime() - (from + (life * 2) / 3)) < 2000, info.window.start.toISOString());
    assert.ok(Math.abs(info.window.end.getTime() - (from + (life * 3) / 4)) < 2000, info.window.end.toISOString());
    assert.ok(info.retryAfterSeconds > 0);

    const serial = leaf.serialNumber;
    const moved = mcpki(['--home', home, '--json', 'acme-server', 'renew-early', '--serial', serial]);
    assert.equal(moved.status, 0, moved.stderr);
    assert.deepEqual(moved.json.serials, [serial]);
    const raw = await acme.axios.get(`${directory.renewalInfo}/${certId}`);
    // a window that ends now: in the past for the client, which renews at once (RFC 9773 §4.2)
    assert.ok(Math.abs(Date.parse(raw.data.suggestedWindow.end) - Date.now()) < 60_000, raw.data.suggestedWindow.end);
    assert.ok(Date.parse(raw.data.suggestedWindow.end) <= Date.now());
    assert.ok(Date.parse(raw.data.suggestedWindow.end) > Date.parse(raw.data.suggestedWindow.start));

    // replaces: its own certificate is fine and recorded; another account's is not; an unknown one is malformed
    const renewal = await client.createOrder({ identifiers: [{ type: 'dns', value: 'localhost' }], replaces: certId });
    assert.equal(renewal.replaces, certId);
    const other = new acme.Client({
      directoryUrl: server.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
    });
    await other.createAccount({ termsOfServiceAgreed: true });
    await assert.rejects(
      other.createOrder({ identifiers: [{ type: 'dns', value: 'localhost' }], replaces: certId }),
      /another account ordered/,
    );
    await assert.rejects(
      client.createOrder({ identifiers: [{ type: 'dns', value: 'localhost' }], replaces: 'AAAA.BBBB' }),
      /which this server did not issue/,
    );
    const unknown = await acme.axios.get(`${directory.renewalInfo}/AAAA.BBBB`, { validateStatus: () => true });
    assert.equal(unknown.status, 404);

    // a revoked certificate is due at once
    const second = await getCertificate(client, 'localhost');
    const secondId = ariCertificateId(second);
    const scheduled = await fetchRenewalInfo(directory.renewalInfo, secondId, { ca: root });
    assert.ok(scheduled.window.start.getTime() > Date.now() + 30 * 86_400_000);
    const secondSerial = new (await import('node:crypto')).X509Certificate(second).serialNumber;
    assert.equal(mcpki(['--home', home, 'revoke', secondSerial, '--reason', 'keyCompromise']).status, 0);
    const revokedInfo = await fetchRenewalInfo(directory.renewalInfo, secondId, { ca: root });
    assert.ok(
      Math.abs(revokedInfo.window.end.getTime() - Date.now()) < 60_000 &&
        revokedInfo.window.end.getTime() <= Date.now(),
      revokedInfo.window.end.toISOString(),
    );

    // --before selects by issue time: nothing was issued before 2000
    assert.deepEqual(
      mcpki(['--home', home, '--json', 'acme-server', 'renew-early', '--before', '2000-01-01']).json.serials,
      [],
    );
    assert.equal(mcpki(['--home', home, 'acme-server', 'renew-early', '--before', 'yesterday']).status, 2);
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

test('profiles: a lifetime above the CA maximum and a malformed listen address are refused before listening', () => {
  const tooLong = mcpki(['--home', home, 'acme-server', '--listen', '127.0.0.1:0', '--profile', 'long=server:400']);
  assert.equal(tooLong.status, 2, tooLong.stderr);
  assert.match(tooLong.stderr, /profile long/);
  const bad = mcpki(['--home', home, 'acme-server', '--listen', 'nowhere:99999']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--listen/);
});

test('a server that cannot listen (port in use) exits non-zero and leaves no server certificate in the inventory', async () => {
  const busy = createServer();
  await new Promise((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = busy.address().port;
  const serverCerts = () =>
    mcpki(['--home', home, '--json', 'list', '--all']).json.certificates.filter((c) => c.name === 'acme-server');
  const before = serverCerts().length;
  try {
    // the second listener fails after the first is up: that one is closed again, nothing is recorded
    const failed = mcpki(['--home', home, 'acme-server', '--listen', '127.0.0.1:0', '--listen', `127.0.0.1:${port}`]);
    assert.notEqual(failed.status, 0);
    assert.match(failed.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`));
    assert.equal(serverCerts().length, before, 'no acme-server certificate recorded by the failed start');
  } finally {
    await new Promise((resolve) => busy.close(resolve));
  }
  const server = await startServer([]);
  try {
    assert.equal(serverCerts().length, before + 1, 'a server that starts records its certificate');
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

test('the acmeServer: section of mcpki.yaml (-c) sets the same things as the flags, and its errors name the line', async () => {
  const file = join(home, 'mcpki.yaml');
  writeFileSync(
    file,
    [
      'version: 1',
      'certificates: []',
      'acmeServer:',
      '  listen: 127.0.0.1:0',
      `  httpPort: ${challengeServer.address().port}`,
      '  requireEab: true',
      '  profile:',
      '    - agents=client:7',
      '',
    ].join('\n'),
  );
  const server = await startServer(['-c', file], { bare: true });
  try {
    const { data } = await acme.axios.get(server.directoryUrl);
    assert.equal(data.meta.externalAccountRequired, true);
    assert.ok('agents' in data.meta.profiles, JSON.stringify(data.meta.profiles));
    assert.deepEqual(
      server.started.profiles.find((p) => p.name === 'agents'),
      { name: 'agents', kind: 'client', days: 7 },
    );

    // a certificate of that profile: clientAuth, 7 days; meanwhile "mcpki serve" runs on the same home
    const serve = spawn(process.execPath, [BIN, '--home', home, 'serve', '-c', file], {
      env: { ...process.env, NO_COLOR: '1', ...storeEnv(['--home', home]) },
    });
    let serveOut = '';
    serve.stdout.on('data', (d) => (serveOut += d));
    serve.stderr.on('data', (d) => (serveOut += d));
    const serveExit = new Promise((resolve) => serve.once('exit', (code) => resolve(code)));
    try {
      for (let i = 0; i < 200 && !serveOut.includes('service.started'); i++)
        await new Promise((r) => setTimeout(r, 50));
      assert.match(serveOut, /service\.started/);
      const { kid, hmacKey } = mcpki([
        '--home',
        home,
        '--json',
        'acme-server',
        'eab',
        'create',
        '--name',
        'profiles',
      ]).json;
      const client = new acme.Client({
        directoryUrl: server.directoryUrl,
        accountKey: await acme.crypto.createPrivateEcdsaKey(),
        externalAccountBinding: { kid, hmacKey },
      });
      await client.createAccount({ termsOfServiceAgreed: true });
      const order = await client.createOrder({ identifiers: [{ type: 'dns', value: 'localhost' }], profile: 'agents' });
      const pem = await finish(client, order, 'localhost');
      const leaf = new (await import('node:crypto')).X509Certificate(pem);
      assert.equal(Math.round((Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 86_400_000), 7);
      assert.match(leaf.toLegacyObject().ext_key_usage.join(','), /1\.3\.6\.1\.5\.5\.7\.3\.2/);
      assert.doesNotMatch(leaf.toLegacyObject().ext_key_usage.join(','), /1\.3\.6\.1\.5\.5\.7\.3\.1/);
    } finally {
      serve.kill('SIGTERM');
      assert.equal(await serveExit, 0, serveOut);
    }
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
  writeFileSync(
    file,
    [
      'version: 1',
      'certificates: []',
      'acmeServer:',
      '  requireEab: yes please',
      '  profile: long=server:999',
      '  listne: 127.0.0.1:1',
      '',
    ].join('\n'),
  );
  const bad = mcpki(['--home', home, 'acme-server', '-c', file]);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /mcpki\.yaml:4:\d+ acmeServer\.requireEab: expected true or false/);
  assert.match(bad.stderr, /acmeServer\.profile: .*profile long/);
  assert.match(bad.stderr, /acmeServer\.listne: unknown key; did you mean "listen"/);
});

test('after "ca rotate-intermediate" the old intermediate\'s certificates are due at once, and EAB keys sealed before still open', async () => {
  const created = mcpki(['--home', home, '--json', 'acme-server', 'eab', 'create', '--name', 'before-rotation']);
  assert.equal(created.status, 0, created.stderr);
  const { kid, hmacKey } = created.json;
  const server = await startServer(['--require-eab']);
  try {
    const { data: directory } = await acme.axios.get(server.directoryUrl);
    const client = new acme.Client({
      directoryUrl: server.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      externalAccountBinding: { kid, hmacKey },
    });
    await client.createAccount({ termsOfServiceAgreed: true });
    const pem = await getCertificate(client, 'localhost');
    const certId = ariCertificateId(pem);
    const before = await fetchRenewalInfo(directory.renewalInfo, certId, { ca: root });
    assert.ok(before.window.start.getTime() > Date.now() + 30 * 86_400_000, 'scheduled, weeks away');

    const rotated = mcpki(['--home', home, 'ca', 'rotate-intermediate']);
    assert.equal(rotated.status, 0, rotated.stderr);
    const after = await fetchRenewalInfo(directory.renewalInfo, certId, { ca: root });
    assert.ok(
      Math.abs(after.window.end.getTime() - Date.now()) < 60_000 && after.window.end.getTime() <= Date.now(),
      `due now: ${after.window.end.toISOString()}`,
    );

    const again = new acme.Client({
      directoryUrl: server.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      externalAccountBinding: { kid, hmacKey },
    });
    await again.createAccount({ termsOfServiceAgreed: true });
    const renewed = await getCertificate(again, 'localhost');
    const next = await fetchRenewalInfo(directory.renewalInfo, ariCertificateId(renewed), { ca: root });
    assert.ok(
      next.window.start.getTime() > Date.now() + 30 * 86_400_000,
      "the new intermediate's certificate is on schedule",
    );
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});
