// createTlsReloader against real TLS handshakes: which serial a new connection is served before and after the
// files change, what happens to a connection that stays open, and that broken files are never installed.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { createTlsReloader, isMcpkiError } from '../dist/index.js';
import { mcpki, ROOT, tempDir } from './helpers.js';

const FAST = { intervalMs: 100, settleMs: 40 };

let home;
let cleanup;
let root;
const issued = {};

function issue(kind, name, sans, out) {
  const result = mcpki(['--home', home, '--json', 'issue', kind, name, ...sans, '--out', out]);
  assert.equal(result.status, 0, result.stderr + result.stdout);
  return { serial: result.json.certificate.serial, ...result.json.paths };
}

before(() => {
  ({ dir: home, cleanup } = tempDir('mcpki-reload-'));
  assert.equal(mcpki(['--home', home, 'init']).status, 0);
  root = readFileSync(join(home, 'ca', 'root.crt'));
  for (const name of ['a', 'b', 'c'])
    issued[name] = issue('server', name, ['localhost', '127.0.0.1'], join(home, 'out', name));
  issued.client = issue('client', 'agent', ['agent@example.test'], join(home, 'out', 'agent'));
});

after(() => cleanup());

/** Replaces `path` with a copy of `source` the way a deploy does: a temp file in the same folder, renamed over it. */
function replace(path, source) {
  const temp = `${path}.tmp-${process.hrtime.bigint()}`;
  copyFileSync(source, temp);
  renameSync(temp, path);
}

function replaceContent(path, text) {
  const temp = `${path}.tmp-${process.hrtime.bigint()}`;
  writeFileSync(temp, text);
  renameSync(temp, path);
}

/** A live folder holding copies of one issued certificate, as a service reads them. */
function liveFolder(name, from) {
  const dir = join(home, 'live', `${name}-${process.hrtime.bigint()}`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(from.fullchain, join(dir, 'cert.pem'));
  copyFileSync(from.key, join(dir, 'key.pem'));
  return { dir, cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
}

const sockets = new WeakMap();

function listen(server) {
  server.on('tlsClientError', () => {});
  const open = new Set();
  sockets.set(server, open);
  server.on('connection', (socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

/** Stops the server even when a test failed with a connection still open. */
function close(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const socket of sockets.get(server) ?? []) socket.destroy();
  });
}

/** A new connection that verifies the chain against the mcpki root; resolves to the served serial. */
function servedSerial(port, options = {}) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: root, ...options }, () => {
      const serial = socket.getPeerX509Certificate().serialNumber.toUpperCase();
      socket.destroy();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

async function eventually(check, what, timeoutMs = 3_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last === true) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`${what} (last: ${String(last)})`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function echoServer(reloader) {
  const server = tls.createServer(reloader.serverOptions(), (socket) => socket.pipe(socket));
  reloader.attach(server);
  const port = await listen(server);
  return { server, port };
}

describe('createTlsReloader', () => {
  test('a renewal by rename is served to new connections without a restart; an open connection keeps working', async () => {
    const live = liveFolder('swap', issued.a);
    const reloads = [];
    const errors = [];
    const reloader = createTlsReloader({
      cert: live.cert,
      key: live.key,
      ...FAST,
      onReload: (info) => reloads.push(info),
      onError: (e) => errors.push(e),
    });
    const { server, port } = await echoServer(reloader);
    try {
      assert.equal(reloader.current().serial, issued.a.serial);
      assert.equal(await servedSerial(port), issued.a.serial);

      const open = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: root });
      await new Promise((resolve, reject) => open.once('secureConnect', resolve).once('error', reject));
      const echo = async (text) => {
        open.write(text);
        const [chunk] = await new Promise((resolve) => open.once('data', (...args) => resolve(args)));
        return chunk.toString();
      };
      assert.equal(await echo('before'), 'before');

      // the same files rewritten as they were, and a chmod: nothing to swap
      replace(live.cert, issued.a.fullchain);
      chmodSync(live.key, 0o640);
      await sleep(300);
      assert.deepEqual(reloads, [], 'unchanged content is not reloaded');

      replace(live.cert, issued.b.fullchain);
      replace(live.key, issued.b.key);
      await eventually(
        async () => (await servedSerial(port)) === issued.b.serial || 'old serial',
        'new connections get the renewed certificate',
      );
      assert.equal(reloads.length, 1, 'one reload for one renewal');
      assert.equal(reloads[0].serial, issued.b.serial);
      assert.match(reloads[0].fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      assert.ok(Date.parse(reloads[0].notAfter) > Date.now());
      assert.equal(reloader.current().serial, issued.b.serial);
      assert.deepEqual(errors, []);

      assert.equal(await echo('after'), 'after', 'the connection made before the swap still works');
      assert.equal(
        open.getPeerX509Certificate().serialNumber.toUpperCase(),
        issued.a.serial,
        'and keeps the certificate it was made with',
      );
      open.destroy();
    } finally {
      reloader.close();
      await close(server);
    }
  });

  test('a mismatched pair and a corrupt file are refused: the old serial is still served, the next good change is taken', async () => {
    const live = liveFolder('refuse', issued.a);
    const reloads = [];
    const errors = [];
    const reloader = createTlsReloader({
      cert: live.cert,
      key: live.key,
      ...FAST,
      onReload: (info) => reloads.push(info.serial),
      onError: (e) => errors.push(e),
    });
    const { server, port } = await echoServer(reloader);
    try {
      // the certificate of b with the key of a (a deploy that stopped between the two renames)
      replace(live.cert, issued.b.fullchain);
      await eventually(() => errors.length === 1 || `${errors.length} errors`, 'the mismatch is reported');
      assert.ok(isMcpkiError(errors[0]));
      assert.equal(errors[0].code, 'INVALID_INPUT');
      assert.match(errors[0].message, /does not belong to certificate/);
      assert.equal(reloader.lastError(), errors[0]);
      assert.equal(await servedSerial(port), issued.a.serial, 'the old context is kept');
      await sleep(350); // several periodic checks: the same refused files are not reported again
      assert.equal(errors.length, 1);

      // the key arrives: the pair matches now
      replace(live.key, issued.b.key);
      await eventually(
        async () => (await servedSerial(port)) === issued.b.serial || 'old serial',
        'the completed pair is taken',
      );
      assert.deepEqual(reloads, [issued.b.serial]);
      assert.equal(reloader.lastError(), undefined);

      // a truncated certificate (first half of the file)
      const good = readFileSync(issued.c.fullchain, 'utf8');
      replaceContent(live.cert, good.slice(0, Math.floor(good.length / 2)));
      await eventually(() => errors.length === 2 || `${errors.length} errors`, 'the truncated file is reported');
      assert.match(errors[1].message, /no complete PEM certificate/);
      // garbage where the key should be
      replace(live.cert, issued.c.fullchain);
      replaceContent(live.key, 'not a key\n');
      await eventually(() => errors.length === 3 || `${errors.length} errors`, 'the corrupt key is reported');
      assert.match(errors[2].message, /key file .* does not hold a usable private key/);
      assert.equal(await servedSerial(port), issued.b.serial, 'still the last good certificate');
      assert.equal(reloader.current().serial, issued.b.serial);
      assert.throws(
        () => reloader.reload(),
        (e) => isMcpkiError(e) && /usable private key/.test(e.message),
        'reload() reports the same refusal',
      );
      assert.equal(await servedSerial(port), issued.b.serial);
      assert.deepEqual(reloads, [issued.b.serial]);
    } finally {
      reloader.close();
      await close(server);
    }
  });

  test('TLS settings given to the server itself survive a swap (minVersion TLSv1.3 stays enforced)', async () => {
    const live = liveFolder('settings', issued.a);
    const reloader = createTlsReloader({ cert: live.cert, key: live.key, ...FAST });
    const server = reloader.attach(
      tls.createServer({ ...reloader.serverOptions(), minVersion: 'TLSv1.3' }, (socket) => socket.end()),
    );
    const port = await listen(server);
    const tls12 = () =>
      servedSerial(port, { maxVersion: 'TLSv1.2' }).then(
        () => 'connected',
        (error) => error.code,
      );
    try {
      assert.match(await tls12(), /ERR_SSL_(TLSV1_ALERT_PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL)/);
      replace(live.cert, issued.b.fullchain);
      replace(live.key, issued.b.key);
      await eventually(
        async () => (await servedSerial(port)) === issued.b.serial || 'old serial',
        'the renewed certificate is served',
      );
      assert.match(
        await tls12(),
        /ERR_SSL_(TLSV1_ALERT_PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL)/,
        'TLS 1.2 is still refused after the swap',
      );
    } finally {
      reloader.close();
      await close(server);
    }
  });

  test('files reached through a "current" symlink swapped by one rename (the Kubernetes ..data pattern)', async () => {
    const base = join(home, 'k8s');
    for (const [version, from] of [
      ['v1', issued.a],
      ['v2', issued.b],
    ]) {
      mkdirSync(join(base, version), { recursive: true });
      copyFileSync(from.fullchain, join(base, version, 'tls.crt'));
      copyFileSync(from.key, join(base, version, 'tls.key'));
    }
    symlinkSync('v1', join(base, 'current'));
    symlinkSync('current/tls.crt', join(base, 'tls.crt'));
    symlinkSync('current/tls.key', join(base, 'tls.key'));
    // a periodic check once a minute: only fs.watch can notice in time
    const reloader = createTlsReloader({
      cert: join(base, 'tls.crt'),
      key: join(base, 'tls.key'),
      intervalMs: 60_000,
      settleMs: 40,
    });
    const { server, port } = await echoServer(reloader);
    try {
      assert.equal(await servedSerial(port), issued.a.serial);
      symlinkSync('v2', join(base, 'current.new'));
      renameSync(join(base, 'current.new'), join(base, 'current'));
      await eventually(
        async () => (await servedSerial(port)) === issued.b.serial || 'old serial',
        'the swapped symlink is followed (fs.watch)',
      );
      // and back again: the watchers were re-derived after the first swap
      symlinkSync('v1', join(base, 'current.new'));
      renameSync(join(base, 'current.new'), join(base, 'current'));
      await eventually(
        async () => (await servedSerial(port)) === issued.a.serial || 'old serial',
        'the second swap is seen too',
      );
    } finally {
      reloader.close();
      await close(server);
    }
  });

  test('without fs.watch, the periodic check alone notices a replaced file', async () => {
    const live = liveFolder('poll', issued.a);
    const reloader = createTlsReloader({ cert: live.cert, key: live.key, watch: false, intervalMs: 150, settleMs: 40 });
    const { server, port } = await echoServer(reloader);
    try {
      replace(live.cert, issued.c.fullchain);
      replace(live.key, issued.c.key);
      await eventually(
        async () => (await servedSerial(port)) === issued.c.serial || 'old serial',
        'polling sees the change',
      );
    } finally {
      reloader.close();
      await close(server);
    }
  });

  test('a new CRL takes effect without a restart (mTLS, full-chain CRL checks)', async () => {
    // its own home: revoking here must not touch the other tests' certificates
    const { dir, cleanup: done } = tempDir('mcpki-reload-crl-');
    try {
      assert.equal(mcpki(['--home', dir, 'init']).status, 0);
      assert.equal(mcpki(['--home', dir, 'issue', 'server', 'srv', 'localhost', '127.0.0.1']).status, 0);
      const client = mcpki(['--home', dir, '--json', 'issue', 'client', 'agent', 'agent@example.test']).json;
      assert.equal(mcpki(['--home', dir, 'crl']).status, 0);
      const reloader = createTlsReloader({ name: 'srv', home: dir, requestCert: true, ...FAST });
      assert.equal(reloader.paths.crl, join(dir, 'ca', 'crl.pem'), "the by-name form finds the home's CRL");
      assert.equal(reloader.paths.ca, join(dir, 'certs', 'srv', 'ca.crt'));
      const server = tls.createServer(reloader.serverOptions(), (socket) => socket.end('hello\n'));
      reloader.attach(server);
      const port = await listen(server);
      const rootPem = readFileSync(join(dir, 'ca', 'root.crt'));
      const hello = () =>
        new Promise((resolve) => {
          const socket = tls.connect({
            host: '127.0.0.1',
            port,
            servername: 'localhost',
            ca: rootPem,
            cert: readFileSync(client.paths.fullchain),
            key: readFileSync(client.paths.key),
          });
          let data = '';
          socket.on('data', (chunk) => (data += chunk));
          socket.on('close', () => resolve(data));
          socket.on('error', () => {});
        });
      try {
        assert.equal(await hello(), 'hello\n', 'not revoked yet');
        assert.equal(mcpki(['--home', dir, 'revoke', 'agent']).status, 0);
        assert.equal(mcpki(['--home', dir, 'crl']).status, 0);
        await eventually(
          async () => (await hello()) === '' || 'still accepted',
          'the revoked client is refused after the CRL changed',
        );
      } finally {
        reloader.close();
        await close(server);
      }
    } finally {
      done();
    }
  });

  test('the by-name form follows "mcpki issue" writing the same files again', async () => {
    const reloads = [];
    const { dir, cleanup: done } = tempDir('mcpki-reload-name-');
    try {
      assert.equal(mcpki(['--home', dir, 'init']).status, 0);
      const first = mcpki(['--home', dir, '--json', 'issue', 'server', 'web', 'localhost']).json;
      const reloader = createTlsReloader({
        name: 'web',
        home: dir,
        ...FAST,
        onReload: (info) => reloads.push(info.serial),
      });
      assert.equal(reloader.paths.cert, first.paths.fullchain);
      assert.equal(reloader.paths.ca, undefined, 'no client certificates asked for, so no CA');
      const server = tls.createServer(reloader.serverOptions(), (socket) => socket.end());
      reloader.attach(server);
      const port = await listen(server);
      try {
        const rootPem = readFileSync(join(dir, 'ca', 'root.crt'));
        assert.equal(await servedSerial(port, { ca: rootPem }), first.certificate.serial);
        const second = mcpki(['--home', dir, '--json', 'issue', 'server', 'web', 'localhost']).json;
        await eventually(
          async () => (await servedSerial(port, { ca: rootPem })) === second.certificate.serial || 'old serial',
          'the reissued certificate is served',
        );
        assert.deepEqual(reloads, [second.certificate.serial], 'one reload for one issue (four files renamed)');
      } finally {
        reloader.close();
        await close(server);
      }
    } finally {
      done();
    }
  });

  test('unusable files at start are an McpkiError, not a server with no certificate', () => {
    const live = liveFolder('start', issued.a);
    assert.throws(
      () => createTlsReloader({ cert: live.cert, key: issued.b.key }),
      (e) => isMcpkiError(e) && e.code === 'INVALID_INPUT' && /does not belong/.test(e.message),
    );
    assert.throws(
      () => createTlsReloader({ cert: join(live.dir, 'missing.pem'), key: live.key }),
      (e) => isMcpkiError(e) && e.code === 'NOT_FOUND',
    );
    assert.throws(
      () => createTlsReloader({ cert: live.cert, key: live.key, crl: live.cert }),
      (e) => isMcpkiError(e) && /no complete PEM CRL/.test(e.message),
    );
    const garbageCa = join(live.dir, 'ca.pem');
    writeFileSync(garbageCa, 'not a certificate\n');
    assert.throws(
      () => createTlsReloader({ cert: live.cert, key: live.key, ca: garbageCa }),
      (e) => isMcpkiError(e) && /no complete PEM certificate/.test(e.message),
    );
    assert.throws(
      () => createTlsReloader({ name: 'nobody', home }),
      (e) => isMcpkiError(e) && e.code === 'NOT_FOUND',
    );
    assert.throws(
      () => createTlsReloader({ cert: live.cert, key: live.key, intervalMs: 0 }),
      (e) => isMcpkiError(e) && e.code === 'INVALID_INPUT',
    );
  });

  test('close() stops watching: no reload afterwards, and a process that closed it exits', async () => {
    const live = liveFolder('closed', issued.a);
    const reloads = [];
    const reloader = createTlsReloader({
      cert: live.cert,
      key: live.key,
      ...FAST,
      onReload: (info) => reloads.push(info.serial),
    });
    reloader.close();
    replace(live.cert, issued.b.fullchain);
    replace(live.key, issued.b.key);
    await sleep(400);
    assert.deepEqual(reloads, []);

    // a process with a listening server, the server closed and the reloader closed: it must end by itself
    const script = `
      import tls from 'node:tls';
      import { createTlsReloader } from ${JSON.stringify(join(ROOT, 'dist', 'index.js'))};
      const reloader = createTlsReloader({ cert: ${JSON.stringify(live.cert)}, key: ${JSON.stringify(live.key)}, intervalMs: 50, settleMs: 10 });
      const server = reloader.attach(tls.createServer(reloader.serverOptions()));
      server.listen(0, '127.0.0.1', () => setTimeout(() => { server.close(); reloader.close(); }, 300));
    `;
    const started = Date.now();
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(child.status, 0, child.stderr);
    assert.ok(Date.now() - started < 5_000, 'the process exited on its own');
  });
});
