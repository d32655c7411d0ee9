// `mcpki acme-server --public-url` behind a load balancer on another address and port than the instances
// (issue 12): the round-robin TCP proxy of test/tcp-proxy.js listens on 127.0.0.1:P, the instances on
// 127.0.0.2:A and 127.0.0.3:B (ports the system chose, never P), and --public-url https://127.0.0.1:P names the
// proxy. Two instances share one PostgreSQL inventory (two homes provisioned as docs/acme-server.md says):
// every URL of the directory names the proxy whatever the Host; a request signed for an instance's own address
// is refused; openssl s_client through the proxy verifies the server certificate for the public address (and
// for a --server-name); certbot and acme-client get certificates through the proxy, their requests spread over
// both instances. Then one instance on a SQLite home behind a proxy, with a path prefix in its public URL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { Agent, request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCommand, mcpki, tempDir } from './helpers.js';
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
  runAsync,
  spawnAcmeServer,
  startChallengeDns,
  verifyStrict,
} from './acme-server-helpers.js';

const skipDns = hasChallengeDns() ? false : 'pebble-challtestsrv is not installed (Debian package "pebble")';
const skip = skipDns || (hasPostgres() ? false : postgresMissingReason());

let work;
let cleanup;
let postgres;
let storeUrl;
let homes;
let rootPath;
let root;
let dns;
let httpPort;
const responder = http01Responder();
let proxy;
let publicUrl;
const instances = [];
/** the proxy's targets: their ports are set once the instances listen (they need the proxy's port first) */
const targets = [
  { host: '127.0.0.2', port: 0 },
  { host: '127.0.0.3', port: 0 },
];
const SERVER_NAME = 'acme.lb.test';

/** Starts `mcpki acme-server` on `home` listening on HOST:0 with `--public-url`; sets target.port. */
async function startBehind(home, target, url, env) {
  const instance = await spawnAcmeServer(
    home,
    [
      ...['--listen', `${target.host}:0`, '--public-url', url, '--server-name', SERVER_NAME],
      ...['--http-port', String(httpPort), '--dns-resolver', `127.0.0.1:${dns.port}`, '--orders-per-hour', '100000'],
    ],
    { env },
  );
  const [address] = instance.started.addresses;
  assert.equal(address.split(':')[0], target.host);
  target.port = Number(address.split(':').pop());
  return instance;
}

/** One HTTPS request through the proxy on a new connection, verified for the public address. */
function viaProxy(port, method, path, { host, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca: root,
        agent: false,
        servername: '',
        headers: { ...(host ? { host } : {}), ...(body ? { 'content-type': 'application/jose+json' } : {}) },
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

before(async () => {
  if (skipDns) return;
  ({ dir: work, cleanup } = tempDir('mcpki-acme-lb-'));
  dns = await startChallengeDns();
  [httpPort] = await freePorts(1);
  await responder.listen(httpPort);
  if (skip) return;
  postgres = await startPostgres();
  storeUrl = await postgres.createDatabase('acme_balanced');
  homes = [join(work, 'a'), join(work, 'b')];
  const init = mcpki(['--home', homes[0], 'init'], { env: { MCPKI_STORE: storeUrl } });
  assert.equal(init.status, 0, init.stderr);
  provisionHome(homes[0], homes[1]);
  rootPath = join(homes[0], 'ca', 'root.crt');
  root = readFileSync(rootPath);
  proxy = await startRoundRobinProxy(targets, { connectTimeoutMs: 1000 });
  publicUrl = `https://127.0.0.1:${proxy.port}`;
  for (const [index, target] of targets.entries())
    instances.push(await startBehind(homes[index], target, publicUrl, { MCPKI_STORE: storeUrl }));
});

after(async () => {
  for (const instance of instances) await instance.stop();
  await proxy?.close();
  await responder.close();
  await dns?.stop();
  await postgres?.stop();
  cleanup?.();
});

test(
  'the instances listen on other addresses and ports than the proxy, and every URL they hand out names the proxy',
  { skip },
  async () => {
    for (const target of targets) assert.notEqual(target.port, proxy.port);
    assert.deepEqual(instances[0].started.directories, [`${publicUrl}/acme/directory`]);
    const before = proxy.counts().map((c) => c.connections);
    for (let i = 0; i < 4; i++) {
      // a Host header naming an instance, or anything else, changes nothing
      const host = i % 2 ? `${targets[i % 2].host}:${targets[i % 2].port}` : 'evil.example.test';
      const r = await viaProxy(proxy.port, 'GET', '/acme/directory', { host });
      assert.equal(r.status, 200, r.text);
      const urls = Object.entries(JSON.parse(r.text)).filter(([key]) => key !== 'meta');
      assert.ok(urls.length >= 6);
      for (const [key, url] of urls) assert.ok(url.startsWith(`${publicUrl}/acme/`), `${key}: ${url}`);
      assert.equal(r.headers.link, `<${publicUrl}/acme/directory>;rel="index"`);
    }
    const served = proxy.counts().map((c, i) => c.connections - before[i]);
    assert.deepEqual(served, [2, 2], 'both instances answered');
  },
);

test(
  'openssl s_client through the proxy verifies the server certificate for the public address and the --server-name',
  { skip },
  async () => {
    for (let i = 0; i < 2; i++) {
      const connect = ['s_client', '-connect', `127.0.0.1:${proxy.port}`, '-CAfile', rootPath, '-verify_return_error'];
      const byIp = await runAsync('openssl', [...connect, '-verify_ip', '127.0.0.1'], { timeout: 20_000 });
      assert.match(byIp.output, /Verify return code: 0 \(ok\)/, byIp.output);
      const byName = await runAsync(
        'openssl',
        [...connect, '-servername', SERVER_NAME, '-verify_hostname', SERVER_NAME],
        {
          timeout: 20_000,
        },
      );
      assert.match(byName.output, /Verify return code: 0 \(ok\)/, byName.output);
      const other = await runAsync('openssl', [...connect, '-verify_hostname', 'other.lb.test'], { timeout: 20_000 });
      assert.doesNotMatch(other.output, /Verify return code: 0 \(ok\)/, 'a name not on the certificate fails');
    }
  },
);

test(
  "a request signed for an instance's own address is refused with unauthorized; the public URL is served",
  { skip },
  async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    for (const target of targets) {
      const nonce = (await viaProxy(proxy.port, 'HEAD', '/acme/new-nonce')).headers['replay-nonce'];
      const url = `https://${target.host}:${target.port}/acme/new-account`;
      const r = await viaProxy(proxy.port, 'POST', '/acme/new-account', { body: jwkJws(key, nonce, url) });
      assert.equal(r.status, 403, r.text);
      assert.equal(JSON.parse(r.text).type, 'urn:ietf:params:acme:error:unauthorized');
    }
    const nonce = (await viaProxy(proxy.port, 'HEAD', '/acme/new-nonce')).headers['replay-nonce'];
    const ok = await viaProxy(proxy.port, 'POST', '/acme/new-account', {
      body: jwkJws(key, nonce, `${publicUrl}/acme/new-account`),
    });
    assert.equal(ok.status, 201, ok.text);
    assert.ok(ok.headers.location.startsWith(`${publicUrl}/acme/account/`), ok.headers.location);
  },
);

test(
  'certbot and acme-client get certificates through the proxy, with requests spread over both instances',
  { skip },
  async (t) => {
    const before = proxy.counts().map((c) => c.connections);
    acme.axios.defaults.httpsAgent = new Agent({ ca: root, keepAlive: false, family: 4 });
    const directoryUrl = `${publicUrl}/acme/directory`;
    const client = await newAcmeClient(directoryUrl);
    for (const name of ['one.balanced.test', 'two.balanced.test']) {
      const { pem, attempts } = await obtainCertificate(client, name, responder.tokens, { maxAttempts: 1 });
      assert.equal(attempts, 1);
      assert.match(new X509Certificate(pem).subjectAltName, new RegExp(`DNS:${name.replace(/\./g, '\\.')}`));
    }
    if (hasCommand('certbot')) {
      // certbot answers http-01 itself on the port the responder holds
      await responder.close();
      try {
        const dir = join(work, 'certbot');
        const result = await certbotCertonly(dir, directoryUrl, 'certbot.balanced.test', { httpPort, rootPath });
        assert.equal(result.status, 0, result.output);
        verifyStrict(join(dir, 'config', 'live', 'certbot.balanced.test', 'cert.pem'), {
          rootPath,
          intermediatePath: join(homes[1], 'ca', 'intermediate.crt'),
        });
      } finally {
        await responder.listen(httpPort);
      }
    } else {
      t.diagnostic('certbot is not installed: acme-client only');
    }
    const served = proxy.counts().map((c, i) => c.connections - before[i]);
    assert.ok(
      served.every((n) => n >= 3),
      `both instances served requests: ${served.join(', ')}`,
    );
  },
);

test(
  'one instance on a SQLite home behind the proxy, its public URL with a path prefix',
  { skip: skipDns },
  async () => {
    const home = join(work, 'sqlite');
    const init = mcpki(['--home', home, 'init']);
    assert.equal(init.status, 0, init.stderr);
    const target = { host: '127.0.0.4', port: 0 };
    const single = await startRoundRobinProxy([target], { connectTimeoutMs: 1000 });
    const url = `https://localhost:${single.port}/pki/acme-ca`;
    const instance = await startBehind(home, target, url, {});
    try {
      assert.notEqual(target.port, single.port);
      const sqliteRoot = readFileSync(join(home, 'ca', 'root.crt'));
      acme.axios.defaults.httpsAgent = new Agent({ ca: sqliteRoot, keepAlive: false, family: 4 });
      const directoryUrl = `${url}/acme/directory`;
      assert.deepEqual(instance.started.directories, [directoryUrl]);
      const directory = (await acme.axios.get(directoryUrl)).data;
      for (const [key, value] of Object.entries(directory))
        if (key !== 'meta') assert.ok(value.startsWith(`${url}/acme/`), `${key}: ${value}`);
      const client = await newAcmeClient(directoryUrl, { attempts: 1 });
      const { pem } = await obtainCertificate(client, 'sqlite.balanced.test', responder.tokens, { maxAttempts: 1 });
      assert.match(new X509Certificate(pem).subjectAltName, /DNS:sqlite\.balanced\.test/);
      assert.ok(single.counts()[0].connections >= 6, 'every request went through the proxy');
      const listed = mcpki(['--home', home, '--json', 'list']).json.certificates.map((c) => c.name);
      assert.ok(listed.includes('sqlite.balanced.test'), listed.join(', '));
    } finally {
      await instance.stop();
      await single.close();
    }
  },
);
