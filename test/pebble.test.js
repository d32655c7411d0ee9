// Tests of the Pebble harness (test/pebble.js) itself, and one end-to-end issuance with acme-client used
// directly, as proof that the harness is enough for ACME tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import https from 'node:https';
import dns from 'node:dns';
import { createRequire } from 'node:module';
import { startPebble, hasPebble, portIsFree, txtRecordName } from './pebble.js';
import { run, hasCommand, tempDir } from './helpers.js';

const require = createRequire(import.meta.url);
const skip = hasPebble() ? false : 'Debian package "pebble" is not installed';

// An EAB key in Pebble's format: unpadded base64url (Pebble refuses anything else at start-up).
const EAB = { 'kid-1': 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W' };

function httpsGetJson(url, caBundlePath) {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca: readFileSync(caBundlePath), agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode, json: JSON.parse(body) });
          } catch (error) {
            reject(error);
          }
        });
      })
      .on('error', reject);
  });
}

function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** TXT values of NAME from challtestsrv's DNS server: with dig when installed, else Node's resolver. */
async function queryTxt(pebble, name) {
  if (hasCommand('dig')) {
    const r = run('dig', ['+short', '+time=1', '+tries=1', '-p', String(pebble.dnsPort), '@127.0.0.1', 'TXT', name]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => line.replace(/^"|"$/g, ''));
  }
  const resolver = new dns.promises.Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([pebble.dnsServer]);
  try {
    return (await resolver.resolveTxt(name)).map((chunks) => chunks.join(''));
  } catch (error) {
    if (error.code === 'ENODATA' || error.code === 'ENOTFOUND') return [];
    throw error;
  }
}

test('txtRecordName: _acme-challenge prefix, wildcard stripped, trailing dot', () => {
  assert.equal(txtRecordName('a.test'), '_acme-challenge.a.test.');
  assert.equal(txtRecordName('*.a.test'), '_acme-challenge.a.test.');
  assert.equal(txtRecordName('_acme-challenge.a.test'), '_acme-challenge.a.test.');
  assert.equal(txtRecordName('_acme-challenge.a.test.'), '_acme-challenge.a.test.');
});

test('plain Pebble: directory, root, TXT records, clean stop', { skip }, async (t) => {
  const t0 = Date.now();
  const pebble = await startPebble();
  t.diagnostic(`startPebble took ${Date.now() - t0} ms (processes ready in ${pebble.startupMs} ms)`);
  let stopped = false;
  t.after(() => (stopped ? undefined : pebble.stop()));

  assert.match(pebble.directoryUrl, /^https:\/\/127\.0\.0\.1:\d+\/dir$/);
  assert.match(pebble.managementUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.match(pebble.challtestsrvUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(pebble.caBundlePath.endsWith(join('ca', 'root.crt')) && existsSync(pebble.caBundlePath));
  const ports = [
    pebble.listenPort,
    pebble.managementPort,
    pebble.challtestsrvPort,
    pebble.dnsPort,
    pebble.httpPort,
    pebble.tlsAlpnPort,
  ];
  assert.equal(new Set(ports).size, 6, `distinct ports: ${ports}`);

  // The directory is served over TLS with the mcpki-issued certificate: trusting the mcpki root is enough.
  const dir = await httpsGetJson(pebble.directoryUrl, pebble.caBundlePath);
  assert.equal(dir.status, 200);
  for (const key of ['newNonce', 'newAccount', 'newOrder'])
    assert.match(dir.json[key], /^https:\/\/127\.0\.0\.1:/, key);
  assert.equal(dir.json.meta.externalAccountRequired, false);

  // The validation ports are in Pebble's config.
  const config = JSON.parse(readFileSync(pebble.configPath, 'utf8')).pebble;
  assert.equal(config.httpPort, pebble.httpPort);
  assert.equal(config.tlsPort, pebble.tlsAlpnPort);
  assert.equal(config.externalAccountBindingRequired, false);

  // Pebble's issuing root, as openssl sees it.
  const root = await pebble.rootPem();
  assert.match(root, /^-----BEGIN CERTIFICATE-----/);
  const { dir: tmp, cleanup } = tempDir();
  t.after(cleanup);
  writeFileSync(join(tmp, 'root.pem'), root);
  const parsed = run('openssl', ['x509', '-noout', '-subject', '-in', join(tmp, 'root.pem')]);
  assert.equal(parsed.status, 0, parsed.stderr);
  assert.match(parsed.stdout, /Pebble Root CA/);

  // Every name resolves to 127.0.0.1 (and nothing over IPv6).
  const resolver = new dns.promises.Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([pebble.dnsServer]);
  assert.deepEqual(await resolver.resolve4('anything.example.com'), ['127.0.0.1']);
  await assert.rejects(
    resolver.resolve6('anything.example.com'),
    (e) => e.code === 'ENODATA' || e.code === 'ENOTFOUND',
  );

  // TXT records: set (values accumulate: a name and its wildcard share one record), then clear (all values).
  const name = '_acme-challenge.txt.harness.test';
  assert.deepEqual(await queryTxt(pebble, name), []);
  await pebble.setTxt('txt.harness.test', 'value-one');
  assert.deepEqual(await queryTxt(pebble, name), ['value-one']);
  await pebble.setTxt('*.txt.harness.test', 'value-two');
  assert.deepEqual((await queryTxt(pebble, name)).sort(), ['value-one', 'value-two']);
  await pebble.clearTxt('txt.harness.test');
  assert.deepEqual(await queryTxt(pebble, name), []);

  // stop(): processes gone, ports free again, temp dir removed; a second stop() is harmless.
  const { pids } = pebble;
  assert.ok(processAlive(pids.pebble) && processAlive(pids.challtestsrv));
  const t1 = Date.now();
  await pebble.stop();
  stopped = true;
  t.diagnostic(`stop took ${Date.now() - t1} ms`);
  await pebble.stop();
  assert.equal(processAlive(pids.pebble), false, 'pebble still running');
  assert.equal(processAlive(pids.challtestsrv), false, 'pebble-challtestsrv still running');
  for (const port of ports) assert.ok(await portIsFree(port), `port ${port} still in use`);
  assert.ok(await portIsFree(pebble.dnsPort, { udp: true }), 'DNS port (UDP) still in use');
  assert.equal(existsSync(pebble.dir), false, 'temp dir left behind');
});

test('EAB Pebble: externalAccountRequired, registration with and without EAB (acme-client)', { skip }, async (t) => {
  const acme = require('acme-client');
  const pebble = await startPebble({ eab: EAB });
  t.after(() => pebble.stop());

  const dir = await httpsGetJson(pebble.directoryUrl, pebble.caBundlePath);
  assert.equal(dir.json.meta.externalAccountRequired, true);
  assert.deepEqual(JSON.parse(readFileSync(pebble.configPath, 'utf8')).pebble.externalAccountMACKeys, EAB);

  // acme-client talks to the CA through its own axios instance: trust goes there (not NODE_EXTRA_CA_CERTS).
  const previousAgent = acme.axios.defaults.httpsAgent;
  acme.axios.defaults.httpsAgent = new https.Agent({ ca: readFileSync(pebble.caBundlePath) });
  t.after(() => (acme.axios.defaults.httpsAgent = previousAgent));

  const without = new acme.Client({
    directoryUrl: pebble.directoryUrl,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
  });
  await assert.rejects(without.createAccount({ termsOfServiceAgreed: true }), /externalAccountBinding/);

  const [kid, hmacKey] = Object.entries(EAB)[0];
  const withEab = new acme.Client({
    directoryUrl: pebble.directoryUrl,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
    externalAccountBinding: { kid, hmacKey },
  });
  const account = await withEab.createAccount({ termsOfServiceAgreed: true });
  assert.equal(account.status, 'valid');
  assert.match(withEab.getAccountUrl(), /^https:\/\/127\.0\.0\.1:/);
});

test('a Pebble that cannot start: clear error with its last output, nothing left running', { skip }, async () => {
  let error;
  await startPebble({ eab: { 'kid-1': '!!! not base64url' } }).catch((e) => (error = e));
  assert.ok(error, 'startPebble should have failed');
  assert.match(error.message, /pebble exited before being ready/);
  assert.match(error.message, /failed to decode base64 URL encoded key/);
  assert.ok(error.pids, 'error.pids');
  assert.equal(processAlive(error.pids.pebble), false);
  assert.equal(processAlive(error.pids.challtestsrv), false);
  assert.equal(existsSync(error.dir), false, 'temp dir left behind');
});

test('end to end: acme-client obtains a certificate for harness.test via http-01', { skip }, async (t) => {
  const acme = require('acme-client');
  const t0 = Date.now();
  const pebble = await startPebble();
  t.after(() => pebble.stop());
  t.diagnostic(`startPebble took ${Date.now() - t0} ms`);

  const previousAgent = acme.axios.defaults.httpsAgent;
  acme.axios.defaults.httpsAgent = new https.Agent({ ca: readFileSync(pebble.caBundlePath) });
  t.after(() => (acme.axios.defaults.httpsAgent = previousAgent));

  // The http-01 responder Pebble will connect to (harness.test resolves to 127.0.0.1 through challtestsrv).
  const tokens = new Map();
  const requests = [];
  const responder = http.createServer((req, res) => {
    requests.push(req.url);
    const token = req.url.startsWith('/.well-known/acme-challenge/')
      ? req.url.slice('/.well-known/acme-challenge/'.length)
      : null;
    if (token && tokens.has(token)) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(tokens.get(token));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve, reject) => {
    responder.once('error', reject);
    responder.listen(pebble.httpPort, '127.0.0.1', resolve);
  });
  t.after(() => new Promise((resolve) => responder.close(resolve)));

  const t1 = Date.now();
  const client = new acme.Client({
    directoryUrl: pebble.directoryUrl,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
    // Defaults: 10 attempts, 5 s minimum — every "still pending" poll would cost ≥ 5 s.
    backoffAttempts: 20,
    backoffMin: 50,
    backoffMax: 1000,
  });
  const [key, csr] = await acme.crypto.createCsr(
    { altNames: ['harness.test'] },
    await acme.crypto.createPrivateEcdsaKey(),
  );
  const chainPem = await client.auto({
    csr,
    termsOfServiceAgreed: true,
    challengePriority: ['http-01'],
    // acme-client would first fetch http://harness.test:80/... itself; harness.test only resolves inside
    // challtestsrv, so skip that self-check and let Pebble validate.
    skipChallengeVerification: true,
    challengeCreateFn: async (authz, challenge, keyAuthorization) => {
      assert.equal(challenge.type, 'http-01');
      tokens.set(challenge.token, keyAuthorization);
    },
    challengeRemoveFn: async (authz, challenge) => {
      tokens.delete(challenge.token);
    },
  });
  t.diagnostic(`one issuance (account + order + http-01 + finalize + download) took ${Date.now() - t1} ms`);
  assert.ok(key.length > 0);
  assert.ok(
    requests.some((u) => u.startsWith('/.well-known/acme-challenge/')),
    'Pebble fetched the challenge',
  );
  assert.equal(tokens.size, 0, 'challengeRemoveFn ran');

  const [leaf, ...rest] = acme.crypto.splitPemChain(chainPem);
  assert.ok(rest.length >= 1, 'the chain includes an intermediate');
  assert.deepEqual(acme.crypto.readCertificateInfo(leaf).domains.altNames, ['harness.test']);

  const { dir: tmp, cleanup } = tempDir();
  t.after(cleanup);
  writeFileSync(join(tmp, 'leaf.pem'), leaf);
  writeFileSync(join(tmp, 'chain.pem'), rest.join('\n'));
  writeFileSync(join(tmp, 'root.pem'), await pebble.rootPem());
  const verified = run('openssl', [
    'verify',
    '-CAfile',
    join(tmp, 'root.pem'),
    '-untrusted',
    join(tmp, 'chain.pem'),
    join(tmp, 'leaf.pem'),
  ]);
  assert.equal(verified.status, 0, verified.stdout + verified.stderr);
  assert.match(verified.stdout, /leaf\.pem: OK/);

  // Against the mcpki root (Pebble's TLS certificate issuer) it must not verify: the two CAs are distinct.
  const wrong = run('openssl', [
    'verify',
    '-CAfile',
    pebble.caBundlePath,
    '-untrusted',
    join(tmp, 'chain.pem'),
    join(tmp, 'leaf.pem'),
  ]);
  assert.notEqual(wrong.status, 0);
});
