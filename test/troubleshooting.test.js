// docs/troubleshooting.md stays true: each row's error text is produced here by the real peer (Node, Python,
// curl, nginx, Go, OpenSSL) in the situation the row describes, and must appear in that peer's output exactly
// as the table writes it. A row with no case here fails the test (so no untested row creeps in), unless its
// "why" says "not tested". The three Node facts of docs/mcp.md are checked here too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import https from 'node:https';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir, mcpki, run, hasCommand, startPeer } from './helpers.js';
import { nginxConf } from './nginx.js';

const TABLE = readFileSync(join(ROOT, 'docs', 'troubleshooting.md'), 'utf8');

/** The rows of the table: { client, seen: [every `code` span of the "you see" column], why, fix }. */
function tableRows(text) {
  const rows = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('|') || /^\|\s*(client|---)/.test(line)) continue;
    const cells = line
      .slice(1, line.endsWith('|') ? -1 : undefined)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
    if (cells.length < 4) continue;
    const seen = [...cells[1].matchAll(/`([^`]+)`/g)].map((m) => m[1].replace(/\\\|/g, '|'));
    rows.push({ client: cells[0].replace(/\*/g, ''), seen, why: cells[2], fix: cells[3] });
  }
  return rows;
}

const scratch = tempDir('mcpki-trouble-');
const home = join(scratch.dir, 'home');
const files = {};
const servers = [];
const stops = [];

function cli(args) {
  const result = mcpki([...args, '--home', home]);
  assert.equal(result.status, 0, `mcpki ${args.join(' ')}: ${result.stderr}`);
  return result;
}

/** Runs a program without blocking the event loop (the servers live in this process). */
function runAsync(cmd, args, { env = process.env, timeout = 60_000, cwd } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
  });
}

function freePort() {
  return new Promise((resolve) => {
    const server = createNetServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function crlBlocks(path) {
  return readFileSync(path, 'utf8').match(/-----BEGIN X509 CRL-----[^-]+-----END X509 CRL-----\n?/g);
}

/** A node:https server on loopback; returns its port and the reasons it refused clients. */
async function nodeServer(options, handler = (req, res) => res.end('ok\n')) {
  const refusals = [];
  const server = https.createServer(options, handler);
  server.on('tlsClientError', (error) => refusals.push(`${error.code}: ${error.message}`));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { port: server.address().port, refusals };
}

/** A Node client in its own process: prints "ok" or "CODE: message". */
function nodeClient(url, { ca, cert, key, servername, env = {}, setEnvInside } = {}) {
  const script = `
    ${setEnvInside ? `process.env.NODE_EXTRA_CA_CERTS = ${JSON.stringify(setEnvInside)};` : ''}
    const https = require('node:https');
    const fs = require('node:fs');
    const options = { servername: ${JSON.stringify(servername ?? null)} || undefined };
    ${ca ? `options.ca = fs.readFileSync(${JSON.stringify(ca)});` : ''}
    ${cert ? `options.cert = fs.readFileSync(${JSON.stringify(cert)}); options.key = fs.readFileSync(${JSON.stringify(key)});` : ''}
    https.get(${JSON.stringify(url)}, options, (res) => { let body = ''; res.on('data', (d) => (body += d)); res.on('end', () => console.log('ok ' + res.statusCode + ' ' + body)); })
      .on('error', (e) => console.log(e.code + ': ' + e.message));`;
  return runAsync(process.execPath, ['-e', script], { env: { PATH: process.env.PATH, ...env } });
}

let plain; // server certificate, full chain, no client certificate asked
let leafOnly; // sends only the leaf
let forged; // a leaf for www.example.com signed with the intermediate's key: outside the name constraints
let mtls; // requires a client certificate, CRL as one array element per block
let crlAsOneBufferReport; // the same, CRL passed as one buffer, not rejecting: answers authorizationError
let crlAsOneBuffer; // rejecting, CRL as one buffer
let report; // requires a client certificate, CRL block by block, answers authorizationError

before(async () => {
  cli(['init']);
  cli(['issue', 'server', 'srv', 'localhost', '127.0.0.1']);
  cli(['issue', 'client', 'agent']);
  cli(['issue', 'client', 'gone']);
  cli(['revoke', 'gone']);
  cli(['crl']);
  // another mcpki CA: what a client trusts when it trusts the wrong root, and a client certificate from it
  const other = join(scratch.dir, 'other');
  for (const args of [['init'], ['issue', 'client', 'stranger']])
    assert.equal(mcpki([...args, '--home', other]).status, 0);
  files.otherRoot = join(other, 'ca', 'root.crt');
  files.stranger = join(other, 'certs', 'stranger', 'stranger.fullchain.pem');
  files.strangerKey = join(other, 'certs', 'stranger', 'stranger.key');
  const certs = join(home, 'certs');
  Object.assign(files, {
    root: join(home, 'ca', 'root.crt'),
    intermediate: join(home, 'ca', 'intermediate.crt'),
    intermediateKey: join(home, 'ca', 'intermediate.key'),
    crl: join(home, 'ca', 'crl.pem'),
    cert: join(certs, 'srv', 'srv.crt'),
    fullchain: join(certs, 'srv', 'srv.fullchain.pem'),
    key: join(certs, 'srv', 'srv.key'),
    agent: join(certs, 'agent', 'agent.fullchain.pem'),
    agentKey: join(certs, 'agent', 'agent.key'),
    gone: join(certs, 'gone', 'gone.fullchain.pem'),
    goneKey: join(certs, 'gone', 'gone.key'),
  });
  // the forgery: what a thief of the intermediate key could make, and every verifier must refuse
  const dir = join(scratch.dir, 'forged');
  mkdirSync(dir);
  files.forgedKey = join(dir, 'forged.key');
  files.forged = join(dir, 'forged.crt');
  const csr = join(dir, 'forged.csr');
  const ext = join(dir, 'ext.cnf');
  writeFileSync(
    ext,
    'subjectAltName=DNS:www.example.com\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:false\n',
  );
  assert.equal(
    run('openssl', [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      files.forgedKey,
      '-out',
      csr,
      '-subj',
      '/CN=www.example.com',
    ]).status,
    0,
  );
  const signed = run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    files.intermediate,
    '-CAkey',
    files.intermediateKey,
    '-set_serial',
    '0x0F00',
    '-days',
    '30',
    '-extfile',
    ext,
    '-out',
    files.forged,
  ]);
  assert.equal(signed.status, 0, signed.stderr);
  files.forgedChain = join(dir, 'forged.fullchain.pem');
  writeFileSync(files.forgedChain, readFileSync(files.forged, 'utf8') + readFileSync(files.intermediate, 'utf8'));

  const read = (path) => readFileSync(path);
  plain = await nodeServer({ cert: read(files.fullchain), key: read(files.key) });
  leafOnly = await nodeServer({ cert: read(files.cert), key: read(files.key) });
  forged = await nodeServer({ cert: read(files.forgedChain), key: read(files.forgedKey) });
  const mtlsOptions = {
    cert: read(files.fullchain),
    key: read(files.key),
    ca: read(files.root),
    requestCert: true,
    rejectUnauthorized: true,
  };
  mtls = await nodeServer({ ...mtlsOptions, crl: crlBlocks(files.crl) });
  const answer = (req, res) => res.end(`authorizationError: ${req.socket.authorizationError}\n`);
  crlAsOneBufferReport = await nodeServer({ ...mtlsOptions, rejectUnauthorized: false, crl: read(files.crl) }, answer);
  crlAsOneBuffer = await nodeServer({ ...mtlsOptions, crl: read(files.crl) });
  report = await nodeServer({ ...mtlsOptions, rejectUnauthorized: false, crl: crlBlocks(files.crl) }, answer);
});

after(async () => {
  for (const server of servers) server.close();
  for (const stop of stops) await stop();
  scratch.cleanup();
});

const url = (server, host = '127.0.0.1') => `https://${host}:${server.port}/`;
const produced = new Map(); // client → [{ text, output }]

/** One case: the client's output in a situation must contain `text`, and the table must have that row. */
function trouble(client, text, produce, skip = false) {
  if (!produced.has(client)) produced.set(client, []);
  produced.get(client).push(text);
  test(`${client}: ${text}`, { skip, timeout: 300_000 }, async () => {
    const output = await produce();
    assert.ok(output.includes(text), `${client} said:\n${output}\n\nexpected it to contain: ${text}`);
    const row = tableRows(TABLE).find((r) => r.client === client && r.seen.includes(text));
    assert.ok(row, `docs/troubleshooting.md has a ${client} row with \`${text}\``);
    assert.match(row.fix, /mcpki /, `the ${client} row for ${text} names the mcpki command that fixes it`);
  });
}

// ---------------------------------------------------------------- Node
trouble(
  'Node',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY: unable to get local issuer certificate',
  async () => (await nodeClient(url(plain))).output,
);
trouble(
  'Node',
  "ERR_TLS_CERT_ALTNAME_INVALID: Hostname/IP does not match certificate's altnames",
  async () => (await nodeClient(url(plain), { ca: files.root, servername: 'api.localhost' })).output,
);
trouble(
  'Node',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate',
  async () => (await nodeClient(url(leafOnly), { ca: files.root })).output,
);
trouble(
  'Node',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  async () => (await nodeClient(url(mtls), { ca: files.root })).output,
);
trouble(
  'Node',
  'ECONNRESET: socket hang up',
  async () => (await nodeClient(url(mtls), { ca: files.root, cert: files.gone, key: files.goneKey })).output,
);
trouble(
  'Node',
  'UNSPECIFIED: permitted subtree violation',
  async () => (await nodeClient(url(forged), { ca: files.root, servername: 'www.example.com' })).output,
);

test('Node: NODE_EXTRA_CA_CERTS counts only when set before Node starts; a valid client passes the CRL given block by block', async () => {
  assert.match((await nodeClient(url(plain), { env: { NODE_EXTRA_CA_CERTS: files.root } })).output, /^ok 200/);
  assert.match(
    (await nodeClient(url(plain), { setEnvInside: files.root })).output,
    /UNABLE_TO_GET_ISSUER_CERT_LOCALLY/,
  );
  // SSL_CERT_FILE, which OpenSSL, Python and curl read as the system store, is ignored by Node
  assert.match(
    (await nodeClient(url(plain), { env: { SSL_CERT_FILE: files.root } })).output,
    /UNABLE_TO_GET_ISSUER_CERT_LOCALLY/,
  );
  assert.match(
    (await nodeClient(url(mtls), { ca: files.root, cert: files.agent, key: files.agentKey })).output,
    /^ok 200/,
  );
  assert.match(
    (await nodeClient(url(crlAsOneBuffer), { ca: files.root, cert: files.agent, key: files.agentKey })).output,
    /ECONNRESET: socket hang up/,
  );
  assert.equal(crlBlocks(files.crl).length, 2, 'HOME/ca/crl.pem holds two CRLs');
});

test(
  'Node: --use-system-ca is refused before Node 22',
  { skip: Number(process.versions.node.split('.')[0]) >= 22 && 'this Node has the option' },
  () => {
    const result = run(process.execPath, ['--use-system-ca', '-e', '0']);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /bad option: --use-system-ca/);
  },
);

// a Node server that lets every client in and answers with why it would have refused it
trouble(
  'Node server',
  'UNABLE_TO_GET_CRL',
  async () =>
    (await nodeClient(url(crlAsOneBufferReport), { ca: files.root, cert: files.agent, key: files.agentKey })).output,
);
trouble(
  'Node server',
  'CERT_REVOKED',
  async () => (await nodeClient(url(report), { ca: files.root, cert: files.gone, key: files.goneKey })).output,
);
trouble('Node server', 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', async () => {
  await nodeClient(url(mtls), { ca: files.root });
  return mtls.refusals.join('\n');
});

// ---------------------------------------------------------------- Python
const PYTHON = hasCommand('python3') ? 'python3' : undefined;
function python(target, { servername, ca, cafile, cert, key } = {}) {
  const script = `
import socket, ssl, sys
ctx = ssl.create_default_context(${cafile ? `cafile=${JSON.stringify(cafile)}` : ''})
${cert ? `ctx.load_cert_chain(${JSON.stringify(cert)}, ${JSON.stringify(key)})` : ''}
try:
    with socket.create_connection(("127.0.0.1", ${target.port}), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=${JSON.stringify(servername ?? 'localhost')}) as s:
            s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            print("ok", s.version(), s.recv(200))
except Exception as e:
    print(type(e).__name__ + ":", e)
`;
  return runAsync(PYTHON, ['-c', script], { env: { PATH: process.env.PATH, ...(ca ? { SSL_CERT_FILE: ca } : {}) } });
}
trouble(
  'Python',
  '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate',
  async () => (await python(plain, { cafile: files.otherRoot })).output,
  !PYTHON && 'no python3',
);
trouble(
  'Python',
  "certificate verify failed: Hostname mismatch, certificate is not valid for 'api.localhost'",
  async () => (await python(plain, { cafile: files.root, servername: 'api.localhost' })).output,
  !PYTHON && 'no python3',
);
trouble(
  'Python',
  'certificate verify failed: permitted subtree violation',
  async () => (await python(forged, { cafile: files.root, servername: 'www.example.com' })).output,
  !PYTHON && 'no python3',
);

// ---------------------------------------------------------------- curl
const CURL = hasCommand('curl');
function curl(args) {
  return runAsync('curl', ['-sS', '--max-time', '10', ...args], { env: { PATH: process.env.PATH } }).then(
    (r) => r.output,
  );
}
trouble(
  'curl',
  'curl: (60) SSL certificate problem: unable to get local issuer certificate',
  () => curl(['--cacert', files.otherRoot, url(plain, 'localhost')]),
  !CURL && 'no curl',
);
trouble(
  'curl',
  "no alternative certificate subject name matches target host name 'api.localhost'",
  () =>
    curl([
      '--cacert',
      files.root,
      '--resolve',
      `api.localhost:${plain.port}:127.0.0.1`,
      `https://api.localhost:${plain.port}/`,
    ]),
  !CURL && 'no curl',
);
trouble(
  'curl',
  'tlsv13 alert certificate required',
  () => curl(['--cacert', files.root, url(mtls, 'localhost')]),
  !CURL && 'no curl',
);

// ---------------------------------------------------------------- nginx
const NGINX = hasCommand('nginx') || hasCommand('/usr/sbin/nginx');
let nginxPort;
async function nginx() {
  if (nginxPort) return nginxPort;
  const port = await freePort();
  const prefix = join(scratch.dir, 'nginx');
  const args = nginxConf(
    prefix,
    `    server {
        listen 127.0.0.1:${port} ssl;
        ssl_certificate ${files.fullchain};
        ssl_certificate_key ${files.key};
        ssl_client_certificate ${files.root};
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_crl ${files.crl};
        location / { return 200 "ok\\n"; }
    }`,
    { errorLogLevel: 'info' },
  );
  const peer = await startPeer('/usr/sbin/nginx', args, port);
  stops.push(peer.stop ?? (() => peer.kill?.()));
  nginxPort = port;
  return port;
}
trouble(
  'nginx',
  '400 No required SSL certificate was sent',
  async () => curl(['--cacert', files.root, `https://localhost:${await nginx()}/`]),
  !NGINX && 'no nginx',
);
trouble(
  'nginx',
  '400 The SSL certificate error',
  async () => {
    const answer = await curl([
      '--cacert',
      files.root,
      '--cert',
      files.gone,
      '--key',
      files.goneKey,
      `https://localhost:${await nginx()}/`,
    ]);
    const log = readFileSync(join(scratch.dir, 'nginx', 'error.log'), 'utf8');
    assert.match(log, /certificate revoked/, 'the row names what the error log says');
    return answer;
  },
  !NGINX && 'no nginx',
);

// ---------------------------------------------------------------- Go
const GO = hasCommand('go');
let goBinary;
async function goClient(target, servername, root) {
  if (!goBinary) {
    const dir = join(scratch.dir, 'go');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'main.go'),
      `package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

func main() {
	config := &tls.Config{ServerName: os.Args[2]}
	if len(os.Args) > 3 {
		pool := x509.NewCertPool()
		pem, _ := os.ReadFile(os.Args[3])
		pool.AppendCertsFromPEM(pem)
		config.RootCAs = pool
	}
	conn, err := tls.Dial("tcp", os.Args[1], config)
	if err != nil {
		fmt.Println(err)
		return
	}
	conn.Close()
	fmt.Println("ok")
}
`,
    );
    const env = {
      ...process.env,
      GOCACHE: join(dir, 'cache'),
      GOPATH: join(dir, 'gopath'),
      GOPROXY: 'off',
      GOTOOLCHAIN: 'local',
      CGO_ENABLED: '0',
      GO111MODULE: 'off',
    };
    const built = await runAsync('go', ['build', '-o', join(dir, 'client'), join(dir, 'main.go')], {
      env,
      cwd: dir,
      timeout: 280_000,
    });
    assert.equal(built.status, 0, built.output);
    goBinary = join(dir, 'client');
  }
  return (
    await runAsync(goBinary, [`127.0.0.1:${target.port}`, servername, ...(root ? [root] : [])], {
      env: { PATH: process.env.PATH },
    })
  ).output;
}
trouble(
  'Go',
  'x509: certificate signed by unknown authority',
  () => goClient(plain, 'localhost', files.otherRoot),
  !GO && 'no go',
);
trouble(
  'Go',
  'x509: a root or intermediate certificate is not authorized to sign for this name',
  async () => {
    const output = await goClient(forged, 'www.example.com', files.root);
    assert.match(output, /is not permitted by any constraint/, 'the row quotes the rest of the message');
    return output;
  },
  !GO && 'no go',
);

// ---------------------------------------------------------------- OpenSSL
trouble(
  'OpenSSL',
  'verify error:num=20:unable to get local issuer certificate',
  async () =>
    (
      await runAsync(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${plain.port}`,
          '-servername',
          'localhost',
          '-CAfile',
          files.otherRoot,
          '-brief',
        ],
        { env: { PATH: process.env.PATH } },
      )
    ).output,
);
trouble(
  'OpenSSL',
  'error 47 at 0 depth lookup: permitted subtree violation',
  async () =>
    (await runAsync('openssl', ['verify', '-CAfile', files.root, '-untrusted', files.intermediate, files.forged]))
      .output,
);

// ---------------------------------------------------------------- Chromium (headless, as root: --no-sandbox)
const CHROMIUM = hasCommand('chromium') && hasCommand('certutil');
async function chromium(target, host, { nssTrust = false } = {}) {
  const profile = join(scratch.dir, `chromium-${Math.random().toString(16).slice(2)}`);
  const nssdb = join(profile, '.pki', 'nssdb');
  mkdirSync(nssdb, { recursive: true });
  assert.equal(run('certutil', ['-N', '--empty-password', '-d', `sql:${nssdb}`]).status, 0);
  if (nssTrust) {
    const trusted = mcpki(['trust', 'install', '--store', 'nss', '--nss-db', nssdb, '--home', home], {
      env: { HOME: profile },
    });
    assert.equal(trusted.status, 0, trusted.stderr);
  }
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    `--user-data-dir=${join(profile, 'data')}`,
    `--host-resolver-rules=MAP ${host} 127.0.0.1`,
    '--dump-dom',
    `https://${host}:${target.port}/`,
  ];
  return (await runAsync('chromium', args, { env: { PATH: process.env.PATH, HOME: profile }, timeout: 90_000 })).output;
}
trouble(
  'Chromium',
  'net::ERR_CERT_AUTHORITY_INVALID',
  () => chromium(plain, 'localhost'),
  !CHROMIUM && 'no chromium (apt-get install chromium libnss3-tools)',
);
trouble(
  'Chromium',
  'net::ERR_CERT_COMMON_NAME_INVALID',
  () => chromium(plain, 'api.localhost', { nssTrust: true }),
  !CHROMIUM && 'no chromium',
);
test(
  'Chromium: mcpki trust install --store nss makes the page load',
  { skip: !CHROMIUM && 'no chromium', timeout: 120_000 },
  async () => {
    assert.match(await chromium(plain, 'localhost', { nssTrust: true }), />ok\n<\/pre>/);
  },
);

// ---------------------------------------------------------------- the table itself
test('every row of docs/troubleshooting.md is produced by a case above, or says it is not tested', () => {
  const rows = tableRows(TABLE);
  assert.ok(rows.length >= 15, `${rows.length} rows`);
  for (const row of rows) {
    if (/not tested/i.test(row.why)) continue;
    assert.ok(row.seen.length > 0, `a ${row.client} row shows the error text in backticks`);
    const cases = produced.get(row.client) ?? [];
    assert.ok(
      row.seen.some((text) => cases.includes(text)),
      `the ${row.client} row ${row.seen.join(', ')} is produced by a case in this file`,
    );
  }
});
