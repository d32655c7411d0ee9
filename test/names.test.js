// Name classification and constraint semantics (unit level; the end-to-end checks are in tls.test.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifySan, parsePermitted, McpkiError } from '../dist/index.js';
import { checkPermitted } from '../dist/pki/constraints.js';
import { isIP } from '../dist/pki/names.js';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { mcpki, mcpkiAsync, tempDir } from './helpers.js';

test('SANs are classified and normalised', () => {
  const cases = [
    ['localhost', 'dns', 'localhost'],
    ['MCP.Example.TEST.', 'dns', 'mcp.example.test'],
    ['Bücher.test', 'dns', 'xn--bcher-kva.test'],
    ['*.api.test', 'dns', '*.api.test'],
    ['127.0.0.1', 'ip', '127.0.0.1'],
    ['::1', 'ip', '::1'],
    ['[0:0:0:0:0:0:0:1]', 'ip', '::1'],
    ['FE80:0:0:0:0:0:0:1', 'ip', 'fe80::1'],
    ['spiffe://example.test/mcp/server', 'uri', 'spiffe://example.test/mcp/server'],
    ['https://mcp.example.test/path', 'uri', 'https://mcp.example.test/path'],
    ['alice@Bücher.test', 'email', 'alice@xn--bcher-kva.test'],
  ];
  for (const [input, type, value] of cases) assert.deepEqual(classifySan(input), { type, value }, input);
});

test('invalid names are refused with INVALID_NAME', () => {
  for (const bad of [
    '',
    'a b.test',
    '-a.test',
    'a-.test',
    'a..test',
    '*.*.test',
    'foo.*.test',
    '*.test',
    'x'.repeat(64) + '.test',
    '300.1.1.1',
    'spiffe://UPPER/x',
    'user@@x.test',
    'a/b',
    'under_score.test',
  ]) {
    assert.throws(
      () => classifySan(bad),
      (error) => error instanceof McpkiError && error.code === 'INVALID_NAME' && Boolean(error.hint),
      JSON.stringify(bad),
    );
  }
});

test('constraint semantics match OpenSSL: "x" covers x and below, ".x" only below', () => {
  const permitted = parsePermitted(['localhost', '.test', '10.0.0.0/8', 'fd00::/8']);
  const ok = (type, value) => checkPermitted({ type, value }, permitted) === null;
  assert.equal(ok('dns', 'localhost'), true);
  assert.equal(ok('dns', 'a.localhost'), true);
  assert.equal(ok('dns', 'evillocalhost'), false);
  assert.equal(ok('dns', 'a.test'), true);
  assert.equal(ok('dns', 'test'), false);
  assert.equal(ok('dns', 'example.com'), false);
  assert.equal(ok('ip', '10.255.0.1'), true);
  assert.equal(ok('ip', '11.0.0.1'), false);
  assert.equal(ok('ip', 'fd12::1'), true);
  assert.equal(ok('ip', '::1'), false);
  assert.equal(ok('uri', 'spiffe://anything/x'), false, 'URIs are constrained by the same names');
  assert.equal(ok('uri', 'https://a.test/x'), true);
  assert.equal(ok('uri', 'https://localhost:8443/'), true);
  assert.equal(ok('email', 'ceo@bigcorp.com'), false);
  assert.equal(ok('email', 'a@b.test'), true);
  const legacy = { dns: ['.test'], ip: ['127.0.0.0/8'] };
  assert.equal(
    checkPermitted({ type: 'uri', value: 'spiffe://anything/x' }, legacy),
    null,
    'a CA without URI subtrees leaves URIs unconstrained, as RFC 5280 says',
  );
  assert.throws(() => parsePermitted(['10.0.0.1/8']), /host bits are set/);
  assert.throws(() => parsePermitted(['10.0.0.0/33']), /prefix must be 0-32/);
});

test('isIP agrees with node:net (zone IDs aside)', () => {
  for (const text of [
    '1.2.3.4',
    '01.2.3.4',
    '256.1.1.1',
    '1.2.3',
    '::1',
    '::',
    '::ffff:1.2.3.4',
    '1::2::3',
    '12345::',
    '0:0:0:0:0:0:0:1',
    '1:2:3:4:5:6:7:8:9',
    'abcd',
    'a.b.c.d',
    ':::',
    'fe80::1',
  ]) {
    assert.equal(isIP(text), net.isIP(text), text);
  }
  assert.equal(isIP('fe80::1%eth0'), 0, 'a zone ID is not part of an address in a certificate');
});

test('URI and e-mail subtrees follow RFC 5280: "x" is the host x, ".x" every host below; a DNS permit gives both', () => {
  const permitted = parsePermitted(['localhost', '.test', 'corp.example', 'spiffe://prod.bigcorp.example']);
  assert.deepEqual(permitted.uri, [
    'localhost',
    '.localhost',
    '.test',
    'corp.example',
    '.corp.example',
    'prod.bigcorp.example',
  ]);
  assert.deepEqual(permitted.email, ['localhost', '.localhost', '.test', 'corp.example', '.corp.example']);
  assert.deepEqual(permitted.dns, ['localhost', '.test', 'corp.example'], 'a SPIFFE trust domain adds no DNS subtree');
  const ok = (type, value) => checkPermitted({ type, value }, permitted) === null;
  assert.equal(ok('uri', 'spiffe://prod.bigcorp.example/mcp'), true);
  assert.equal(
    ok('uri', 'spiffe://staging.bigcorp.example/mcp'),
    false,
    'a trust domain is one host, not its siblings',
  );
  assert.equal(ok('uri', 'spiffe://x.prod.bigcorp.example/mcp'), false, 'nor its subdomains');
  assert.equal(ok('uri', 'https://api.corp.example/'), true);
  assert.equal(ok('uri', 'https://corp.example/'), true);
  assert.equal(ok('uri', 'https://evilcorp.example/'), false);
  assert.equal(ok('uri', 'https://test/'), false);
  assert.equal(ok('uri', 'https://127.0.0.1/'), false, 'an IP host cannot match a URI constraint (Go refuses it)');
  assert.equal(ok('uri', 'https://[::1]/'), false);
  assert.equal(ok('uri', 'file:///etc/passwd'), false, 'no host, nothing to match');
  assert.equal(ok('email', 'alice@corp.example'), true);
  assert.equal(ok('email', 'alice@mail.corp.example'), true);
  assert.equal(ok('email', 'alice@corp.example.evil.com'), false);
  assert.match(checkPermitted({ type: 'email', value: 'ceo@bigcorp.com' }, permitted), /e-mail addresses at/);
  for (const bad of ['https://prod.bigcorp.example', 'spiffe://td/path', 'spiffe://td:8443', 'spiffe://*.td']) {
    assert.throws(
      () => parsePermitted([bad]),
      (e) => e instanceof McpkiError && e.code === 'INVALID_NAME' && Boolean(e.hint),
      bad,
    );
  }
});

test('non-canonical IPv4 forms are refused as ambiguous, naming the canonical address (not "outside the constraints")', () => {
  for (const [input, canonical] of [
    ['127.1', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['017.0.0.1', '15.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['127.0.1', '127.0.0.1'],
  ]) {
    assert.throws(
      () => classifySan(input),
      (e) =>
        e instanceof McpkiError &&
        e.code === 'INVALID_NAME' &&
        e.exitCode === 3 &&
        e.message.includes('ambiguous') &&
        e.message.includes(input) &&
        e.hint === `write the address as ${canonical}`,
      input,
    );
    assert.throws(
      () => parsePermitted([input]),
      (e) => e.code === 'INVALID_NAME' && /ambiguous/.test(e.message),
      `--permit ${input}`,
    );
  }
  assert.throws(
    () => parsePermitted(['127.1/8']),
    (e) => e.code === 'INVALID_NAME' && /ambiguous/.test(e.message) && /127\.0\.0\.0\/8|127\.0\.0\.1\/8/.test(e.hint),
  );
  assert.throws(
    () => classifySan('alice@127.1'),
    (e) => e.code === 'INVALID_NAME' && /ambiguous/.test(e.message),
  );
  assert.throws(
    () => classifySan('alice@127.0.0.1'),
    (e) => e.code === 'INVALID_NAME' && /IP address, not a host name/.test(e.message),
  );
  assert.deepEqual(classifySan('127.0.0.1'), { type: 'ip', value: '127.0.0.1' });
  assert.deepEqual(classifySan('v1.test'), { type: 'dns', value: 'v1.test' }, 'a digit inside a label is fine');
});

test('a --permit that removes a constraint is refused unless allowed explicitly', () => {
  for (const broad of ['0.0.0.0/0', '::/0', '0.0.0.0/1', '128.0.0.0/4', '::/6', 'com', '.com', '.', 'org.', 'COM']) {
    assert.throws(
      () => parsePermitted([broad]),
      (e) =>
        e instanceof McpkiError &&
        e.code === 'INVALID_NAME' &&
        e.message.includes(broad) &&
        /--allow-broad-permit/.test(e.hint),
      broad,
    );
    assert.doesNotThrow(() => parsePermitted([broad], { allowBroad: true }), broad);
  }
  for (const fine of [
    '10.0.0.0/8',
    'fc00::/7',
    '.corp.example',
    'example.com',
    'localhost',
    '.internal',
    'lan',
    '192.168.0.0/16',
  ]) {
    assert.doesNotThrow(() => parsePermitted([fine]), fine);
  }
  const everything = parsePermitted(['.'], { allowBroad: true });
  assert.equal(
    checkPermitted({ type: 'dns', value: 'www.google.com' }, everything),
    null,
    '"." with the flag is an empty subtree: every name',
  );
  assert.equal(checkPermitted({ type: 'email', value: 'a@google.com' }, everything), null);
});

test('ten parallel inits on a fresh home: exactly one wins, the others exit 5 and nothing is replaced', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    const results = await Promise.all(Array.from({ length: 10 }, () => mcpkiAsync(['--home', home, '--json', 'init'])));
    // an init that starts after the winner finished finds the same CA and exits 0 with existing: true
    const winners = results.filter((r) => r.status === 0 && !JSON.parse(r.stdout).existing);
    assert.equal(winners.length, 1, results.map((r) => `${r.status}: ${r.stdout.slice(0, 200)}`).join('\n'));
    const won = JSON.parse(winners[0].stdout);
    for (const loser of results.filter((r) => r !== winners[0])) {
      if (loser.status === 0) {
        assert.equal(JSON.parse(loser.stdout).root.fingerprint, won.root.fingerprint);
        continue;
      }
      assert.equal(loser.status, 5, loser.stdout + loser.stderr);
      assert.equal(JSON.parse(loser.stdout).error.code, 'CA_EXISTS');
    }
    const onDisk = new X509Certificate(readFileSync(join(home, 'ca', 'root.crt')));
    assert.equal(onDisk.fingerprint256, won.root.fingerprint, 'the CA on disk is the one the winner reported');
    const intermediate = new X509Certificate(readFileSync(join(home, 'ca', 'intermediate.crt')));
    assert.ok(intermediate.verify(onDisk.publicKey), 'the intermediate on disk was signed by the root on disk');
    const shown = mcpki(['--home', home, '--json', 'ca', 'show']);
    assert.equal(shown.status, 0, shown.stderr);
    const events = mcpki(['--home', home, '--json', 'events']).json.events.filter((e) => e.type === 'ca.created');
    assert.equal(events.length, 1);
    const issued = mcpki(['--home', home, 'issue', 'server', 'after-race', 'localhost', '--out', join(dir, 'out')]);
    assert.equal(issued.status, 0, issued.stderr);
  } finally {
    cleanup();
  }
});

test('init refuses a broad --permit without --allow-broad-permit (exit 3, nothing created) and warns with it', () => {
  const { dir, cleanup } = tempDir();
  try {
    const refused = mcpki(['--home', join(dir, 'a'), 'init', '--permit', '0.0.0.0/0']);
    assert.equal(refused.status, 3, refused.stderr);
    assert.match(refused.stderr, /error: --permit 0\.0\.0\.0\/0 permits every IPv4 address/);
    assert.match(refused.stderr, /hint: .*--allow-broad-permit/);
    const allowed = mcpki([
      '--home',
      join(dir, 'b'),
      'init',
      '--permit',
      '0.0.0.0/0',
      '--permit',
      'com',
      '--allow-broad-permit',
    ]);
    assert.equal(allowed.status, 0, allowed.stderr);
    assert.match(allowed.stderr, /warning: --permit 0\.0\.0\.0\/0, com barely limits/);
    const wide = mcpki([
      '--home',
      join(dir, 'b'),
      'issue',
      'server',
      'wide',
      'www.example.com',
      '8.8.8.8',
      '--out',
      join(dir, 'out'),
    ]);
    assert.equal(wide.status, 0, wide.stderr);
  } finally {
    cleanup();
  }
});

test('an empty PKCS#12 password is refused before anything is written (issue and the p12 deploy target)', async () => {
  const { encodePkcs12 } = await import('../dist/pki/pkcs12.js');
  const { generateKeyPairSync } = await import('node:crypto');
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  assert.throws(
    () => encodePkcs12({ key: privateKey, certificates: [Buffer.from([0x30, 0])], password: '' }),
    (e) => e instanceof McpkiError && e.code === 'PASSPHRASE_MISSING' && e.exitCode === 12,
  );
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const { writeFileSync, existsSync } = await import('node:fs');
    writeFileSync(join(dir, 'pass'), '\n');
    const refused = mcpki([
      '--home',
      home,
      'issue',
      'server',
      'p12',
      'localhost',
      '--p12-password-file',
      join(dir, 'pass'),
      '--out',
      join(dir, 'out'),
    ]);
    assert.equal(refused.status, 12, refused.stderr);
    assert.match(refused.stderr, /error: the PKCS#12 password is empty/);
    assert.equal(existsSync(join(dir, 'out')), false);
    assert.equal(mcpki(['--home', home, '--json', 'list']).json.certificates.length, 0);
  } finally {
    cleanup();
  }
});
