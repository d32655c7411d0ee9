// `mcpki check` against real servers on loopback (each its own Node process, started and stopped here), with
// the openssl CLI as the independent judge of what each server really does.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { createContext, issueCertificate } from '../dist/index.js';
import { mcpki, mcpkiAsync, run, tempDir, testStore } from './helpers.js';

// A server in its own process, so that the synchronous openssl calls below do not stall it.
const SERVER = `
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
const config = JSON.parse(process.env.CHECK_SERVER);
const read = (path) => (path ? fs.readFileSync(path) : undefined);
let server;
if (config.kind === 'http') server = http.createServer((req, res) => res.end('plain'));
else if (config.kind === 'silent') server = net.createServer(() => {});
else {
  const options = { key: read(config.key), cert: read(config.cert), ca: read(config.ca), requestCert: config.requestCert ?? false, rejectUnauthorized: config.rejectUnauthorized ?? false };
  for (const name of ['minVersion', 'maxVersion', 'ciphers']) if (config[name]) options[name] = config[name];
  server = https.createServer(options, (req, res) => res.end('ok'));
  server.on('tlsClientError', () => {});
}
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

const servers = [];

function startServer(config) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', SERVER], {
      env: { ...process.env, CHECK_SERVER: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const server = {
      child,
      port: 0,
      stop: () => new Promise((done) => (child.exitCode !== null ? done() : (child.once('exit', done), child.kill()))),
    };
    servers.push(server);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    child.stdout.once('data', (data) => {
      server.port = Number(String(data).trim());
      resolve(server);
    });
  });
}

let home;
let other;
let stranger;
const cleanups = [];
const paths = {};

function issue(dir, kind, name, sans, extra = []) {
  const result = mcpki(['--home', dir, '--json', 'issue', kind, name, ...sans, ...extra]);
  assert.equal(result.status, 0, result.stderr + result.stdout);
  return result.json;
}

/** Runs `mcpki check` asynchronously (the servers must keep answering) and parses --json. */
async function check(args) {
  const result = await mcpkiAsync(['--home', home, 'check', ...args]);
  let json;
  if (args.includes('--json')) json = JSON.parse(result.stdout);
  return { ...result, json };
}

const byId = (report, id) => report.findings.find((f) => f.id === id);
const severities = (report) => Object.fromEntries(report.findings.map((f) => [f.id, f.severity]));

function sClient(port, args = []) {
  return run(
    'openssl',
    ['s_client', '-ign_eof', '-connect', `127.0.0.1:${port}`, '-CAfile', join(home, 'ca', 'root.crt'), ...args],
    { input: 'GET / HTTP/1.0\r\n\r\n', timeout: 10_000 },
  );
}

before(() => {
  [home, other, stranger] = ['mcpki-check-', 'mcpki-check-other-', 'mcpki-check-stranger-'].map((prefix) => {
    const { dir, cleanup } = tempDir(prefix);
    cleanups.push(cleanup);
    assert.equal(mcpki(['--home', dir, 'init']).status, 0);
    return dir;
  });
  paths.web = issue(home, 'server', 'web', ['localhost', 'web.localhost', '127.0.0.1', '::1']).paths;
  paths.agent = issue(home, 'client', 'agent', ['agent@example.test']).paths;
  // other CAs' certificates: one for a name this home manages, and a client certificate
  paths.imposter = issue(other, 'server', 'imposter', ['localhost', '127.0.0.1']).paths;
  paths.intruder = issue(stranger, 'client', 'intruder', ['intruder@example.test']).paths;
  // an expired certificate: issued by the library with a clock 10 days back, valid for 2 days
  const past = createContext({ ...testStore(home), home, now: () => new Date(Date.now() - 10 * 86_400_000) });
  try {
    paths.expired = issueCertificate(past, {
      kind: 'server',
      name: 'expired',
      sans: ['expired.localhost', '127.0.0.1'],
      days: 2,
    }).paths;
  } finally {
    past.close();
  }
  paths.soon = issue(home, 'server', 'soon', ['soon.localhost'], ['--days', '3']).paths;
});

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  for (const cleanup of cleanups) cleanup();
});

describe('servers', () => {
  test('a healthy server: exit 0, every finding ok or info, and openssl agrees', async () => {
    const server = await startServer({ kind: 'https', key: paths.web.key, cert: paths.web.fullchain });
    const peer = sClient(server.port, [
      '-servername',
      'localhost',
      '-verify_return_error',
      '-verify_hostname',
      'localhost',
    ]);
    assert.match(peer.stdout, /Verify return code: 0 \(ok\)/, peer.stdout + peer.stderr);

    const result = await check([`localhost:${server.port}`, '--json']);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    const report = result.json;
    assert.equal(report.status, 'ok');
    assert.equal(report.exitCode, 0);
    for (const finding of report.findings)
      assert.ok(['ok', 'info'].includes(finding.severity), JSON.stringify(finding));
    const ids = severities(report);
    for (const id of [
      'expiry',
      'hostname',
      'chain',
      'key',
      'signature',
      'protocols',
      'cipher',
      'client-auth',
      'inventory',
    ])
      assert.equal(ids[id], 'ok', id);
    assert.equal(report.chain.anchor, 'mcpki');
    assert.equal(report.inventory.match, 'current');
    assert.equal(report.inventory.certificate.name, 'web');
    assert.deepEqual(report.tls.versions, {
      TLSv1: 'refused',
      'TLSv1.1': 'refused',
      'TLSv1.2': 'accepted',
      'TLSv1.3': 'accepted',
    });
    assert.equal(report.tls.clientAuth, 'none');
    assert.equal(report.tls.protocol, 'TLSv1.3');
    const served = run('openssl', ['x509', '-noout', '-fingerprint', '-sha256'], {
      input: peer.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)[0],
    });
    assert.equal(served.stdout.trim().split('=')[1], report.certificate.fingerprint);
    assert.ok(report.certificate.daysLeft >= 88 && report.certificate.daysLeft <= 90);
    // every finding has the documented shape
    for (const finding of report.findings) assert.deepEqual(Object.keys(finding), ['id', 'severity', 'message', 'fix']);

    // the human form: one line per finding, and the verdict
    const human = await check([`https://localhost:${server.port}/mcp`]);
    assert.equal(human.status, 0);
    assert.match(human.stdout, /^ {2}ok {7}expiry +valid for \d+ more days/m);
    assert.match(human.stdout, /result: healthy \(exit 0/);
    // IPv4 literal: no SNI, the IP SAN is checked
    const ip = await check([`127.0.0.1:${server.port}`, '--json']);
    assert.equal(ip.status, 0, ip.stdout);
    assert.equal(byId(ip.json, 'hostname').message, 'covers 127.0.0.1');
    assert.equal(ip.json.tls.servername, null);
    await server.stop();
  });

  test('an expired certificate: failure, exit 20 (openssl: certificate has expired)', async () => {
    const server = await startServer({ kind: 'https', key: paths.expired.key, cert: paths.expired.fullchain });
    const peer = sClient(server.port, ['-servername', 'expired.localhost', '-verify_return_error']);
    assert.match(peer.stdout + peer.stderr, /certificate has expired/);
    const result = await check([`127.0.0.1:${server.port}`, '--servername', 'expired.localhost', '--json']);
    assert.equal(result.status, 20, result.stdout + result.stderr);
    const expiry = byId(result.json, 'expiry');
    assert.equal(expiry.severity, 'failure');
    assert.match(expiry.message, /^expired 8 days ago/);
    assert.ok(expiry.fix);
    assert.equal(result.json.status, 'failure');
    await server.stop();
  });

  test('a hostname mismatch: failure naming the SANs it has, exit 20 (openssl: hostname mismatch)', async () => {
    const server = await startServer({ kind: 'https', key: paths.web.key, cert: paths.web.fullchain });
    const peer = sClient(server.port, [
      '-servername',
      'other.localhost',
      '-verify_return_error',
      '-verify_hostname',
      'other.localhost',
    ]);
    assert.match(peer.stdout + peer.stderr, /hostname mismatch/);
    const result = await check([`127.0.0.1:${server.port}`, '--servername', 'other.localhost', '--json']);
    assert.equal(result.status, 20, result.stdout);
    const hostname = byId(result.json, 'hostname');
    assert.equal(hostname.severity, 'failure');
    assert.match(
      hostname.message,
      /does not cover other\.localhost: it covers localhost, web\.localhost, 127\.0\.0\.1/,
    );
    assert.match(hostname.fix, /mcpki issue server NAME other\.localhost/);
    // a name mcpki does not manage: no alarm, just info
    assert.equal(byId(result.json, 'inventory').severity, 'info');
    await server.stop();
  });

  test('a server without TLS: plain HTTP, a silent port and a closed port are failures, not timeouts', async () => {
    const plain = await startServer({ kind: 'http' });
    const curl = run('curl', ['-s', `http://127.0.0.1:${plain.port}/`]);
    assert.equal(curl.stdout, 'plain');
    const started = Date.now();
    const result = await check([`localhost:${plain.port}`, '--json']);
    assert.equal(result.status, 20, result.stdout);
    assert.deepEqual(
      result.json.findings.map((f) => [f.id, f.severity]),
      [['tls', 'failure']],
    );
    assert.match(
      result.json.findings[0].message,
      /speaks plain HTTP, not TLS \(it answered "HTTP\/1\.1 400 Bad Request"\)/,
    );
    assert.ok(Date.now() - started < 2500, 'reported at once, not after the timeout');

    const silent = await startServer({ kind: 'silent' });
    const quiet = await check([`127.0.0.1:${silent.port}`, '--timeout', '300', '--json']);
    assert.equal(quiet.status, 20);
    assert.match(byId(quiet.json, 'tls').message, /accepts connections but sends no TLS answer within 300 ms/);

    const port = silent.port;
    await Promise.all([plain.stop(), silent.stop()]);
    const closed = await check([`127.0.0.1:${port}`, '--json']);
    assert.equal(closed.status, 20);
    assert.equal(byId(closed.json, 'connect').message, `nothing listens on 127.0.0.1:${port} (connection refused)`);
  });

  test('a server offering TLS 1.0: warning, exit 19 (openssl -tls1 negotiates TLSv1)', async () => {
    const server = await startServer({
      kind: 'https',
      key: paths.web.key,
      cert: paths.web.fullchain,
      minVersion: 'TLSv1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    const peer = sClient(server.port, ['-tls1', '-cipher', 'DEFAULT@SECLEVEL=0', '-servername', 'localhost']);
    assert.match(peer.stdout, /Protocol\s*: TLSv1\n/, peer.stdout + peer.stderr);
    const result = await check([`localhost:${server.port}`, '--json']);
    assert.equal(result.status, 19, result.stdout);
    assert.equal(result.json.tls.versions.TLSv1, 'accepted');
    assert.equal(result.json.tls.versions['TLSv1.1'], 'accepted');
    assert.equal(byId(result.json, 'protocol.tls1.0').severity, 'warning');
    assert.match(byId(result.json, 'protocol.tls1.0').fix, /minimum version to TLS 1\.2/);
    assert.equal(result.json.status, 'warning');
    await server.stop();
  });

  test('a server that requires a client certificate; --client-cert accepted, a stranger refused', async () => {
    const ca = join(home, 'ca', 'root.crt');
    const required = await startServer({
      kind: 'https',
      key: paths.web.key,
      cert: paths.web.fullchain,
      ca,
      requestCert: true,
      rejectUnauthorized: true,
    });
    // openssl: without a certificate the server refuses (TLS 1.3: after the handshake); with agent's it answers
    assert.doesNotMatch(sClient(required.port, ['-servername', 'localhost']).stdout, /\r\n\r\nok/);
    const withAgent = sClient(required.port, [
      '-servername',
      'localhost',
      '-cert',
      paths.agent.cert,
      '-cert_chain',
      paths.agent.fullchain,
      '-key',
      paths.agent.key,
    ]);
    assert.match(withAgent.stdout, /\r\n\r\nok/, withAgent.stdout + withAgent.stderr);
    assert.doesNotMatch(
      sClient(required.port, [
        '-servername',
        'localhost',
        '-cert',
        paths.intruder.cert,
        '-cert_chain',
        paths.intruder.fullchain,
        '-key',
        paths.intruder.key,
      ]).stdout,
      /\r\n\r\nok/,
    );

    const plain = await check([`localhost:${required.port}`, '--json']);
    assert.equal(plain.status, 0, plain.stdout);
    assert.equal(plain.json.tls.clientAuth, 'required');
    assert.match(
      byId(plain.json, 'client-auth').message,
      /requires a client certificate.*mcpki development root .* \(mcpki's root\)/,
    );

    const accepted = await check([`localhost:${required.port}`, '--client-cert', 'agent', '--json']);
    assert.equal(accepted.status, 0, accepted.stdout);
    assert.equal(byId(accepted.json, 'client-cert').severity, 'ok');
    assert.equal(accepted.json.tls.clientCert.accepted, true);

    // the stranger is in another home's inventory: check it from there (the server is the same)
    const refused = await mcpkiAsync([
      '--home',
      stranger,
      'check',
      `localhost:${required.port}`,
      '--client-cert',
      'intruder',
      '--ca',
      ca,
      '--json',
    ]);
    assert.equal(refused.status, 20, refused.stdout);
    const finding = byId(JSON.parse(refused.stdout), 'client-cert');
    assert.equal(finding.severity, 'failure');
    assert.match(finding.message, /refuses intruder's client certificate/);

    // TLS 1.2 only: the server aborts the handshake of a client without a certificate
    const old = await startServer({
      kind: 'https',
      key: paths.web.key,
      cert: paths.web.fullchain,
      ca,
      requestCert: true,
      rejectUnauthorized: true,
      maxVersion: 'TLSv1.2',
    });
    const tls12 = await check([`localhost:${old.port}`, '--json']);
    assert.equal(tls12.status, 0, tls12.stdout);
    assert.equal(tls12.json.tls.clientAuth, 'required');
    assert.equal(tls12.json.tls.protocol, 'TLSv1.2');
    const tls12Agent = await check([`localhost:${old.port}`, '--client-cert', 'agent', '--json']);
    assert.equal(tls12Agent.json.tls.clientCert.accepted, true, tls12Agent.stdout);

    // requested but optional
    const optional = await startServer({
      kind: 'https',
      key: paths.web.key,
      cert: paths.web.fullchain,
      ca,
      requestCert: true,
      rejectUnauthorized: false,
    });
    const asked = await check([`localhost:${optional.port}`, '--json']);
    assert.equal(asked.status, 0);
    assert.equal(asked.json.tls.clientAuth, 'requested');
    await Promise.all([required.stop(), old.stop(), optional.stop()]);
  });

  test('a certificate mcpki never issued, for a name it manages: alarm, event, exit 21', async () => {
    const server = await startServer({ kind: 'https', key: paths.imposter.key, cert: paths.imposter.fullchain });
    const otherRoot = join(other, 'ca', 'root.crt');
    // trusted through --ca, so that the alarm is the only problem
    const result = await check([`localhost:${server.port}`, '--ca', otherRoot, '--json']);
    assert.equal(result.status, 21, result.stdout);
    assert.equal(result.json.status, 'alarm');
    assert.equal(byId(result.json, 'chain').severity, 'ok');
    assert.equal(result.json.chain.anchor, 'ca-file');
    const alarm = byId(result.json, 'inventory');
    assert.equal(alarm.severity, 'alarm');
    assert.match(alarm.message, /UNEXPECTED CERTIFICATE: mcpki manages localhost \(web\)/);
    // the fingerprint reported is the one openssl sees, and it is not web's
    const served = run('openssl', ['x509', '-noout', '-fingerprint', '-sha256'], {
      input: sClient(server.port, ['-servername', 'localhost']).stdout,
    });
    assert.equal(served.stdout.trim().split('=')[1], result.json.certificate.fingerprint);
    assert.notEqual(
      result.json.certificate.fingerprint,
      run('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', paths.web.cert]).stdout.trim().split('=')[1],
    );

    const events = mcpki(['--home', home, 'events', '--json']).json.events.filter(
      (e) => e.type === 'check.unexpected-certificate',
    );
    assert.equal(events.length, 1);
    assert.equal(events[0].name, 'web');
    assert.equal(events[0].detail.fingerprint, result.json.certificate.fingerprint);
    assert.equal(events[0].detail.target, `localhost:${server.port}`);

    // without --ca the chain fails too; the alarm still decides the exit code
    const both = await check([`localhost:${server.port}`, '--no-record', '--json']);
    assert.equal(both.status, 21);
    assert.equal(byId(both.json, 'chain').severity, 'failure');
    assert.equal(
      mcpki(['--home', home, 'events', '--json']).json.events.filter((e) => e.type === 'check.unexpected-certificate')
        .length,
      1,
      '--no-record records nothing',
    );
    // the human form names the alarm
    const human = await check([`localhost:${server.port}`, '--no-record']);
    assert.equal(human.status, 21);
    assert.match(human.stdout, /alarm +inventory +UNEXPECTED CERTIFICATE/);
    assert.match(human.stdout, /result: ALARM: unexpected certificate \(exit 21/);
    await server.stop();
  });

  test('--cert NAME; an older certificate of the name is a warning (the service was not reloaded)', async () => {
    const web = await startServer({ kind: 'https', key: paths.web.key, cert: paths.web.fullchain });
    assert.equal((await check([`127.0.0.1:${web.port}`, '--cert', 'web', '--json'])).status, 0);
    assert.equal(
      (await check([`127.0.0.1:${web.port}`, '--cert', 'agent', '--no-record', '--json'])).status,
      21,
      'web is not agent',
    );
    // a new certificate for "web"; the server still presents the one it loaded
    paths.web = issue(home, 'server', 'web', ['localhost', 'web.localhost', '127.0.0.1', '::1']).paths;
    const stale = await check([`127.0.0.1:${web.port}`, '--json']);
    assert.equal(stale.status, 19, stale.stdout);
    assert.equal(stale.json.inventory.match, 'superseded');
    assert.match(byId(stale.json, 'inventory').message, /presents an older certificate of web/);
    assert.equal((await check([`127.0.0.1:${web.port}`, '--cert', 'nope'])).status, 10);
    await web.stop();
  });
});

describe('files', () => {
  test('--servername with a trailing dot, in capitals, or as an IDN is the same name; one with a space is refused', async () => {
    for (const name of ['web.localhost.', 'WEB.localhost']) {
      const result = await check([paths.web.fullchain, '--key', paths.web.key, '--servername', name, '--json']);
      assert.equal(result.status, 0, result.stdout + result.stderr);
      assert.equal(byId(result.json, 'hostname').severity, 'ok', name);
    }
    const spaced = await check([paths.web.fullchain, '--servername', 'web localhost', '--json']);
    assert.equal(spaced.status, 3);
    assert.match(spaced.json.error.message, /is not a DNS name or an IP address/);
  });

  test('a good fullchain with its key; a certificate NAME; DER', async () => {
    const result = await check([
      paths.web.fullchain,
      '--key',
      paths.web.key,
      '--servername',
      'web.localhost',
      '--json',
    ]);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.equal(result.json.target.kind, 'file');
    assert.equal(byId(result.json, 'key-match').severity, 'ok');
    assert.equal(byId(result.json, 'hostname').severity, 'ok');
    assert.equal(result.json.chain.anchor, 'mcpki');
    assert.equal(byId(result.json, 'inventory').severity, 'info');

    const byName = await check(['web', '--json']);
    assert.equal(byName.status, 0, byName.stdout);
    assert.equal(byName.json.target.kind, 'name');
    assert.equal(byName.json.file.keyMatch, true);
    assert.equal(byId(byName.json, 'inventory').severity, 'ok');

    // the leaf alone: info (servers must send the intermediate), still healthy
    const leaf = await check([paths.web.cert, '--json']);
    assert.equal(leaf.status, 0);
    assert.equal(byId(leaf.json, 'chain').severity, 'info');

    const der = join(home, 'web.der');
    assert.equal(run('openssl', ['x509', '-in', paths.web.cert, '-outform', 'DER', '-out', der]).status, 0);
    const fromDer = await check([der, '--json']);
    assert.equal(fromDer.status, 0, fromDer.stdout);
    assert.equal(fromDer.json.certificate.fingerprint, leaf.json.certificate.fingerprint);
  });

  test('a key that does not match: failure, exit 20 (openssl: the public keys differ)', async () => {
    const certKey = run('openssl', ['x509', '-in', paths.web.cert, '-noout', '-pubkey']).stdout;
    const otherKey = run('openssl', ['pkey', '-in', paths.agent.key, '-pubout']).stdout;
    assert.notEqual(certKey, otherKey);
    const result = await check([paths.web.cert, '--key', paths.agent.key, '--json']);
    assert.equal(result.status, 20, result.stdout);
    assert.equal(byId(result.json, 'key-match').severity, 'failure');
    // a combined file (cert + its key) matches
    const combined = join(home, 'combined.pem');
    writeFileSync(combined, readFileSync(paths.web.fullchain, 'utf8') + readFileSync(paths.web.key, 'utf8'), {
      mode: 0o600,
    });
    const good = await check([combined, '--json']);
    assert.equal(good.status, 0, good.stdout);
    assert.equal(good.json.file.keyMatch, true);
    // a key readable by everyone: warning
    chmodSync(combined, 0o644);
    const open = await check([combined, '--json']);
    assert.equal(open.status, 19);
    assert.equal(byId(open.json, 'key-permissions').severity, 'warning');
  });

  test('expired, and expiring within 7 days', async () => {
    assert.match(run('openssl', ['x509', '-in', paths.expired.cert, '-noout', '-checkend', '0']).stdout, /will expire/);
    const expired = await check([paths.expired.fullchain, '--json']);
    assert.equal(expired.status, 20);
    assert.equal(byId(expired.json, 'expiry').severity, 'failure');
    const soon = await check(['soon', '--json']);
    assert.equal(soon.status, 19, soon.stdout);
    assert.match(byId(soon.json, 'expiry').message, /^expires in 2 days/);
  });

  test('RSA-1024 signed with SHA-1 (made with openssl) fails on key and signature; a system root anchors itself', async () => {
    const key = join(home, 'weak.key');
    const cert = join(home, 'weak.crt');
    const made = run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:1024',
      '-sha1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '30',
      '-subj',
      '/CN=weak.localhost',
      '-addext',
      'subjectAltName=DNS:weak.localhost',
    ]);
    assert.equal(made.status, 0, made.stderr);
    assert.match(
      run('openssl', ['x509', '-in', cert, '-noout', '-text']).stdout,
      /Signature Algorithm: sha1WithRSAEncryption[\s\S]*Public-Key: \(1024 bit\)/,
    );
    const weak = await check([cert, '--key', key, '--json']);
    assert.equal(weak.status, 20, weak.stdout);
    assert.deepEqual(
      [byId(weak.json, 'key').severity, byId(weak.json, 'signature').severity, byId(weak.json, 'chain').severity],
      ['failure', 'failure', 'failure'],
    );
    assert.equal(weak.json.certificate.keyType, 'RSA 1024');
    assert.equal(weak.json.certificate.signatureAlgorithm, 'sha1WithRSAEncryption');
    assert.equal(byId(weak.json, 'key-match').severity, 'ok');

    const rootFile = join(home, 'system-root.pem');
    writeFileSync(rootFile, tls.rootCertificates[0]);
    const root = await check([rootFile, '--json']);
    assert.equal(root.json.chain.anchor, 'system', root.stdout);
  });

  test('bad TARGETs and options are usage errors with a hint', async () => {
    for (const [args, status, hint] of [
      [['example.com'], 2, /add the port: example\.com:443/],
      [['::1'], 2, /\[::1\]:443/],
      [['http://localhost:80'], 2, /speaks TLS only/],
      [['localhost:99999'], 3, /1 to 65535/],
      [['no-such-name'], 2, /host:port/],
      [['localhost:1', '--key', 'x.key'], 2, /check --help/],
      [['web', '--client-cert', 'agent'], 2, /check --help/],
      [['localhost:1', '--client-cert', 'nobody'], 10, /mcpki list/],
      [['localhost:1', '--timeout', 'soon'], 3, /--timeout 2s/],
    ]) {
      const result = await check(args);
      assert.equal(result.status, status, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /^error: .+\nhint: /, args.join(' '));
      assert.match(result.stderr, hint, args.join(' '));
    }
    const json = await check(['example.com', '--json']);
    assert.equal(JSON.parse(json.stdout).error.exitCode, 2);
  });
});
