// Several `mcpki acme-server` instances on one PostgreSQL inventory (issue 12), behind the round-robin proxy
// of test/tcp-proxy.js, with real clients: certbot and acme-client. Two homes hold the same CA files (the
// second is provisioned by copying HOME/ca without the root key, as docs/acme-server.md says). The proxy
// listens on 127.0.0.1:P and the instances on 127.0.0.2:P and 127.0.0.3:P, so the URLs every instance builds
// (https://localhost:P/…) lead back to the proxy. Checked: a nonce from one instance is good once at the other;
// 100 orders from 10 clients finish while one instance is SIGKILLed (0 duplicate serials, 0 lost orders, every
// certificate recorded once); PostgreSQL restarted under load: each instance answers 503 with Retry-After and an
// ACME problem while it is away and recovers by itself; a revocation made just before is in every home's CRL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { Agent, request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { hasCommand, mcpki, run, tempDir } from './helpers.js';
import { freePorts } from './pebble.js';
import { hasPostgres, postgresMissingReason, startPostgres } from './postgres.js';
import { startRoundRobinProxy } from './tcp-proxy.js';
import {
  acme,
  certbotCertonly,
  hasChallengeDns,
  http01Responder,
  jwkJws,
  newAcmeClient,
  obtainCertificate,
  provisionHome,
  sleep,
  spawnAcmeServer,
  startChallengeDns,
  verifyStrict,
} from './acme-server-helpers.js';
import { Store } from '../dist/store/store.js';
import { parseStoreLocation } from '../dist/store/location.js';

const skip = !hasPostgres()
  ? postgresMissingReason()
  : !hasChallengeDns()
    ? 'pebble-challtestsrv is not installed (Debian package "pebble")'
    : false;

let work;
let cleanup;
let postgres;
let storeUrl;
let homes;
let root;
let dns;
let ports;
let proxy;
/** the proxy's targets: their port is set once the proxy has its own (the instances listen on the same one) */
const targets = [
  { host: '127.0.0.2', port: 0 },
  { host: '127.0.0.3', port: 0 },
];
const instances = [];
const responder = http01Responder();
const tokens = responder.tokens;
let directoryUrl;

/** Runs the CLI on a home with the shared store; fails the test on a non-zero exit. */
function mcpkiOn(home, args) {
  const r = mcpki(['--home', home, ...args], { env: { MCPKI_STORE: storeUrl } });
  assert.equal(r.status, 0, `mcpki ${args.join(' ')}: ${r.stderr}`);
  return r;
}

/** Starts `mcpki acme-server` on homes[index], listening on targets[index]. */
async function startInstance(index) {
  const { host, port } = targets[index];
  const instance = await spawnAcmeServer(
    homes[index],
    [
      ...['--listen', `${host}:${port}`, '--http-port', String(ports.http)],
      ...['--dns-resolver', `127.0.0.1:${ports.dns}`, '--orders-per-hour', '100000'],
    ],
    { env: { MCPKI_STORE: storeUrl } },
  );
  instances[index] = instance;
  return instance;
}

/** One HTTPS request straight to an instance (not through the proxy), as the proxy would forward it. */
function direct(index, method, path, { body, contentType } = {}) {
  const { host, port } = targets[index];
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host,
        port,
        method,
        path,
        servername: 'localhost',
        ca: root,
        agent: false,
        headers: {
          host: `localhost:${port}`,
          ...(body ? { 'content-type': contentType ?? 'application/jose+json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

/** A flattened JWS (ES256, jwk in the header) for newAccount, with the given nonce. */
function newAccountJws(key, nonce) {
  return jwkJws(key, nonce, `https://localhost:${targets[0].port}/acme/new-account`);
}

async function sql(text, params = []) {
  const client = new pg.Client({ connectionString: storeUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return (await client.query(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** One certificate for `name` through the proxy (test/acme-server-helpers.js): { pem, attempts }. */
const obtain = (client, name, options) => obtainCertificate(client, name, tokens, options);
const newClient = () => newAcmeClient(directoryUrl);

function serialOf(pem) {
  return new X509Certificate(pem).serialNumber.toUpperCase();
}

before(async () => {
  if (skip) return;
  ({ dir: work, cleanup } = tempDir('mcpki-acme-pg-'));
  postgres = await startPostgres();
  storeUrl = await postgres.createDatabase('acme_shared');
  homes = [join(work, 'a'), join(work, 'b')];
  mcpkiOn(homes[0], ['init']);
  // the second instance: HOME/ca of the first, without the root key (docs/acme-server.md)
  provisionHome(homes[0], homes[1]);
  root = readFileSync(join(homes[0], 'ca', 'root.crt'));
  dns = await startChallengeDns();
  const [httpPort] = await freePorts(1);
  ports = { dns: dns.port, http: httpPort };
  proxy = await startRoundRobinProxy(targets, { connectTimeoutMs: 1000 });
  for (const target of targets) target.port = proxy.port;
  await Promise.all([startInstance(0), startInstance(1)]);
  directoryUrl = `https://localhost:${proxy.port}/acme/directory`;
  acme.axios.defaults.httpsAgent = new Agent({ ca: root, keepAlive: false, family: 4 });
});

after(async () => {
  for (const instance of instances) if (instance) await instance.stop();
  await proxy?.close();
  await responder.close();
  await dns?.stop();
  await postgres?.stop();
  cleanup?.();
});

test('a nonce handed out by one instance is accepted once by the other, and then by neither', { skip }, async () => {
  const fromA = await direct(0, 'HEAD', '/acme/new-nonce');
  assert.equal(fromA.status, 200);
  const nonce = fromA.headers['replay-nonce'];
  assert.match(nonce, /^[A-Za-z0-9_-]{22}$/);
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const atB = await direct(1, 'POST', '/acme/new-account', { body: newAccountJws(key, nonce) });
  assert.equal(atB.status, 201, atB.text);
  const again = await direct(0, 'POST', '/acme/new-account', { body: newAccountJws(key, nonce) });
  assert.equal(again.status, 400, again.text);
  assert.equal(JSON.parse(again.text).type, 'urn:ietf:params:acme:error:badNonce');
  const againB = await direct(1, 'POST', '/acme/new-account', { body: newAccountJws(key, nonce) });
  assert.equal(JSON.parse(againB.text).type, 'urn:ietf:params:acme:error:badNonce');
});

test(
  'certbot and acme-client get certificates through the proxy, with requests spread over both instances',
  { skip },
  async (t) => {
    const before = proxy.counts().map((c) => c.connections);
    if (hasCommand('certbot')) {
      const dir = join(work, 'certbot');
      const result = await certbotCertonly(dir, directoryUrl, 'certbot.shared.test', {
        httpPort: ports.http,
        rootPath: join(homes[0], 'ca', 'root.crt'),
      });
      assert.equal(result.status, 0, result.output);
      verifyStrict(join(dir, 'config', 'live', 'certbot.shared.test', 'cert.pem'), {
        rootPath: join(homes[0], 'ca', 'root.crt'),
        intermediatePath: join(homes[1], 'ca', 'intermediate.crt'),
      });
    } else {
      t.diagnostic('certbot is not installed: acme-client only');
    }
    await responder.listen(ports.http);
    const client = await newClient();
    for (const name of ['one.shared.test', 'two.shared.test']) {
      const { pem, attempts } = await obtain(client, name, { maxAttempts: 1 });
      assert.equal(attempts, 1);
      assert.match(new X509Certificate(pem).subjectAltName, new RegExp(`DNS:${name.replace(/\./g, '\\.')}`));
    }
    const served = proxy.counts().map((c, i) => c.connections - before[i]);
    assert.ok(
      served.every((n) => n >= 3),
      `both instances served requests: ${served.join(', ')}`,
    );
  },
);

test(
  '100 orders from 10 clients while one instance is SIGKILLed: every client finishes, no duplicate serial, no lost order, each certificate recorded once',
  { skip, timeout: 600_000 },
  async (t) => {
    await responder.listen(ports.http);
    const clients = await Promise.all(Array.from({ length: 10 }, () => newClient()));
    let done = 0;
    let killed;
    const results = await Promise.all(
      clients.map(async (client, c) => {
        const mine = [];
        for (let i = 0; i < 10; i++) {
          const name = `o${c * 10 + i}.load.test`;
          const got = await obtain(client, name);
          mine.push({ name, ...got });
          done++;
          if (done === 30 && !killed) {
            killed = instances[1].child;
            killed.kill('SIGKILL');
          }
        }
        return mine;
      }),
    );
    assert.ok(killed, 'instance b was killed during the load');
    assert.equal((await instances[1].exited).signal, 'SIGKILL');
    assert.ok(proxy.counts()[1].failures > 0, 'after the kill, connections to the dead instance failed over');
    const all = results.flat();
    assert.equal(all.length, 100, 'every order ended with a certificate');
    const serials = all.map((r) => serialOf(r.pem));
    assert.equal(new Set(serials).size, 100, 'no two certificates share a serial');
    for (const r of all) assert.match(new X509Certificate(r.pem).subjectAltName, new RegExp(`DNS:${r.name}`));
    const retried = all.filter((r) => r.attempts > 1).length;
    t.diagnostic(`orders that needed another attempt after the kill: ${retried}`);

    // the inventory: each certificate a client holds is there once, linked to one valid order of its account
    const rows = await sql(
      `SELECT c.serial, count(*) AS n, min(a.order_id) AS order_id FROM certificates c
         JOIN acme_server_certificates a ON a.serial = c.serial WHERE c.serial = ANY($1) GROUP BY c.serial`,
      [serials],
    );
    assert.equal(rows.length, 100, 'every issued certificate is in the inventory');
    assert.ok(
      rows.every((r) => Number(r.n) === 1),
      'each exactly once',
    );
    // no order has two certificates, and every certificate of a load name belongs to a valid order
    const perOrder = await sql(
      `SELECT order_id, count(*) AS n FROM acme_server_certificates a JOIN certificates c ON c.serial = a.serial
         WHERE c.name LIKE '%.load.test' GROUP BY order_id HAVING count(*) > 1`,
    );
    assert.deepEqual(perOrder, [], 'no order was finalized twice');
    const orphans = await sql(
      `SELECT a.serial FROM acme_server_certificates a JOIN acme_server_orders o ON o.id = a.order_id
         WHERE (o.data::jsonb)->>'status' <> 'valid' OR (o.data::jsonb)->>'certificateSerial' <> a.serial`,
    );
    assert.deepEqual(orphans, [], 'every certificate is the one its valid order names');
    const listed = mcpkiOn(homes[0], ['--json', 'list']).json.certificates.filter((c) =>
      serials.includes(String(c.serial).toUpperCase()),
    );
    assert.equal(listed.length, 100, '"mcpki list" on the surviving home shows each certificate once');

    // the killed instance comes back on its home, as an operator restarts it
    await startInstance(1);
  },
);

test(
  'PostgreSQL restarted under load: 503 with Retry-After while it is away, recovery without a restart, and a revocation made just before is in every CRL',
  { skip, timeout: 600_000 },
  async () => {
    await responder.listen(ports.http);
    const client = await newClient();
    const { pem } = await obtain(client, 'revoked.shared.test');
    const serial = serialOf(pem);
    await client.revokeCertificate(pem, { reason: 4 });

    const loadClients = await Promise.all(Array.from({ length: 4 }, () => newClient()));
    let stop = false;
    const load = Promise.all(
      loadClients.map(async (c, n) => {
        const got = [];
        for (let i = 0; !stop || i < 2; i++) got.push(await obtain(c, `r${n}-${i}.restart.test`, { maxAttempts: 40 }));
        return got;
      }),
    );
    await sleep(500);
    // while the database is away, each instance answers newNonce with a 503 problem and Retry-After
    const seen = [[], []];
    let restarting = true;
    const restarted = postgres.restart({ downMs: 3000 }).finally(() => (restarting = false));
    while (restarting) {
      for (const index of [0, 1]) {
        try {
          seen[index].push(await direct(index, 'GET', '/acme/new-nonce'));
        } catch {
          // a connection cut while the instance waits for the database
        }
      }
      await sleep(200);
    }
    await restarted;
    for (const index of [0, 1]) {
      const unavailable = seen[index].filter((r) => r.status === 503);
      assert.ok(unavailable.length > 0, `instance ${index} answered 503 while PostgreSQL was down`);
      assert.match(unavailable[0].headers['retry-after'], /^[1-9]\d*$/);
      assert.equal(unavailable[0].headers['content-type'], 'application/problem+json');
      const document = JSON.parse(unavailable[0].text);
      assert.equal(document.type, 'urn:ietf:params:acme:error:serverInternal');
      assert.equal(document.status, 503);
      assert.match(document.detail, /database cannot be reached/);
    }
    // recovery: both instances answer again, without being restarted
    for (const index of [0, 1]) {
      let ok;
      for (let i = 0; i < 50 && !ok; i++) {
        const r = await direct(index, 'HEAD', '/acme/new-nonce').catch(() => undefined);
        if (r?.status === 200 && r.headers['replay-nonce']) ok = r;
        else await sleep(200);
      }
      assert.ok(ok, `instance ${index} serves nonces again`);
      assert.equal(instances[index].child.exitCode, null, `instance ${index} was not restarted`);
    }
    stop = true;
    const finished = (await load).flat();
    assert.ok(finished.length >= 8, 'the load finished');
    assert.equal(new Set(finished.map((r) => serialOf(r.pem))).size, finished.length);

    // the revocation is in the next CRL of every home (the instances' CA files)
    for (const home of homes) {
      mcpkiOn(home, ['crl']);
      const text = run('openssl', ['crl', '-in', join(home, 'ca', 'crl.pem'), '-noout', '-text']);
      assert.equal(text.status, 0, text.stderr);
      assert.match(text.stdout, new RegExp(`Serial Number: ${serial}`, 'i'), `${home}: the CRL lists ${serial}`);
    }
  },
);

test(
  'a validation left "processing" by instances that died is started again by the next one the client polls',
  { skip, timeout: 300_000 },
  async () => {
    await responder.listen(ports.http);
    const client = await newClient();
    const name = 'abandoned.shared.test';
    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] });
    const [authz] = await client.getAuthorizations(order);
    const challenge = authz.challenges.find((c) => c.type === 'http-01');
    const answer = await client.getChallengeKeyAuthorization(challenge);
    // the first validation is held by the responder until every instance is gone
    let fetched;
    const held = new Promise((resolve) => (fetched = resolve));
    tokens.set(challenge.token, answer);
    const hold = (req) => req.url.endsWith(challenge.token) && !held.done;
    const original = responder.server.listeners('request')[0];
    responder.server.removeAllListeners('request');
    responder.server.on('request', (req, res) => {
      if (hold(req)) {
        held.done = true;
        fetched();
        return; // never answered: the instance dies first
      }
      original(req, res);
    });
    try {
      await client.completeChallenge(challenge);
      await held;
      for (const instance of instances) instance.child.kill('SIGKILL');
      await Promise.all(instances.map((instance) => instance.exited));
      await Promise.all([startInstance(0), startInstance(1)]);
      const [row] = await sql(`SELECT (data::jsonb)->>'status' AS status FROM acme_server_challenges WHERE id = $1`, [
        challenge.url.split('/').pop(),
      ]);
      assert.equal(row.status, 'processing', 'the challenge was left processing');
      // the client keeps polling, as clients do; the restarted instances take the validation over
      // (acme-client's waitForValidStatus polls the challenge; it gives up after its backoff attempts)
      let valid = false;
      const started = Date.now();
      while (!valid && Date.now() - started < 120_000) {
        valid = await client.waitForValidStatus(challenge).then(
          () => true,
          () => false,
        );
      }
      assert.ok(valid, 'the challenge became valid');
      const [, csr] = await acme.crypto.createCsr({ altNames: [name] });
      const pem = await client.getCertificate(await client.finalizeOrder(order, csr));
      assert.match(new X509Certificate(pem).subjectAltName, /DNS:abandoned\.shared\.test/);
    } finally {
      responder.server.removeAllListeners('request');
      responder.server.on('request', original);
    }
  },
);

test(
  'the order rate limit and single-use nonces hold across two sessions on PostgreSQL, and across two connections to one SQLite file',
  { skip },
  async () => {
    const database = await postgres.createDatabase('acme_shared_units');
    const pairs = [
      [
        Store.openPostgres(parseStoreLocation(database), join(work, 'u1')),
        Store.openPostgres(parseStoreLocation(database), join(work, 'u2')),
      ],
      [Store.open(join(work, 'units.db')), Store.open(join(work, 'units.db'))],
    ];
    for (const [one, two] of pairs) {
      try {
        const [a, b] = [one.acmeServerShared(), two.acmeServerShared()];
        // three orders an hour for the account, taken at either: the fourth is refused at both
        assert.equal(a.takeOrderSlot('acct', 3, 3_600_000), undefined);
        assert.equal(b.takeOrderSlot('acct', 3, 3_600_000), undefined);
        assert.equal(a.takeOrderSlot('acct', 3, 3_600_000), undefined);
        const until = b.takeOrderSlot('acct', 3, 3_600_000);
        assert.ok(until instanceof Date && until.getTime() > Date.now() + 3_500_000, `${one.dialect}: refused`);
        assert.ok(a.takeOrderSlot('acct', 3, 3_600_000) instanceof Date);
        assert.equal(a.takeOrderSlot('other', 3, 3_600_000), undefined, 'per account');
        // a nonce recorded by one is taken once, by the other; an expired one never
        a.addNonce('n1', new Date(Date.now() + 60_000));
        assert.equal(b.takeNonce('n1'), true);
        assert.equal(a.takeNonce('n1'), false);
        assert.equal(b.takeNonce('n1'), false);
        a.addNonce('n2', new Date(Date.now() - 1));
        assert.equal(b.takeNonce('n2'), false, 'expired');
        assert.equal(a.purgeNonces(), 1, 'the expired row is purged');
      } finally {
        one.close();
        two.close();
      }
    }
  },
);
