// The root's name constraints cover URI and e-mail names, proved with real verifiers: a leaf forged with the
// intermediate's key (openssl x509 -req, bypassing mcpki's own checks) that carries a URI or e-mail SAN
// outside the constraints is rejected by `openssl verify`, by Python's ssl (a TLS handshake over memory
// BIOs) and by Go's crypto/x509; the same forgery with an inside name verifies everywhere (the control).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCommand, mcpki, run, tempDir } from './helpers.js';

const HAS_PYTHON = hasCommand('python3');
const HAS_GO = hasCommand('go');

// [label, SAN extension value, expected: true = verifies]
const LEAVES = [
  ['outside-spiffe', 'DNS:localhost, URI:spiffe://prod.bigcorp.com/x', false],
  ['outside-https', 'DNS:localhost, URI:https://www.google.com/', false],
  ['outside-email', 'DNS:localhost, email:ceo@bigcorp.com', false],
  ['outside-email-subdomain-trick', 'DNS:localhost, email:ceo@evil.test.bigcorp.com', false],
  ['outside-spiffe-sibling', 'DNS:localhost, URI:spiffe://staging.corp.example/x', false],
  ['inside-uri', 'DNS:localhost, URI:https://api.test/mcp', true],
  ['inside-spiffe', 'DNS:localhost, URI:spiffe://prod.corp.example/mcp/server', true],
  ['inside-email', 'DNS:localhost, email:alice@mail.internal', true],
];

let work;
let home;
const certs = {};

function forge(label, san) {
  const dir = join(work.dir, label);
  mkdirSync(dir);
  const key = join(dir, 'leaf.key');
  const csr = join(dir, 'leaf.csr');
  const cert = join(dir, 'leaf.crt');
  const ext = join(dir, 'leaf.ext');
  writeFileSync(
    ext,
    `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${san}\n`,
  );
  const req = run('openssl', [
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
    '/CN=forged leaf',
  ]);
  assert.equal(req.status, 0, req.stderr);
  const signed = run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    join(home, 'ca', 'intermediate.crt'),
    '-CAkey',
    join(home, 'ca', 'intermediate.key'),
    '-set_serial',
    '0x' + Buffer.from(label).toString('hex').slice(0, 30),
    '-days',
    '30',
    '-extfile',
    ext,
    '-out',
    cert,
  ]);
  assert.equal(signed.status, 0, signed.stderr);
  return { cert, key };
}

before(() => {
  work = tempDir('mcpki-constraints-peers-');
  home = join(work.dir, 'home');
  const init = mcpki(['--home', home, 'init', '--permit', 'spiffe://prod.corp.example']);
  assert.equal(init.status, 0, init.stderr);
  for (const [label, san] of LEAVES) certs[label] = forge(label, san);
});

after(() => work?.cleanup());

describe('name constraints on URI and e-mail names, checked by real verifiers', () => {
  test('the root and the intermediate carry URI and rfc822Name subtrees (openssl x509 -ext)', () => {
    for (const file of ['root.crt', 'intermediate.crt']) {
      const shown = run('openssl', ['x509', '-in', join(home, 'ca', file), '-noout', '-ext', 'nameConstraints']);
      assert.equal(shown.status, 0, shown.stderr);
      for (const line of [
        'URI:.test',
        'URI:localhost',
        'URI:prod.corp.example',
        'email:.internal',
        'email:localhost',
        'DNS:.test',
        'IP:127.0.0.0/255.0.0.0',
      ]) {
        assert.ok(shown.stdout.includes(line), `${file} lacks ${line}:\n${shown.stdout}`);
      }
    }
  });

  test('openssl verify rejects the outside forgeries with a subtree violation and accepts the inside ones', () => {
    for (const [label, , expected] of LEAVES) {
      const result = run('openssl', [
        'verify',
        '-CAfile',
        join(home, 'ca', 'root.crt'),
        '-untrusted',
        join(home, 'ca', 'intermediate.crt'),
        certs[label].cert,
      ]);
      const output = result.stdout + result.stderr;
      if (expected) assert.equal(result.status, 0, `${label}: ${output}`);
      else {
        assert.notEqual(result.status, 0, `${label} verified: ${output}`);
        assert.match(output, /permitted subtree violation/, label);
      }
    }
  });

  test(
    'Python ssl: a handshake with each forged leaf fails outside the constraints and succeeds inside',
    { skip: !HAS_PYTHON && 'python3 is not installed' },
    () => {
      const script = join(work.dir, 'handshake.py');
      writeFileSync(
        script,
        `import json, ssl, sys
root, intermediate = sys.argv[1], sys.argv[2]
out = {}
for label, cert, key in zip(sys.argv[3::3], sys.argv[4::3], sys.argv[5::3]):
    chain = cert + '.chain'
    with open(chain, 'w') as f:
        f.write(open(cert).read() + open(intermediate).read())
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(chain, key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cafile=root)
    client_ctx.check_hostname = False  # the chain alone decides
    client_ctx.verify_mode = ssl.CERT_REQUIRED
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname='localhost')
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    result = None
    for _ in range(20):
        for side in (client, server):
            try:
                side.do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except ssl.SSLCertVerificationError as e:
                result = 'rejected: ' + str(e.verify_message)
            except ssl.SSLError as e:
                result = result or ('error: ' + str(e))
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if result:
            break
        try:
            client.getpeercert()
            if client.version():
                result = 'ok'
                break
        except ValueError:
            pass
    out[label] = result
print(json.dumps(out))
`,
      );
      const args = [script, join(home, 'ca', 'root.crt'), join(home, 'ca', 'intermediate.crt')];
      for (const [label] of LEAVES) args.push(label, certs[label].cert, certs[label].key);
      const result = run('python3', args);
      assert.equal(result.status, 0, result.stderr);
      const outcome = JSON.parse(result.stdout);
      for (const [label, , expected] of LEAVES) {
        if (expected) assert.equal(outcome[label], 'ok', label);
        else assert.match(outcome[label] ?? 'no result', /^rejected: permitted subtree violation/, label);
      }
    },
  );

  test(
    'Go crypto/x509 Verify rejects the outside forgeries and accepts the inside ones',
    { skip: !HAS_GO && 'go is not installed (apt-get install golang-go)' },
    () => {
      const dir = join(work.dir, 'go');
      mkdirSync(dir);
      writeFileSync(
        join(dir, 'main.go'),
        `package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
)

func load(path string) *x509.Certificate {
	data, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		panic("no PEM in " + path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		panic(err)
	}
	return cert
}

func main() {
	roots := x509.NewCertPool()
	roots.AddCert(load(os.Args[1]))
	intermediates := x509.NewCertPool()
	intermediates.AddCert(load(os.Args[2]))
	out := map[string]string{}
	for i := 3; i+1 < len(os.Args); i += 2 {
		_, err := load(os.Args[i+1]).Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			out[os.Args[i]] = fmt.Sprintf("rejected: %v", err)
		} else {
			out[os.Args[i]] = "ok"
		}
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
`,
      );
      const args = ['run', join(dir, 'main.go'), join(home, 'ca', 'root.crt'), join(home, 'ca', 'intermediate.crt')];
      for (const [label] of LEAVES) args.push(label, certs[label].cert);
      const env = {
        ...process.env,
        GOFLAGS: '-mod=mod',
        GOCACHE: join(dir, 'cache'),
        GOPATH: join(dir, 'gopath'),
        GOPROXY: 'off',
        GOTOOLCHAIN: 'local',
        CGO_ENABLED: '0',
      };
      const result = run('go', args, { env, cwd: dir, timeout: 300_000 });
      assert.equal(result.status, 0, result.stderr);
      const outcome = JSON.parse(result.stdout);
      for (const [label, , expected] of LEAVES) {
        if (expected) assert.equal(outcome[label], 'ok', label);
        else assert.match(outcome[label], /^rejected: .*not (authorized|permitted)/, `${label}: ${outcome[label]}`);
      }
    },
  );

  test('mcpki itself refuses the outside names before signing (exit 6) and issues the inside ones', () => {
    for (const [label, san, expected] of LEAVES) {
      const names = san.split(', ').map((part) => part.replace(/^(DNS|URI|email):/, ''));
      const result = mcpki([
        '--home',
        home,
        '--json',
        'issue',
        'server',
        `peer-${label}`,
        ...names,
        '--out',
        join(work.dir, `out-${label}`),
      ]);
      if (expected) assert.equal(result.status, 0, `${label}: ${result.stderr}${result.stdout}`);
      else {
        assert.equal(result.status, 6, `${label}: ${result.stdout}`);
        assert.equal(result.json.error.code, 'NAME_NOT_PERMITTED');
        assert.match(result.json.error.message, /outside the CA's name constraints/);
      }
    }
  });
});
