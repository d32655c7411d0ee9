// The ACME order options in mcpki.yaml, against Pebble: reuseKey across a forced renewal, the dns-01
// resolver/propagation options of the CLI, and a changed profile counting as a change. Keys are compared
// with openssl; validation errors carry file, line and column.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { mcpki, mcpkiAsync, run, tempDir } from './helpers.js';
import { hasPebble, startPebble } from './pebble.js';
import { ConfigError, parseConfig } from '../dist/config/index.js';

const require = createRequire(import.meta.url);
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

function errorsOf(text) {
  try {
    parseConfig(text, 'mcpki.yaml');
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.details;
  }
  assert.fail('the document was accepted');
}

const ACME = `version: 1
defaults:
  issuer: acme:pebble
certificates:
  - name: a
    names: [a.example.com]
`;

test('mcpki.yaml: dns-01 resolver and propagationTimeout, reuseKey and preferredChain are checked with path and line', () => {
  const ok = parseConfig(
    `${ACME}    reuseKey: true\n    preferredChain: ISRG Root X1\n    challenge:\n      type: dns-01\n      hook: [/bin/hook]\n      resolver: 192.0.2.53\n      propagationTimeout: 30s\n`,
    'mcpki.yaml',
  );
  const declared = ok.certificates[0];
  assert.equal(declared.reuseKey, true);
  assert.equal(declared.preferredChain, 'ISRG Root X1');
  assert.deepEqual(declared.challenge, {
    type: 'dns-01',
    hook: ['/bin/hook'],
    resolver: '192.0.2.53:53',
    propagationTimeoutMs: 30_000,
  });
  assert.equal(
    parseConfig(`${ACME}    challenge: { type: dns-01, hook: [h], resolver: "2001:db8::53" }\n`, 'mcpki.yaml')
      .certificates[0].challenge.resolver,
    '[2001:db8::53]:53',
  );
  assert.equal(
    parseConfig(`${ACME}    challenge: { type: dns-01, hook: [h], resolver: "[2001:db8::53]:5353" }\n`, 'mcpki.yaml')
      .certificates[0].challenge.resolver,
    '[2001:db8::53]:5353',
  );

  assert.deepEqual(
    errorsOf(
      `${ACME}    challenge:\n      type: dns-01\n      hook: [h]\n      resolver: ns1.example.com\n      propagationTimeout: soon\n`,
    ),
    [
      'mcpki.yaml:10:17 certificates[0].challenge.resolver: "ns1.example.com" is a host name; expected a DNS server as IP or IP:PORT, e.g. 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53 (the resolver is asked directly, not looked up)',
      'mcpki.yaml:11:27 certificates[0].challenge.propagationTimeout: expected a duration like "120s" (a number and s, m, h, d or w), got the string "soon"',
    ],
  );
  assert.deepEqual(
    errorsOf(`${ACME}    challenge:\n      type: dns-01\n      hook: [h]\n      propagationTimeout: 10s\n`),
    [
      'mcpki.yaml:10:7 certificates[0].challenge.propagationTimeout: propagationTimeout is how long to poll the resolver: add resolver: IP[:PORT]',
    ],
  );
  assert.match(
    errorsOf(`${ACME}    challenge:\n      type: dns-01\n      hook: [h]\n      resolver: "192.0.2.53:99999"\n`)[0],
    /^mcpki\.yaml:10:17 certificates\[0\]\.challenge\.resolver: the port must be from 1 to 65535/,
  );
  assert.deepEqual(errorsOf(`${ACME}    challenge:\n      type: http-01\n      resolver: 192.0.2.53\n`), [
    'mcpki.yaml:9:7 certificates[0].challenge.resolver: resolver is only for dns-01 challenges, not http-01',
  ]);
  assert.deepEqual(
    errorsOf(
      `${ACME}    reuseKey: "yes"\n  - name: b\n    issuer: local\n    names: [b.test]\n    reuseKey: true\n    preferredChain: X\n`,
    ),
    [
      'mcpki.yaml:7:15 certificates[0].reuseKey: expected true or false, got the string "yes"',
      'mcpki.yaml:11:5 certificates[1].reuseKey: reuseKey is only for ACME certificates (issuer: acme:<account>)',
      'mcpki.yaml:12:5 certificates[1].preferredChain: preferredChain is only for ACME certificates (issuer: acme:<account>)',
    ],
  );
});

describe('mcpki.yaml ACME order options against Pebble', { skip }, () => {
  let pebble;
  let work;
  let home;
  let hook;
  const config = () => join(work.dir, 'mcpki.yaml');
  const env = () => ({ CHALLTESTSRV: pebble.challtestsrvUrl });
  const http01 = () => `{ type: http-01, port: ${pebble.httpPort}, host: 127.0.0.1 }`;
  const write = (text) =>
    writeFileSync(config(), `version: 1\ndefaults:\n  issuer: acme:pebble\ncertificates:\n${text}`, { mode: 0o600 });
  const cli = (args) => mcpkiAsync(['--home', home, '--json', ...args, '--config', config()], { env: env() });
  const pubkey = (name) =>
    run('openssl', ['x509', '-in', join(home, 'certs', name, `${name}.crt`), '-noout', '-pubkey']).stdout;

  before(async () => {
    // one alternate root, for preferredChain
    pebble = await startPebble({ env: { PEBBLE_ALTERNATE_ROOTS: '1' } });
    work = tempDir('mcpki-acme-order-config-');
    home = join(work.dir, 'home');
    const registered = mcpki([
      '--home',
      home,
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
    ]);
    assert.equal(registered.status, 0, registered.stderr);
    hook = join(work.dir, 'dns-hook.mjs');
    writeFileSync(
      hook,
      `#!/usr/bin/env node
const [action, , fqdn, value] = process.argv.slice(2);
const body = action === 'present' ? { host: fqdn, value } : { host: fqdn };
const res = await fetch(process.env.CHALLTESTSRV + (action === 'present' ? '/set-txt' : '/clear-txt'), { method: 'POST', body: JSON.stringify(body) });
if (!res.ok) process.exit(1);
`,
    );
    chmodSync(hook, 0o755);
  });
  after(async () => {
    await pebble?.stop();
    work?.cleanup();
  });

  test('reuseKey: true keeps the public key across a forced renewal; without it the key changes', async () => {
    write(
      `  - name: kept\n    names: [kept.test]\n    reuseKey: true\n    challenge: ${http01()}\n  - name: fresh\n    names: [fresh.test]\n    challenge: ${http01()}\n`,
    );
    const applied = await cli(['apply']);
    assert.equal(applied.status, 0, applied.stderr + applied.stdout);
    const before = { kept: pubkey('kept'), fresh: pubkey('fresh') };
    const serial = mcpki(['--home', home, '--json', 'show', 'kept']).json.certificate.serial;
    const renewed = await cli(['renew', '--force', 'kept', '--force', 'fresh']);
    assert.equal(renewed.status, 0, renewed.stderr + renewed.stdout);
    assert.deepEqual(
      JSON.parse(renewed.stdout).items.map((i) => i.action),
      ['renewed', 'renewed'],
    );
    assert.notEqual(
      mcpki(['--home', home, '--json', 'show', 'kept']).json.certificate.serial,
      serial,
      'a new certificate',
    );
    assert.equal(pubkey('kept'), before.kept, 'reuseKey: the same public key');
    assert.notEqual(pubkey('fresh'), before.fresh, 'without reuseKey: a new key');
  });

  test('preferredChain: the alternate chain up to the root with that CN', async () => {
    const root = join(work.dir, 'root-1.pem');
    writeFileSync(root, await managementGet(pebble, '/roots/1'));
    const cn = /CN ?= ?(.*)$/m.exec(run('openssl', ['x509', '-in', root, '-noout', '-subject']).stdout)[1].trim();
    write(`  - name: alt\n    names: [alt.test]\n    preferredChain: "${cn}"\n    challenge: ${http01()}\n`);
    const applied = await cli(['apply']);
    assert.equal(applied.status, 0, applied.stderr + applied.stdout);
    const dir = join(home, 'certs', 'alt');
    const verified = run('openssl', [
      'verify',
      '-CAfile',
      root,
      '-untrusted',
      join(dir, 'alt.chain.pem'),
      join(dir, 'alt.crt'),
    ]);
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
  });

  test('dns-01 in mcpki.yaml polls the resolver it names, for as long as propagationTimeout says', async () => {
    write(
      `  - name: polled\n    names: ["*.polled.test"]\n    challenge:\n      type: dns-01\n      hook: ["${process.execPath}", "${hook}"]\n      resolver: "${pebble.dnsServer}"\n      propagationTimeout: 20s\n` +
        `  - name: unseen\n    names: [unseen.test]\n    challenge:\n      type: dns-01\n      hook: ["${process.execPath}", "${hook}"]\n      resolver: "127.0.0.1:9"\n      propagationTimeout: 2s\n`,
    );
    const started = Date.now();
    const applied = await cli(['apply']);
    const result = JSON.parse(applied.stdout);
    const [polled, unseen] = result.items;
    assert.equal(polled.action, 'issued', JSON.stringify(polled));
    // nothing answers on 127.0.0.1:9: the TXT record is never seen there, and the wait ends after 2 s
    assert.equal(unseen.action, 'failed');
    assert.match(unseen.error.message, /127\.0\.0\.1:9/);
    assert.ok(Date.now() - started < 60_000);
    assert.equal(applied.status, 17, applied.stderr);
  });

  test('a changed profile is a change: renew --dry-run says so, apply renews', async () => {
    write(`  - name: prof\n    names: [prof.test]\n    challenge: ${http01()}\n`);
    assert.equal((await cli(['apply'])).status, 0);
    // a certificate on record with a profile (Pebble 2.4 offers none: the row says what a CA with profiles did)
    const Database = require('better-sqlite3');
    const db = new Database(join(home, 'mcpki.db'));
    db.prepare("UPDATE certificates SET profile = 'shortlived' WHERE name = 'prof'").run();
    db.close();
    let plan = JSON.parse((await cli(['renew', '--dry-run'])).stdout).plan;
    assert.deepEqual(
      plan.map((p) => [p.name, p.due, p.code, p.reason]),
      [['prof', true, 'changed', 'profile changed (shortlived → none): reissue now']],
    );
    const serial = plan[0].serial;
    const applied = JSON.parse((await cli(['apply'])).stdout);
    assert.equal(applied.items[0].action, 'renewed', JSON.stringify(applied.items[0]));
    assert.notEqual(applied.items[0].serial, serial);
    plan = JSON.parse((await cli(['renew', '--dry-run'])).stdout).plan;
    assert.equal(plan[0].due, false, plan[0].reason);

    // asking for a profile: due, and the order asks the CA for it (Pebble 2.4 has none, so it says so)
    write(`  - name: prof\n    names: [prof.test]\n    profile: shortlived\n    challenge: ${http01()}\n`);
    plan = JSON.parse((await cli(['renew', '--dry-run'])).stdout).plan;
    assert.deepEqual(
      [plan[0].due, plan[0].code, plan[0].reason],
      [true, 'changed', 'profile changed (none → shortlived): reissue now'],
    );
    const asked = JSON.parse((await cli(['apply'])).stdout).items[0];
    assert.equal(asked.action, 'failed');
    assert.match(asked.error.message, /does not support profiles \(asked for "shortlived"\)/);
  });
});
