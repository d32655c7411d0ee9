// Batch issuance: one process, many certificates, every one a real certificate OpenSSL accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, mcpki, run, tempDir } from './helpers.js';

test('a line file into --out: flat NAME.* files and one ca.crt; every certificate verifies and is recorded', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    const out = join(dir, 'fixtures');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const lines = ['# fleet', ''];
    for (let i = 0; i < 60; i++) lines.push(`server api-${i} api-${i}.localhost 127.0.0.${i + 1}`);
    lines.push('client agent agent@example.test');
    writeFileSync(join(dir, 'requests.txt'), lines.join('\n'));
    const result = mcpki([
      '--home',
      home,
      '--json',
      'issue',
      'batch',
      join(dir, 'requests.txt'),
      '--out',
      out,
      '--days',
      '30',
    ]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.json.issued.length, 61);
    const files = readdirSync(out).sort();
    assert.equal(files.length, 61 * 3 + 1);
    assert.ok(files.includes('ca.crt'));
    assert.ok(!files.some((f) => f.includes('mcpki-tmp')), 'no temp files left');
    const serials = new Set(result.json.issued.map((i) => i.certificate.serial));
    assert.equal(serials.size, 61);
    for (const issued of result.json.issued.filter((_, i) => i % 10 === 0 || i === 60)) {
      const { cert, key, fullchain, ca } = issued.paths;
      const purpose = issued.certificate.kind === 'server' ? 'sslserver' : 'sslclient';
      const verified = run('openssl', [
        'verify',
        '-x509_strict',
        '-purpose',
        purpose,
        '-CAfile',
        ca,
        '-untrusted',
        fullchain,
        cert,
      ]);
      assert.equal(verified.status, 0, verified.stdout + verified.stderr);
      assert.equal((statSync(key).mode & 0o777).toString(8), '600');
      const fromCert = run('openssl', ['x509', '-in', cert, '-noout', '-pubkey']).stdout;
      const fromKey = run('openssl', ['pkey', '-in', key, '-pubout']).stdout;
      assert.equal(fromCert, fromKey, 'key matches certificate');
      assert.equal(run('openssl', ['x509', '-in', cert, '-noout', '-checkend', String(29 * 86400)]).status, 0);
      assert.notEqual(run('openssl', ['x509', '-in', cert, '-noout', '-checkend', String(31 * 86400)]).status, 0);
    }
    const listed = mcpki(['--home', home, '--json', 'list']).json.certificates;
    assert.equal(listed.length, 61);
  } finally {
    cleanup();
  }
});

test('a JSON batch from standard input, with per-entry key types and folders', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const requests = [
      { kind: 'server', name: 'ec', sans: ['ec.test'], key: 'ec-p384' },
      { kind: 'server', name: 'rsa', sans: ['rsa.test'], key: 'rsa-2048', out: join(dir, 'rsa') },
      { kind: 'client', name: 'ed', sans: ['spiffe://example.test/ed'], key: 'ed25519', days: 7 },
    ];
    const result = mcpki(['--home', home, '--json', 'issue', 'batch', '-'], { input: JSON.stringify(requests) });
    assert.equal(result.status, 0, result.stderr);
    const byName = Object.fromEntries(result.json.issued.map((i) => [i.certificate.name, i]));
    assert.equal(byName.rsa.paths.cert, join(dir, 'rsa', 'rsa.crt'));
    assert.equal(byName.ec.paths.cert, join(home, 'certs', 'ec', 'ec.crt'));
    assert.match(
      run('openssl', ['x509', '-in', byName.rsa.paths.cert, '-noout', '-text']).stdout,
      /Public-Key: \(2048 bit\)/,
    );
    assert.match(run('openssl', ['x509', '-in', byName.ec.paths.cert, '-noout', '-text']).stdout, /NIST CURVE: P-384/);
    assert.match(run('openssl', ['x509', '-in', byName.ed.paths.cert, '-noout', '-text']).stdout, /ED25519/);
    for (const issued of Object.values(byName)) {
      const verified = run('openssl', [
        'verify',
        '-x509_strict',
        '-CAfile',
        issued.paths.ca,
        '-untrusted',
        issued.paths.fullchain,
        issued.paths.cert,
      ]);
      assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    }
  } finally {
    cleanup();
  }
});

/**
 * Checks a batch's output with real peers: OpenSSL verifies every certificate against the CA in one call,
 * Python's ssl loads every cert + key pair (it refuses a key that does not match) and reads each serial, and
 * every inventory row must point at files holding exactly its certificate. Returns the rows.
 */
function checkIssued(home, out, { kind = 'server', recordedOnly = false } = {}) {
  // the inventory read by SQLite itself (Python's sqlite3), in the order the rows were written
  const query = run('python3', [
    '-c',
    'import json, sqlite3, sys; db = sqlite3.connect(sys.argv[1]); print(json.dumps([dict(zip(("name", "serial", "cert", "status"), r)) for r in db.execute("SELECT name, serial, json_extract(paths, \'$.cert\'), status FROM certificates ORDER BY id")]))',
    join(home, 'mcpki.db'),
  ]);
  assert.equal(query.status, 0, query.stderr);
  const rows = JSON.parse(query.stdout);
  // after a kill, a certificate not yet recorded may have some of its files renamed into place (each whole):
  // the guarantee is about recorded ones; issuing the rest again completes them (checked after that)
  const recorded = new Set(rows.map((row) => `${row.name}.crt`));
  const certs = readdirSync(out).filter(
    (f) => f.endsWith('.crt') && f !== 'ca.crt' && (!recordedOnly || recorded.has(f)),
  );
  if (certs.length > 0) {
    const fullchain = readFileSync(join(out, certs[0].replace(/\.crt$/, '.fullchain.pem')), 'utf8');
    const intermediate = fullchain.slice(fullchain.indexOf('-----END CERTIFICATE-----') + 26);
    writeFileSync(join(out, '..', 'intermediate.pem'), intermediate);
    const verified = run('openssl', [
      'verify',
      '-x509_strict',
      '-purpose',
      kind === 'server' ? 'sslserver' : 'sslclient',
      '-CAfile',
      join(out, 'ca.crt'),
      '-untrusted',
      join(out, '..', 'intermediate.pem'),
      ...certs.map((f) => join(out, f)),
    ]);
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    assert.equal(
      verified.stdout
        .trim()
        .split('\n')
        .filter((l) => l.endsWith(': OK')).length,
      certs.length,
    );
  }
  const script = `
import json, ssl, sys
out = {}
for name in json.load(sys.stdin):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(name + ".fullchain.pem", name + ".key")  # refuses a key that does not match
    context.load_cert_chain(name + ".crt", name + ".key")
    out[name] = ssl._ssl._test_decode_cert(name + ".crt")["serialNumber"]
print(json.dumps(out))
`;
  const names = certs.map((f) => join(out, f.replace(/\.crt$/, '')));
  const python = run('python3', ['-c', script], { input: JSON.stringify(names) });
  assert.equal(python.status, 0, python.stderr);
  const serials = JSON.parse(python.stdout);
  for (const row of rows) {
    const base = join(out, row.name);
    assert.equal(row.cert, `${base}.crt`);
    assert.equal(serials[base], row.serial, `${row.name}: the file holds the certificate its row records`);
  }
  return rows;
}

// these read the inventory with Python's sqlite3, beside mcpki: the SQLite file itself
const SQLITE_ONLY = { skip: process.env.MCPKI_TEST_POSTGRES ? 'reads mcpki.db directly' : false };

test(
  'a batch large enough for worker threads: every certificate, key and row matches, keys as OpenSSL writes them',
  SQLITE_ONLY,
  () => {
    const { dir, cleanup } = tempDir();
    try {
      const home = join(dir, 'home');
      const out = join(dir, 'out');
      assert.equal(mcpki(['--home', home, 'init']).status, 0);
      const n = 700;
      const lines = Array.from({ length: n }, (_, i) => `server w${i} w${i}.localhost 127.0.${i >> 8}.${i & 255}`);
      writeFileSync(join(dir, 'requests.txt'), lines.join('\n'));
      const result = mcpki(['--home', home, 'issue', 'batch', join(dir, 'requests.txt'), '--out', out]);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`issued ${n} certificates`));
      const files = readdirSync(out);
      assert.equal(files.length, n * 3 + 1);
      assert.ok(!files.some((f) => f.includes('mcpki-tmp')), 'no temp files left');
      const rows = checkIssued(home, out);
      assert.deepEqual(
        rows.map((row) => row.name),
        lines.map((l) => l.split(' ')[1]),
        'recorded in the order of the requests',
      );
      assert.equal(new Set(rows.map((row) => row.serial)).size, n);
      // the keys made without OpenSSL's encoder are byte for byte what OpenSSL writes for them
      for (const name of ['w0', 'w1', 'w350', `w${n - 1}`]) {
        const key = readFileSync(join(out, `${name}.key`), 'utf8');
        assert.equal((statSync(join(out, `${name}.key`)).mode & 0o777).toString(8), '600');
        assert.equal(run('openssl', ['pkey', '-in', join(out, `${name}.key`)]).stdout, key);
      }
      const events = run('python3', [
        '-c',
        'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM events WHERE type = \'certificate.issued\'").fetchone()[0])',
        join(home, 'mcpki.db'),
      ]);
      assert.equal(events.stdout.trim(), String(n), events.stderr);
    } finally {
      cleanup();
    }
  },
);

test('P-384 keys and PKCS#12 files from the worker threads', SQLITE_ONLY, () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    const out = join(dir, 'out');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const n = 140;
    const lines = Array.from({ length: n }, (_, i) => `client c${i} c${i}@example.test`);
    writeFileSync(join(dir, 'requests.txt'), lines.join('\n'));
    const result = mcpki([
      '--home',
      home,
      'issue',
      'batch',
      join(dir, 'requests.txt'),
      '--out',
      out,
      '--key',
      'ec-p384',
      '--p12',
    ]);
    assert.equal(result.status, 0, result.stderr);
    checkIssued(home, out, { kind: 'client' });
    for (const name of ['c0', `c${n - 1}`]) {
      const key = join(out, `${name}.key`);
      assert.equal(run('openssl', ['pkey', '-in', key]).stdout, readFileSync(key, 'utf8'));
      assert.match(run('openssl', ['pkey', '-in', key, '-noout', '-text']).stdout, /NIST CURVE: P-384/);
      const p12 = run('openssl', ['pkcs12', '-in', join(out, `${name}.p12`), '-passin', 'pass:changeit', '-nodes']);
      assert.equal(p12.status, 0, p12.stderr);
      assert.match(p12.stdout, new RegExp(`friendlyName: ${name}`));
    }
  } finally {
    cleanup();
  }
});

test(
  'kill -9 in the middle of a batch: what was recorded has whole, matching files; the rest can be issued again',
  SQLITE_ONLY,
  async () => {
    const { dir, cleanup } = tempDir();
    try {
      const home = join(dir, 'home');
      const out = join(dir, 'out');
      assert.equal(mcpki(['--home', home, 'init']).status, 0);
      const n = 3000;
      const lines = Array.from({ length: n }, (_, i) => `server k${i} k${i}.localhost`);
      writeFileSync(join(dir, 'requests.txt'), lines.join('\n'));
      const child = spawn(
        process.execPath,
        [BIN, '--home', home, 'issue', 'batch', join(dir, 'requests.txt'), '--out', out],
        {
          stdio: 'ignore',
        },
      );
      const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
      // kill as soon as the first certificates are recorded (Python's sqlite3 watches the inventory)
      const watch = run(
        'python3',
        [
          '-c',
          `
import sqlite3, sys, time
deadline = time.time() + 120
while time.time() < deadline:
    try:
        db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=30)
        if db.execute("SELECT count(*) FROM certificates").fetchone()[0] > 0:
            sys.exit(0)
        db.close()
    except sqlite3.OperationalError:
        pass
    time.sleep(0.002)
sys.exit(1)
`,
          join(home, 'mcpki.db'),
        ],
        { timeout: 130_000 },
      );
      assert.equal(watch.status, 0, `no certificate recorded: ${watch.stderr}`);
      child.kill('SIGKILL');
      assert.equal((await exited).signal, 'SIGKILL');
      // no torn file: every file at a target name is whole
      const files = readdirSync(out).filter((f) => !f.startsWith('.'));
      for (const f of files.filter((f) => f.endsWith('.key')))
        assert.match(
          readFileSync(join(out, f), 'utf8'),
          /^-----BEGIN PRIVATE KEY-----\n[^]+\n-----END PRIVATE KEY-----\n$/,
        );
      const rows = checkIssued(home, out, { recordedOnly: true });
      assert.ok(rows.length > 0, 'the chunks committed before the kill stay issued');
      assert.ok(rows.length < n, `killed in the middle (${rows.length} of ${n} recorded)`);
      // the inventory is consistent: it signs a CRL, revokes one of them, and lists what it holds
      assert.equal(mcpki(['--home', home, 'revoke', rows[0].name]).status, 0);
      const crl = mcpki(['--home', home, 'crl', '--out', join(dir, 'crl.pem')]);
      assert.equal(crl.status, 0, crl.stderr);
      const crlText = run('openssl', ['crl', '-in', join(dir, 'crl.pem'), '-noout', '-text']).stdout;
      assert.match(crlText, new RegExp(`Serial Number: ${rows[0].serial}`));
      // the rest again (the recorded ones keep their files): the stale temp files go, every file matches its row
      const rest = lines.filter((l) => !rows.some((r) => r.name === l.split(' ')[1]));
      writeFileSync(join(dir, 'rest.txt'), rest.join('\n'));
      const again = mcpki(['--home', home, 'issue', 'batch', join(dir, 'rest.txt'), '--out', out]);
      assert.equal(again.status, 0, again.stderr);
      assert.ok(!readdirSync(out).some((f) => f.includes('mcpki-tmp')), 'the killed run leaves no temp files behind');
      assert.equal(checkIssued(home, out).filter((r) => r.status === 'valid').length, n - 1);
    } finally {
      cleanup();
    }
  },
);
