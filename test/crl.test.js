// Revocation: revoked serials appear in the CRL signed by the intermediate, and OpenSSL rejects them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
import { mcpki, run, tempDir } from './helpers.js';

function crlCheck(home, crl, cert) {
  return run('openssl', [
    'verify',
    '-x509_strict',
    '-crl_check',
    '-CAfile',
    join(home, 'ca', 'root.crt'),
    '-untrusted',
    join(home, 'ca', 'intermediate.crt'),
    '-CRLfile',
    crl,
    cert,
  ]);
}

test('revoked certificates appear in the CRL and fail openssl verify -crl_check', () => {
  const { dir, cleanup } = tempDir();
  try {
    assert.equal(mcpki(['--home', dir, 'init']).status, 0);
    const keep = mcpki(['--home', dir, '--json', 'issue', 'server', 'keep', 'keep.localhost']).json;
    const gone = mcpki(['--home', dir, '--json', 'issue', 'client', 'gone', 'gone@example.test']).json;
    const empty = mcpki(['--home', dir, '--json', 'crl']).json;
    assert.equal(empty.revoked.length, 0);
    assert.equal(crlCheck(dir, empty.paths[0], gone.paths.cert).status, 0, 'not revoked yet');

    const revoked = mcpki(['--home', dir, '--json', 'revoke', 'gone', '--reason', 'keyCompromise']);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.equal(revoked.json.certificate.state, 'revoked');

    const out = join(dir, 'published.crl.pem');
    const crl = mcpki(['--home', dir, '--json', 'crl', '--out', out]).json;
    assert.deepEqual(
      crl.revoked.map((r) => r.serial),
      [gone.certificate.serial],
    );
    assert.equal(Number(crl.number), Number(empty.number) + 1, 'CRL numbers increase');

    const text = run('openssl', ['crl', '-in', out, '-noout', '-text']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`Serial Number: ${gone.certificate.serial}`, 'i'));
    assert.match(text.stdout, /Key Compromise/);
    assert.match(text.stdout, /X509v3 CRL Number/);
    const issuer = run('openssl', ['x509', '-in', join(dir, 'ca', 'intermediate.crt'), '-noout', '-subject'])
      .stdout.replace(/^subject=/, '')
      .trim();
    assert.ok(text.stdout.includes(`Issuer: ${issuer}`), 'signed by the intermediate');

    const rejected = crlCheck(dir, out, gone.paths.cert);
    assert.notEqual(rejected.status, 0);
    assert.match(rejected.stdout + rejected.stderr, /certificate revoked/);
    assert.equal(crlCheck(dir, out, keep.paths.cert).status, 0, 'others still verify');

    const events = mcpki(['--home', dir, '--json', 'events']).json.events.map((e) => e.type);
    assert.deepEqual(events, [
      'ca.created',
      'certificate.issued',
      'certificate.issued',
      'crl.generated',
      'certificate.revoked',
      'crl.generated',
    ]);
  } finally {
    cleanup();
  }
});

test('after rotate-intermediate, certificates of the old intermediate can still be revoked', () => {
  const { dir, cleanup } = tempDir();
  try {
    assert.equal(mcpki(['--home', dir, 'init']).status, 0);
    const old = mcpki(['--home', dir, '--json', 'issue', 'server', 'old', 'old.localhost']).json;
    const before = mcpki(['--home', dir, '--json', 'ca', 'show']).json;
    const rotated = mcpki(['--home', dir, '--json', 'ca', 'rotate-intermediate']);
    assert.equal(rotated.status, 0, rotated.stderr);
    assert.notEqual(rotated.json.intermediate.serial, before.intermediate.serial);
    assert.equal(rotated.json.root.serial, before.root.serial);
    const fresh = mcpki(['--home', dir, '--json', 'issue', 'server', 'new', 'new.localhost']).json;
    // the old leaf still chains through its own (retired) intermediate, shipped in its fullchain
    assert.equal(
      run('openssl', ['verify', '-CAfile', old.paths.ca, '-untrusted', old.paths.fullchain, old.paths.cert]).status,
      0,
    );
    assert.equal(
      run('openssl', ['verify', '-CAfile', fresh.paths.ca, '-untrusted', fresh.paths.fullchain, fresh.paths.cert])
        .status,
      0,
    );

    assert.equal(mcpki(['--home', dir, 'revoke', old.certificate.serial]).status, 0);
    const crl = mcpki(['--home', dir, '--json', 'crl']).json;
    const rejected = run('openssl', [
      'verify',
      '-crl_check',
      '-CAfile',
      old.paths.ca,
      '-untrusted',
      old.paths.fullchain,
      '-CRLfile',
      crl.paths[0],
      old.paths.cert,
    ]);
    assert.match(rejected.stdout + rejected.stderr, /certificate revoked/);
    const ok = run('openssl', [
      'verify',
      '-crl_check',
      '-CAfile',
      fresh.paths.ca,
      '-untrusted',
      fresh.paths.fullchain,
      '-CRLfile',
      crl.paths[0],
      fresh.paths.cert,
    ]);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  } finally {
    cleanup();
  }
});

test("crl.pem holds the root CRL too, so full-chain checks (openssl -crl_check_all, Node's crl option) work", async () => {
  const { dir, cleanup } = tempDir();
  try {
    assert.equal(mcpki(['--home', dir, 'init']).status, 0);
    const server = mcpki(['--home', dir, '--json', 'issue', 'server', 'srv', 'localhost', '127.0.0.1']).json;
    const good = mcpki(['--home', dir, '--json', 'issue', 'client', 'good', 'good@example.test']).json;
    const bad = mcpki(['--home', dir, '--json', 'issue', 'client', 'bad', 'bad@example.test']).json;
    assert.equal(mcpki(['--home', dir, 'revoke', 'bad']).status, 0);
    const crl = mcpki(['--home', dir, '--json', 'crl']);
    assert.equal(crl.status, 0, crl.stderr);
    assert.equal(crl.json.includesRoot, true);
    const root = join(dir, 'ca', 'root.crt');
    const { readFileSync, writeFileSync } = await import('node:fs');
    const blocks = readFileSync(crl.json.paths[0], 'utf8').match(
      /-----BEGIN X509 CRL-----[^-]+-----END X509 CRL-----\n/g,
    );
    assert.equal(blocks.length, 2, "two CRLs: the intermediate's and the root's");
    const rootBlock = join(dir, 'root-only.pem');
    writeFileSync(rootBlock, blocks[1]);
    const subject = (args) =>
      run('openssl', args)
        .stdout.trim()
        .replace(/^(issuer|subject)=/, '');
    assert.equal(
      subject(['crl', '-in', rootBlock, '-noout', '-issuer']),
      subject(['x509', '-in', root, '-noout', '-subject']),
    );
    const all = (cert, file = crl.json.paths[0]) =>
      run('openssl', [
        'verify',
        '-crl_check_all',
        '-CAfile',
        root,
        '-untrusted',
        join(dir, 'ca', 'intermediate.crt'),
        '-CRLfile',
        file,
        cert,
      ]);
    assert.equal(all(good.paths.cert).status, 0, all(good.paths.cert).stderr);
    assert.match(all(bad.paths.cert).stderr + all(bad.paths.cert).stdout, /certificate revoked/);
    const intermediateOnly = join(dir, 'intermediate-only.pem');
    writeFileSync(intermediateOnly, blocks[0]);
    assert.match(
      all(good.paths.cert, intermediateOnly).stderr + all(good.paths.cert, intermediateOnly).stdout,
      /unable to get certificate CRL/,
      'without the root CRL the full-chain check fails',
    );

    // a real mTLS handshake against a Node server given the CRLs; Node reads only the first CRL of a PEM
    // buffer, so each one is its own element of the crl array
    const { createServer, connect } = await import('node:tls');
    const tlsServer = createServer(
      {
        cert: readFileSync(server.paths.fullchain),
        key: readFileSync(server.paths.key),
        ca: readFileSync(root),
        crl: blocks,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => socket.end('hello\n'),
    );
    await new Promise((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    const handshake = (client) =>
      new Promise((resolve) => {
        const socket = connect({
          host: '127.0.0.1',
          port: tlsServer.address().port,
          servername: 'localhost',
          ca: readFileSync(root),
          cert: readFileSync(client.paths.fullchain),
          key: readFileSync(client.paths.key),
        });
        let data = '';
        socket.on('data', (chunk) => {
          data += chunk;
        });
        socket.on('end', () => resolve(data));
        socket.on('error', (error) => resolve(error));
      });
    try {
      assert.equal(await handshake(good), 'hello\n');
      const refused = await handshake(bad);
      // under TLS 1.3 the refusal reaches the client after its handshake: an error or a closed socket, no data
      assert.notEqual(refused, 'hello\n', 'a revoked client is refused');
    } finally {
      tlsServer.close();
    }
  } finally {
    cleanup();
  }
});

test('a home made before root CRLs: crl warns without the root passphrase and adds the root CRL with it', () => {
  const { dir, cleanup } = tempDir();
  try {
    const env = { MCPKI_ROOT_PASSPHRASE: 'correct horse battery' };
    assert.equal(mcpki(['--home', dir, 'init', '--encrypt-root'], { env }).status, 0);
    const { rmSync } = require('node:fs');
    rmSync(join(dir, 'ca', 'root-crl.pem'));
    const without = mcpki(['--home', dir, 'crl'], { env: { MCPKI_ROOT_PASSPHRASE: '' } });
    assert.equal(without.status, 0, without.stderr);
    assert.match(without.stderr, /warning: .*MCPKI_ROOT_PASSPHRASE/);
    const wrong = mcpki(['--home', dir, 'crl'], { env: { MCPKI_ROOT_PASSPHRASE: 'wrong passphrase' } });
    assert.equal(wrong.status, 12, wrong.stderr);
    const withIt = mcpki(['--home', dir, '--json', 'crl'], { env });
    assert.equal(withIt.json.includesRoot, true);
    const again = mcpki(['--home', dir, '--json', 'crl'], { env: { MCPKI_ROOT_PASSPHRASE: '' } });
    assert.equal(again.json.includesRoot, true, 'signed once, kept');
  } finally {
    cleanup();
  }
});

// --- an inventory that was emptied or deleted (issue 8, item 3) -----------------------------------------

test('an emptied or deleted inventory is refused, not recreated; restore brings the revocation back and the CRL number goes on', async (t) => {
  if (process.env.MCPKI_TEST_POSTGRES) return t.skip('no SQLite file to empty or restore on the PostgreSQL pass');
  const { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } = await import('node:fs');
  const { dir, cleanup } = tempDir();
  try {
    assert.equal(mcpki(['--home', dir, 'init']).status, 0);
    const agent = mcpki(['--home', dir, '--json', 'issue', 'client', 'agent', 'agent@x.localhost']).json;
    assert.equal(mcpki(['--home', dir, 'revoke', 'agent']).status, 0);
    const first = mcpki(['--home', dir, '--json', 'crl']).json;
    assert.equal(first.number, '1');
    assert.deepEqual(
      first.revoked.map((r) => r.serial),
      [agent.certificate.serial],
    );
    const published = readFileSync(join(dir, 'ca', 'crl.pem'), 'utf8');

    const database = join(dir, 'mcpki.db');
    writeFileSync(database, ''); // : > mcpki.db
    for (const args of [['crl'], ['issue', 'server', 'web', 'web.localhost'], ['list'], ['revoke', 'agent']]) {
      const refused = mcpki(['--home', dir, '--json', ...args]);
      assert.equal(refused.status, 7, `${args.join(' ')}: ${refused.stdout}${refused.stderr}`);
      assert.equal(refused.json.error.code, 'STORE_MISSING');
      assert.match(refused.json.error.message, /mcpki\.db is empty \(0 bytes\).*holds a CA/);
      assert.match(refused.json.error.hint, /mcpki inventory restore/);
    }
    assert.equal(statSync(database).size, 0, 'no fresh inventory was started');
    for (const suffix of ['', '-wal', '-shm']) rmSync(database + suffix, { force: true });
    const gone = mcpki(['--home', dir, '--json', 'crl']);
    assert.equal(gone.status, 7, gone.stdout);
    assert.match(gone.json.error.message, /mcpki\.db is missing/);
    assert.ok(!existsSync(database), 'still no inventory');
    assert.equal(readFileSync(join(dir, 'ca', 'crl.pem'), 'utf8'), published, 'the published CRL is untouched');

    const restored = mcpki(['--home', dir, '--json', 'inventory', 'restore']);
    assert.equal(restored.status, 0, restored.stderr);
    assert.equal(restored.json.revoked, 1);
    assert.equal((statSync(database).mode & 0o777).toString(8), '600');
    const second = mcpki(['--home', dir, '--json', 'crl']).json;
    assert.equal(second.number, '2', 'the CRL number goes on after the published one');
    assert.deepEqual(
      second.revoked.map((r) => r.serial),
      [agent.certificate.serial],
      'the revocation is back',
    );
    const text = run('openssl', ['crl', '-in', second.paths[0], '-noout', '-text']).stdout;
    assert.match(text, /CRL Number: \s*2\b/);
    assert.match(text, new RegExp(`Serial Number: ${agent.certificate.serial}`, 'i'));
    assert.ok(readdirSync(join(dir, 'backups')).length >= 1);
  } finally {
    cleanup();
  }
});

test('CRL numbers never go back: an inventory restored from before the last CRLs continues after the published number', async (t) => {
  if (process.env.MCPKI_TEST_POSTGRES) return t.skip('no SQLite file to empty or restore on the PostgreSQL pass');
  const { copyFileSync, readdirSync } = await import('node:fs');
  const { dir, cleanup } = tempDir();
  try {
    assert.equal(mcpki(['--home', dir, 'init']).status, 0);
    const old = join(dir, 'old.db');
    const backup = mcpki(['--home', dir, '--json', 'inventory', 'backup']).json;
    copyFileSync(backup.path, old);
    for (let i = 1; i <= 3; i++) assert.equal(mcpki(['--home', dir, '--json', 'crl']).json.number, String(i));
    const restored = mcpki(['--home', dir, '--json', 'inventory', 'restore', old]);
    assert.equal(restored.status, 0, restored.stderr);
    assert.match(restored.json.replaced, /mcpki\.db\.replaced-/);
    assert.ok(
      readdirSync(dir).some((name) => name.startsWith('mcpki.db.replaced-')),
      'the replaced inventory is kept',
    );
    assert.equal(mcpki(['--home', dir, '--json', 'crl']).json.number, '4', 'not 1 again');
  } finally {
    cleanup();
  }
});

test('crl --out: a folder or a missing parent is a user error, nothing is written and no temp file is left', async () => {
  const { mkdirSync, readdirSync, existsSync } = await import('node:fs');
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const folder = join(dir, 'out');
    mkdirSync(folder);
    const asFolder = mcpki(['--home', home, '--json', 'crl', '--out', folder]);
    assert.equal(asFolder.status, 3, asFolder.stdout + asFolder.stderr);
    assert.match(asFolder.json.error.message, /--out .*out is a folder, not a file/);
    assert.match(asFolder.json.error.hint, /crl\.pem/);
    const missing = mcpki(['--home', home, '--json', 'crl', '--out', join(dir, 'nope', 'crl.pem')]);
    assert.equal(missing.status, 8, missing.stdout + missing.stderr);
    assert.match(missing.json.error.message, /its folder .*nope does not exist/);
    assert.match(missing.json.error.hint, /mkdir -p/);
    assert.deepEqual(readdirSync(folder), []);
    assert.ok(!readdirSync(dir).some((name) => name.includes('.mcpki-tmp')), 'no temp file next to --out');
    assert.ok(!readdirSync(join(home, 'ca')).some((name) => name.includes('.mcpki-tmp')), 'no temp file in the home');
    assert.ok(!existsSync(join(home, 'ca', 'crl.pem')), 'HOME/ca/crl.pem is not written either');
    // the failed runs used no CRL number
    assert.equal(mcpki(['--home', home, '--json', 'crl', '--out', join(folder, 'crl.pem')]).json.number, '1');
  } finally {
    cleanup();
  }
});
