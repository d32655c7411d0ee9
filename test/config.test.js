// mcpki.yaml: the parser and validator (src/config/) and the JSON Schema for editors (schema/mcpki.schema.json).
// Every invalid case asserts the exact message: file, line:column, YAML path and text.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { mcpki, mcpkiAsync, ROOT, run, tempDir } from './helpers.js';
import { CONFIG_KEYS, ConfigError, TARGET_TYPES, loadConfig, parseConfig } from '../dist/config/index.js';
import { McpkiError } from '../dist/errors.js';
import { KEY_TYPES } from '../dist/pki/keys.js';

const FILE = '/srv/app/mcpki.yaml';

/** The error list of an invalid document (fails when it parses). */
function errorsOf(text, fileName = 'mcpki.yaml') {
  try {
    parseConfig(text, fileName);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error.details;
  }
  assert.fail('the document was accepted');
}

const COMPLETE = `version: 1
defaults:
  issuer: local
  key: ec-p384
  days: 60
  renewBefore: 25%
  hooks: { timeout: 45s }
certificates:
  - name: dev-api
    names: [localhost, Bücher.test, 127.0.0.1, "::1"]
    renewBefore: 12h
    targets:
      - { type: cert, path: out/dev-api.crt }
      - { type: key, path: /etc/dev/dev-api.key, mode: "0640", owner: root, group: 101 }
      - { type: chain, path: out/chain.pem }
      - { type: fullchain, path: ./out/fullchain.pem, mode: "644" }
      - { type: combined, path: ../haproxy/dev-api.pem }
      - { type: p12, path: out/dev-api.p12, passwordFile: secrets/p12.pass }
      - { type: k8s-secret, path: k8s/secret.yaml, namespace: web }
    hooks:
      reload: [systemctl, reload, nginx]
  - name: agent
    kind: client
    key: ed25519
    days: 7
    names: [agent@example.test, "spiffe://example.test/agent"]
  - name: public
    issuer: acme:le-prod
    profile: shortlived
    names: [api.example.com, 192.0.2.10]
    challenge: { type: tls-alpn-01, port: 8443, host: 0.0.0.0 }
    renewBefore: "1/2"
    hooks:
      reload:
        - [systemctl, reload, haproxy]
        - [/usr/local/bin/notify, "renewed public"]
      timeout: 2m
      verify: "[::1]:443"
  - name: wild
    issuer: acme:le-prod
    names: ["*.example.com"]
    challenge: { type: dns-01, hook: [/usr/local/bin/dns-hook, --zone, example.com], timeout: 90s, propagationSeconds: 20 }
    renewBefore: 0.3
  - name: web
    issuer: acme:le-prod
    names: [www.example.com]
    challenge: { type: http-01, webroot: /var/www/html }
  - name: plain
    issuer: acme:le-prod
    names: [plain.example.com]
`;

describe('mcpki.yaml: valid files', () => {
  test('a complete file parses to the normalised object', () => {
    const config = parseConfig(COMPLETE, FILE);
    const hooks = (reload = []) => ({ reload, timeoutMs: 45_000 });
    assert.deepEqual(config, {
      version: 1,
      file: FILE,
      dir: '/srv/app',
      defaults: {
        issuer: { type: 'local' },
        key: 'ec-p384',
        days: 60,
        renewBefore: { type: 'fraction', fraction: 0.25 },
        hookTimeoutMs: 45_000,
      },
      certificates: [
        {
          name: 'dev-api',
          issuer: { type: 'local' },
          names: [
            { type: 'dns', value: 'localhost' },
            { type: 'dns', value: 'xn--bcher-kva.test' },
            { type: 'ip', value: '127.0.0.1' },
            { type: 'ip', value: '::1' },
          ],
          kind: 'server',
          key: 'ec-p384',
          days: 60,
          renewBefore: { type: 'duration', ms: 12 * 3_600_000 },
          targets: [
            { type: 'cert', path: '/srv/app/out/dev-api.crt', pathAsWritten: 'out/dev-api.crt', mode: 0o644 },
            {
              type: 'key',
              path: '/etc/dev/dev-api.key',
              pathAsWritten: '/etc/dev/dev-api.key',
              mode: 0o640,
              owner: 'root',
              group: 101,
            },
            { type: 'chain', path: '/srv/app/out/chain.pem', pathAsWritten: 'out/chain.pem', mode: 0o644 },
            {
              type: 'fullchain',
              path: '/srv/app/out/fullchain.pem',
              pathAsWritten: './out/fullchain.pem',
              mode: 0o644,
            },
            {
              type: 'combined',
              path: '/srv/haproxy/dev-api.pem',
              pathAsWritten: '../haproxy/dev-api.pem',
              mode: 0o600,
            },
            {
              type: 'p12',
              path: '/srv/app/out/dev-api.p12',
              pathAsWritten: 'out/dev-api.p12',
              mode: 0o600,
              passwordFile: '/srv/app/secrets/p12.pass',
            },
            {
              type: 'k8s-secret',
              path: '/srv/app/k8s/secret.yaml',
              pathAsWritten: 'k8s/secret.yaml',
              mode: 0o600,
              namespace: 'web',
              secretName: 'dev-api',
            },
          ],
          hooks: hooks([['systemctl', 'reload', 'nginx']]),
          line: 9,
        },
        {
          name: 'agent',
          issuer: { type: 'local' },
          names: [
            { type: 'email', value: 'agent@example.test' },
            { type: 'uri', value: 'spiffe://example.test/agent' },
          ],
          kind: 'client',
          key: 'ed25519',
          days: 7,
          renewBefore: { type: 'fraction', fraction: 0.25 },
          targets: [],
          hooks: hooks(),
          line: 22,
        },
        {
          name: 'public',
          issuer: { type: 'acme', account: 'le-prod' },
          names: [
            { type: 'dns', value: 'api.example.com' },
            { type: 'ip', value: '192.0.2.10' },
          ],
          kind: 'server',
          key: 'ec-p384',
          profile: 'shortlived',
          challenge: { type: 'tls-alpn-01', port: 8443, host: '0.0.0.0' },
          renewBefore: { type: 'fraction', fraction: 0.5 },
          targets: [],
          hooks: {
            reload: [
              ['systemctl', 'reload', 'haproxy'],
              ['/usr/local/bin/notify', 'renewed public'],
            ],
            timeoutMs: 120_000,
            verify: { host: '::1', port: 443 },
          },
          line: 27,
        },
        {
          name: 'wild',
          issuer: { type: 'acme', account: 'le-prod' },
          names: [{ type: 'dns', value: '*.example.com' }],
          kind: 'server',
          key: 'ec-p384',
          challenge: {
            type: 'dns-01',
            hook: ['/usr/local/bin/dns-hook', '--zone', 'example.com'],
            timeoutMs: 90_000,
            propagationSeconds: 20,
          },
          renewBefore: { type: 'fraction', fraction: 0.3 },
          targets: [],
          hooks: hooks(),
          line: 39,
        },
        {
          name: 'web',
          issuer: { type: 'acme', account: 'le-prod' },
          names: [{ type: 'dns', value: 'www.example.com' }],
          kind: 'server',
          key: 'ec-p384',
          challenge: { type: 'http-01', webroot: '/var/www/html' },
          renewBefore: { type: 'fraction', fraction: 0.25 },
          targets: [],
          hooks: hooks(),
          line: 44,
        },
        {
          name: 'plain',
          issuer: { type: 'acme', account: 'le-prod' },
          names: [{ type: 'dns', value: 'plain.example.com' }],
          kind: 'server',
          key: 'ec-p384',
          challenge: { type: 'http-01', port: 80 },
          renewBefore: { type: 'fraction', fraction: 0.25 },
          targets: [],
          hooks: hooks(),
          line: 48,
        },
      ],
    });
  });

  test('built-in defaults: local issuer, ec-p256, 90 days, server, 30 s hooks', () => {
    const config = parseConfig('version: 1\ncertificates:\n  - name: a\n    names: [a.test]\n', FILE);
    assert.deepEqual(config.defaults, { issuer: { type: 'local' }, key: 'ec-p256', days: 90, hookTimeoutMs: 30_000 });
    assert.deepEqual(config.certificates[0], {
      name: 'a',
      issuer: { type: 'local' },
      names: [{ type: 'dns', value: 'a.test' }],
      kind: 'server',
      key: 'ec-p256',
      days: 90,
      targets: [],
      hooks: { reload: [], timeoutMs: 30_000 },
      line: 3,
    });
    assert.deepEqual(parseConfig('version: 1\ncertificates: []\n', FILE).certificates, []);
  });

  test('anchors and aliases are followed', () => {
    const config = parseConfig(
      `version: 1
certificates:
  - name: a
    names: &names [a.test, b.test]
    hooks: &hooks { reload: [systemctl, reload, nginx] }
  - name: b
    names: *names
    hooks: *hooks
`,
      FILE,
    );
    assert.deepEqual(config.certificates[1].names, config.certificates[0].names);
    assert.deepEqual(config.certificates[1].hooks.reload, [['systemctl', 'reload', 'nginx']]);
  });

  test('a crl: section is normalised; without one there is no crl key; {} takes every default', () => {
    const config = parseConfig(
      `version: 1
defaults:
  hooks: { timeout: 45s }
certificates: []
crl:
  days: 3
  refreshBefore: 12h
  targets:
    - { path: /etc/nginx/mcpki-crl.pem }
    - { path: haproxy/crl.pem, mode: "0640", owner: root, group: 99 }
  hooks:
    reload: [[systemctl, reload, nginx], [systemctl, reload, haproxy]]
`,
      FILE,
    );
    assert.deepEqual(config.crl, {
      days: 3,
      refreshBefore: { type: 'duration', ms: 12 * 3_600_000 },
      targets: [
        { path: '/etc/nginx/mcpki-crl.pem', pathAsWritten: '/etc/nginx/mcpki-crl.pem', mode: 0o644 },
        { path: '/srv/app/haproxy/crl.pem', pathAsWritten: 'haproxy/crl.pem', mode: 0o640, owner: 'root', group: 99 },
      ],
      hooks: {
        reload: [
          ['systemctl', 'reload', 'nginx'],
          ['systemctl', 'reload', 'haproxy'],
        ],
        timeoutMs: 45_000,
      },
      line: 6,
    });
    assert.equal('crl' in parseConfig('version: 1\ncertificates: []\n', FILE), false);
    assert.deepEqual(parseConfig('version: 1\ncertificates: []\ncrl: {}\n', FILE).crl, {
      days: 7,
      refreshBefore: { type: 'fraction', fraction: 0.5 },
      targets: [],
      hooks: { reload: [], timeoutMs: 30_000 },
      line: 3,
    });
    const single = parseConfig(
      'version: 1\ncertificates: []\ncrl:\n  refreshBefore: 25%\n  hooks: { reload: [nginx, -s, reload], timeout: 5s }\n',
      FILE,
    ).crl;
    assert.deepEqual(single.hooks, { reload: [['nginx', '-s', 'reload']], timeoutMs: 5_000 });
    assert.deepEqual(single.refreshBefore, { type: 'fraction', fraction: 0.25 });
  });

  test('templates/mcpki.example.yaml is valid', () => {
    const path = join(ROOT, 'templates', 'mcpki.example.yaml');
    const config = loadConfig(path);
    assert.deepEqual(
      config.certificates.map((c) => c.name),
      ['demo-mcp', 'demo-agent', 'public-api', 'public-wild'],
    );
    const api = config.certificates.find((c) => c.name === 'public-api');
    assert.deepEqual(api.issuer, { type: 'acme', account: 'letsencrypt' });
    assert.equal(api.targets[2].mode, 0o640);
    assert.equal(config.certificates[0].targets[0].path, join(ROOT, 'templates', 'certs', 'demo-mcp.crt'));
    // every target type appears in the example
    assert.deepEqual(new Set(config.certificates.flatMap((c) => c.targets.map((t) => t.type))), new Set(TARGET_TYPES));
    assert.equal(config.crl.days, 7);
    assert.ok(
      config.crl.targets.length > 0 && config.crl.hooks.reload.length > 0,
      'the example shows a CRL copy and its reload hook',
    );
  });
});

// Each case: a document and its one exact error line.
const V = 'version: 1\ncertificates:\n';
const INVALID = [
  [
    'unknown key at the top level',
    `${V}  - name: a\n    names: [a.test]\ncertificate: []\n`,
    'mcpki.yaml:5:1 certificate: unknown key; did you mean "certificates"?',
  ],
  [
    'unknown key without a close match',
    `version: 1\nfoo: 1\ncertificates: []\n`,
    'mcpki.yaml:2:1 foo: unknown key; the declaration file takes: version, defaults, certificates, crl, acmeServer, store',
  ],
  [
    'unknown key in a certificate',
    `${V}  - name: a\n    names: [a.test]\n    renew_before: 30d\n`,
    'mcpki.yaml:5:5 certificates[0].renew_before: unknown key; did you mean "renewBefore"?',
  ],
  [
    'unknown key in a target',
    `${V}  - name: a\n    names: [a.test]\n    targets:\n      - { type: cert, path: a.crt, mdoe: "0644" }\n`,
    'mcpki.yaml:6:36 certificates[0].targets[0].mdoe: unknown key; did you mean "mode"?',
  ],
  [
    'unknown key in hooks',
    `${V}  - name: a\n    names: [a.test]\n    hooks:\n      relaod: [true]\n`,
    'mcpki.yaml:6:7 certificates[0].hooks.relaod: unknown key; did you mean "reload"?',
  ],
  [
    'mode as a number',
    `${V}  - name: a\n    names: [a.test]\n    targets:\n      - type: cert\n        path: a.crt\n        mode: 0640\n`,
    'mcpki.yaml:8:15 certificates[0].targets[0].mode: expected an octal string like "0640", got the number 0640: quote it (mode: "0640"); a bare number is ambiguous in YAML',
  ],
  [
    'mode "999"',
    `${V}  - name: a\n    names: [a.test]\n    targets:\n      - { type: cert, path: a.crt, mode: "999" }\n`,
    'mcpki.yaml:6:42 certificates[0].targets[0].mode: expected an octal string like "0640", got the string "999"',
  ],
  [
    'a key readable by everyone',
    `${V}  - name: a\n    names: [a.test]\n    targets:\n      - { type: key, path: a.key, mode: "0644" }\n`,
    'mcpki.yaml:6:41 certificates[0].targets[0].mode: a key target holds the private key: it must not be readable or writable by others (use "0600" or "0640")',
  ],
  [
    'missing name',
    `${V}  - names: [a.test]\n`,
    'mcpki.yaml:3:5 certificates[0].name: missing; every certificate needs a name, e.g. name: my-mcp',
  ],
  [
    'bad name',
    `${V}  - name: my/cert\n    names: [a.test]\n`,
    'mcpki.yaml:3:11 certificates[0].name: invalid certificate name "my/cert": use letters, digits, ".", "_" and "-" (it becomes a file name), e.g. my-mcp',
  ],
  [
    'bad DNS name',
    `${V}  - name: a\n    names: [ok.test, -bad.test]\n`,
    'mcpki.yaml:4:22 certificates[0].names[1]: invalid name "-bad.test": label "-bad" is not a valid host name label',
  ],
  [
    'the same name twice',
    `${V}  - name: a\n    names: [a.test, A.TEST]\n`,
    'mcpki.yaml:4:21 certificates[0].names[1]: "A.TEST" is listed twice (also names[0])',
  ],
  [
    'unknown issuer',
    `${V}  - name: a\n    issuer: letsencrypt\n    names: [a.test]\n`,
    'mcpki.yaml:4:13 certificates[0].issuer: unknown issuer "letsencrypt": write local (the mcpki CA) or acme:<account>, e.g. acme:letsencrypt',
  ],
  [
    'days on an ACME certificate',
    `${V}  - name: a\n    issuer: acme:le\n    names: [a.example.com]\n    days: 90\n`,
    'mcpki.yaml:6:5 certificates[0].days: days is only for local certificates: an ACME CA decides the lifetime (choose a profile instead)',
  ],
  [
    'days: 400',
    `${V}  - name: a\n    names: [a.test]\n    days: 400\n`,
    'mcpki.yaml:5:11 certificates[0].days: expected a number of days from 1 to 398, got 400',
  ],
  [
    'days as a string',
    `${V}  - name: a\n    names: [a.test]\n    days: "90"\n`,
    'mcpki.yaml:5:11 certificates[0].days: expected a number of days from 1 to 398, got the string "90"',
  ],
  [
    'profile on a local certificate',
    `${V}  - name: a\n    names: [a.test]\n    profile: shortlived\n`,
    'mcpki.yaml:5:5 certificates[0].profile: profile is only for ACME certificates (issuer: acme:<account>); use days for a local certificate',
  ],
  [
    'p12 without passwordFile',
    `${V}  - name: a\n    names: [a.test]\n    targets:\n      - { type: p12, path: a.p12 }\n`,
    'mcpki.yaml:6:9 certificates[0].targets[0].passwordFile: missing; a p12 target needs passwordFile: the file holding the PKCS#12 password',
  ],
  [
    'passwordFile on a cert target',
    `${V}  - name: a\n    names: [a.test]\n    targets:\n      - { type: cert, path: a.crt, passwordFile: p }\n`,
    'mcpki.yaml:6:36 certificates[0].targets[0].passwordFile: passwordFile is only for p12 targets',
  ],
  [
    'unknown target type',
    `${V}  - name: a\n    names: [a.test]\n    targets:\n      - { type: pem, path: a.pem }\n`,
    'mcpki.yaml:6:17 certificates[0].targets[0].type: expected one of cert, key, chain, fullchain, combined, p12, k8s-secret, got "pem"',
  ],
  [
    'reload as a string',
    `${V}  - name: a\n    names: [a.test]\n    hooks:\n      reload: systemctl reload nginx\n`,
    'mcpki.yaml:6:15 certificates[0].hooks.reload: expected a command as a list of arguments (no shell), got a string; write it as a list: ["systemctl", "reload", "nginx"]',
  ],
  [
    'verify "nohost"',
    `${V}  - name: a\n    names: [a.test]\n    hooks:\n      verify: nohost\n`,
    'mcpki.yaml:6:15 certificates[0].hooks.verify: expected host:port, e.g. "localhost:8443" or "[::1]:8443", got "nohost"',
  ],
  [
    'hook timeout as a number',
    `${V}  - name: a\n    names: [a.test]\n    hooks:\n      timeout: 30\n`,
    'mcpki.yaml:6:16 certificates[0].hooks.timeout: expected a duration like "30s" (a number and s, m, h, d or w), got the number 30',
  ],
  [
    'duplicate certificate names',
    `${V}  - name: a\n    names: [a.test]\n  - name: a\n    names: [b.test]\n`,
    'mcpki.yaml:5:11 certificates[1].name: duplicate certificate name "a" (first declared at line 3)',
  ],
  [
    'duplicate target paths',
    `${V}  - name: a\n    names: [a.test]\n    targets: [{ type: cert, path: out/a.pem }]\n  - name: b\n    names: [b.test]\n    targets: [{ type: key, path: ./out/../out/a.pem }]\n`,
    'mcpki.yaml:8:34 certificates[1].targets[0].path: "./out/../out/a.pem" is also written by certificates[0].targets[0] (line 5)',
  ],
  [
    'dns-01 without hook',
    `${V}  - name: a\n    issuer: acme:le\n    names: [a.example.com]\n    challenge: { type: dns-01 }\n`,
    'mcpki.yaml:6:16 certificates[0].challenge.hook: missing; dns-01 needs the hook that adds and removes TXT records, e.g. hook: ["/usr/local/bin/my-dns-hook"]',
  ],
  [
    'a wildcard with http-01',
    `${V}  - name: a\n    issuer: acme:le\n    names: ["*.example.com"]\n`,
    'mcpki.yaml:5:13 certificates[0].names[0]: a wildcard name needs a dns-01 challenge (http-01 cannot validate it)',
  ],
  [
    'challenge on a local certificate',
    `${V}  - name: a\n    names: [a.test]\n    challenge: { type: http-01 }\n`,
    'mcpki.yaml:5:5 certificates[0].challenge: challenge is only for ACME certificates (issuer: acme:<account>)',
  ],
  [
    'a key of another challenge type',
    `${V}  - name: a\n    issuer: acme:le\n    names: [a.example.com]\n    challenge: { type: tls-alpn-01, webroot: /var/www }\n`,
    'mcpki.yaml:6:37 certificates[0].challenge.webroot: webroot is only for http-01 challenges, not tls-alpn-01',
  ],
  [
    'renewBefore out of range',
    `${V}  - name: a\n    names: [a.test]\n    renewBefore: 4/3\n`,
    'mcpki.yaml:5:18 certificates[0].renewBefore: a fraction of the lifetime must be between 0 and 1 (both excluded), got "4/3"',
  ],
  [
    'renewBefore not shorter than the lifetime',
    `${V}  - name: a\n    names: [a.test]\n    days: 10\n    renewBefore: 10d\n`,
    'mcpki.yaml:6:18 certificates[0].renewBefore: renewBefore must be shorter than the lifetime (10 days), or the certificate would be renewed on every check',
  ],
  [
    'unknown key type',
    `version: 1\ndefaults:\n  key: ec-p512\ncertificates: []\n`,
    'mcpki.yaml:3:8 defaults.key: expected one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096, ed25519, got "ec-p512"',
  ],
  [
    'YAML syntax error',
    `${V}  - name: a\n    names: [a.test\n`,
    'mcpki.yaml:5:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
  ],
  [
    'duplicate YAML key',
    `version: 1\nversion: 1\ncertificates: []\n`,
    'mcpki.yaml:2:1: invalid YAML: Map keys must be unique',
  ],
  ['empty file', '# nothing yet\n', 'mcpki.yaml:1:1: the file is empty; expected version: 1 and certificates: [...]'],
  [
    'version 2',
    'version: 2\ncertificates: []\n',
    'mcpki.yaml:1:10 version: unsupported version 2: this mcpki reads version 1',
  ],
  ['missing version', 'certificates: []\n', 'mcpki.yaml:1:1 version: missing; add version: 1 at the top'],
  [
    'certificates not a list',
    'version: 1\ncertificates:\n  name: a\n',
    'mcpki.yaml:3:3 certificates: expected a list of certificates (a list), got a map',
  ],
  // the crl: section
  [
    'crl: days 0',
    `${V}  []\ncrl:\n  days: 0\n`,
    'mcpki.yaml:5:9 crl.days: expected a number of days from 1 to 365, got 0',
  ],
  [
    'crl: days 366',
    `${V}  []\ncrl: { days: 366 }\n`,
    'mcpki.yaml:4:14 crl.days: expected a number of days from 1 to 365, got 366',
  ],
  [
    'crl: days as a string',
    `${V}  []\ncrl:\n  days: 7d\n`,
    'mcpki.yaml:5:9 crl.days: expected a number of days from 1 to 365, got the string "7d"',
  ],
  [
    'crl: unknown key',
    `${V}  []\ncrl:\n  days: 7\n  refresh_before: 1/2\n`,
    'mcpki.yaml:6:3 crl.refresh_before: unknown key; did you mean "refreshBefore"?',
  ],
  [
    'crl: unknown key without a close match',
    `${V}  []\ncrl:\n  interval: 1d\n`,
    'mcpki.yaml:5:3 crl.interval: unknown key; the crl section takes: days, refreshBefore, targets, hooks',
  ],
  ['crl: not a map', `${V}  []\ncrl: 7\n`, 'mcpki.yaml:4:6 crl: expected the crl section (a map), got the number 7'],
  [
    'crl: refreshBefore not shorter than days',
    `${V}  []\ncrl:\n  days: 2\n  refreshBefore: 48h\n`,
    "mcpki.yaml:6:18 crl.refreshBefore: refreshBefore must be shorter than the CRL's validity (2 days), or it would be published on every check",
  ],
  [
    'crl: refreshBefore as a fraction out of range',
    `${V}  []\ncrl:\n  refreshBefore: 3/2\n`,
    'mcpki.yaml:5:18 crl.refreshBefore: a fraction of the lifetime must be between 0 and 1 (both excluded), got "3/2"',
  ],
  [
    'crl: hooks.reload as a string',
    `${V}  []\ncrl:\n  hooks:\n    reload: systemctl reload nginx\n`,
    'mcpki.yaml:6:13 crl.hooks.reload: expected a command as a list of arguments (no shell), got a string; write it as a list: ["systemctl", "reload", "nginx"]',
  ],
  [
    'crl: a hook argument that is not a string',
    `${V}  []\ncrl:\n  hooks:\n    reload: [[nginx, -s, 1]]\n`,
    'mcpki.yaml:6:26 crl.hooks.reload[0][2]: expected an argument (a string), got the number 1',
  ],
  [
    'crl: verify in hooks',
    `${V}  []\ncrl:\n  hooks: { verify: "localhost:443" }\n`,
    'mcpki.yaml:5:12 crl.hooks.verify: verify is only for certificate hooks (it checks the certificate a server presents); a CRL has nothing to probe',
  ],
  [
    'crl: a target with a type',
    `${V}  []\ncrl:\n  targets:\n    - { type: cert, path: crl.pem }\n`,
    'mcpki.yaml:6:9 crl.targets[0].type: a CRL target has no type: it is always a copy of the CRL file (PEM); remove type',
  ],
  [
    'crl: a target without path',
    `${V}  []\ncrl:\n  targets:\n    - { mode: "0644" }\n`,
    'mcpki.yaml:6:7 crl.targets[0].path: missing; write where the copy goes, e.g. path: /etc/nginx/mcpki-crl.pem',
  ],
  [
    'crl: a target mode as a number',
    `${V}  []\ncrl:\n  targets:\n    - { path: crl.pem, mode: 644 }\n`,
    'mcpki.yaml:6:30 crl.targets[0].mode: expected an octal string like "0640", got the number 644: quote it (mode: "0640"); a bare number is ambiguous in YAML',
  ],
  [
    'crl: a target also written by a certificate',
    `${V}  - name: a\n    names: [a.test]\n    targets: [{ type: cert, path: out/a.pem }]\ncrl:\n  targets: [{ path: out/a.pem }]\n`,
    'mcpki.yaml:7:21 crl.targets[0].path: "out/a.pem" is also written by certificates[0].targets[0] (line 5)',
  ],
];

describe('mcpki.yaml: invalid files, one exact message each', () => {
  for (const [name, text, expected] of INVALID) {
    test(name, () => assert.deepEqual(errorsOf(text), [expected]));
  }
});

describe('mcpki.yaml: errors', () => {
  test('every error of a file is reported at once, in file order', () => {
    const text = `version: 1
defaults:
  days: 0
certificates:
  - name: api
    issuer: acme:le
    names: [api.example.com]
    days: 30
    targets:
      - { type: combined, path: /etc/ssl/api.pem, mode: 600 }
    hooks:
      reload: systemctl reload nginx
  - name: api
    names: [bad..name.test]
    extra: true
`;
    let error;
    try {
      parseConfig(text, 'conf/mcpki.yaml');
    } catch (caught) {
      error = caught;
    }
    assert.ok(error instanceof ConfigError);
    assert.ok(error instanceof McpkiError);
    assert.equal(error.code, 'INVALID_INPUT');
    assert.equal(error.exitCode, 3);
    assert.equal(error.message, 'conf/mcpki.yaml has 7 errors');
    assert.match(error.hint, /^fix all 7 errors .*the first: conf\/mcpki\.yaml:3:9 defaults\.days/);
    assert.deepEqual(error.details, [
      'conf/mcpki.yaml:3:9 defaults.days: expected a number of days from 1 to 398, got 0',
      'conf/mcpki.yaml:8:5 certificates[0].days: days is only for local certificates: an ACME CA decides the lifetime (choose a profile instead)',
      'conf/mcpki.yaml:10:57 certificates[0].targets[0].mode: expected an octal string like "0640", got the number 600: quote it (mode: "0640"); a bare number is ambiguous in YAML',
      'conf/mcpki.yaml:12:15 certificates[0].hooks.reload: expected a command as a list of arguments (no shell), got a string; write it as a list: ["systemctl", "reload", "nginx"]',
      'conf/mcpki.yaml:13:11 certificates[1].name: duplicate certificate name "api" (first declared at line 5)',
      'conf/mcpki.yaml:14:13 certificates[1].names[0]: invalid name "bad..name.test": label "" is not a valid host name label',
      'conf/mcpki.yaml:15:5 certificates[1].extra: unknown key; a certificate takes: name, issuer, names, kind, key, days, profile, challenge, reuseKey, preferredChain, renewBefore, targets, hooks',
    ]);
  });

  test('loadConfig reads the file, names it in messages and resolves paths from its folder', () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'mcpki.yaml');
      writeFileSync(file, `${V}  - name: a\n    names: [a.test]\n    targets: [{ type: cert, path: a.crt }]\n`);
      assert.equal(loadConfig(file).certificates[0].targets[0].path, join(dir, 'a.crt'));
      writeFileSync(file, `${V}  - name: a\n    names: [a.test]\n    days: 0\n`);
      assert.throws(
        () => loadConfig(file),
        (error) => {
          assert.equal(error.message, `${file} has 1 error`);
          assert.deepEqual(error.details, [
            `${file}:5:11 certificates[0].days: expected a number of days from 1 to 398, got 0`,
          ]);
          assert.equal(error.hint, error.details[0]);
          return true;
        },
      );
      assert.throws(() => loadConfig(join(dir, 'missing.yaml')), { code: 'NOT_FOUND' });
    } finally {
      cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// The JSON Schema against the validator, without a JSON Schema library: the property names agree object by
// object, every object is closed, and a small evaluator of the keywords the schema uses agrees with
// parseConfig on valid and invalid documents.

const schema = JSON.parse(readFileSync(join(ROOT, 'schema', 'mcpki.schema.json'), 'utf8'));

function resolveRef(ref) {
  assert.match(ref, /^#\/\$defs\/[A-Za-z0-9]+$/);
  const target = schema.$defs[ref.slice('#/$defs/'.length)];
  assert.ok(target, `unresolved ${ref}`);
  return target;
}

const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Validates `value` against `s` for the keywords mcpki.schema.json uses; returns true when valid. */
function matches(s, value) {
  if (s === true) return true;
  if (s === false) return false;
  if (s.$ref && !matches(resolveRef(s.$ref), value)) return false;
  if (s.type !== undefined) {
    const ok = {
      object: isObject(value),
      array: Array.isArray(value),
      string: typeof value === 'string',
      integer: Number.isInteger(value),
      number: typeof value === 'number',
      boolean: typeof value === 'boolean',
    }[s.type];
    assert.notEqual(ok, undefined, `type ${s.type}`);
    if (!ok) return false;
  }
  if ('const' in s && value !== s.const) return false;
  if (s.enum && !s.enum.includes(value)) return false;
  if (typeof value === 'string') {
    if (s.pattern && !new RegExp(s.pattern, 'u').test(value)) return false;
    if (s.minLength !== undefined && value.length < s.minLength) return false;
    if (s.maxLength !== undefined && value.length > s.maxLength) return false;
  }
  if (typeof value === 'number') {
    if (s.minimum !== undefined && value < s.minimum) return false;
    if (s.maximum !== undefined && value > s.maximum) return false;
    if (s.exclusiveMinimum !== undefined && value <= s.exclusiveMinimum) return false;
    if (s.exclusiveMaximum !== undefined && value >= s.exclusiveMaximum) return false;
  }
  if (Array.isArray(value)) {
    if (s.minItems !== undefined && value.length < s.minItems) return false;
    const prefix = s.prefixItems ?? [];
    for (let i = 0; i < value.length; i++) {
      const itemSchema = i < prefix.length ? prefix[i] : s.items;
      if (itemSchema !== undefined && !matches(itemSchema, value[i])) return false;
    }
  }
  if (isObject(value)) {
    for (const key of s.required ?? []) if (!(key in value)) return false;
    for (const [key, item] of Object.entries(value)) {
      if (s.properties && key in s.properties) {
        if (!matches(s.properties[key], item)) return false;
      } else if (s.additionalProperties === false) return false;
    }
  }
  if (s.allOf && !s.allOf.every((sub) => matches(sub, value))) return false;
  if (s.anyOf && !s.anyOf.some((sub) => matches(sub, value))) return false;
  if (s.oneOf && s.oneOf.filter((sub) => matches(sub, value)).length !== 1) return false;
  if (s.not && matches(s.not, value)) return false;
  if (s.if !== undefined) {
    const branch = matches(s.if, value) ? s.then : s.else;
    if (branch !== undefined && !matches(branch, value)) return false;
  }
  return true;
}

const KNOWN_KEYWORDS = new Set([
  '$schema',
  'title',
  'description',
  '$defs',
  '$ref',
  'type',
  'const',
  'enum',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minItems',
  'items',
  'prefixItems',
  'required',
  'properties',
  'additionalProperties',
  'allOf',
  'anyOf',
  'oneOf',
  'not',
  'if',
  'then',
  'else',
]);

/** Every subschema, with its JSON pointer. */
function* subschemas(s, pointer = '#') {
  if (typeof s !== 'object' || s === null) return;
  yield [pointer, s];
  for (const [keyword, value] of Object.entries(s)) {
    if (['properties', '$defs'].includes(keyword))
      for (const [name, sub] of Object.entries(value)) yield* subschemas(sub, `${pointer}/${keyword}/${name}`);
    else if (['allOf', 'anyOf', 'oneOf', 'prefixItems'].includes(keyword))
      for (const [i, sub] of value.entries()) yield* subschemas(sub, `${pointer}/${keyword}/${i}`);
    else if (['items', 'not', 'if', 'then', 'else'].includes(keyword))
      yield* subschemas(value, `${pointer}/${keyword}`);
  }
}

describe('schema/mcpki.schema.json agrees with the validator', () => {
  test('it is draft 2020-12 and uses only keywords this test understands', () => {
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    for (const [pointer, s] of subschemas(schema)) {
      for (const keyword of Object.keys(s)) assert.ok(KNOWN_KEYWORDS.has(keyword), `${pointer}: keyword ${keyword}`);
    }
  });

  test('each kind of object has exactly the keys the validator accepts', () => {
    const bySchema = { root: schema, ...schema.$defs };
    for (const [kind, keys] of Object.entries(CONFIG_KEYS)) {
      assert.ok(bySchema[kind], `$defs/${kind} is missing`);
      assert.deepEqual(Object.keys(bySchema[kind].properties).sort(), [...keys].sort(), kind);
    }
    assert.deepEqual(schema.$defs.key.enum, [...KEY_TYPES]);
    assert.deepEqual(schema.$defs.target.properties.type.enum, [...TARGET_TYPES]);
  });

  test('every object schema is closed (additionalProperties: false)', () => {
    let objects = 0;
    for (const [pointer, s] of subschemas(schema)) {
      if (s.type === 'object' && s.properties) {
        objects++;
        assert.equal(s.additionalProperties, false, pointer);
      }
    }
    assert.equal(objects, 1 + Object.keys(CONFIG_KEYS).length - 1);
  });

  const MINIMAL = { version: 1, certificates: [{ name: 'a', names: ['a.test'] }] };
  const withCert = (extra) => ({ version: 1, certificates: [{ name: 'a', names: ['a.test'], ...extra }] });
  const acme = (extra) => withCert({ issuer: 'acme:le', names: ['a.example.com'], ...extra });
  const SAME_VERDICT = [
    ['minimal', MINIMAL, true],
    ['complete', parseYaml(COMPLETE), true],
    ['the example', parseYaml(readFileSync(join(ROOT, 'templates', 'mcpki.example.yaml'), 'utf8')), true],
    ['unknown top-level key', { ...MINIMAL, extra: 1 }, false],
    ['version 2', { ...MINIMAL, version: 2 }, false],
    ['no certificates', { version: 1 }, false],
    ['unknown certificate key', withCert({ renew: '1d' }), false],
    ['bad name', withCert({ name: 'a b' }), false],
    ['days as a string', withCert({ days: '90' }), false],
    ['days 400', withCert({ days: 400 }), false],
    ['days on ACME', acme({ days: 30 }), false],
    ['profile on local', withCert({ issuer: 'local', profile: 'x' }), false],
    ['challenge on local', withCert({ issuer: 'local', challenge: { type: 'http-01' } }), false],
    ['unknown issuer', withCert({ issuer: 'letsencrypt' }), false],
    ['client on ACME', acme({ kind: 'client' }), false],
    ['mode as a number', withCert({ targets: [{ type: 'cert', path: 'a', mode: 420 }] }), false],
    ['mode 999', withCert({ targets: [{ type: 'cert', path: 'a', mode: '999' }] }), false],
    ['world-readable key', withCert({ targets: [{ type: 'key', path: 'a', mode: '0644' }] }), false],
    ['group-readable key', withCert({ targets: [{ type: 'key', path: 'a', mode: '0640' }] }), true],
    ['p12 without passwordFile', withCert({ targets: [{ type: 'p12', path: 'a' }] }), false],
    ['namespace on a cert', withCert({ targets: [{ type: 'cert', path: 'a', namespace: 'x' }] }), false],
    ['numeric group', withCert({ targets: [{ type: 'cert', path: 'a', group: 33 }] }), true],
    ['reload as a string', withCert({ hooks: { reload: 'systemctl reload nginx' } }), false],
    ['reload list of lists', withCert({ hooks: { reload: [['a'], ['b', 'c']] } }), true],
    ['verify nohost', withCert({ hooks: { verify: 'nohost' } }), false],
    ['hook timeout 0s', withCert({ hooks: { timeout: '0s' } }), false],
    ['dns-01 without hook', acme({ challenge: { type: 'dns-01' } }), false],
    ['http-01 webroot and port', acme({ challenge: { type: 'http-01', webroot: '/w', port: 80 } }), false],
    ['tls-alpn-01 with hook', acme({ challenge: { type: 'tls-alpn-01', hook: ['x'] } }), false],
    ['unknown challenge type', acme({ challenge: { type: 'dns-02' } }), false],
    [
      'dns-01 resolver and propagationTimeout',
      acme({ challenge: { type: 'dns-01', hook: ['h'], resolver: '192.0.2.53:5353', propagationTimeout: '30s' } }),
      true,
    ],
    [
      'dns-01 propagationTimeout without resolver',
      acme({ challenge: { type: 'dns-01', hook: ['h'], propagationTimeout: '30s' } }),
      false,
    ],
    ['dns-01 resolver on http-01', acme({ challenge: { type: 'http-01', resolver: '192.0.2.53' } }), false],
    ['reuseKey and preferredChain on ACME', acme({ reuseKey: true, preferredChain: 'ISRG Root X1' }), true],
    ['reuseKey on local', withCert({ issuer: 'local', reuseKey: true }), false],
    ['reuseKey as a string', acme({ reuseKey: 'yes' }), false],
    ['preferredChain on local', withCert({ issuer: 'local', preferredChain: 'X' }), false],
    ['preferredChain with a newline', acme({ preferredChain: 'a\nb' }), false],
    ['renewBefore 25%', withCert({ renewBefore: '25%' }), true],
    ['renewBefore 0.25 (number)', withCert({ renewBefore: 0.25 }), true],
    ['renewBefore 30 (number)', withCert({ renewBefore: 30 }), false],
    ['renewBefore soon', withCert({ renewBefore: 'soon' }), false],
    ['defaults with an unknown key', { ...MINIMAL, defaults: { timeout: '1s' } }, false],
    ['defaults.hooks with reload', { ...MINIMAL, defaults: { hooks: { reload: ['x'] } } }, false],
    ['crl: {}', { ...MINIMAL, crl: {} }, true],
    [
      'crl complete',
      {
        ...MINIMAL,
        crl: {
          days: 30,
          refreshBefore: '1/3',
          targets: [{ path: 'c.pem', mode: '0640', owner: 'root', group: 0 }],
          hooks: { reload: [['a'], ['b', 'c']], timeout: '10s' },
        },
      },
      true,
    ],
    ['crl single reload command', { ...MINIMAL, crl: { hooks: { reload: ['nginx', '-s', 'reload'] } } }, true],
    ['crl days 0', { ...MINIMAL, crl: { days: 0 } }, false],
    ['crl days 366', { ...MINIMAL, crl: { days: 366 } }, false],
    ['crl unknown key', { ...MINIMAL, crl: { refresh: '1/2' } }, false],
    ['crl reload as a string', { ...MINIMAL, crl: { hooks: { reload: 'nginx -s reload' } } }, false],
    ['crl hooks.verify', { ...MINIMAL, crl: { hooks: { verify: 'localhost:443' } } }, false],
    ['crl target with a type', { ...MINIMAL, crl: { targets: [{ type: 'cert', path: 'c.pem' }] } }, false],
    ['crl target without path', { ...MINIMAL, crl: { targets: [{ mode: '0644' }] } }, false],
    ['crl refreshBefore soon', { ...MINIMAL, crl: { refreshBefore: 'soon' } }, false],
  ];
  for (const [name, document, valid] of SAME_VERDICT) {
    test(`${valid ? 'valid' : 'invalid'} for both: ${name}`, () => {
      assert.equal(matches(schema, document), valid, 'schema');
      let accepted = true;
      try {
        parseConfig(JSON.stringify(document), FILE); // JSON is YAML
      } catch (error) {
        assert.ok(error instanceof ConfigError, String(error));
        accepted = false;
      }
      assert.equal(accepted, valid, 'validator');
    });
  }
});

// ---- issue 8: durations bounded, the cache cannot add to the YAML, host:port parsed once ---------------

test('durations have limits: hooks.timeout 30000d and friends are refused naming the limit', async () => {
  const { parseConfig: parse } = await import('../dist/config/index.js');
  const cases = [
    [
      'defaults:\n  hooks: { timeout: 30000d }\ncertificates: []\n',
      /defaults\.hooks\.timeout: "30000d" is longer than the limit of 1d/,
    ],
    [
      'certificates:\n  - name: a\n    names: [a.test]\n    hooks: { timeout: 25d }\n',
      /hooks\.timeout: "25d" is longer than the limit of 1d/,
    ],
    [
      'certificates:\n  - name: a\n    names: [a.test]\n    hooks: { timeout: 99999999999999999999s }\n',
      /longer than the limit of 1d/,
    ],
    [
      'certificates:\n  - name: a\n    names: [a.test]\n    renewBefore: 99999w\n',
      /renewBefore: "99999w" is longer than the limit of 400d/,
    ],
  ];
  for (const [body, pattern] of cases) {
    assert.throws(
      () => parse(`version: 1\n${body}`),
      (e) => e.code === 'INVALID_INPUT' && e.details.some((d) => pattern.test(d)),
      body,
    );
  }
  const ok = parse('version: 1\ndefaults:\n  hooks: { timeout: 1d }\ncertificates: []\n');
  assert.equal(ok.defaults.hookTimeoutMs, 86_400_000);
  const { parseDuration, checkDuration, MAX_TIMER_MS } = await import('../dist/duration.js');
  assert.throws(
    () => parseDuration('30000d', { maxMs: MAX_TIMER_MS, what: 'x' }),
    (e) => e.code === 'INVALID_INPUT' && /limit of/.test(e.message) && /at most/.test(e.hint),
  );
  assert.equal(checkDuration('24d', { maxMs: MAX_TIMER_MS }).ok, true);
  assert.equal(checkDuration('25d', { maxMs: MAX_TIMER_MS }).ok, false, 'more than 2^31 - 1 ms');
  assert.equal(parseDuration('30d'), 30 * 86_400_000, 'the public default still reads a month');
});

test('CLI: list --expiring and check --timeout with huge values are user errors naming the limit', () => {
  const { dir, cleanup } = tempDir('mcpki-durations-');
  try {
    const home = join(dir, 'home');
    const list = mcpki(['--home', home, 'list', '--expiring', '99999999999d']);
    assert.equal(list.status, 3, list.stderr);
    assert.match(list.stderr, /^error: invalid --expiring "99999999999d": longer than the limit of 36500d$/m);
    assert.ok(!existsSync(home), 'list refused before making a home');
    const check = mcpki(['check', '127.0.0.1:1', '--timeout', '99999999999999']);
    assert.equal(check.status, 3, check.stderr);
    assert.match(check.stderr, /^error: invalid --timeout "99999999999999": longer than the limit of 10m$/m);
  } finally {
    cleanup();
  }
});

test('the config cache cannot say what the YAML does not: an edited, garbled or foreign cache is ignored', () => {
  const { dir, cleanup } = tempDir('mcpki-config-cache-');
  try {
    const home = join(dir, 'home');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const config = join(dir, 'mcpki.yaml');
    const target = join(dir, 'out', 'web.crt');
    writeFileSync(
      config,
      `version: 1\ncertificates:\n  - name: web\n    names: [web.localhost]\n    targets:\n      - { type: cert, path: ${target} }\n`,
    );
    const plan = () => mcpki(['--home', home, '--json', 'renew', '--dry-run', '-c', config]);
    assert.equal(plan().status, 0);
    const cacheDir = join(home, 'cache');
    const entry = readdirSync(cacheDir).find((f) => /^config-[0-9a-f]{32}\.json$/.test(f));
    assert.ok(entry, 'a cache entry was written');
    assert.equal(statSync(join(cacheDir, 'config.key')).mode & 0o777, 0o600);
    const original = readFileSync(join(cacheDir, entry), 'utf8');
    const [mac, json] = [original.slice(0, 64), original.slice(65)];

    // an attacker's edit: a hook that leaves a mark, and the target's mode 04777
    const marker = join(dir, 'hook-ran');
    const edited = JSON.parse(json);
    edited.certificates[0].hooks.reload = [['/usr/bin/touch', marker]];
    edited.certificates[0].targets[0].mode = 0o4777;
    for (const text of [
      `${mac}\n${JSON.stringify(edited)}`,
      JSON.stringify(edited),
      `${'0'.repeat(64)}\n${JSON.stringify(edited)}`,
      'garbage{',
      '',
    ]) {
      writeFileSync(join(cacheDir, entry), text);
      const applied = mcpki(['--home', home, 'apply', '-c', config]);
      assert.equal(applied.status, 0, applied.stderr);
      assert.ok(!existsSync(marker), 'the hook from the edited cache did not run');
      assert.equal(statSync(target).mode & 0o7777, 0o644, 'the mode from the YAML, not 04777');
      rmSync(target);
    }
    // a cache entry holding a different YAML's parse (copied over) fails the MAC too
    writeFileSync(join(cacheDir, 'config.key'), randomBytes(32), { mode: 0o600 });
    writeFileSync(join(cacheDir, entry), original);
    assert.equal(mcpki(['--home', home, 'apply', '-c', config]).status, 0);
    // a cache folder others can write is not used at all (the YAML is parsed every time)
    chmodSync(cacheDir, 0o777);
    writeFileSync(join(cacheDir, entry), `${mac}\n${JSON.stringify(edited)}`);
    rmSync(target);
    assert.equal(mcpki(['--home', home, 'apply', '-c', config]).status, 0);
    assert.ok(!existsSync(marker));
    assert.equal(statSync(target).mode & 0o7777, 0o644);
  } finally {
    cleanup();
  }
});

test('mcpki.yaml is read as untrusted input: a FIFO or /dev/zero is refused at once, a huge file by size', () => {
  const { dir, cleanup } = tempDir('mcpki-config-read-');
  try {
    const fifo = join(dir, 'fifo.yaml');
    assert.equal(run('mkfifo', [fifo]).status, 0);
    for (const path of [fifo, '/dev/zero']) {
      const result = mcpki(['--home', join(dir, 'home'), 'renew', '--dry-run', '-c', path], { timeout: 20_000 });
      assert.equal(result.status, 3, `${path}: ${result.stderr}`);
      assert.match(result.stderr, /not a regular file/);
    }
  } finally {
    cleanup();
  }
});

test(
  'verify: "[::1]:PORT" is parsed once and apply probes a real TLS listener on ::1',
  { skip: !hasIpv6Loopback() && 'no IPv6 loopback' },
  async () => {
    const { dir, cleanup } = tempDir('mcpki-verify-v6-');
    const tls = await import('node:tls');
    let server;
    const onHup = () => server.setSecureContext({ cert: readFileSync(fullchain), key: readFileSync(key) });
    const deployDir = join(dir, 'deploy');
    const fullchain = join(deployDir, 'v6.fullchain.pem');
    const key = join(deployDir, 'v6.key');
    try {
      const home = join(dir, 'home');
      assert.equal(mcpki(['--home', home, 'init']).status, 0);
      assert.equal(mcpki(['--home', home, 'issue', 'server', 'boot', 'localhost', '::1']).status, 0);
      // a TLS server on ::1, first with another certificate; the reload hook (kill -HUP) makes it load the deployed one
      server = tls.createServer(
        {
          cert: readFileSync(join(home, 'certs', 'boot', 'boot.fullchain.pem')),
          key: readFileSync(join(home, 'certs', 'boot', 'boot.key')),
        },
        (socket) => socket.end(),
      );
      await new Promise((resolve) => server.listen(0, '::1', resolve));
      const { port } = server.address();
      process.on('SIGHUP', onHup);
      const config = join(dir, 'mcpki.yaml');
      writeFileSync(
        config,
        `version: 1\ncertificates:\n  - name: v6\n    names: [localhost, "::1"]\n    targets:\n      - { type: fullchain, path: ${fullchain} }\n      - { type: key, path: ${key} }\n    hooks:\n      reload: [kill, -HUP, "${process.pid}"]\n      verify: "[::1]:${port}"\n`,
      );
      assert.deepEqual(parseConfig(readFileSync(config, 'utf8'), config).certificates[0].hooks.verify, {
        host: '::1',
        port,
      });
      const applied = await mcpkiAsync(['--home', home, '--json', 'apply', '-c', config]);
      assert.equal(applied.status, 0, applied.stderr + applied.stdout);
      assert.doesNotMatch(applied.stdout + applied.stderr, /not host:port/);
      const serial = mcpki(['--home', home, '--json', 'show', 'v6']).json.certificate.serial;
      const served = await new Promise((resolve, reject) => {
        const socket = tls.connect({ host: '::1', port, rejectUnauthorized: false }, () => {
          resolve(socket.getPeerCertificate().serialNumber);
          socket.destroy();
        });
        socket.on('error', reject);
      });
      assert.equal(
        served.replace(/^0+/, '').toUpperCase(),
        serial.replace(/[:]/g, '').replace(/^0+/, '').toUpperCase(),
      );
    } finally {
      process.off('SIGHUP', onHup);
      await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
      cleanup();
    }
  },
);

function hasIpv6Loopback() {
  return run('sh', ['-c', 'ip -6 addr show lo 2>/dev/null | grep -q "::1" || test -e /proc/net/if_inet6']).status === 0;
}
