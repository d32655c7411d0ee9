// Hostile rows: the ACME client's local failures, which need no CA. A --ca-bundle that is missing, not PEM,
// a key, a special file, huge, or planted by another user; a registration without --agree-tos (the hint gives
// the link or says why it cannot); EAB options that do not fit; dns-01 hooks and webroots that cannot work
// (refused before any account or order is looked at); conflicting challenge options. Nothing may change.
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { asNobody, EXIT, lit } from './harness.js';

// a directory URL nothing listens on: every row fails before (or without) reaching a CA
const NOWHERE = 'https://127.0.0.1:1/dir';
const register = (...more) => ['acme', 'account', 'register', '--directory', NOWHERE, ...more];
const dns = (hook, ...more) => [
  'acme',
  'issue',
  'web',
  '-d',
  'web.example.com',
  '--challenge',
  'dns-01',
  '--dns-hook',
  hook,
  ...more,
];

const BAD_BUNDLE = {
  status: EXIT.INVALID_INPUT,
  code: 'INVALID_INPUT',
  hint: /PEM file of the CA that signed the ACME server's TLS certificate/,
};
const BAD_HOOK = { status: EXIT.INVALID_INPUT, code: 'INVALID_INPUT', hint: /--dns-hook an executable program/ };

const KEY_PEM =
  '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPQ0Vn9J6B1cZ7uWbX3rQ0oJmR9V8y2Gk2m1n4cB7vXy\n-----END PRIVATE KEY-----\n';

export const CASES = [
  // ---- item 27: --ca-bundle is checked at once, with a clear error (not "this is a bug") ------------------
  {
    title: 'acme register --ca-bundle /nonexistent.pem',
    args: register('--agree-tos', '--ca-bundle', '/nonexistent.pem'),
    ...BAD_BUNDLE,
    message: [lit('--ca-bundle /nonexistent.pem does not exist')],
    json: true,
  },
  {
    title: 'acme register --ca-bundle a text file that holds no PEM',
    setup: (ctx) => writeFileSync(join(ctx.work, 'bundle.pem'), 'this is not a certificate\n'),
    args: (ctx) => register('--agree-tos', '--ca-bundle', join(ctx.work, 'bundle.pem')),
    ...BAD_BUNDLE,
    message: [/bundle\.pem holds no PEM certificate/],
    json: true,
  },
  {
    title: 'acme register --ca-bundle a private key instead of a certificate',
    setup: (ctx) => writeFileSync(join(ctx.work, 'key.pem'), KEY_PEM, { mode: 0o600 }),
    args: (ctx) => register('--agree-tos', '--ca-bundle', join(ctx.work, 'key.pem')),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/key\.pem holds a PRIVATE KEY block, not only certificates/],
    hint: /never a key/,
  },
  {
    title: 'acme register --ca-bundle a certificate block with garbage inside',
    setup: (ctx) =>
      writeFileSync(
        join(ctx.work, 'garbage.pem'),
        '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n',
      ),
    args: (ctx) => register('--agree-tos', '--ca-bundle', join(ctx.work, 'garbage.pem')),
    ...BAD_BUNDLE,
    message: [/garbage\.pem: certificate 1 of 1 cannot be parsed/],
  },
  {
    title: 'acme register --ca-bundle a folder',
    args: (ctx) => register('--agree-tos', '--ca-bundle', ctx.work),
    ...BAD_BUNDLE,
    message: [/--ca-bundle .*work is a folder/],
    hint: /regular file/,
  },
  {
    title: 'acme register --ca-bundle /dev/zero',
    args: register('--agree-tos', '--ca-bundle', '/dev/zero'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/--ca-bundle \/dev\/zero is .*not a regular file/],
    timeout: 20_000,
  },
  {
    title: 'acme register --ca-bundle a FIFO (must not hang)',
    setup: (ctx) => mkfifo(join(ctx.work, 'bundle.fifo')),
    args: (ctx) => register('--agree-tos', '--ca-bundle', join(ctx.work, 'bundle.fifo')),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/bundle\.fifo is .*not a regular file/],
    timeout: 20_000,
  },
  {
    title: 'acme register --ca-bundle of 5 MiB',
    setup: (ctx) => writeFileSync(join(ctx.work, 'huge.pem'), Buffer.alloc(5 * 1024 * 1024, 0x41)),
    args: (ctx) => register('--agree-tos', '--ca-bundle', join(ctx.work, 'huge.pem')),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/huge\.pem is 5242880 bytes; the limit is/],
  },
  {
    title: 'acme register --ca-bundle another user put in a shared folder (it decides whom mcpki trusts)',
    world: true,
    setup: (ctx) =>
      asNobody('sh', [
        '-c',
        `cp /etc/ssl/certs/ca-certificates.crt ${ctx.public}/bundle.pem 2>/dev/null || echo x > ${ctx.public}/bundle.pem`,
      ]),
    args: (ctx) => register('--agree-tos', '--ca-bundle', join(ctx.public, 'bundle.pem')),
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
    message: [/bundle\.pem belongs to uid 65534/],
    hint: /chown/,
    json: true,
  },
  // ---- item 27: the terms of service ---------------------------------------------------------------------
  {
    title: 'acme register without --agree-tos: the hint says where the terms are, or why it cannot',
    args: register('--email', 'ops@example.com'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [lit(`the terms of service of ${NOWHERE} were not agreed to`)],
    hint: /terms of service \(its directory could not be fetched for the link\), then pass --agree-tos/,
    json: true,
  },
  {
    title: 'acme register without --agree-tos and with a bad --ca-bundle: the bundle is reported first',
    args: register('--ca-bundle', '/nonexistent.pem'),
    ...BAD_BUNDLE,
    message: [lit('--ca-bundle /nonexistent.pem does not exist')],
  },
  // ---- item 27: EAB --------------------------------------------------------------------------------------
  {
    title: 'acme register --eab-kid without its HMAC key',
    args: register('--agree-tos', '--eab-kid', 'kid-1'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/--eab-kid needs its HMAC key/],
    hint: /--eab-hmac-file FILE or set MCPKI_EAB_HMAC/,
  },
  {
    title: 'acme register --eab-hmac-file without --eab-kid',
    setup: (ctx) => writeFileSync(join(ctx.work, 'hmac'), 'c2VjcmV0\n', { mode: 0o600 }),
    args: (ctx) => register('--agree-tos', '--eab-hmac-file', join(ctx.work, 'hmac')),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/--eab-hmac-file needs --eab-kid/],
  },
  {
    title: 'acme register with an invalid --email',
    args: register('--agree-tos', '--email', 'not-an-address'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [lit('invalid e-mail address "not-an-address"')],
  },
  // ---- item 26: dns-01 hooks and webroots are checked before any account or order ------------------------
  {
    title: 'acme issue --dns-hook that does not exist (before the account is even looked up)',
    args: (ctx) => dns(join(ctx.work, 'no-such-hook')),
    ...BAD_HOOK,
    message: [/the dns-01 hook .*no-such-hook does not exist/],
    json: true,
  },
  {
    title: 'acme issue --dns-hook that is not executable',
    setup: (ctx) => writeFileSync(join(ctx.work, 'hook.sh'), '#!/bin/sh\nexit 0\n', { mode: 0o644 }),
    args: (ctx) => dns(join(ctx.work, 'hook.sh')),
    ...BAD_HOOK,
    hint: /chmod \+x/,
    message: [/the dns-01 hook .*hook\.sh is not executable/],
  },
  {
    title: 'acme issue --dns-hook that is a folder',
    args: (ctx) => dns(ctx.work),
    ...BAD_HOOK,
    message: [/the dns-01 hook .*work is not a regular file/],
  },
  {
    title: 'acme issue --dns-hook a program not on PATH',
    args: dns('mcpki-no-such-dns-hook --zone example.com'),
    ...BAD_HOOK,
    message: [lit('the dns-01 hook mcpki-no-such-dns-hook is not on PATH')],
  },
  {
    title: 'acme issue --dns-hook with an unterminated quote',
    args: dns("/usr/bin/true 'unterminated"),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/unterminated single quote/],
  },
  {
    title: 'acme issue --dns-hook ""',
    args: dns(''),
    status: EXIT.USAGE,
    code: 'USAGE',
    message: [/--dns-hook was given an empty value/],
  },
  {
    title: 'acme issue --webroot that does not exist',
    args: (ctx) => ['acme', 'issue', 'web', '-d', 'web.example.com', '--webroot', join(ctx.work, 'www')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/webroot .*www is not a folder/],
    hint: /document root/,
    json: true,
  },
  {
    title: 'acme issue --webroot whose .well-known is a file',
    setup: (ctx) => {
      mkdirSync(join(ctx.work, 'www'));
      writeFileSync(join(ctx.work, 'www', '.well-known'), 'not a folder\n');
    },
    args: (ctx) => ['acme', 'issue', 'web', '-d', 'web.example.com', '--webroot', join(ctx.work, 'www')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/www\/\.well-known is not a folder/],
  },
  {
    title: 'acme issue --webroot through a dangling symlink',
    setup: (ctx) => symlinkSync(join(ctx.work, 'gone'), join(ctx.work, 'www')),
    args: (ctx) => ['acme', 'issue', 'web', '-d', 'web.example.com', '--webroot', join(ctx.work, 'www')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/webroot .*www is not a folder/],
  },
  {
    title: 'acme issue a wildcard with http-01',
    args: ['acme', 'issue', 'wild', '-d', '*.example.com'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [lit('wildcard "*.example.com" can only be validated with dns-01')],
  },
  {
    title: 'acme issue --dns-timeout 0',
    args: dns('/usr/bin/true', '--dns-timeout', '0'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/--dns-timeout must be a positive number of seconds, not "0"/],
  },
  {
    title: 'acme issue --http-port with --challenge dns-01',
    args: dns('/usr/bin/true', '--http-port', '8080'),
    status: EXIT.USAGE,
    code: 'USAGE',
    message: [/--http-port applies only to --challenge http-01, not dns-01/],
  },
  {
    title: 'acme issue with a working hook but no ACME account',
    args: dns('/usr/bin/true'),
    status: EXIT.NOT_FOUND,
    code: 'ACME_ACCOUNT_MISSING',
    message: [/no ACME account is registered/],
    hint: /acme account register/,
  },
];

/** A FIFO of the running user's own: only its type is wrong (reading it would block forever). */
function mkfifo(path) {
  const { status } = spawnSync('mkfifo', ['-m', '600', path], { stdio: 'ignore' });
  if (status !== 0) throw new Error(`mkfifo ${path} failed`);
}
