// mcpki's ACME server with the ACME clients people run, each on loopback against a server started in this
// process (startAcmeServer, until the `mcpki acme-server` command exists): certbot (http-01, renew, revoke),
// lego (http-01, tls-alpn-01, EAB required), Caddy (obtains and serves a certificate by itself) and acme-client
// (a wildcard by dns-01). Names resolve through pebble-challtestsrv as the server's DNS (every A query is
// 127.0.0.1, TXT records set through its management API). Every certificate is verified by OpenSSL with
// -x509_strict against the mcpki root, and every client is refused a name outside the name constraints with
// rejectedIdentifier. A client whose binary is missing is skipped, saying so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:https';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createContext } from '../dist/context.js';
import { startAcmeServer } from '../dist/acme-server/server.js';
import { createEabKey, eabKeyLookup } from '../dist/acme-server/eab.js';
import { freePorts } from './pebble.js';
import { hasCommand, mcpki, run, startPeer, tempDir, testStore } from './helpers.js';
import {
  acme,
  certbotCertonly,
  hasChallengeDns,
  runAsync,
  startChallengeDns,
  verifyStrict as verifyAgainst,
} from './acme-server-helpers.js';

let home;
let cleanup;
let work;
let context;
let server;
let directoryUrl;
let rootPath;
let intermediatePath;
let ports;
let dns;

const REJECTED = /urn:ietf:params:acme:error:rejectedIdentifier/;

before(async () => {
  ({ dir: work, cleanup } = tempDir('mcpki-acme-clients-'));
  home = join(work, 'home');
  assert.equal(mcpki(['init', '--home', home]).status, 0);
  rootPath = join(home, 'ca', 'root.crt');
  intermediatePath = join(home, 'ca', 'intermediate.crt');
  const [httpPort, tlsPort] = await freePorts(2);
  if (hasChallengeDns()) dns = await startChallengeDns();
  ports = { http: httpPort, tls: tlsPort };
  context = createContext({ ...testStore(home), home });
  server = await startAcmeServer(context, {
    listen: [{ host: '127.0.0.1', port: 0 }],
    validation: {
      httpPort,
      tlsPort,
      timeoutMs: 5_000,
      ...(dns ? { dnsResolver: { host: '127.0.0.1', port: dns.port } } : {}),
    },
  });
  directoryUrl = server.directories[0];
  acme.axios.defaults.httpsAgent = new Agent({ ca: readFileSync(rootPath) });
});

after(async () => {
  await server?.close();
  await dns?.stop();
  context?.close();
  cleanup?.();
});

/** openssl verify -x509_strict of a leaf (or a full chain file: its first certificate) against the mcpki root. */
const verifyStrict = (pemPath) => verifyAgainst(pemPath, { rootPath, intermediatePath });

function serialOf(pemPath) {
  return run('openssl', ['x509', '-noout', '-serial', '-in', pemPath])
    .stdout.trim()
    .replace(/^serial=/, '')
    .toUpperCase();
}

function sansOf(pemPath) {
  return run('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', pemPath]).stdout;
}

function crlText() {
  const result = run('openssl', ['crl', '-in', join(home, 'ca', 'crl.pem'), '-noout', '-text']);
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

const skipUnless = (binary, why = '') => (hasCommand(binary) ? false : `${binary} is not installed${why}`);

test(
  'certbot gets a certificate by http-01, renews it, revokes it (the CRL lists it), and is refused a name outside the constraints',
  { skip: skipUnless('certbot', ' (Debian package "certbot")') },
  async () => {
    const dir = join(work, 'certbot');
    const dirs = [
      '--config-dir',
      join(dir, 'config'),
      '--work-dir',
      join(dir, 'work'),
      '--logs-dir',
      join(dir, 'logs'),
    ];
    const env = { REQUESTS_CA_BUNDLE: rootPath };
    const certonly = (name) => certbotCertonly(dir, directoryUrl, name, { httpPort: ports.http, rootPath });
    const got = await certonly('localhost');
    assert.equal(got.status, 0, got.output);
    const cert = join(dir, 'config', 'live', 'localhost', 'cert.pem');
    verifyStrict(cert);
    verifyStrict(join(dir, 'config', 'live', 'localhost', 'fullchain.pem'));
    assert.match(sansOf(cert), /DNS:localhost/);
    const first = serialOf(cert);

    const renewed = await runAsync(
      'certbot',
      ['renew', '--force-renewal', '--no-random-sleep-on-renew', '--non-interactive', ...dirs],
      { env },
    );
    assert.equal(renewed.status, 0, renewed.output);
    const second = serialOf(cert);
    assert.notEqual(second, first, 'renew --force-renewal installed a new certificate');
    verifyStrict(cert);

    if (existsSync(join(home, 'ca', 'crl.pem'))) assert.doesNotMatch(crlText(), new RegExp(second));
    const revoked = await runAsync(
      'certbot',
      [
        'revoke',
        '--cert-path',
        cert,
        '--reason',
        'keycompromise',
        '--no-delete-after-revoke',
        '--non-interactive',
        '--server',
        directoryUrl,
        ...dirs,
      ],
      { env },
    );
    assert.equal(revoked.status, 0, revoked.output);
    assert.match(crlText(), new RegExp(`Serial Number: ${second}[\\s\\S]*?Key Compromise`));
    const listed = mcpki(['list', '--all', '--home', home, '--json']).json.certificates;
    assert.equal(listed.find((c) => c.serial === second)?.status, 'revoked', JSON.stringify(listed));

    const refused = await certonly('www.example.com');
    assert.notEqual(refused.status, 0);
    // Debian's certbot 2.1 on Python 3.11 then fails to print the error (josepy "can't set attribute"); its log
    // has the server's problem document
    assert.match(
      refused.output + readFileSync(join(dir, 'logs', 'letsencrypt.log'), 'utf8'),
      /rejectedIdentifier[\s\S]*www\.example\.com" is outside the CA's name constraints/,
    );
  },
);

test(
  'lego gets a certificate by http-01 and one by tls-alpn-01, and is refused a name outside the constraints',
  { skip: skipUnless('lego', ' (Debian package "lego")') },
  async () => {
    const path = join(work, 'lego');
    const env = { LEGO_CA_CERTIFICATES: rootPath };
    const lego = (args) =>
      runAsync(
        'lego',
        ['--server', directoryUrl, '--email', 'a@b.test', '--accept-tos', '--path', path, ...args, 'run'],
        { env },
      );
    const http = await lego(['--domains', 'localhost', '--http', '--http.port', `127.0.0.1:${ports.http}`]);
    assert.equal(http.status, 0, http.output);
    assert.match(http.output, /HTTP-01/);
    verifyStrict(join(path, 'certificates', 'localhost.crt'));

    const tls = await lego(['--domains', 'alpn.localhost', '--tls', '--tls.port', `127.0.0.1:${ports.tls}`]);
    assert.equal(tls.status, 0, tls.output);
    assert.match(tls.output, /TLS-ALPN-01/);
    verifyStrict(join(path, 'certificates', 'alpn.localhost.crt'));
    assert.match(sansOf(join(path, 'certificates', 'alpn.localhost.crt')), /DNS:alpn\.localhost/);

    // a name with an address where nothing listens first: the server tries the next one, as for http-01
    if (dns) {
      await dns.addA('two.localhost.', ['127.0.0.2', '127.0.0.1']);
      const two = await lego(['--domains', 'two.localhost', '--tls', '--tls.port', `127.0.0.1:${ports.tls}`]);
      assert.equal(two.status, 0, two.output);
      verifyStrict(join(path, 'certificates', 'two.localhost.crt'));
    }

    const refused = await lego(['--domains', 'www.example.com', '--http', '--http.port', `127.0.0.1:${ports.http}`]);
    assert.notEqual(refused.status, 0);
    assert.match(refused.output, REJECTED);
  },
);

test(
  'lego with EAB when the server requires it, and refused without',
  { skip: skipUnless('lego', ' (Debian package "lego")') },
  async () => {
    // a key made as `mcpki acme-server eab create` makes it: sealed in the inventory, opened on lookup
    const created = createEabKey(context, { name: 'lego', allow: ['localhost', '*.agents.localhost'] });
    const kid = created.kid;
    const hmac = Buffer.from(created.hmacKey, 'base64url');
    const eabServer = await startAcmeServer(context, {
      listen: [{ host: '127.0.0.1', port: 0 }],
      validation: { httpPort: ports.http, tlsPort: ports.tls, timeoutMs: 5_000 },
      requireEab: true,
      findEabKey: eabKeyLookup(context),
    });
    try {
      const url = eabServer.directories[0];
      const env = { LEGO_CA_CERTIFICATES: rootPath };
      const lego = (path, args) =>
        runAsync(
          'lego',
          ['--server', url, '--email', 'a@b.test', '--accept-tos', '--path', join(work, path), ...args, 'run'],
          { env },
        );
      const without = await lego('lego-no-eab', [
        '--domains',
        'localhost',
        '--http',
        '--http.port',
        `127.0.0.1:${ports.http}`,
      ]);
      assert.notEqual(without.status, 0);
      assert.match(without.output, /externalAccountRequired|External Account Binding/i);

      const wrong = await lego('lego-bad-eab', [
        '--eab',
        '--kid',
        kid,
        '--hmac',
        randomBytes(32).toString('base64url'),
        '--domains',
        'localhost',
        '--http',
        '--http.port',
        `127.0.0.1:${ports.http}`,
      ]);
      assert.notEqual(wrong.status, 0);
      assert.match(wrong.output, /MAC does not verify/);

      const eab = ['--eab', '--kid', kid, '--hmac', hmac.toString('base64url')];
      const withEab = await lego('lego-eab', [
        ...eab,
        '--domains',
        'localhost',
        '--http',
        '--http.port',
        `127.0.0.1:${ports.http}`,
      ]);
      assert.equal(withEab.status, 0, withEab.output);
      verifyStrict(join(work, 'lego-eab', 'certificates', 'localhost.crt'));

      // inside the constraints but outside the EAB key's allow list: refused at newOrder
      const outside = await lego('lego-eab', [
        ...eab,
        '--domains',
        'other.localhost',
        '--http',
        '--http.port',
        `127.0.0.1:${ports.http}`,
      ]);
      assert.notEqual(outside.status, 0);
      assert.match(outside.output, REJECTED);
      assert.match(outside.output, new RegExp(`outside what external account key ${kid} allows`));
    } finally {
      await eabServer.close();
    }
  },
);

test(
  'Caddy obtains a certificate for its site by itself and serves it; curl with the mcpki root connects',
  {
    skip:
      skipUnless('caddy') ||
      skipUnless('curl') ||
      (hasChallengeDns()
        ? false
        : 'pebble-challtestsrv is not installed (Debian package "pebble"): Caddy\'s name must resolve'),
  },
  async () => {
    // Caddy asks an ACME CA only for names that "qualify for a public certificate": not localhost or
    // *.localhost, so the site is caddy.test, which the server's DNS (challtestsrv) resolves to 127.0.0.1
    const dir = join(work, 'caddy');
    mkdirSync(join(dir, 'xdg'), { recursive: true });
    const caddyfile = join(dir, 'Caddyfile');
    writeFileSync(
      caddyfile,
      `{
\tadmin off
\thttp_port ${ports.http}
\thttps_port ${ports.tls}
\tacme_ca ${directoryUrl}
\tacme_ca_root ${rootPath}
\temail a@b.test
\tskip_install_trust
\tstorage file_system ${join(dir, 'storage')}
\tocsp_stapling off
}
caddy.test:${ports.tls} {
\trespond "served by caddy"
}
`,
    );
    const caddy = await startPeer('caddy', ['run', '--config', caddyfile, '--adapter', 'caddyfile'], ports.tls, {
      env: { ...process.env, HOME: dir, XDG_DATA_HOME: join(dir, 'xdg'), XDG_CONFIG_HOME: join(dir, 'xdg') },
    });
    try {
      let result;
      const deadline = Date.now() + 30_000;
      do {
        await new Promise((resolve) => setTimeout(resolve, 300));
        result = await runAsync('curl', [
          '-sS',
          '--max-time',
          '5',
          '--cacert',
          rootPath,
          '--resolve',
          `caddy.test:${ports.tls}:127.0.0.1`,
          `https://caddy.test:${ports.tls}/`,
        ]);
      } while (result.status !== 0 && Date.now() < deadline);
      assert.equal(result.status, 0, `${result.output}\n--- caddy:\n${caddy.output().slice(-3000)}`);
      assert.equal(result.stdout, 'served by caddy');
      const served = await runAsync('sh', [
        '-c',
        `openssl s_client -connect 127.0.0.1:${ports.tls} -servername caddy.test </dev/null 2>/dev/null | openssl x509 > ${join(dir, 'served.pem')}`,
      ]);
      assert.equal(served.status, 0, served.output);
      verifyStrict(join(dir, 'served.pem'));
      assert.match(sansOf(join(dir, 'served.pem')), /DNS:caddy\.test/);
    } finally {
      await caddy.stop();
    }
  },
);

test(
  'Caddy is refused a site outside the name constraints with rejectedIdentifier',
  { skip: skipUnless('caddy') },
  async () => {
    const dir = join(work, 'caddy-refused');
    mkdirSync(join(dir, 'xdg'), { recursive: true });
    const caddyfile = join(dir, 'Caddyfile');
    writeFileSync(
      caddyfile,
      `{\n\tadmin off\n\thttp_port ${ports.http}\n\thttps_port ${ports.tls}\n\tacme_ca ${directoryUrl}\n\tacme_ca_root ${rootPath}\n\tskip_install_trust\n\tstorage file_system ${join(dir, 'storage')}\n}\nwww.example.com:${ports.tls} {\n\trespond "never"\n}\n`,
    );
    const caddy = await startPeer('caddy', ['run', '--config', caddyfile, '--adapter', 'caddyfile'], ports.tls, {
      env: { ...process.env, HOME: dir, XDG_DATA_HOME: join(dir, 'xdg'), XDG_CONFIG_HOME: join(dir, 'xdg') },
    });
    try {
      const deadline = Date.now() + 20_000;
      while (!REJECTED.test(caddy.output()) && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 200));
      assert.match(caddy.output(), REJECTED);
    } finally {
      await caddy.stop();
    }
  },
);

test(
  "acme-client gets a wildcard by dns-01 through the server's DNS resolver, and an IP certificate for 127.0.0.1",
  { skip: hasChallengeDns() ? false : 'pebble-challtestsrv is not installed (Debian package "pebble")' },
  async () => {
    const client = new acme.Client({ directoryUrl, accountKey: await acme.crypto.createPrivateEcdsaKey() });
    await client.createAccount({ termsOfServiceAgreed: true });
    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: '*.apps.test' }] });
    const [authz] = await client.getAuthorizations(order);
    assert.equal(authz.wildcard, true);
    assert.deepEqual(
      authz.challenges.map((c) => c.type),
      ['dns-01'],
    );
    const challenge = authz.challenges[0];
    const host = '_acme-challenge.apps.test.';
    await dns.setTxt(host, await client.getChallengeKeyAuthorization(challenge));
    try {
      await client.completeChallenge(challenge);
      await client.waitForValidStatus(challenge);
    } finally {
      await dns.clearTxt(host);
    }
    const [, csr] = await acme.crypto.createCsr({ altNames: ['*.apps.test'] });
    const pem = await client.getCertificate(await client.finalizeOrder(order, csr));
    const file = join(work, 'wildcard.pem');
    writeFileSync(file, pem);
    verifyStrict(file);
    assert.match(sansOf(file), /DNS:\*\.apps\.test/);

    // RFC 8738: an IP identifier, by http-01 on the server's http port
    const ipOrder = await client.createOrder({ identifiers: [{ type: 'ip', value: '127.0.0.1' }] });
    const [ipAuthz] = await client.getAuthorizations(ipOrder);
    const http01 = ipAuthz.challenges.find((c) => c.type === 'http-01');
    const keyAuthorization = await client.getChallengeKeyAuthorization(http01);
    const responder = (await import('node:http')).createServer((req, res) =>
      res.end(req.url.endsWith(http01.token) ? keyAuthorization : ''),
    );
    await new Promise((resolve) => responder.listen(ports.http, '127.0.0.1', resolve));
    try {
      await client.completeChallenge(http01);
      await client.waitForValidStatus(http01);
    } finally {
      await new Promise((resolve) => responder.close(resolve));
    }
    const [, ipCsr] = await acme.crypto.createCsr({ altNames: ['127.0.0.1'] });
    const ipPem = await client.getCertificate(await client.finalizeOrder(ipOrder, ipCsr));
    writeFileSync(file, ipPem);
    verifyStrict(file);
    assert.match(sansOf(file), /IP Address:127\.0\.0\.1/);

    await assert.rejects(
      client.createOrder({ identifiers: [{ type: 'dns', value: '*.example.com' }] }),
      /outside the CA's name constraints/,
    );
  },
);
