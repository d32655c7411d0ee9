// What the tests of `mcpki acme-server` share: the challenge DNS (pebble-challtestsrv answering every A query
// with 127.0.0.1), an http-01 responder answering the tokens the test sets, `mcpki acme-server` started as a
// process (its JSON start line read), a second home provisioned from the first (docs/acme-server.md), an
// acme-client client with its account and the order loop a careful client runs, a hand-made JWS, and a program
// run without blocking the event loop (the in-process server answers from it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { sign } from 'node:crypto';
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { BIN, run, startPeer, storeEnv } from './helpers.js';
import { CHALLTESTSRV_BIN, freePorts } from './pebble.js';

const require = createRequire(import.meta.url);
export const acme = require('acme-client');
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function hasChallengeDns() {
  return existsSync(CHALLTESTSRV_BIN);
}

/**
 * pebble-challtestsrv as the server's DNS: every A query is 127.0.0.1, no AAAA; TXT records through
 * `setTxt(host, value)`, more A answers by `addA(host, addresses)`. Returns { port, managementPort, setTxt, clearTxt,
 * addA, stop }.
 */
export async function startChallengeDns() {
  const [port, managementPort] = await freePorts(2, { udp: true });
  const peer = await startPeer(
    CHALLTESTSRV_BIN,
    [
      ...['-http01', '', '-https01', '', '-tlsalpn01', '', '-defaultIPv6', '', '-defaultIPv4', '127.0.0.1'],
      ...['-dns01', `127.0.0.1:${port}`, '-management', `127.0.0.1:${managementPort}`],
    ],
    managementPort,
  );
  const management = async (path, body) => {
    const res = await fetch(`http://127.0.0.1:${managementPort}${path}`, {
      method: 'POST',
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200, `challtestsrv ${path}: HTTP ${res.status}`);
  };
  return {
    port,
    managementPort,
    setTxt: (host, value) => management('/set-txt', { host, value }),
    addA: (host, addresses) => management('/add-a', { host, addresses }),
    clearTxt: (host) => management('/clear-txt', { host }),
    stop: () => peer.stop(),
  };
}

/** An http-01 responder: answers /.well-known/acme-challenge/TOKEN from `tokens`; listen(port) when needed. */
export function http01Responder() {
  const tokens = new Map();
  const server = createServer((req, res) => {
    const token = req.url.replace('/.well-known/acme-challenge/', '');
    if (tokens.has(token)) res.end(tokens.get(token));
    else res.writeHead(404).end();
  });
  return {
    tokens,
    server,
    async listen(port, host = '127.0.0.1') {
      if (!server.listening) await new Promise((resolve) => server.listen(port, host, resolve));
    },
    close: () => new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve())),
  };
}

/**
 * `mcpki --home HOME --json acme-server ARGS` as a process; resolves once it printed its start line. Its store:
 * `env.MCPKI_STORE`, else the home's in the PostgreSQL pass (test/helpers.js storeEnv), else the home's SQLite.
 * Returns { child, exited ({ code, signal }), started (the JSON: directories, addresses, …), directoryUrl (the
 * first), stderr(), stop() (SIGTERM; resolves as exited) }.
 */
export async function spawnAcmeServer(home, args, { env = {} } = {}) {
  const child = spawn(process.execPath, [BIN, '--home', home, '--json', 'acme-server', ...args], {
    env: { ...process.env, NO_COLOR: '1', ...storeEnv(['--home', home], env), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const started = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      try {
        resolve(JSON.parse(stdout));
      } catch {
        // not complete yet
      }
    });
    child.once('exit', (code) => reject(new Error(`acme-server on ${home} exited ${code}: ${stderr}`)));
  });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  return { child, exited, started, directoryUrl: started.directories[0], stderr: () => stderr, stop };
}

/** A second instance's home: HOME/ca of the first without the root key (docs/acme-server.md, "Provisioning"). */
export function provisionHome(from, to) {
  mkdirSync(to, { mode: 0o700 });
  mkdirSync(join(to, 'ca'), { mode: 0o700 });
  for (const file of ['root.crt', 'root-crl.pem', 'intermediate.crt', 'intermediate.key'])
    cpSync(join(from, 'ca', file), join(to, 'ca', file), { preserveTimestamps: true });
}

/** An acme-client client with a new account; account creation retried (an instance may be restarting). */
export async function newAcmeClient(directoryUrl, { attempts = 10 } = {}) {
  const client = new acme.Client({
    directoryUrl,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
    backoffAttempts: 6,
    backoffMin: 200,
    backoffMax: 2000,
  });
  for (let attempt = 1; ; attempt++) {
    try {
      await client.createAccount({ termsOfServiceAgreed: true });
      return client;
    } catch (error) {
      if (attempt >= attempts) throw error;
      await sleep(300 * attempt);
    }
  }
}

/**
 * One certificate for `name` by http-01, as a careful client gets it: on a refused connection, a reset, a 5xx or
 * a challenge that does not settle, it waits a moment and places a new order (the instance it was talking to may
 * be gone); badNonce is retried by acme-client itself. `tokens` is the responder's map. Returns { pem, attempts }.
 */
export async function obtainCertificate(client, name, tokens, { maxAttempts = 12 } = {}) {
  let lastError;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    try {
      const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] });
      const [authz] = await client.getAuthorizations(order);
      const challenge = authz.challenges.find((c) => c.type === 'http-01');
      tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
      await client.completeChallenge(challenge);
      await client.waitForValidStatus(challenge);
      const [, csr] = await acme.crypto.createCsr({ altNames: [name] });
      const finalized = await client.finalizeOrder(order, csr);
      const pem = await client.getCertificate(finalized);
      return { pem, attempts: attempt };
    } catch (error) {
      lastError = error;
      await sleep(300 * attempt);
    }
  }
  throw new Error(`${name}: no certificate after ${maxAttempts} attempts: ${lastError?.message}`);
}

/** A flattened JWS (ES256, jwk in the protected header) of `payload` for `url`, with the given nonce. */
export function jwkJws(key, nonce, url, payload = { termsOfServiceAgreed: true }) {
  const jwk = key.export({ format: 'jwk' });
  const protectedHeader = { alg: 'ES256', jwk: { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }, nonce, url };
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${b64(protectedHeader)}.${b64(payload)}`;
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  const [p, body] = input.split('.');
  return JSON.stringify({ protected: p, payload: body, signature });
}

/** A program run without blocking this process's event loop. Resolves { status, stdout, stderr, output }. */
export function runAsync(cmd, args, { env = {}, timeout = 120_000, cwd } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, output: stdout + stderr });
    });
  });
}

/** certbot certonly --standalone for `name` against `directoryUrl`, its state under `dir`; resolves runAsync's. */
export function certbotCertonly(dir, directoryUrl, name, { httpPort, rootPath, extra = [] }) {
  return runAsync(
    'certbot',
    [
      ...['certonly', '--standalone', '--http-01-port', String(httpPort), '--http-01-address', '127.0.0.1'],
      ...['--server', directoryUrl, '-d', name, '--agree-tos', '-m', 'a@b.test', '--non-interactive'],
      ...['--config-dir', join(dir, 'config'), '--work-dir', join(dir, 'work'), '--logs-dir', join(dir, 'logs')],
      ...extra,
    ],
    { env: { REQUESTS_CA_BUNDLE: rootPath } },
  );
}

/** openssl verify -x509_strict of a certificate file (its first certificate) against the mcpki root. */
export function verifyStrict(pemPath, { rootPath, intermediatePath }) {
  const result = run('openssl', [
    'verify',
    '-x509_strict',
    '-CAfile',
    rootPath,
    '-untrusted',
    intermediatePath,
    pemPath,
  ]);
  assert.equal(result.status, 0, `${pemPath}: ${result.stdout}${result.stderr}`);
}
