// `mcpki acme-server --public-url URL --server-name NAME` (issue 12): behind a load balancer on another name or
// port, every URL the server hands out is built from the public URL, never from the Host header; the JWS `url`
// of a request must be the public URL (signed for the listener's own address: unauthorized); the public URL's
// host and each --server-name are on the server's certificate, inside the CA's name constraints. The flags and
// the acmeServer: keys are checked at the edge: one line and exit 2.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createContext } from '../dist/context.js';
import { startAcmeServer } from '../dist/acme-server/server.js';
import { mcpki, tempDir, testStore } from './helpers.js';
import { jwkJws } from './acme-server-helpers.js';

let home;
let cleanup;
let context;
let server;
let root;
let listenPort;
const PUBLIC = 'https://acme.lb.internal:9443/pki';

before(async () => {
  ({ dir: home, cleanup } = tempDir('mcpki-acme-public-'));
  assert.equal(mcpki(['init', '--home', home]).status, 0);
  root = readFileSync(join(home, 'ca', 'root.crt'));
  context = createContext({ ...testStore(home), home });
  server = await startAcmeServer(context, {
    listen: [{ host: '127.0.0.1', port: 0 }],
    validation: { httpPort: 1, tlsPort: 1, timeoutMs: 1_000 },
    publicUrl: `${PUBLIC}/`,
    names: ['127.0.0.7', 'acme-b.lb.internal'],
  });
  listenPort = Number(server.addresses[0].split(':').pop());
});

after(async () => {
  await server?.close();
  context?.close();
  cleanup?.();
});

/** One request to the listener, with the Host header a balancer or an attacker may write. */
function call(method, path, { host = 'evil.example.test', body } = {}) {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: listenPort,
        method,
        path,
        servername: 'acme.lb.internal',
        ca: root,
        agent: false,
        headers: { host, ...(body ? { 'content-type': 'application/jose+json' } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('the directory and its links name the public URL whatever the Host, with or without its path prefix', async () => {
  assert.deepEqual(server.directories, [`${PUBLIC}/acme/directory`]);
  for (const path of ['/pki/acme/directory', '/acme/directory']) {
    const r = await call('GET', path);
    assert.equal(r.status, 200, r.text);
    const directory = JSON.parse(r.text);
    const urls = Object.entries(directory).filter(([key]) => key !== 'meta');
    assert.ok(urls.length >= 6);
    for (const [key, url] of urls) assert.ok(url.startsWith(`${PUBLIC}/acme/`), `${key}: ${url}`);
    assert.match(r.headers.link, new RegExp(`<${PUBLIC}/acme/directory>;rel="index"`));
    assert.doesNotMatch(r.text + r.headers.link, /evil|127\.0\.0\.1/);
  }
});

test('a request signed for the public URL is served; one signed for the listener or another host is unauthorized', async () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const nonce = async () => (await call('HEAD', '/pki/acme/new-nonce')).headers['replay-nonce'];
  for (const url of [
    `https://127.0.0.1:${listenPort}/acme/new-account`,
    `https://evil.example.test/pki/acme/new-account`,
    `https://acme.lb.internal:9443/acme/new-account`,
  ]) {
    const r = await call('POST', '/pki/acme/new-account', { body: jwkJws(key, await nonce(), url) });
    assert.equal(r.status, 403, `${url}: ${r.text}`);
    const document = JSON.parse(r.text);
    assert.equal(document.type, 'urn:ietf:params:acme:error:unauthorized');
    assert.match(document.detail, /not this request's URL/);
  }
  const ok = await call('POST', '/pki/acme/new-account', {
    body: jwkJws(key, await nonce(), `${PUBLIC}/acme/new-account`),
  });
  assert.equal(ok.status, 201, ok.text);
  assert.match(ok.headers.location, new RegExp(`^${PUBLIC}/acme/account/[A-Za-z0-9_-]+$`));
  assert.ok(JSON.parse(ok.text).orders.startsWith(`${PUBLIC}/acme/account/`));
});

test("the server's certificate names the public host and each --server-name beside the listen address", () => {
  const cert = new X509Certificate(server.certificatePem());
  const sans = cert.subjectAltName.split(', ');
  for (const name of ['DNS:acme.lb.internal', 'DNS:acme-b.lb.internal', 'IP Address:127.0.0.7', 'IP Address:127.0.0.1'])
    assert.ok(sans.includes(name), `${name} in ${cert.subjectAltName}`);
  assert.ok(cert.checkHost('acme.lb.internal'));
});

test('bad --public-url and --server-name values are refused before anything starts: one line, exit 2', () => {
  const cases = [
    ['http://acme.example.internal', /is http on a host that is not loopback/],
    ['https://user@acme.example.internal', /user info/],
    ['https://acme.example.internal/?a=b', /query/],
    ['https://acme.example.internal/#top', /fragment/],
    ['https://acme.example.internal:99999', /port "99999"/],
    ['https://*.example.internal', /wildcard/],
    ['ftp://acme.example.internal', /scheme ftp/],
    ['acme.example.internal', /not an absolute URL/],
    ['https://acme.example.internal/acme/directory', /"\/acme" path/],
    ['https://acme.example.internal/a/../b', /path segment "\.\."/],
    ['https://acme.exa\u0007mple.internal', /control character/],
    ['https://[::zz]:8443', /not an IPv6 address/],
    ['https://under_score!.internal', /not a host name or IP address/],
  ];
  for (const [url, why] of cases) {
    const r = mcpki(['--home', home, 'acme-server', '--listen', '127.0.0.1:0', '--public-url', url]);
    assert.equal(r.status, 2, `${url}: ${r.stdout}${r.stderr}`);
    const [first] = r.stderr.split('\n');
    assert.match(first, /^error: --public-url /);
    assert.match(first, why, url);
  }
  const control = mcpki(['--home', home, 'acme-server', '--listen', '127.0.0.1:0', '--server-name', 'a\u0001b.test']);
  assert.equal(control.status, 2, control.stderr);
  assert.match(control.stderr, /--server-name "a\\u0001b.test" contains a control character/);
  const uri = mcpki(['--home', home, 'acme-server', '--listen', '127.0.0.1:0', '--server-name', 'spiffe://x.test/a']);
  assert.equal(uri.status, 2, uri.stderr);
  assert.match(uri.stderr, /is not a host name or IP address/);
  // outside the CA's name constraints: refused as `mcpki issue server` refuses it, and no listener started
  for (const args of [
    ['--server-name', 'acme.example.com'],
    ['--public-url', 'https://acme.example.com'],
  ]) {
    const r = mcpki(['--home', home, 'acme-server', '--listen', '127.0.0.1:0', ...args]);
    const issue = mcpki(['--home', home, 'issue', 'server', 'x', 'acme.example.com']);
    assert.notEqual(r.status, 0);
    assert.equal(r.status, issue.status, `${r.stderr} / ${issue.stderr}`);
    assert.match(r.stderr, /"acme\.example\.com" is outside the CA's name constraints/);
  }
});

test('the acmeServer: keys publicUrl and serverName are checked like the flags', () => {
  const file = join(home, 'bad.yaml');
  writeFileSync(
    file,
    'version: 1\ncertificates: []\nacmeServer:\n  listen: 127.0.0.1:0\n  publicUrl: http://acme.example.internal\n  serverName: [ok.internal, "spiffe://x.test/a"]\n',
  );
  const r = mcpki(['--home', home, 'acme-server', '-c', file]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /acmeServer\.publicUrl.*is http on a host that is not loopback/);
  assert.match(r.stderr, /acmeServer\.serverName.*not a host name or IP address/);
});
