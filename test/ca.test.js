// The CA's own files: permissions, the encrypted root key, and what --force and rotation keep.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, ROOT, hasCommand, mcpki, run, tempDir } from './helpers.js';

test('folders are 0700, keys and the inventory 0600, certificates 0644', () => {
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
    const dump = run('python3', ['-c', 'import sqlite3,sys; print("\\n".join(str(r) for r in sqlite3.connect(sys.argv[1]).iterdump()))', join(home, 'mcpki.db')]);
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

    const issued = mcpki(['--home', dir, 'issue', 'server', 'a', 'a.localhost'], { env: { MCPKI_ROOT_PASSPHRASE: '' } });
    assert.equal(issued.status, 0, issued.stderr);

    const file = join(dir, 'pass.txt');
    writeFileSync(file, 'correct horse battery\n');
    const rotated = mcpki(['--home', dir, '--json', 'ca', 'rotate-intermediate', '--passphrase-file', file], { env: { MCPKI_ROOT_PASSPHRASE: '' } });
    assert.equal(rotated.status, 0, rotated.stderr);
    assert.notEqual(rotated.json.intermediate.serial, created.json.intermediate.serial);
    const verify = run('openssl', ['verify', '-x509_strict', '-CAfile', join(dir, 'ca', 'root.crt'), join(dir, 'ca', 'intermediate.crt')]);
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

test('--encrypt-root on a terminal prompts twice, never echoes the passphrase', { skip: !hasCommand('script') && 'script(1) is not installed' }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const secret = 'tty-secret-passphrase';
    const child = spawn('script', ['-qc', `${process.execPath} ${BIN} --home ${dir} init --encrypt-root`, '/dev/null'], { env: { ...process.env, MCPKI_ROOT_PASSPHRASE: '', NO_COLOR: '1' } });
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
    assert.equal(run('openssl', ['pkey', '-in', join(dir, 'ca', 'root.key'), '-passin', `pass:${secret}`, '-noout']).status, 0);
  } finally {
    cleanup();
  }
});

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
