// ACME order options certbot and lego users reach for, against Pebble: --csr (the key stays outside mcpki),
// --preferred-chain (Pebble's alternate roots) and --reuse-key. Certificates are checked with openssl.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mcpki, mcpkiAsync, run, tempDir } from './helpers.js';
import { hasPebble, startPebble } from './pebble.js';
import { readExternalCsr } from '../dist/acme/external-csr.js';

const skip = !hasPebble() && 'Pebble is not installed (apt-get install pebble)';

function managementGet(pebble, path) {
  return new Promise((resolve, reject) => {
    https
      .get(`${pebble.managementUrl}${path}`, { ca: readFileSync(pebble.caBundlePath), agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`${path}: HTTP ${res.statusCode}`)),
        );
      })
      .on('error', reject);
  });
}

function ok(result) {
  assert.equal(result.status, 0, result.stderr + result.stdout);
  return JSON.parse(result.stdout);
}

const pubkeyOfCert = (path) => run('openssl', ['x509', '-in', path, '-noout', '-pubkey']).stdout;
const pubkeyOfKey = (path) => run('openssl', ['pkey', '-in', path, '-pubout']).stdout;

test('readExternalCsr: requests made by openssl with each key type mcpki issues; others refused', (t) => {
  const dir = tempDir('mcpki-csr-');
  t.after(dir.cleanup);
  const make = (name, genpkey, digest = []) => {
    const key = join(dir.dir, `${name}.key`);
    const csr = join(dir.dir, `${name}.csr`);
    assert.equal(run('openssl', ['genpkey', ...genpkey, '-out', key]).status, 0);
    const r = run('openssl', [
      'req',
      '-new',
      '-key',
      key,
      ...digest,
      '-subj',
      `/CN=${name}.test`,
      '-addext',
      `subjectAltName=DNS:${name}.test,IP:192.0.2.7,IP:2001:db8::7`,
      '-out',
      csr,
    ]);
    assert.equal(r.status, 0, r.stderr);
    return csr;
  };
  const cases = [
    ['p256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], [], 'ec-p256'],
    ['p384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'], ['-sha384'], 'ec-p384'],
    ['rsa', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], ['-sha512'], 'rsa-2048'],
    ['ed', ['-algorithm', 'ED25519'], [], 'ed25519'],
  ];
  for (const [name, genpkey, digest, keyType] of cases) {
    const csr = readExternalCsr(make(name, genpkey, digest));
    assert.equal(csr.keyType, keyType, name);
    assert.deepEqual(
      csr.sans.map((s) => `${s.type}:${s.value}`),
      [`dns:${name}.test`, 'ip:192.0.2.7', 'ip:2001:db8::7'],
      name,
    );
    assert.match(csr.pem, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
  }
  assert.throws(
    () => readExternalCsr(make('rsa1024', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'])),
    /its key is not one mcpki issues for/,
  );
  assert.throws(() => readExternalCsr(join(dir.dir, 'missing.csr')), /--csr .*missing\.csr does not exist/);
});

describe('ACME order options against Pebble', { skip }, () => {
  let pebble;
  let work;
  let home;
  const roots = [];
  const rootCns = [];
  const http = () => ['--http-port', String(pebble.httpPort), '--http-host', '127.0.0.1'];

  before(async () => {
    // one alternate root: every certificate comes with a second chain (Link: rel="alternate")
    pebble = await startPebble({ env: { PEBBLE_ALTERNATE_ROOTS: '1' } });
    work = tempDir('mcpki-acme-order-');
    home = join(work.dir, 'home');
    ok(
      mcpki([
        '--home',
        home,
        '--json',
        'acme',
        'account',
        'register',
        '--directory',
        pebble.directoryUrl,
        '--ca-bundle',
        pebble.caBundlePath,
        '--agree-tos',
        '--name',
        'pebble',
      ]),
    );
    for (const i of [0, 1]) {
      const path = join(work.dir, `root-${i}.pem`);
      writeFileSync(path, await managementGet(pebble, `/roots/${i}`));
      roots.push(path);
      rootCns.push(/CN ?= ?(.*)$/m.exec(run('openssl', ['x509', '-in', path, '-noout', '-subject']).stdout)[1].trim());
    }
    assert.notEqual(rootCns[0], rootCns[1]);
  });
  after(async () => {
    await pebble?.stop();
    work?.cleanup();
  });

  const verifiesWith = (root, issued) =>
    run('openssl', ['verify', '-CAfile', root, '-untrusted', issued.paths.chain, issued.paths.cert]).status === 0;

  test('--csr: the names of the request are ordered, its key is certified and never written', () => {
    const key = join(work.dir, 'csr.key');
    const csr = join(work.dir, 'csr.csr');
    assert.equal(
      run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', key]).status,
      0,
    );
    const made = run('openssl', [
      'req',
      '-new',
      '-key',
      key,
      '-subj',
      '/CN=csr.test',
      '-addext',
      'subjectAltName=DNS:csr.test,DNS:www.csr.test',
      '-out',
      csr,
    ]);
    assert.equal(made.status, 0, made.stderr);

    // the user's own key in the output folder, under the name mcpki would give a key: left alone
    const own = join(work.dir, 'own');
    mkdirSync(own, { mode: 0o700 });
    const ownKey = join(own, 'fromcsr.key');
    copyFileSync(key, ownKey);
    const issued = ok(
      mcpki(['--home', home, '--json', 'acme', 'issue', 'fromcsr', '--csr', csr, '--out', own, ...http()]),
    );
    assert.equal(issued.key, 'csr');
    assert.equal(issued.paths.key, undefined);
    assert.equal(issued.paths.cert, join(own, 'fromcsr.crt'));
    assert.deepEqual(readFileSync(ownKey), readFileSync(key), 'the key is untouched');
    assert.equal(pubkeyOfCert(issued.paths.cert), pubkeyOfKey(key), "the certificate is for the CSR's key");
    assert.ok(verifiesWith(roots[0], issued));
    const sans = run('openssl', ['x509', '-in', issued.paths.cert, '-noout', '-ext', 'subjectAltName']).stdout;
    assert.match(sans, /DNS:csr\.test/);
    assert.match(sans, /DNS:www\.csr\.test/);
    const shown = mcpki(['--home', home, '--json', 'show', 'fromcsr']).json.certificate;
    assert.equal(shown.keyType, 'ec-p384');
    assert.equal(shown.issuer, 'acme:pebble');

    // -d names must be the CSR's, and --key its type
    const differ = mcpki(['--home', home, 'acme', 'issue', 'fromcsr2', '--csr', csr, '-d', 'other.test', ...http()]);
    assert.equal(differ.status, 2, differ.stderr);
    assert.match(differ.stderr, /differ from the names in --csr/);
    const keyType = mcpki(['--home', home, 'acme', 'issue', 'fromcsr2', '--csr', csr, '--key', 'ec-p256', ...http()]);
    assert.equal(keyType.status, 2, keyType.stderr);
    assert.match(keyType.stderr, /--key ec-p256 differs from the ec-p384 key/);
  });

  test('--csr refuses a request whose signature fails, a key in the file, names ACME cannot certify', () => {
    const key = join(work.dir, 'bad.key');
    assert.equal(
      run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]).status,
      0,
    );
    const req = (name, subj, san) => {
      const path = join(work.dir, name);
      const r = run('openssl', [
        'req',
        '-new',
        '-key',
        key,
        '-subj',
        subj,
        ...(san ? ['-addext', `subjectAltName=${san}`] : []),
        '-outform',
        'DER',
        '-out',
        path,
      ]);
      assert.equal(r.status, 0, r.stderr);
      return path;
    };
    const issue = (csr) => mcpki(['--home', home, 'acme', 'issue', 'refused', '--csr', csr, ...http()]);

    // a name changed after signing: DER accepted as input, signature checked
    const tampered = req('tampered.der', '/CN=tamper.test', 'DNS:tamper.test');
    const der = readFileSync(tampered);
    const at = der.indexOf(Buffer.from('tamper.test'));
    der[at] = 'd'.charCodeAt(0);
    writeFileSync(tampered, der);
    let r = issue(tampered);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /signature that does not verify/);

    // a key in the file is never read
    const withKey = join(work.dir, 'with-key.pem');
    const good = req('good.der', '/CN=good.test', 'DNS:good.test');
    writeFileSync(withKey, run('openssl', ['req', '-inform', 'DER', '-in', good]).stdout + readFileSync(key, 'utf8'));
    r = issue(withKey);
    assert.match(r.stderr, /holds a PRIVATE KEY block/);

    r = issue(req('mail.der', '/CN=mail.test', 'DNS:mail.test,email:a@mail.test'));
    assert.match(r.stderr, /DNS names and IP addresses only/);
    r = issue(req('nosan.der', '/CN=nosan.test'));
    assert.match(r.stderr, /has no subjectAltName/);
    r = issue(req('cn.der', '/CN=elsewhere.test', 'DNS:cn.test'));
    assert.match(r.stderr, /CN "elsewhere.test" is not among its subjectAltName/);
    const fifo = join(work.dir, 'fifo');
    run('mkfifo', [fifo]);
    r = issue(fifo);
    assert.match(r.stderr, /not a regular file/);
    assert.equal(mcpki(['--home', home, '--json', 'show', 'refused']).status, 10, 'nothing recorded');
  });

  test('--preferred-chain: the alternate chain whose issuer CN matches; the default chain otherwise', async () => {
    const byDefault = ok(
      await mcpkiAsync(['--home', home, '--json', 'acme', 'issue', 'chain0', '-d', 'chain0.test', ...http()]),
    );
    assert.ok(verifiesWith(roots[0], byDefault));
    assert.ok(!verifiesWith(roots[1], byDefault));
    assert.equal(byDefault.chain.topIssuer, rootCns[0]);
    assert.equal(byDefault.chain.preferredFound, null);

    const preferred = ok(
      await mcpkiAsync([
        '--home',
        home,
        '--json',
        'acme',
        'issue',
        'chain1',
        '-d',
        'chain1.test',
        '--preferred-chain',
        rootCns[1],
        ...http(),
      ]),
    );
    assert.ok(verifiesWith(roots[1], preferred), 'the chain leads to the alternate root');
    assert.ok(!verifiesWith(roots[0], preferred));
    assert.deepEqual(preferred.chain, { topIssuer: rootCns[1], preferred: rootCns[1], preferredFound: true });
    assert.equal(
      readFileSync(preferred.paths.fullchain, 'utf8'),
      readFileSync(preferred.paths.cert, 'utf8') + readFileSync(preferred.paths.chain, 'utf8'),
    );

    const none = await mcpkiAsync([
      '--home',
      home,
      'acme',
      'issue',
      'chain2',
      '-d',
      'chain2.test',
      '--preferred-chain',
      'No Such Root',
      ...http(),
    ]);
    assert.equal(none.status, 0, none.stderr);
    assert.match(none.stdout, /no chain offered by the CA goes through "No Such Root"; the default chain was written/);
    assert.ok(
      verifiesWith(roots[0], {
        paths: {
          cert: join(home, 'certs', 'chain2', 'chain2.crt'),
          chain: join(home, 'certs', 'chain2', 'chain2.chain.pem'),
        },
      }),
    );

    const bad = mcpki([
      '--home',
      home,
      'acme',
      'issue',
      'chain3',
      '-d',
      'chain3.test',
      '--preferred-chain',
      'a\nb',
      ...http(),
    ]);
    assert.equal(bad.status, 3);
    assert.match(bad.stderr, /is not an issuer common name/);
  });

  test('--reuse-key keeps the key across a renewal; without it the key is new', async () => {
    const first = ok(
      await mcpkiAsync(['--home', home, '--json', 'acme', 'issue', 'kept', '-d', 'kept.test', ...http()]),
    );
    assert.equal(first.key, 'new');
    const before = pubkeyOfCert(first.paths.cert);
    const again = ok(
      await mcpkiAsync([
        '--home',
        home,
        '--json',
        'acme',
        'issue',
        'kept',
        '-d',
        'kept.test',
        '--reuse-key',
        ...http(),
      ]),
    );
    assert.equal(again.key, 'reused');
    assert.notEqual(again.certificate.serial, first.certificate.serial);
    assert.equal(pubkeyOfCert(again.paths.cert), before, 'same public key');
    assert.equal(pubkeyOfKey(again.paths.key), before);
    const fresh = ok(
      await mcpkiAsync(['--home', home, '--json', 'acme', 'issue', 'kept', '-d', 'kept.test', ...http()]),
    );
    assert.equal(fresh.key, 'new');
    assert.notEqual(pubkeyOfCert(fresh.paths.cert), before, 'a new key without --reuse-key');

    // another key type, a key file that is not the certificate's, a key file others can write: refused
    let r = mcpki([
      '--home',
      home,
      'acme',
      'issue',
      'kept',
      '-d',
      'kept.test',
      '--reuse-key',
      '--key',
      'ec-p384',
      ...http(),
    ]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /the key of kept is ec-p256, not the ec-p384 asked for/);
    const keyPath = fresh.paths.key;
    const original = readFileSync(keyPath);
    assert.equal(
      run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath]).status,
      0,
    );
    r = mcpki(['--home', home, 'acme', 'issue', 'kept', '-d', 'kept.test', '--reuse-key', ...http()]);
    assert.match(r.stderr, /is not the key of certificate kept/);
    writeFileSync(keyPath, original, { mode: 0o600 });
    run('chmod', ['666', keyPath]);
    r = mcpki(['--home', home, 'acme', 'issue', 'kept', '-d', 'kept.test', '--reuse-key', ...http()]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /writable/);
    run('chmod', ['600', keyPath]);
    assert.equal(
      mcpki(['--home', home, '--json', 'show', 'kept']).json.certificate.serial,
      fresh.certificate.serial,
      'a refused reuse changed nothing',
    );

    // the key mcpki made for kept would stay beside a certificate for another key
    const csrOverKey = mcpki(['--home', home, 'acme', 'issue', 'kept', '--csr', join(work.dir, 'csr.csr'), ...http()]);
    assert.equal(csrOverKey.status, 3, csrOverKey.stderr);
    assert.match(csrOverKey.stderr, /kept\.key holds the key of an earlier certificate "kept"/);

    const both = mcpki(['--home', home, 'acme', 'issue', 'kept', '--csr', join(work.dir, 'csr.csr'), '--reuse-key']);
    assert.equal(both.status, 2);
    assert.match(both.stderr, /--reuse-key and --csr cannot be combined/);
  });
});
