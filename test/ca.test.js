// The CA's own files: permissions, the encrypted root key, and what --force and rotation keep.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, ROOT, hasCommand, mcpki, run, tempDir } from './helpers.js';

test('folders are 0700, keys and the inventory 0600, certificates 0644', (t) => {
  if (process.env.MCPKI_TEST_POSTGRES) return t.skip('no SQLite file on the PostgreSQL pass');
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  try {
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const issued = mcpki(['--home', home, '--json', 'issue', 'server', 'web', 'web.localhost']).json;
    const mode = (path) => (statSync(path).mode & 0o777).toString(8);
    assert.equal(mode(home), '700');
    assert.equal(mode(join(home, 'ca')), '700');
    assert.equal(mode(join(home, 'certs', 'web')), '700');
    assert.equal(mode(join(home, 'ca', 'root.key')), '600');
    assert.equal(mode(join(home, 'ca', 'intermediate.key')), '600');
    assert.equal(mode(join(home, 'mcpki.db')), '600');
    assert.equal(mode(issued.paths.key), '600');
    assert.equal(mode(issued.paths.cert), '644');
    // a key never lands in the inventory
    const dump = run('python3', [
      '-c',
      'import sqlite3,sys; print("\\n".join(str(r) for r in sqlite3.connect(sys.argv[1]).iterdump()))',
      join(home, 'mcpki.db'),
    ]);
    assert.equal(dump.status, 0, dump.stderr);
    assert.ok(dump.stdout.includes('BEGIN CERTIFICATE'));
    assert.ok(!dump.stdout.includes('PRIVATE KEY'));
  } finally {
    cleanup();
  }
});

test('--encrypt-root: PBES2 with 600,000 PBKDF2 iterations; issuing needs no passphrase, rotation does', () => {
  const { dir, cleanup } = tempDir();
  try {
    const env = { MCPKI_ROOT_PASSPHRASE: 'correct horse battery' };
    const created = mcpki(['--home', dir, '--json', 'init', '--encrypt-root'], { env });
    assert.equal(created.status, 0, created.stderr);
    assert.equal(created.json.root.keyEncrypted, true);
    const rootKey = join(dir, 'ca', 'root.key');
    assert.match(readFileSync(rootKey, 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
    const parsed = run('openssl', ['asn1parse', '-in', rootKey]).stdout;
    assert.match(parsed, /PBES2/);
    assert.match(parsed, /hmacWithSHA256/);
    assert.match(parsed, /aes-256-cbc/);
    assert.match(parsed, /INTEGER\s+:0927C0/, '600000 iterations');
    assert.equal(run('openssl', ['pkey', '-in', rootKey, '-passin', 'pass:correct horse battery', '-noout']).status, 0);
    assert.notEqual(run('openssl', ['pkey', '-in', rootKey, '-passin', 'pass:wrong', '-noout']).status, 0);

    const issued = mcpki(['--home', dir, 'issue', 'server', 'a', 'a.localhost'], {
      env: { MCPKI_ROOT_PASSPHRASE: '' },
    });
    assert.equal(issued.status, 0, issued.stderr);

    const file = join(dir, 'pass.txt');
    writeFileSync(file, 'correct horse battery\n');
    const rotated = mcpki(['--home', dir, '--json', 'ca', 'rotate-intermediate', '--passphrase-file', file], {
      env: { MCPKI_ROOT_PASSPHRASE: '' },
    });
    assert.equal(rotated.status, 0, rotated.stderr);
    assert.notEqual(rotated.json.intermediate.serial, created.json.intermediate.serial);
    const verify = run('openssl', [
      'verify',
      '-x509_strict',
      '-CAfile',
      join(dir, 'ca', 'root.crt'),
      join(dir, 'ca', 'intermediate.crt'),
    ]);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  } finally {
    cleanup();
  }
});

test('init --force replaces the CA and warns; the audit log keeps both', () => {
  const { dir, cleanup } = tempDir();
  try {
    const first = mcpki(['--home', dir, '--json', 'init']).json;
    const second = mcpki(['--home', dir, '--json', 'init', '--force', '--key', 'ec-p384']);
    assert.equal(second.status, 0, second.stderr);
    assert.notEqual(second.json.root.fingerprint, first.root.fingerprint);
    assert.equal(second.json.root.keyType, 'ec-p384');
    const human = mcpki(['--home', dir, 'init', '--force']);
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stderr, /warning: replaced the CA: certificates the old CA issued are now orphaned/);
    const events = mcpki(['--home', dir, '--json', 'events', '--type', 'ca.created']).json.events;
    assert.equal(events.length, 3);
    assert.equal(events[1].detail.replaced, true);
  } finally {
    cleanup();
  }
});

test(
  '--encrypt-root on a terminal prompts twice, never echoes the passphrase',
  { skip: !hasCommand('script') && 'script(1) is not installed' },
  async () => {
    const { dir, cleanup } = tempDir();
    try {
      const secret = 'tty-secret-passphrase';
      const child = spawn(
        'script',
        ['-qc', `${process.execPath} ${BIN} --home ${dir} init --encrypt-root`, '/dev/null'],
        { env: { ...process.env, MCPKI_ROOT_PASSPHRASE: '', NO_COLOR: '1' } },
      );
      let output = '';
      let answered = 0;
      child.stdout.on('data', (chunk) => {
        output += chunk;
        const prompts = (output.match(/passphrase: /gi) ?? []).length;
        if (prompts > answered) {
          answered = prompts;
          child.stdin.write(`${secret}\r`);
        }
      });
      const status = await new Promise((resolve) => child.on('close', resolve));
      assert.equal(status, 0, output);
      assert.equal(answered, 2, 'asked, then asked to repeat');
      assert.ok(!output.includes(secret), 'the passphrase is not echoed');
      assert.equal(
        run('openssl', ['pkey', '-in', join(dir, 'ca', 'root.key'), '-passin', `pass:${secret}`, '-noout']).status,
        0,
      );
    } finally {
      cleanup();
    }
  },
);

test('the bundled command line has no dynamic import() left (it runs from V8 code cache)', () => {
  const bundle = readFileSync(join(ROOT, 'dist', 'cli.cjs'), 'utf8');
  assert.equal(bundle.match(/\bimport\(/g), null);
  assert.ok(readFileSync(join(ROOT, 'dist', 'cli.cjs.cache')).length > 10_000, 'the build wrote a code cache');
});

test('a killed issue leaves no torn file, and the next issue removes its temp files', () => {
  const { dir, cleanup } = tempDir();
  try {
    assert.equal(mcpki(['--home', dir, 'init']).status, 0);
    const first = mcpki(['--home', dir, '--json', 'issue', 'server', 'web', 'web.localhost']).json;
    const folder = join(dir, 'certs', 'web');
    // what a process killed between write and rename leaves behind
    writeFileSync(join(folder, '.web.key.mcpki-tmp-0123456789ab'), 'half a key');
    const second = mcpki(['--home', dir, '--json', 'issue', 'server', 'web', 'web.localhost']);
    assert.equal(second.status, 0, second.stderr);
    assert.notEqual(second.json.certificate.serial, first.certificate.serial);
    assert.deepEqual(readdirSync(folder).sort(), ['ca.crt', 'web.crt', 'web.fullchain.pem', 'web.key']);
    const fromCert = run('openssl', ['x509', '-in', join(folder, 'web.crt'), '-noout', '-pubkey']).stdout;
    assert.equal(fromCert, run('openssl', ['pkey', '-in', join(folder, 'web.key'), '-pubout']).stdout);
  } finally {
    cleanup();
  }
});

// --- every load checks the CA (issue 8, item 2) --------------------------------------------------------

import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { readCertificate, signCertificate, basicConstraints, keyUsage, randomSerial } from '../dist/pki/x509.js';
import { signatureAlgorithmFor, spkiOf } from '../dist/pki/keys.js';
import { fromPem, toPem } from '../dist/pki/der.js';

/** An intermediate with the real root's exact subject as issuer, signed by another key: only the signature tells. */
function forgedIntermediate(home) {
  const rootDer = fromPem(readFileSync(join(home, 'ca', 'root.crt'), 'utf8'), 'CERTIFICATE')[0];
  const intermediateDer = fromPem(readFileSync(join(home, 'ca', 'intermediate.crt'), 'utf8'), 'CERTIFICATE')[0];
  const impostor = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = createPrivateKey(readFileSync(join(home, 'ca', 'intermediate.key')));
  const der = signCertificate(
    {
      serial: randomSerial(),
      issuer: readCertificate(rootDer).subject,
      subject: readCertificate(intermediateDer).subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      spki: spkiOf(createPublicKey(key)),
      extensions: [basicConstraints(true, 0), keyUsage(['digitalSignature', 'keyCertSign', 'cRLSign'])],
    },
    signatureAlgorithmFor(impostor.privateKey),
  );
  return toPem('CERTIFICATE', der);
}

const CA_VARIANTS = [
  {
    title: "intermediate.crt swapped for another CA's",
    files: (a, b) => ({ 'intermediate.crt': b('intermediate.crt') }),
    message: /intermediate .*was not issued by the root/,
  },
  {
    title: 'intermediate.crt and .key both from another CA',
    files: (a, b) => ({ 'intermediate.crt': b('intermediate.crt'), 'intermediate.key': b('intermediate.key') }),
    message: /was not issued by the root/,
  },
  {
    title: "root.crt replaced by another CA's root",
    files: (a, b) => ({ 'root.crt': b('root.crt') }),
    message: /was not issued by the root/,
  },
  {
    title: "intermediate with the root's name but another key's signature",
    files: (a) => ({ 'intermediate.crt': forgedIntermediate(a.home) }),
    message: /signature does not verify with the root's key/,
  },
  {
    title: 'intermediate.key of another CA',
    files: (a, b) => ({ 'intermediate.key': b('intermediate.key') }),
    message: /intermediate key .* does not match .*intermediate\.crt/,
  },
  {
    title: 'garbage root.crt',
    files: () => ({ 'root.crt': 'not a certificate\n' }),
    message: /root certificate .*root\.crt holds no PEM certificate/,
  },
  { title: 'empty root.crt', files: () => ({ 'root.crt': '' }), message: /root certificate .*root\.crt is empty/ },
  {
    title: 'empty intermediate.crt',
    files: () => ({ 'intermediate.crt': '' }),
    message: /intermediate certificate .*intermediate\.crt is empty/,
  },
  {
    title: 'a PEM block of garbage in intermediate.crt',
    files: () => ({ 'intermediate.crt': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }),
    message: /intermediate\.crt is not a valid certificate/,
  },
  {
    title: 'garbage intermediate.key',
    files: () => ({ 'intermediate.key': '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }),
    message: /intermediate key .* is unreadable: not a valid private key/,
  },
  {
    title: 'a leaf certificate in place of the intermediate',
    files: (a) => ({
      'intermediate.crt': readFileSync(a.leaf.paths.cert, 'utf8'),
      'intermediate.key': readFileSync(a.leaf.paths.key, 'utf8'),
    }),
    message: /intermediate\.crt is not a CA certificate/,
  },
];

test('every load of the CA refuses a swapped, replaced, forged, garbage or empty CA file: exit 4 CA_CORRUPT, nothing written', () => {
  const base = mkdtempSync(join(tmpdir(), 'mcpki-ca-variants-'));
  try {
    const a = { home: join(base, 'a') };
    const b = join(base, 'b');
    assert.equal(mcpki(['--home', a.home, 'init']).status, 0);
    assert.equal(mcpki(['--home', b, 'init']).status, 0);
    a.leaf = mcpki(['--home', a.home, '--json', 'issue', 'server', 'leaf', 'leaf.localhost']).json;
    const fromB = (name) => readFileSync(join(b, 'ca', name), 'utf8');
    for (const variant of CA_VARIANTS) {
      const home = join(base, `case-${CA_VARIANTS.indexOf(variant)}`);
      cpSync(a.home, home, { recursive: true });
      for (const [name, content] of Object.entries(variant.files(a, fromB)))
        writeFileSync(join(home, 'ca', name), content);
      for (const args of [
        ['issue', 'server', 'web', 'web.localhost'],
        ['issue', 'client', 'agent', 'agent@x.localhost'],
        ['crl'],
        ['ca', 'show'],
        ['ca', 'rotate-intermediate'],
      ]) {
        const result = mcpki(['--home', home, '--json', ...args]);
        assert.equal(result.status, 4, `${variant.title}: ${args.join(' ')}: ${result.stdout}${result.stderr}`);
        assert.equal(result.json.error.code, 'CA_CORRUPT', variant.title);
        assert.match(result.json.error.message, variant.message, `${variant.title}: ${args.join(' ')}`);
        assert.match(result.json.error.hint, /restore the CA files from a backup/);
      }
      assert.ok(!existsSync(join(home, 'certs', 'web')), `${variant.title}: nothing issued`);
      assert.ok(!existsSync(join(home, 'ca', 'crl.pem')), `${variant.title}: no CRL written`);
      assert.ok(!existsSync(join(home, 'ca', 'retired')), `${variant.title}: nothing retired`);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('rotate-intermediate with a root key that does not match root.crt retires nothing; the CA keeps working', () => {
  const base = mkdtempSync(join(tmpdir(), 'mcpki-ca-rootkey-'));
  try {
    const home = join(base, 'a');
    const other = join(base, 'b');
    const env = { MCPKI_ROOT_PASSPHRASE: 'correct horse battery' };
    assert.equal(mcpki(['--home', home, 'init', '--encrypt-root'], { env }).status, 0);
    assert.equal(mcpki(['--home', other, 'init', '--encrypt-root'], { env }).status, 0);
    writeFileSync(join(home, 'ca', 'root.key'), readFileSync(join(other, 'ca', 'root.key')));
    const intermediate = readFileSync(join(home, 'ca', 'intermediate.crt'), 'utf8');
    const rotated = mcpki(['--home', home, '--json', 'ca', 'rotate-intermediate'], { env });
    assert.equal(rotated.status, 4, rotated.stdout + rotated.stderr);
    assert.equal(rotated.json.error.code, 'CA_CORRUPT');
    assert.match(rotated.json.error.message, /root key .*root\.key does not match .*root\.crt/);
    assert.match(rotated.json.error.hint, /nothing was changed/);
    assert.equal(
      readFileSync(join(home, 'ca', 'intermediate.crt'), 'utf8'),
      intermediate,
      'the working intermediate is kept',
    );
    assert.ok(!existsSync(join(home, 'ca', 'retired')), 'nothing archived');
    const events = mcpki(['--home', home, '--json', 'events', '--type', 'ca.intermediate-rotated']).json.events;
    assert.deepEqual(events, []);
    // a wrong passphrase is a passphrase error, not a corrupt CA
    const wrong = mcpki(['--home', home, '--json', 'ca', 'rotate-intermediate'], {
      env: { MCPKI_ROOT_PASSPHRASE: 'wrong wrong wrong' },
    });
    assert.equal(wrong.status, 12, wrong.stdout);
    // and the CA still issues certificates that verify
    const issued = mcpki(['--home', home, '--json', 'issue', 'server', 'web', 'web.localhost']);
    assert.equal(issued.status, 0, issued.stderr);
    const verify = run('openssl', [
      'verify',
      '-CAfile',
      join(home, 'ca', 'root.crt'),
      '-untrusted',
      join(home, 'ca', 'intermediate.crt'),
      issued.json.paths.cert,
    ]);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    assert.equal(
      new X509Certificate(readFileSync(issued.json.paths.cert)).issuer,
      new X509Certificate(intermediate).subject,
    );
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
