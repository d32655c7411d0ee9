// `mcpki renew NAME` and `renew --all-issued` for certificates made by `issue`, without mcpki.yaml.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { mcpki, run, tempDir, testStore } from './helpers.js';
import { createContext, renewIssued } from '../dist/index.js';

function verify(home, cert, purpose, host, at) {
  const args = [
    'verify',
    ...(at ? ['-attime', String(Math.floor(at.getTime() / 1000))] : []),
    '-CAfile',
    join(home, 'ca', 'root.crt'),
    '-untrusted',
    join(home, 'ca', 'intermediate.crt'),
    '-purpose',
    purpose,
  ];
  if (host) args.push('-verify_hostname', host);
  return run('openssl', [...args, cert]);
}

const san = (file) => run('openssl', ['x509', '-in', file, '-noout', '-ext', 'subjectAltName']).stdout;

test('renew NAME: the same names, kind, key type, lifetime, folder and PKCS#12 file, with a new key; verified by openssl', () => {
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  const out = join(dir, 'tls');
  const cli = (...args) => mcpki(['--home', home, '--json', ...args], { cwd: dir });
  try {
    assert.equal(cli('init').status, 0);
    const first = cli(
      'issue',
      'server',
      'web',
      'web.localhost',
      '127.0.0.1',
      '--key',
      'rsa-3072',
      '--days',
      '12',
      '--out',
      out,
      '--p12',
    ).json;
    const oldKey = readFileSync(first.paths.key, 'utf8');
    const renewed = cli('renew', 'web');
    assert.equal(renewed.status, 0, renewed.stdout + renewed.stderr);
    const item = renewed.json.items[0];
    assert.equal(item.action, 'renewed');
    const c = item.renewed.certificate;
    assert.notEqual(c.serial, first.certificate.serial);
    assert.deepEqual(c.sans, first.certificate.sans);
    assert.equal(c.kind, 'server');
    assert.equal(c.keyType, 'rsa-3072');
    assert.deepEqual(item.renewed.paths, first.paths, 'the same files');
    const days = (Date.parse(c.notAfter) - Date.parse(c.notBefore)) / 86_400_000;
    assert.ok(Math.abs(days - 12) < 0.01, String(days));
    // the files on disk are the new certificate and a new key that belongs to it
    const onDisk = new X509Certificate(readFileSync(join(out, 'web.crt')));
    assert.equal(onDisk.serialNumber.toUpperCase(), c.serial);
    assert.notEqual(readFileSync(join(out, 'web.key'), 'utf8'), oldKey);
    assert.equal(
      run('openssl', ['rsa', '-in', join(out, 'web.key'), '-noout', '-text']).stdout.match(
        /Private-Key: \((\d+) bit/,
      )?.[1],
      '3072',
    );
    const match = [
      run('openssl', ['x509', '-in', join(out, 'web.crt'), '-noout', '-pubkey']).stdout,
      run('openssl', ['pkey', '-in', join(out, 'web.key'), '-pubout']).stdout,
    ];
    assert.equal(match[0], match[1]);
    assert.equal(verify(home, join(out, 'web.crt'), 'sslserver', 'web.localhost').status, 0);
    assert.match(san(join(out, 'web.crt')), /DNS:web\.localhost, IP Address:127\.0\.0\.1/);
    const p12 = run('openssl', [
      'pkcs12',
      '-in',
      join(out, 'web.p12'),
      '-passin',
      'pass:changeit',
      '-nokeys',
      '-clcerts',
    ]);
    assert.equal(p12.status, 0, p12.stderr);
    assert.equal(
      new X509Certificate(p12.stdout.slice(p12.stdout.indexOf('-----BEGIN'))).serialNumber.toUpperCase(),
      c.serial,
      'the PKCS#12 file holds the new certificate',
    );
    // the old one is superseded; the renewal is in the audit log
    const all = cli('list', '--all').json.certificates;
    assert.equal(all.find((x) => x.serial === first.certificate.serial).state, 'superseded');
    assert.ok(
      cli('events').json.events.some(
        (e) =>
          e.type === 'certificate.renewed' && e.serial === c.serial && e.detail.previous === first.certificate.serial,
      ),
    );
    // a client certificate keeps its clientAuth profile and URI identity
    cli('issue', 'client', 'agent', 'spiffe://localhost/agent/1');
    const agent = cli('renew', 'agent');
    assert.equal(agent.status, 0, agent.stdout);
    assert.equal(verify(home, agent.json.items[0].renewed.paths.cert, 'sslclient').status, 0);
    assert.match(san(agent.json.items[0].renewed.paths.cert), /URI:spiffe:\/\/localhost\/agent\/1/);
  } finally {
    cleanup();
  }
});

test('renew NAME refuses what it cannot make again: unknown names, signed requests, a PKCS#12 password it does not know', () => {
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  const cli = (args, options) => mcpki(['--home', home, '--json', ...args], { cwd: dir, ...options });
  try {
    assert.equal(cli(['init']).status, 0);
    const missing = cli(['renew', 'nothing']);
    assert.equal(missing.status, 10);
    assert.equal(missing.json.error.code, 'NOT_FOUND');
    const csr = join(dir, 'app.csr');
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
        join(dir, 'app.key'),
        '-subj',
        '/CN=app.localhost',
        '-out',
        csr,
      ]).status,
      0,
    );
    assert.equal(cli(['sign', csr, '--out', join(dir, 'app.crt')]).status, 0);
    const signed = cli(['renew', 'app.localhost']);
    assert.equal(signed.status, 3, signed.stdout);
    assert.match(signed.json.error.hint, /mcpki sign/);
    const secret = join(dir, 'p12.pass');
    writeFileSync(secret, 'not the default\n', { mode: 0o600 });
    assert.equal(cli(['issue', 'server', 'p', 'p.localhost', '--p12', '--p12-password-file', secret]).status, 0);
    const locked = cli(['renew', 'p']);
    assert.equal(locked.status, 12, locked.stdout);
    assert.match(locked.json.error.hint, /--p12-password-file/);
    const given = cli(['renew', 'p', '--p12-password-file', secret]);
    assert.equal(given.status, 0, given.stdout);
    const opened = run('openssl', [
      'pkcs12',
      '-in',
      given.json.items[0].renewed.paths.p12,
      '-passin',
      'pass:not the default',
      '-nokeys',
    ]);
    assert.equal(opened.status, 0, opened.stderr);
    assert.equal(cli(['renew', 'p', '--all-issued']).status, 2, 'NAME and --all-issued together are a usage error');
    // without NAME, renew is still the mcpki.yaml plan
    const plan = cli(['renew', '--dry-run']);
    assert.equal(plan.json.error.message.includes('mcpki.yaml'), true, plan.stdout);
  } finally {
    cleanup();
  }
});

test('renew --all-issued renews what the policy says is due, leaves the rest, skips revoked and declared ones', () => {
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  const cli = (...args) => mcpki(['--home', home, '--json', ...args], { cwd: dir });
  let later;
  try {
    assert.equal(cli('init').status, 0);
    const short = cli('issue', 'server', 'short', 'short.localhost', '--days', '9').json.certificate;
    const long = cli('issue', 'server', 'long', 'long.localhost', '--days', '90').json.certificate;
    const gone = cli('issue', 'server', 'gone', 'gone.localhost', '--days', '9').json.certificate;
    assert.equal(cli('revoke', 'gone').status, 0);
    // a certificate declared in mcpki.yaml is apply's: renew NAME and --all-issued leave it alone
    writeFileSync(
      join(dir, 'mcpki.yaml'),
      'version: 1\ncertificates:\n  - name: declared\n    names: [declared.localhost]\n    days: 9\n',
    );
    const applied = cli('apply', '-c', join(dir, 'mcpki.yaml'));
    assert.equal(applied.status, 0, applied.stdout + applied.stderr);
    const declared = cli('renew', 'declared');
    assert.equal(declared.status, 3, declared.stdout);
    assert.match(declared.json.error.hint, /mcpki renew --force declared/);
    // today nothing is due
    const today = cli('renew', '--all-issued');
    assert.equal(today.status, 0, today.stdout);
    assert.equal(today.json.renewed, 0);
    assert.deepEqual(today.json.items.map((i) => [i.name, i.action]).sort(), [
      ['declared', 'skipped'],
      ['gone', 'skipped'],
      ['long', 'not-due'],
      ['short', 'not-due'],
    ]);
    // six days later: 3 of 9 days left is under half of a short lifetime, so "short" is due; 84 of 90 is not
    later = new Date(Date.now() + 6 * 86_400_000);
    const context = createContext({ ...testStore(home), home, now: () => later });
    try {
      const dry = renewIssued(context, { all: true, dryRun: true });
      assert.deepEqual(
        dry.items.filter((i) => i.action === 'due').map((i) => i.name),
        ['short'],
        'declared (9 days too) is not renewed here',
      );
      assert.equal(
        cli('show', 'short').json.serial ?? cli('show', 'short').json.certificate?.serial,
        short.serial,
        'a dry run renews nothing',
      );
      const result = renewIssued(context, { all: true });
      assert.equal(result.renewed, 1);
      assert.equal(result.failed, 0);
      const renewed = result.items.find((i) => i.name === 'short');
      assert.equal(renewed.action, 'renewed');
      assert.notEqual(renewed.serial, short.serial);
      assert.equal(result.items.find((i) => i.name === 'long').serial, long.serial);
      assert.equal(result.items.find((i) => i.name === 'gone').serial, gone.serial);
      assert.equal(result.items.find((i) => i.name === 'gone').action, 'skipped');
    } finally {
      context.close();
    }
    const file = join(home, 'certs', 'short', 'short.crt');
    assert.equal(
      new X509Certificate(readFileSync(file)).serialNumber.toUpperCase(),
      cli('show', 'short').json.serial ?? cli('show', 'short').json.certificate?.serial,
    );
    // signed "six days later" (the clock above), so checked at that time
    const checked = verify(home, file, 'sslserver', 'short.localhost', new Date(later.getTime() + 60_000));
    assert.equal(checked.status, 0, checked.stdout + checked.stderr);
  } finally {
    cleanup();
  }
});
