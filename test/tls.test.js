// Chains, handshakes and name constraints, verified by independent implementations: the openssl CLI,
// Node's TLS stack and Python's ssl module.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { mcpki, run, tempDir } from './helpers.js';

function init(home, args = []) {
  const result = mcpki(['--home', home, 'init', ...args]);
  assert.equal(result.status, 0, result.stderr);
}

function issue(home, kind, name, sans, args = []) {
  const result = mcpki(['--home', home, '--json', 'issue', kind, name, ...sans, ...args]);
  assert.equal(result.status, 0, result.stderr + result.stdout);
  return result.json;
}

function verify(home, certPath, extra = []) {
  return run('openssl', [
    'verify',
    '-x509_strict',
    '-CAfile',
    join(home, 'ca', 'root.crt'),
    '-untrusted',
    join(home, 'ca', 'intermediate.crt'),
    ...extra,
    certPath,
  ]);
}

function serve(options, onConnection = (socket) => socket.end('hello\n')) {
  return new Promise((resolve) => {
    const server = tls.createServer(options, onConnection);
    server.on('tlsClientError', () => {});
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function connect(options) {
  return new Promise((resolve) => {
    const socket = tls.connect(options);
    let data = '';
    socket.on('data', (chunk) => (data += chunk));
    socket.on('end', () => resolve({ ok: data === 'hello\n', data, authorized: socket.authorized }));
    socket.on('error', (error) => resolve({ ok: false, error }));
  });
}

const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'];

describe('chains verify with openssl -x509_strict', () => {
  for (const caKey of KEY_TYPES) {
    test(`CA ${caKey}: server and client leaves of every key type`, () => {
      const { dir, cleanup } = tempDir();
      try {
        init(dir, ['--key', caKey]);
        for (const leafKey of KEY_TYPES) {
          const server = issue(
            dir,
            'server',
            `s-${leafKey}`,
            ['localhost', 'mcp.test', '127.0.0.1', '::1'],
            ['--key', leafKey],
          );
          const ok = verify(dir, server.paths.cert, ['-purpose', 'sslserver', '-verify_hostname', 'localhost']);
          assert.equal(ok.status, 0, ok.stderr + ok.stdout);
          assert.equal(verify(dir, server.paths.cert, ['-verify_hostname', 'mcp.test']).status, 0);
          assert.equal(verify(dir, server.paths.cert, ['-verify_ip', '::1']).status, 0);
          const mismatch = verify(dir, server.paths.cert, ['-verify_hostname', 'other.test']);
          assert.notEqual(mismatch.status, 0, 'a name the certificate does not carry must fail');
          assert.match(mismatch.stdout + mismatch.stderr, /hostname mismatch/);
          // the server certificate is not a client certificate
          assert.notEqual(verify(dir, server.paths.cert, ['-purpose', 'sslclient']).status, 0);

          const client = issue(
            dir,
            'client',
            `c-${leafKey}`,
            ['agent@example.test', 'spiffe://example.test/agent'],
            ['--key', leafKey],
          );
          const clientOk = verify(dir, client.paths.cert, ['-purpose', 'sslclient']);
          assert.equal(clientOk.status, 0, clientOk.stderr + clientOk.stdout);
        }
      } finally {
        cleanup();
      }
    });
  }

  test('fullchain + ca.crt are what a peer needs; SANs and extensions are as asked', () => {
    const { dir, cleanup } = tempDir();
    try {
      init(dir);
      const issued = issue(dir, 'server', 'web', [
        'Bücher.test',
        '*.api.test',
        '127.0.0.1',
        'spiffe://example.test/web',
      ]);
      const text = run('openssl', ['x509', '-in', issued.paths.cert, '-noout', '-text']).stdout;
      assert.match(
        text,
        /DNS:xn--bcher-kva\.test, DNS:\*\.api\.test, IP Address:127\.0\.0\.1, URI:spiffe:\/\/example\.test\/web/,
      );
      assert.match(text, /TLS Web Server Authentication/);
      assert.match(text, /CA:FALSE/);
      const fullchain = readFileSync(issued.paths.fullchain, 'utf8');
      assert.equal(fullchain.match(/BEGIN CERTIFICATE/g).length, 2);
      const chainCheck = run('openssl', [
        'verify',
        '-x509_strict',
        '-CAfile',
        issued.paths.ca,
        '-untrusted',
        issued.paths.fullchain,
        issued.paths.cert,
      ]);
      assert.equal(chainCheck.status, 0, chainCheck.stderr + chainCheck.stdout);
      // the inventory record says what openssl reads from the certificate
      const facts = run('openssl', [
        'x509',
        '-in',
        issued.paths.cert,
        '-noout',
        '-serial',
        '-fingerprint',
        '-sha256',
        '-startdate',
        '-enddate',
      ]).stdout;
      assert.match(facts, new RegExp(`serial=${issued.certificate.serial}`));
      assert.ok(facts.includes(`Fingerprint=${issued.certificate.fingerprint}`), facts);
      const date = (label) => new Date(facts.match(new RegExp(`${label}=(.+)`))[1]).toISOString();
      assert.equal(date('notBefore'), issued.certificate.notBefore);
      assert.equal(date('notAfter'), issued.certificate.notAfter);
      const days = run('openssl', ['x509', '-in', issued.paths.cert, '-noout', '-checkend', String(89 * 86400)]);
      assert.equal(days.status, 0, 'valid for the default 90 days');
      assert.notEqual(
        run('openssl', ['x509', '-in', issued.paths.cert, '-noout', '-checkend', String(91 * 86400)]).status,
        0,
      );
    } finally {
      cleanup();
    }
  });
});

describe('node:tls mutual TLS', () => {
  let dir;
  let cleanup;
  let other;
  let server;
  let client;
  let strangerClient;
  before(() => {
    ({ dir, cleanup } = tempDir());
    other = tempDir();
    init(dir);
    init(other.dir);
    server = issue(dir, 'server', 'srv', ['localhost', '127.0.0.1']);
    client = issue(dir, 'client', 'cli', ['cli@example.test']);
    strangerClient = issue(other.dir, 'client', 'stranger', ['x@example.test']);
  });
  after(() => {
    cleanup();
    other.cleanup();
  });

  async function withServer(fn) {
    const srv = await serve({
      key: readFileSync(server.paths.key),
      cert: readFileSync(server.paths.fullchain),
      ca: readFileSync(server.paths.ca),
      requestCert: true,
      rejectUnauthorized: true,
    });
    try {
      return await fn(srv.address().port);
    } finally {
      srv.close();
    }
  }

  test('succeeds with the client certificate', async () => {
    const result = await withServer((port) =>
      connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: readFileSync(client.paths.ca),
        key: readFileSync(client.paths.key),
        cert: readFileSync(client.paths.fullchain),
      }),
    );
    assert.equal(result.ok, true, String(result.error));
    assert.equal(result.authorized, true);
  });

  test('fails without a client certificate', async () => {
    const result = await withServer((port) =>
      connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(client.paths.ca) }),
    );
    assert.equal(result.ok, false);
  });

  test('fails with a client certificate from another CA', async () => {
    const result = await withServer((port) =>
      connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: readFileSync(client.paths.ca),
        key: readFileSync(strangerClient.paths.key),
        cert: readFileSync(strangerClient.paths.fullchain),
      }),
    );
    assert.equal(result.ok, false);
  });

  test('fails when the client trusts another CA', async () => {
    const result = await withServer((port) =>
      connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: readFileSync(strangerClient.paths.ca),
        key: readFileSync(client.paths.key),
        cert: readFileSync(client.paths.fullchain),
      }),
    );
    assert.equal(result.ok, false);
    assert.match(
      String(result.error?.code ?? result.error),
      /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED|unable to/i,
    );
  });
});

describe('Python ssl (check_hostname, VERIFY_X509_STRICT)', () => {
  const PY = `
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.verify_flags |= ssl.VERIFY_X509_STRICT
assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10) as sock:
    with ctx.wrap_socket(sock, server_hostname=sys.argv[3]) as tls:
        data = tls.recv(100)
        print(tls.version(), data.decode().strip())
`;

  function python(cafile, port, hostname) {
    return new Promise((resolve) => {
      import('node:child_process').then(({ execFile }) => {
        execFile('python3', ['-c', PY, cafile, String(port), hostname], { timeout: 20_000 }, (error, stdout, stderr) =>
          resolve({ status: error ? (error.code ?? 1) : 0, stdout, stderr }),
        );
      });
    });
  }

  test('completes a handshake against a server with an issued certificate; rejects a wrong host name', async () => {
    const { dir, cleanup } = tempDir();
    try {
      init(dir);
      const server = issue(dir, 'server', 'py', ['localhost', 'py.test', '127.0.0.1']);
      const srv = await serve({ key: readFileSync(server.paths.key), cert: readFileSync(server.paths.fullchain) });
      try {
        const port = srv.address().port;
        const ok = await python(server.paths.ca, port, 'py.test');
        assert.equal(ok.status, 0, ok.stderr);
        assert.match(ok.stdout, /^TLSv1\.3 hello/);
        const wrong = await python(server.paths.ca, port, 'nope.test');
        assert.notEqual(wrong.status, 0);
        assert.match(wrong.stderr, /CERTIFICATE_VERIFY_FAILED|Hostname mismatch/);
      } finally {
        srv.close();
      }
    } finally {
      cleanup();
    }
  });
});

describe('name constraints are enforced by OpenSSL', () => {
  // A leaf forged with the openssl CLI under mcpki's intermediate, bypassing mcpki's own refusal.
  function forge(home, dir, san) {
    const key = join(dir, 'forged.key');
    const csr = join(dir, 'forged.csr');
    const cert = join(dir, 'forged.crt');
    const ext = join(dir, 'forged.ext');
    writeFileSync(
      ext,
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`,
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
        key,
        '-out',
        csr,
        '-subj',
        '/CN=forged',
      ]).status,
      0,
    );
    const signed = run('openssl', [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      join(home, 'ca', 'intermediate.crt'),
      '-CAkey',
      join(home, 'ca', 'intermediate.key'),
      '-CAcreateserial',
      '-days',
      '30',
      '-extfile',
      ext,
      '-out',
      cert,
    ]);
    assert.equal(signed.status, 0, signed.stderr);
    return cert;
  }

  test('a forged example.com leaf fails; a forged permitted name passes; without constraints it passes', () => {
    const constrained = tempDir();
    const open = tempDir();
    try {
      init(constrained.dir);
      const bad = forge(constrained.dir, constrained.dir, 'DNS:example.com');
      const result = verify(constrained.dir, bad);
      assert.notEqual(result.status, 0);
      assert.match(result.stdout + result.stderr, /permitted subtree violation/);
      const badIp = forge(constrained.dir, constrained.dir, 'IP:10.1.2.3');
      assert.match(
        verify(constrained.dir, badIp).stdout + verify(constrained.dir, badIp).stderr,
        /permitted subtree violation/,
      );
      const good = forge(constrained.dir, constrained.dir, 'DNS:ok.localhost');
      assert.equal(verify(constrained.dir, good).status, 0, 'the forging method itself works for a permitted name');

      const warned = mcpki(['--home', open.dir, 'init', '--no-name-constraints']);
      assert.equal(warned.status, 0);
      assert.match(warned.stderr, /warning: this CA has no name constraints: .*any domain/);
      const unconstrained = forge(open.dir, open.dir, 'DNS:example.com');
      assert.equal(verify(open.dir, unconstrained).status, 0);
    } finally {
      constrained.cleanup();
      open.cleanup();
    }
  });

  test('--permit extends the constraints, and mcpki refuses names outside them before signing', () => {
    const { dir, cleanup } = tempDir();
    try {
      init(dir, ['--permit', '.corp.example', '--permit', '10.0.0.0/8']);
      const issued = issue(dir, 'server', 'corp', ['api.corp.example', '10.1.2.3']);
      assert.equal(verify(dir, issued.paths.cert, ['-verify_hostname', 'api.corp.example']).status, 0);
      const refused = mcpki(['--home', dir, 'issue', 'server', 'evil', 'example.com']);
      assert.equal(refused.status, 6);
      assert.match(refused.stderr, /outside the CA's name constraints/);
      const shown = mcpki(['--home', dir, '--json', 'ca', 'show']).json;
      assert.deepEqual(shown.permitted.dns, [
        'localhost',
        '.localhost',
        '.test',
        '.internal',
        '.home.arpa',
        '.corp.example',
      ]);
      assert.deepEqual(shown.permitted.ip, ['127.0.0.0/8', '::1/128', '10.0.0.0/8']);
    } finally {
      cleanup();
    }
  });
});
