// Hostile rows: `mcpki acme-server` and its subcommands, refused before anything listens or is stored: --listen,
// --dns-resolver and --profile values with control characters (flags: exit 2; the acmeServer: section of a
// file: exit 3 with the line), a settings file that is special, planted or another user's, a home made group-
// or world-writable, and EAB names, patterns, kids, serials and dates with control characters. The server's
// own TLS key is made in memory and never written (test/acme-server-hostile.test.js checks the home).
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../helpers.js';
import { asNobody, EXIT, lit } from './harness.js';

const QUICK = 15_000; // a server that starts instead of refusing would run until killed
const ESC = '\u001b';
// anything that gets through would listen on a free port, not on 8443
const SERVE = ['acme-server', '--listen', '127.0.0.1:0'];
const USAGE = { status: EXIT.USAGE, code: 'USAGE', timeout: QUICK };
// eslint-disable-next-line no-control-regex
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** stderr and stdout carry no raw control character, and exactly one error line. */
function clean(ctx, result) {
  for (const text of [result.stderr, result.stdout])
    if (RAW.test(text)) throw new Error(`raw control character: ${JSON.stringify(text.slice(0, 300))}`);
  const errors = result.stderr.split('\n').filter((line) => line.startsWith('error:'));
  if (result.stderr !== '' && errors.length !== 1) throw new Error(`${errors.length} error lines: ${result.stderr}`);
}

/** ctx.work/acme.yaml with `body` under acmeServer: (and no certificates). */
function settingsFile(body) {
  return (ctx) => writeFileSync(join(ctx.work, 'acme.yaml'), `version: 1\ncertificates: []\nacmeServer:\n${body}`);
}

export const CASES = [
  // ---- flags with control characters: exit 2 before anything listens --------------------------------------
  {
    title: 'acme-server --listen with an ESC sequence',
    args: ['acme-server', '--listen', `127.0.0.1${ESC}[31m:8443`],
    ...USAGE,
    message: [lit('"127.0.0.1\\u001b[31m:8443"'), /--listen is not host:port/],
    hint: /host:port/,
    check: clean,
    json: true,
  },
  {
    title: 'acme-server --listen with a newline cannot forge a second line',
    args: ['acme-server', '--listen', '127.0.0.1:84\nerror: forged'],
    ...USAGE,
    message: [/--listen is not host:port/, lit('\\n')],
    check: clean,
  },
  {
    title: 'acme-server --listen with a right-to-left override in the host',
    args: ['acme-server', '--listen', 'loc\u202ealhost:8443'],
    ...USAGE,
    message: [lit('loc\\u202ealhost')],
    check: clean,
  },
  {
    title: 'acme-server --dns-resolver with CR',
    args: [...SERVE, '--dns-resolver', '127.0.0.1\r:53'],
    ...USAGE,
    message: [/--dns-resolver is not host:port/, lit('\\r')],
    check: clean,
    json: true,
  },
  {
    title: 'acme-server --profile whose name holds ESC',
    args: [...SERVE, '--profile', `x${ESC}]0;t\u0007=server:7`],
    ...USAGE,
    message: [/--profile .* is not NAME=server\|client:DAYS/],
    check: clean,
  },
  // ---- the acmeServer: section of a settings file -----------------------------------------------------------
  {
    title: 'acme-server -c: a listen value with ESC in the acmeServer section (named with its line)',
    setup: settingsFile('  listen: ["127.0.0.1\\u001b[31m:0"]\n'),
    args: (ctx) => ['acme-server', '-c', join(ctx.work, 'acme.yaml')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/acme\.yaml has 1 error/],
    hint: /acme\.yaml:4:\d+ acmeServer\.listen\[0\]: .*"127\.0\.0\.1\\u001b\[31m:0"/,
    timeout: QUICK,
    check: clean,
    json: true,
  },
  {
    title: 'acme-server -c: a profile name with U+2028 and a dnsResolver with CR/LF',
    setup: settingsFile('  profile: ["x\\u2028y=server:3"]\n  dnsResolver: "a\\r\\nb"\n'),
    args: (ctx) => ['acme-server', '-c', join(ctx.work, 'acme.yaml')],
    status: EXIT.INVALID_INPUT,
    message: [/acme\.yaml has 2 errors/],
    timeout: QUICK,
    check: (ctx, result) => {
      clean(ctx, result);
      assert.match(result.stderr, /acmeServer\.profile\[0\]: .*x\\u2028y/);
      assert.match(result.stderr, /acmeServer\.dnsResolver: "a\\r\\nb"/);
    },
  },
  {
    title: 'acme-server -c a settings file another user put in a shared folder',
    world: true,
    setup: (ctx) =>
      asNobody('sh', [
        '-c',
        `printf 'version: 1\\ncertificates: []\\nacmeServer:\\n  listen: ["0.0.0.0:0"]\\n' > ${ctx.public}/acme.yaml`,
      ]),
    args: (ctx) => ['acme-server', '-c', join(ctx.public, 'acme.yaml')],
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
    message: [/acme\.yaml belongs to uid 65534/],
    hint: /chown/,
    timeout: QUICK,
    json: true,
  },
  {
    title: 'acme-server -c a symlink another user planted, to a settings file of ours',
    world: true,
    setup: (ctx) => {
      settingsFile('  listen: ["127.0.0.1:0"]\n')(ctx);
      asNobody('ln', ['-s', join(ctx.work, 'acme.yaml'), join(ctx.public, 'acme.yaml')]);
    },
    args: (ctx) => ['acme-server', '-c', join(ctx.public, 'acme.yaml')],
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
    message: [/public\/acme\.yaml is a symlink owned by uid 65534/],
    timeout: QUICK,
  },
  {
    title: 'acme-server -c a FIFO (must not hang)',
    setup: (ctx) => assert.equal(run('mkfifo', [join(ctx.work, 'acme.yaml')]).status, 0),
    args: (ctx) => ['acme-server', '-c', join(ctx.work, 'acme.yaml')],
    status: EXIT.INVALID_INPUT,
    message: [/acme\.yaml is a FIFO, not a regular file/],
    timeout: QUICK,
  },
  {
    title: 'acme-server -c a settings file writable by everyone (0666)',
    setup: (ctx) => {
      settingsFile('  listen: ["127.0.0.1:0"]\n')(ctx);
      chmodSync(join(ctx.work, 'acme.yaml'), 0o666);
    },
    args: (ctx) => ['acme-server', '-c', join(ctx.work, 'acme.yaml')],
    status: EXIT.UNSAFE_PATH,
    message: [/acme\.yaml is writable by everyone \(mode 0666\)/],
    hint: /chmod go-w/,
    timeout: QUICK,
  },
  // ---- the home -----------------------------------------------------------------------------------------------
  {
    title: 'acme-server with a group-writable home (0770)',
    setup: (ctx) => chmodSync(ctx.home, 0o770),
    args: SERVE,
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
    message: [/home: .*writable by its group \(mode 0770\)/],
    hint: /chmod go-w/,
    timeout: QUICK,
    json: true,
  },
  {
    title: 'acme-server with a world-writable home (0777)',
    setup: (ctx) => chmodSync(ctx.home, 0o777),
    args: SERVE,
    status: EXIT.UNSAFE_PATH,
    message: [/writable by everyone \(mode 0777\)/],
    timeout: QUICK,
  },
  {
    title: 'acme-server eab create with a world-writable home: no key is made',
    setup: (ctx) => chmodSync(ctx.home, 0o777),
    args: ['acme-server', 'eab', 'create', '--name', 'team'],
    status: EXIT.UNSAFE_PATH,
    message: [/writable by everyone/],
    check: (ctx, result) => assert.doesNotMatch(result.stdout + result.stderr, /hmacKey/),
  },
  // ---- EAB keys, renew-early: names, patterns, kids, serials, dates ------------------------------------------
  {
    title: 'acme-server eab create --name with ESC sequences',
    args: ['acme-server', 'eab', 'create', '--name', `team${ESC}[2J`],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: [lit('"team\\u001b[2J"'), /is not 1-64 letters, digits/],
    check: clean,
    json: true,
  },
  {
    title: 'acme-server eab create --allow a pattern with a right-to-left override',
    args: ['acme-server', 'eab', 'create', '--name', 'team', '--allow', 'a\u202e.internal'],
    status: EXIT.INVALID_INPUT,
    message: [lit('"a\\u202e.internal"')],
    check: clean,
  },
  {
    title: 'acme-server eab revoke a kid with ESC',
    args: ['acme-server', 'eab', 'revoke', `kid${ESC}[2J`],
    status: [EXIT.NOT_FOUND, EXIT.INVALID_INPUT],
    message: [lit('kid\\u001b[2J')],
    check: clean,
    json: true,
  },
  {
    title: 'acme-server renew-early --serial with ESC',
    args: ['acme-server', 'renew-early', '--serial', `AB${ESC}[2J`],
    status: EXIT.USAGE,
    message: [/--serial .* is not a hexadecimal serial/],
    check: clean,
  },
  {
    title: 'acme-server renew-early --before with U+2028',
    args: ['acme-server', 'renew-early', '--before', '2020-01-01\u2028'],
    status: EXIT.USAGE,
    message: [/--before .* is not a date/, lit('\\u2028')],
    check: clean,
  },
];
