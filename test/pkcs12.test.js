// PKCS#12 export, checked by independent readers: OpenSSL 3, Java's keytool and Python's cryptography.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createContext, initCa, issueCertificate } from '../dist/index.js';
import { hasCommand, mcpki, run, tempDir, testStore } from './helpers.js';

const PASSWORD = 'test pass 1';
const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'];

const hasOpenssl = hasCommand('openssl');
const hasKeytool = hasCommand('keytool');
const hasPythonCryptography = hasCommand('python3') && run('python3', ['-c', 'import cryptography']).status === 0;

let home;
let context;
/** name → { certificate, paths } */
const issued = new Map();

before(() => {
  home = tempDir();
  context = createContext({ ...testStore(home.dir), home: home.dir });
  initCa(context);
});

after(() => home.cleanup());

/** Issues (once) a server certificate with a .p12 next to it. */
function p12For(keyType, { legacy = false, password = PASSWORD, tag = '' } = {}) {
  const name = `p12-${keyType}${legacy ? '-legacy' : ''}${tag}`;
  if (!issued.has(name)) {
    const outDir = join(home.dir, 'out', name);
    issued.set(
      name,
      issueCertificate(context, {
        kind: 'server',
        name,
        sans: ['localhost'],
        keyType,
        p12: true,
        p12Password: password,
        p12Legacy: legacy,
        outDir,
      }),
    );
  }
  return { name, password, ...issued.get(name) };
}

function intermediateDer() {
  return new X509Certificate(readFileSync(join(home.dir, 'ca', 'intermediate.crt'))).raw;
}

function opensslInfo(file, password, extra = []) {
  const result = run('openssl', ['pkcs12', '-info', '-noout', ...extra, '-passin', `pass:${password}`, '-in', file]);
  return { ...result, output: result.stdout + result.stderr };
}

/** Key and certificates as PEM, decrypted by openssl (this decrypts the shrouded key bag, too). */
function opensslDump(file, password) {
  const result = run('openssl', ['pkcs12', '-nodes', '-passin', `pass:${password}`, '-in', file]);
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

function publicKeyPem(args, input) {
  const result = run('openssl', args, { input });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

function iterationsIn(output) {
  return [...output.matchAll(/Iteration (\d+)/g)].map((m) => Number(m[1]));
}

test(
  'OpenSSL 3 opens the modern form with its defaults: AES-256-CBC, PBKDF2-HMAC-SHA256, SHA-256 MAC',
  { skip: !hasOpenssl && 'openssl missing' },
  () => {
    for (const keyType of KEY_TYPES) {
      const { paths } = p12For(keyType);
      const info = opensslInfo(paths.p12, PASSWORD);
      assert.equal(info.status, 0, `${keyType}: ${info.stderr}`);
      assert.match(info.output, /MAC: sha256/);
      assert.match(info.output, /MAC length: 32/);
      assert.match(info.output, /PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration \d+, PRF hmacWithSHA256/);
      assert.match(info.output, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration \d+, PRF hmacWithSHA256/);
      assert.equal(info.output.match(/Certificate bag/g)?.length, 2, 'leaf and intermediate');
      const iterations = iterationsIn(info.output);
      assert.equal(iterations.length, 3, 'MAC, certificates, key');
      assert.ok(
        iterations.every((n) => n >= 2048),
        `iterations ${iterations}`,
      );
    }
  },
);

test(
  'OpenSSL 3 opens the legacy form (3DES, SHA-1 MAC) without -legacy, and with it',
  { skip: !hasOpenssl && 'openssl missing' },
  () => {
    const legacyProvider = run('openssl', ['list', '-providers', '-provider', 'legacy']).status === 0;
    for (const keyType of ['ec-p256', 'rsa-2048']) {
      const { paths } = p12For(keyType, { legacy: true });
      const info = opensslInfo(paths.p12, PASSWORD);
      assert.equal(info.status, 0, `${keyType}: 3DES is in the default provider: ${info.stderr}`);
      assert.match(info.output, /MAC: sha1/);
      assert.match(info.output, /MAC length: 20/);
      assert.match(info.output, /PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048/);
      assert.match(info.output, /Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048/);
      assert.doesNotMatch(info.output, /AES|PBES2|RC2/);
      opensslDump(paths.p12, PASSWORD);
      if (legacyProvider) {
        const withLegacy = opensslInfo(paths.p12, PASSWORD, ['-legacy']);
        assert.equal(withLegacy.status, 0, withLegacy.stderr);
      }
    }
  },
);

test(
  'the key in the .p12 is the certificate key, and both bags carry the friendly name and localKeyID',
  { skip: !hasOpenssl && 'openssl missing' },
  () => {
    for (const keyType of KEY_TYPES) {
      for (const legacy of [false, true]) {
        const { name, paths } = p12For(keyType, { legacy });
        const dump = opensslDump(paths.p12, PASSWORD);
        assert.match(dump, /-----BEGIN PRIVATE KEY-----/);
        const fromP12 = publicKeyPem(['pkey', '-pubout'], dump);
        assert.equal(
          fromP12,
          publicKeyPem(['x509', '-pubkey', '-noout', '-in', paths.cert]),
          `${name}: key matches certificate`,
        );
        assert.equal(fromP12, publicKeyPem(['pkey', '-pubout', '-in', paths.key]), `${name}: same key as NAME.key`);

        const leafDer = new X509Certificate(readFileSync(paths.cert)).raw;
        const keyId = createHash('sha1').update(leafDer).digest('hex').toUpperCase().replace(/(..)/g, '$1 ');
        const keyIds = [...dump.matchAll(/localKeyID: ([0-9A-F ]+)/g)].map((m) => m[1]);
        assert.deepEqual(keyIds, [keyId, keyId], `${name}: key bag and leaf bag, SHA-1 of the leaf`);
        assert.equal(dump.match(new RegExp(`friendlyName: ${name}\\n`, 'g'))?.length, 2, name);
      }
    }
  },
);

test('a wrong password or a changed byte fails the MAC check', { skip: !hasOpenssl && 'openssl missing' }, () => {
  for (const legacy of [false, true]) {
    const { name, paths } = p12For('ec-p256', { legacy });
    const wrong = opensslInfo(paths.p12, 'wrong password');
    assert.notEqual(wrong.status, 0);
    assert.match(wrong.output, /Mac verify error/i);

    // the key bag's friendlyName is in the clear (the certificates' is encrypted): changing one of its
    // letters keeps the DER well-formed, so only the MAC can notice
    const tampered = readFileSync(paths.p12);
    const offset = tampered.lastIndexOf(Buffer.from(name, 'utf16le').swap16());
    assert.ok(offset > 0);
    tampered[offset + 1] ^= 0x20;
    const file = join(home.dir, `tampered-${legacy}.p12`);
    writeFileSync(file, tampered);
    const changed = opensslInfo(file, PASSWORD);
    assert.notEqual(changed.status, 0);
    assert.match(changed.output, /Mac verify error/i);
  }
});

test(
  'any UTF-8 password works, a long one too; an empty one is refused',
  { skip: !hasOpenssl && 'openssl missing' },
  () => {
    assert.throws(
      () => p12For('ec-p256', { password: '', tag: '-empty' }),
      (e) => e.code === 'PASSPHRASE_MISSING',
    );
    // 'long' is more than one 64-byte KDF block as a BMPString
    const passwords = [
      ['-utf8', 'pässwörd 密码 😀'],
      ['-long', 'correct horse battery staple '.repeat(3)],
    ];
    for (const [tag, password] of passwords) {
      for (const legacy of [false, true]) {
        const { name, paths } = p12For('ec-p256', { legacy, password, tag });
        assert.equal(opensslInfo(paths.p12, password).status, 0, name);
        assert.match(opensslDump(paths.p12, password), /-----BEGIN PRIVATE KEY-----/, name);
        if (password !== '') assert.notEqual(opensslInfo(paths.p12, PASSWORD).status, 0, name);
      }
    }
  },
);

test(
  'keytool lists a PrivateKeyEntry with the chain, and can decrypt the key',
  { skip: !hasKeytool && 'keytool missing' },
  () => {
    for (const keyType of ['ec-p256', 'ec-p384', 'rsa-2048']) {
      for (const legacy of [false, true]) {
        const { name, paths } = p12For(keyType, { legacy });
        const list = run('keytool', [
          '-list',
          '-v',
          '-keystore',
          paths.p12,
          '-storetype',
          'PKCS12',
          '-storepass',
          PASSWORD,
        ]);
        assert.equal(list.status, 0, `${name}: ${list.stdout}${list.stderr}`);
        assert.match(list.stdout, /Your keystore contains 1 entry/);
        assert.match(list.stdout, new RegExp(`Alias name: ${name}\\n`));
        assert.match(list.stdout, /Entry type: PrivateKeyEntry/);
        assert.match(list.stdout, /Certificate chain length: 2/);

        // -list does not touch the key; copying the entry into another keystore has to decrypt it
        const copy = join(home.dir, `${name}-copy.p12`);
        const imported = run('keytool', [
          '-importkeystore',
          '-noprompt',
          '-srckeystore',
          paths.p12,
          '-srcstoretype',
          'PKCS12',
          '-srcstorepass',
          PASSWORD,
          '-destkeystore',
          copy,
          '-deststoretype',
          'PKCS12',
          '-deststorepass',
          PASSWORD,
        ]);
        assert.equal(imported.status, 0, `${name}: ${imported.stdout}${imported.stderr}`);
        assert.match(imported.stdout + imported.stderr, /1 entries successfully imported/);
      }
    }
  },
);

const PYTHON_LOAD = `
import json, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
data = open(sys.argv[1], 'rb').read()
key, cert, extra = pkcs12.load_key_and_certificates(data, sys.argv[2].encode('utf-8'))
spki = lambda k: k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo).hex()
print(json.dumps({
  'keyKind': 'ec-' + key.curve.name if isinstance(key, ec.EllipticCurvePrivateKey)
    else 'rsa-%d' % key.key_size if isinstance(key, rsa.RSAPrivateKey)
    else 'ed25519' if isinstance(key, ed25519.Ed25519PrivateKey) else type(key).__name__,
  'keyMatches': spki(key.public_key()) == spki(cert.public_key()),
  'serial': format(cert.serial_number, 'X'),
  'friendlyName': (pkcs12.load_pkcs12(data, sys.argv[2].encode('utf-8')).cert.friendly_name or b'').decode(),
  'chain': [c.public_bytes(serialization.Encoding.DER).hex() for c in extra],
}))
`;

test(
  'python cryptography loads the key, the leaf and the chain',
  { skip: !hasPythonCryptography && 'python3 cryptography missing' },
  () => {
    const keyKinds = {
      'ec-p256': 'ec-secp256r1',
      'ec-p384': 'ec-secp384r1',
      'rsa-2048': 'rsa-2048',
      ed25519: 'ed25519',
    };
    const chain = [intermediateDer().toString('hex')];
    for (const keyType of KEY_TYPES) {
      for (const legacy of [false, true]) {
        const { name, paths, certificate } = p12For(keyType, { legacy });
        const result = run('python3', ['-c', PYTHON_LOAD, paths.p12, PASSWORD]);
        assert.equal(result.status, 0, `${name}: ${result.stderr}`);
        const loaded = JSON.parse(result.stdout);
        assert.equal(loaded.keyKind, keyKinds[keyType], name);
        assert.equal(loaded.keyMatches, true, name);
        assert.equal(loaded.serial.replace(/^0+/, ''), certificate.serial.replace(/^0+/, ''), name);
        assert.equal(loaded.friendlyName, name);
        assert.deepEqual(loaded.chain, chain, name);
      }
    }
  },
);

test('the .p12 file is private (0600)', () => {
  for (const legacy of [false, true]) {
    const { paths } = p12For('ec-p256', { legacy });
    assert.equal(statSync(paths.p12).mode & 0o777, 0o600);
  }
});

test(
  'mcpki issue server NAME localhost --p12 writes NAME.p12 with the password "changeit"',
  { skip: !hasOpenssl && 'openssl missing' },
  () => {
    const { dir, cleanup } = tempDir();
    try {
      const env = { MCPKI_P12_PASSWORD: '' };
      assert.equal(mcpki(['--home', dir, 'init'], { env }).status, 0);
      const result = mcpki(['--home', dir, '--json', 'issue', 'server', 'web', 'localhost', '--p12'], { env });
      assert.equal(result.status, 0, result.stderr);
      const p12 = join(dir, 'certs', 'web', 'web.p12');
      assert.equal(result.json.paths.p12, p12);
      assert.equal(statSync(p12).mode & 0o777, 0o600);
      const info = opensslInfo(p12, 'changeit');
      assert.equal(info.status, 0, info.stderr);
      assert.match(info.output, /MAC: sha256/);
      const fromP12 = publicKeyPem(['pkey', '-pubout'], opensslDump(p12, 'changeit'));
      assert.equal(fromP12, publicKeyPem(['x509', '-pubkey', '-noout', '-in', join(dir, 'certs', 'web', 'web.crt')]));
    } finally {
      cleanup();
    }
  },
);
