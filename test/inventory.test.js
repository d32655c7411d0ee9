// The inventory through the library API with an injected clock, and `list --expiring` through the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createContext, initCa, issueCertificate, listCertificates, findCertificate, revokeCertificate, listEvents } from '../dist/index.js';
import { mcpki, run, tempDir } from './helpers.js';

const DAY = 86_400_000;

test('states and time left follow the injected clock', () => {
  const { dir, cleanup } = tempDir();
  let now = new Date('2030-01-01T00:00:00Z');
  const context = createContext({ home: dir, now: () => now });
  try {
    initCa(context);
    const issued = issueCertificate(context, { kind: 'server', name: 'svc', sans: ['svc.localhost'], days: 30 });
    // backdated five minutes, lifetime exactly 30 days
    assert.equal(issued.certificate.notBefore, '2029-12-31T23:55:00.000Z');
    assert.equal(issued.certificate.notAfter, '2030-01-30T23:55:00.000Z');
    const enddate = run('openssl', ['x509', '-in', issued.paths.cert, '-noout', '-enddate']).stdout;
    assert.match(enddate, /Jan 30 23:55:00 2030 GMT/);

    now = new Date(now.getTime() + 10 * DAY);
    let view = findCertificate(context, 'svc');
    assert.equal(view.state, 'valid');
    assert.ok(Math.abs(view.fractionLeft - 20 / 30) < 0.01);
    assert.deepEqual(listCertificates(context, { expiringWithinMs: 7 * DAY }).map((c) => c.name), []);
    assert.deepEqual(listCertificates(context, { expiringWithinMs: 21 * DAY }).map((c) => c.name), ['svc']);

    now = new Date(now.getTime() + 25 * DAY);
    view = findCertificate(context, 'svc');
    assert.equal(view.state, 'expired');
    assert.ok(view.secondsLeft < 0);

    const again = issueCertificate(context, { kind: 'server', name: 'svc', sans: ['svc.localhost'] });
    assert.equal(findCertificate(context, 'svc').serial, again.certificate.serial, 'a name means its newest certificate');
    assert.equal(findCertificate(context, issued.certificate.serial).state, 'superseded', 'older ones stay findable by serial');
    assert.equal(listCertificates(context).length, 1);
    assert.equal(listCertificates(context, { all: true }).length, 2);

    revokeCertificate(context, 'svc', 'superseded');
    assert.equal(findCertificate(context, 'svc').state, 'revoked');
    assert.deepEqual(listEvents(context).map((e) => [e.type, e.at]), [
      ['ca.created', '2030-01-01T00:00:00.000Z'],
      ['certificate.issued', '2030-01-01T00:00:00.000Z'],
      ['certificate.issued', '2030-02-05T00:00:00.000Z'],
      ['certificate.revoked', '2030-02-05T00:00:00.000Z'],
    ]);
  } finally {
    context.close();
    cleanup();
  }
});

test('mcpki list --expiring, human and JSON', () => {
  const { dir, cleanup } = tempDir();
  try {
    assert.equal(mcpki(['--home', dir, 'init']).status, 0);
    assert.equal(mcpki(['--home', dir, 'issue', 'server', 'short', 'short.localhost', '--days', '10']).status, 0);
    assert.equal(mcpki(['--home', dir, 'issue', 'server', 'long', 'long.localhost']).status, 0);
    const soon = mcpki(['--home', dir, '--json', 'list', '--expiring', '30d']).json.certificates.map((c) => c.name);
    assert.deepEqual(soon, ['short']);
    const all = mcpki(['--home', dir, 'list']);
    assert.equal(all.status, 0);
    const lines = all.stdout.trim().split('\n');
    assert.match(lines[0], /^NAME\s+KIND\s+STATE\s+LEFT/);
    assert.match(lines[1], /^short\s+server\s+valid\s+9d 23h/);
    assert.match(lines[2], /^long\s+server\s+valid\s+89d 23h/);
    assert.ok(!/\u001b\[/.test(all.stdout), 'no colour without a terminal');
    const colored = mcpki(['--home', dir, 'list'], { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } });
    assert.match(colored.stdout, /\u001b\[32m/);
  } finally {
    cleanup();
  }
});
