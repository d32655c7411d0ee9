// `mcpki forget NAME|SERIAL`: gone from the inventory, with an event; a revoked serial stays in the CRL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mcpki, run, tempDir } from './helpers.js';

/** The serials `openssl crl -text` lists in each CRL of the file (it reads one CRL a file: each block separately). */
function crlSerials(dir, file) {
  const blocks = readFileSync(file, 'utf8').match(/-----BEGIN X509 CRL-----[\s\S]*?-----END X509 CRL-----\n/g) ?? [];
  assert.ok(blocks.length >= 1);
  return blocks.flatMap((block, i) => {
    const path = join(dir, `crl-${i}.pem`);
    writeFileSync(path, block);
    const text = run('openssl', ['crl', '-in', path, '-noout', '-text']);
    assert.equal(text.status, 0, text.stderr);
    return [...text.stdout.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]);
  });
}

test('forget NAME drops every certificate of the name; a revoked serial stays in the next CRL (openssl crl -text)', () => {
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  const cli = (...args) => mcpki(['--home', home, '--json', ...args]);
  try {
    assert.equal(cli('init').status, 0);
    const first = cli('issue', 'server', 'old', 'old.localhost').json.certificate;
    const second = cli('issue', 'server', 'old', 'old.localhost').json.certificate;
    const keep = cli('issue', 'server', 'keep', 'keep.localhost').json.certificate;
    assert.equal(cli('revoke', first.serial, '--reason', 'keyCompromise').status, 0);
    const forgotten = cli('forget', 'old');
    assert.equal(forgotten.status, 0, forgotten.stdout);
    assert.deepEqual(
      forgotten.json.forgotten.map((f) => [f.serial, f.keptInCrl]).sort(),
      [
        [first.serial, true],
        [second.serial, false],
      ].sort(),
    );
    assert.deepEqual(forgotten.json.stillTrusted, [second.serial], 'the unrevoked one is named as still trusted');
    // gone from list, list --all and show, by name and by serial
    const all = cli('list', '--all').json.certificates.map((c) => c.serial);
    assert.deepEqual(all, [keep.serial]);
    assert.equal(cli('show', 'old').status, 10);
    assert.equal(cli('show', first.serial).status, 10);
    assert.equal(cli('forget', 'old').status, 10, 'nothing left to forget');
    // the files stay where they were
    assert.ok(existsSync(join(home, 'certs', 'old', 'old.crt')));
    const events = cli('events').json.events.filter((e) => e.type === 'certificate.forgotten');
    assert.deepEqual(events.map((e) => e.serial).sort(), [first.serial, second.serial].sort());
    // the next CRL still lists the revoked serial
    const crl = cli('crl');
    assert.equal(crl.status, 0, crl.stdout);
    assert.ok(crl.json.revoked.some((r) => r.serial === first.serial));
    const serials = crlSerials(dir, join(home, 'ca', 'crl.pem'));
    assert.ok(serials.includes(first.serial), `${first.serial} in ${serials}`);
    assert.ok(!serials.includes(second.serial));
    // and openssl refuses the revoked certificate with that CRL
    writeFileSync(join(dir, 'first.pem'), first.pem);
    const verified = run('openssl', [
      'verify',
      '-crl_check_all',
      '-CRLfile',
      join(home, 'ca', 'crl.pem'),
      '-CAfile',
      join(home, 'ca', 'root.crt'),
      '-untrusted',
      join(home, 'ca', 'intermediate.crt'),
      join(dir, 'first.pem'),
    ]);
    assert.notEqual(verified.status, 0);
    assert.match(verified.stdout + verified.stderr, /certificate revoked/);
    // a new certificate of the forgotten name starts a fresh history
    const again = cli('issue', 'server', 'old', 'old.localhost');
    assert.equal(again.status, 0);
    assert.deepEqual(
      cli('list', '--all')
        .json.certificates.map((c) => c.name)
        .sort(),
      ['keep', 'old'],
    );
  } finally {
    cleanup();
  }
});

test('forget SERIAL drops one certificate; the name keeps its others; a backup is taken first', () => {
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  const cli = (...args) => mcpki(['--home', home, '--json', ...args]);
  try {
    assert.equal(cli('init').status, 0);
    const first = cli('issue', 'server', 'api', 'api.localhost').json.certificate;
    const second = cli('issue', 'server', 'api', 'api.localhost').json.certificate;
    const colons = second.serial.match(/../g).join(':').toLowerCase();
    const human = mcpki(['--home', home, 'forget', colons]);
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stdout, /forgot 1 certificate/);
    assert.match(human.stderr, /still trusted until they expire/);
    assert.deepEqual(
      cli('list', '--all').json.certificates.map((c) => c.serial),
      [first.serial],
    );
    assert.equal(cli('show', 'api').json.serial ?? cli('show', 'api').json.certificate?.serial, first.serial);
    assert.ok(cli('events').json.events.some((e) => e.type === 'certificate.forgotten' && e.serial === second.serial));
    const refused = cli('forget', 'nothing-here');
    assert.equal(refused.status, 10);
    assert.equal(refused.json.error.code, 'NOT_FOUND');
    assert.equal(cli('forget', 'a\u0007b').status, 3, 'control characters are refused');
  } finally {
    cleanup();
  }
});
