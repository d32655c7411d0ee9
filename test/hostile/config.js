// Hostile rows: mcpki.yaml, its cache, durations and addresses (issue 8, items 9, 13, 14, 20). Each is a user
// error (exit 3, or 22 for an unsafe file) that leaves the home, the targets and the inventory untouched.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { asNobody, EXIT, lit } from './harness.js';

const yaml = (body) => `version: 1\ncertificates:\n  - name: web\n    names: [web.localhost]\n${body}`;
const configRow = (title, text, message, extra = {}) => ({
  title,
  setup: (ctx) => writeFileSync(join(ctx.work, 'mcpki.yaml'), typeof text === 'function' ? text(ctx) : text),
  args: (ctx) => ['apply', '-c', join(ctx.work, 'mcpki.yaml')],
  status: EXIT.INVALID_INPUT,
  code: 'INVALID_INPUT',
  message,
  json: true, // --json adds "details", the list of every error
  ...extra,
});

export const CASES = [
  configRow(
    'hooks.timeout: 30000d (would become 1 ms)',
    yaml('    hooks: { timeout: 30000d }\n'),
    /mcpki\.yaml has 1 error/,
    { hint: /longer than the limit of 1d/ },
  ),
  configRow(
    'defaults.hooks.timeout: 25d (over 2^31 ms)',
    `version: 1\ndefaults:\n  hooks: { timeout: 25d }\ncertificates: []\n`,
    /1 error/,
    { hint: /limit of 1d/ },
  ),
  configRow(
    'dns-01 timeout of 99999999999999999999s',
    (ctx) =>
      `version: 1\ncertificates:\n  - name: web\n    issuer: acme:le\n    names: [web.example.com]\n    challenge: { type: dns-01, hook: [${join(ctx.work, 'hook')}], timeout: 99999999999999999999s }\n`,
    /1 error/,
    { hint: /limit of 1d/ },
  ),
  configRow('renewBefore: 99999w', yaml('    renewBefore: 99999w\n'), /1 error/, { hint: /limit of 400d/ }),
  configRow('crl.hooks.timeout: 2w', `version: 1\ncertificates: []\ncrl:\n  hooks: { timeout: 2w }\n`, /1 error/, {
    hint: /limit of 1d/,
  }),
  configRow('verify: a bare IPv6 address without brackets', yaml('    hooks: { verify: "::1:8443" }\n'), /1 error/, {
    hint: /IPv6 address without brackets/,
  }),
  configRow('verify: port 0', yaml('    hooks: { verify: "localhost:0" }\n'), /1 error/, {
    hint: /port must be from 1 to 65535/,
  }),
  configRow('verify: a host with a space', yaml('    hooks: { verify: "local host:443" }\n'), /1 error/, {
    hint: /does not name a host/,
  }),
  configRow('verify: brackets around a name', yaml('    hooks: { verify: "[localhost]:443" }\n'), /1 error/, {
    hint: /only an IPv6 address goes in brackets/,
  }),
  configRow(
    'a target path with a newline and an nginx include',
    (ctx) => yaml(`    targets:\n      - { type: cert, path: "${ctx.work}/x\\";\\n include /etc/passwd;" }\n`),
    /1 error/,
    { hint: /newline/ },
  ),
  configRow(
    'a target path with U+2028',
    (ctx) => yaml(`    targets:\n      - { type: cert, path: "${ctx.work}/x\\u2028y" }\n`),
    /1 error/,
    { hint: /U\+2028/ },
  ),
  configRow(
    'a target path with ESC',
    (ctx) => yaml(`    targets:\n      - { type: cert, path: "${ctx.work}/x\\e[2Jy" }\n`),
    /1 error/,
    { hint: /U\+001B/ },
  ),
  // the YAML itself: size, bombs, nesting, keys
  {
    title: 'a 5 MB mcpki.yaml is refused by its size (44 MB ran out of memory after minutes)',
    setup: (ctx) => {
      writeFileSync(join(ctx.work, 'mcpki.yaml'), 'version: 1\ncertificates: []\n');
      truncateSync(join(ctx.work, 'mcpki.yaml'), 5 * 1024 * 1024);
    },
    args: (ctx) => ['apply', '-c', join(ctx.work, 'mcpki.yaml')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: /mcpki\.yaml is 5242880 bytes; the limit is 4194304/,
    json: true,
    timeout: 20_000,
  },
  configRow(
    'a billion-laughs alias bomb in a used key',
    () => {
      let text =
        'version: 1\ncertificates:\n  - name: web\n    names: &a0 [a.localhost, a.localhost, a.localhost, a.localhost, a.localhost, a.localhost, a.localhost, a.localhost, a.localhost]\n';
      for (let i = 1; i < 12; i += 1)
        text += `  - name: w${i}\n    names: &a${i} [${Array(9)
          .fill(`*a${i - 1}`)
          .join(', ')}]\n`;
      return text;
    },
    /has \d+ errors?/,
    { timeout: 20_000 },
  ),
  configRow(
    'lists nested 100,000 deep',
    `version: 1\ncertificates: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`,
    /1 error/,
    { hint: /nested too deeply/ },
  ),
  configRow(
    'a map nested 50,000 deep',
    `version: 1\ndefaults: ${'{a: '.repeat(50_000)}1${'}'.repeat(50_000)}\n`,
    /1 error/,
    { hint: /nested too deeply/ },
  ),
  configRow('a duplicate key', 'version: 1\ncertificates: []\ncertificates: []\n', /1 error/, {
    hint: /mcpki\.yaml:3:1: invalid YAML: Map keys must be unique/,
  }),
  configRow('a duplicate key in a certificate', yaml('    names: [other.localhost]\n'), /1 error/, {
    hint: /:5:5: invalid YAML: Map keys must be unique/,
  }),
  configRow(
    '60,000 unknown keys in one map: quick, and only the first 50 listed',
    `version: 1\ncertificates: []\n${Array.from({ length: 60_000 }, (_, i) => `k${i}: 1\n`).join('')}`,
    /has 60000 errors/,
    {
      timeout: 40_000,
      check: (ctx, result) => {
        const output = result.stderr + result.stdout;
        if (output.length > 20_000) throw new Error(`the output is ${output.length} characters`);
        if (!/… and 59950 more/.test(output)) throw new Error(`no "… and 59950 more": ${output.slice(-300)}`);
      },
    },
  ),
  configRow('an unknown key', 'version: 1\ncertificates: []\nfoo: 1\n', /1 error/, { hint: /foo: unknown key/ }),
  // hooks
  configRow(
    'a hook argument with ESC (hidden in logs)',
    yaml('    hooks: { reload: [["/bin/echo", "a\\e[2Jb"]] }\n'),
    /1 error/,
    { hint: /reload\[0\]\[1\]: an argument cannot contain the control character U\+001B/ },
  ),
  configRow('a hook program with a newline', yaml('    hooks: { reload: [["/bin/true\\nrm"]] }\n'), /1 error/, {
    hint: /the program cannot contain a newline/,
  }),
  configRow('a hook program with U+202E', yaml('    hooks: { reload: [["/usr/bin/\\u202ehsab"]] }\n'), /1 error/, {
    hint: /U\+202E/,
  }),
  configRow(
    'a dns-01 hook with NUL',
    (ctx) =>
      `version: 1\ncertificates:\n  - name: web\n    issuer: acme:le\n    names: [web.example.com]\n    challenge: { type: dns-01, hook: ["${ctx.work}/hook", "a\\0b"] }\n`,
    /1 error/,
    { hint: /a NUL character/ },
  ),
  configRow(
    'a hook written as one command-line string in a list',
    yaml('    hooks: { reload: ["systemctl reload nginx"] }\n'),
    /1 error/,
    { hint: /whole command line.*\["systemctl", "reload", "nginx"\]/ },
  ),
  configRow(
    'a hook program with its option in the same word',
    yaml('    hooks: { reload: [["/usr/sbin/nginx -s reload"]] }\n'),
    /1 error/,
    { hint: /whole command line/ },
  ),
  // target paths
  configRow(
    'a target path that ends in "/" (a folder)',
    (ctx) => yaml(`    targets: [{ type: cert, path: "${ctx.work}/" }]\n`),
    /1 error/,
    { hint: /names a folder, not a file/ },
  ),
  configRow('a target path that ends in ".."', yaml('    targets: [{ type: key, path: "tls/.." }]\n'), /1 error/, {
    hint: /names a folder, not a file/,
  }),
  configRow(
    'a target path with NUL',
    (ctx) => yaml(`    targets: [{ type: cert, path: "${ctx.work}/a\\0b" }]\n`),
    /1 error/,
    { hint: /NUL/ },
  ),
  configRow('an empty target path', yaml('    targets: [{ type: cert, path: "" }]\n'), /1 error/, {
    hint: /empty string/,
  }),
  {
    title: 'mcpki.yaml is /dev/zero',
    args: ['apply', '-c', '/dev/zero'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: /not a regular file/,
    json: true,
  },
  {
    title: 'mcpki.yaml is a FIFO (no hang)',
    setup: (ctx) => mkfifo(join(ctx.work, 'mcpki.yaml')),
    args: (ctx) => ['apply', '-c', join(ctx.work, 'mcpki.yaml')],
    status: EXIT.INVALID_INPUT,
    message: /a FIFO, not a regular file/,
    timeout: 20_000,
  },
  {
    title: 'mcpki.yaml is a folder',
    setup: (ctx) => mkdirSync(join(ctx.work, 'mcpki.yaml')),
    args: (ctx) => ['apply', '-c', join(ctx.work, 'mcpki.yaml')],
    status: EXIT.INVALID_INPUT,
    message: /is a folder/,
  },
  {
    title: 'mcpki.yaml written by another user (its hooks would run as us)',
    world: true,
    setup: (ctx) =>
      asNobody('sh', ['-c', `printf 'version: 1\\ncertificates: []\\n' > ${join(ctx.public, 'mcpki.yaml')}`]),
    args: (ctx) => ['renew', '--dry-run', '-c', join(ctx.public, 'mcpki.yaml')],
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
    message: /belongs to uid/,
    json: true,
  },
  {
    title: 'mcpki.yaml writable by everyone',
    setup: (ctx) => {
      writeFileSync(join(ctx.work, 'mcpki.yaml'), 'version: 1\ncertificates: []\n');
      chmodSync(join(ctx.work, 'mcpki.yaml'), 0o666);
    },
    args: (ctx) => ['renew', '--dry-run', '-c', join(ctx.work, 'mcpki.yaml')],
    status: EXIT.UNSAFE_PATH,
    message: /writable by everyone/,
  },
  {
    title: 'list --expiring 99999999999d (Invalid time value before)',
    args: ['list', '--expiring', '99999999999d'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [lit('"99999999999d"'), /limit of 36500d/],
    json: true,
  },
  {
    title: 'list --expiring 0d',
    args: ['list', '--expiring', '0d'],
    status: EXIT.INVALID_INPUT,
    message: /longer than 0/,
  },
  {
    title: 'check --timeout 99999999999999',
    args: ['check', '127.0.0.1:1', '--timeout', '99999999999999'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: /limit of 10m/,
    json: true,
  },
  {
    title: 'check [::1] without a port',
    args: ['check', '[::1]'],
    status: EXIT.USAGE,
    message: /has no port/,
    hint: /\[::1\]:443/,
  },
  {
    title: 'check with a port over 65535',
    args: ['check', 'localhost:99999'],
    status: EXIT.INVALID_INPUT,
    message: /not a port number/,
    json: true,
  },
];

function mkfifo(path) {
  const made = spawnSync('mkfifo', [path]);
  if (made.status !== 0) throw new Error(`mkfifo ${path} failed`);
}
