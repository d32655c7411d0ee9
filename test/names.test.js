// Name classification and constraint semantics (unit level; the end-to-end checks are in tls.test.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifySan, parsePermitted, McpkiError } from '../dist/index.js';
import { checkPermitted } from '../dist/pki/constraints.js';
import { isIP } from '../dist/pki/names.js';
import net from 'node:net';

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
  for (const bad of ['', 'a b.test', '-a.test', 'a-.test', 'a..test', '*.*.test', 'foo.*.test', '*.test', 'x'.repeat(64) + '.test', '300.1.1.1', 'spiffe://UPPER/x', 'user@@x.test', 'a/b', 'under_score.test']) {
    assert.throws(() => classifySan(bad), (error) => error instanceof McpkiError && error.code === 'INVALID_NAME' && Boolean(error.hint), JSON.stringify(bad));
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
  assert.equal(ok('uri', 'spiffe://anything/x'), true, 'a name type without subtrees is unconstrained');
  assert.throws(() => parsePermitted(['10.0.0.1/8']), /host bits are set/);
  assert.throws(() => parsePermitted(['10.0.0.0/33']), /prefix must be 0-32/);
});

test('isIP agrees with node:net (zone IDs aside)', () => {
  for (const text of ['1.2.3.4', '01.2.3.4', '256.1.1.1', '1.2.3', '::1', '::', '::ffff:1.2.3.4', '1::2::3', '12345::', '0:0:0:0:0:0:0:1', '1:2:3:4:5:6:7:8:9', 'abcd', 'a.b.c.d', ':::', 'fe80::1']) {
    assert.equal(isIP(text), net.isIP(text), text);
  }
  assert.equal(isIP('fe80::1%eth0'), 0, 'a zone ID is not part of an address in a certificate');
});
