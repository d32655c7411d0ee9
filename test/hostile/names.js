// Names and constraints (issue 8, items 4, 11, 18, 19 and 22): URI and e-mail SANs outside the constraints,
// IPv4 forms that some programs read as addresses and others as host names, --permit values that remove a
// constraint, empty PKCS#12 passwords, an init that would replace a CA that exists (or a half-made one), and
// init --force over a root that is trusted in a store mcpki cannot change here. Each is refused before any
// key is generated, with the documented exit code, and nothing under the case folder changes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCommand, mcpki, run } from '../helpers.js';
import { asNobody, EXIT, lit } from './harness.js';

const outside = /outside the CA's name constraints/;
const permitHint = /permitted name|--permit/;

/** `issue server NAME SANS…` with its output in the case's work folder. */
const issue =
  (kind, name, ...sans) =>
  (ctx) => ['issue', kind, name, ...sans, '--out', join(ctx.work, 'out')];

const ambiguous = (form, canonical, kind = 'server') => ({
  title: `issue ${kind}: ${form} is refused as an ambiguous IPv4 form, not as a DNS name outside the constraints`,
  args: issue(kind, 'amb', 'localhost', form),
  status: EXIT.INVALID_INPUT,
  code: 'INVALID_NAME',
  message: [/ambiguous name/, lit(`"${form}"`), lit(canonical)],
  hint: lit(`write the address as ${canonical}`),
  json: true,
});

const outsideSan = (title, san, kind = 'server', reason = /may only sign/) => ({
  title,
  args: issue(kind, 'outside', 'localhost', san),
  status: EXIT.NOT_PERMITTED,
  code: 'NAME_NOT_PERMITTED',
  message: [outside, lit(san), reason],
  hint: permitHint,
  json: true,
});

const broadPermit = (value, what) => ({
  title: `init --permit ${value} (${what}) is refused without --allow-broad-permit`,
  home: 'empty',
  args: ['init', '--permit', value],
  status: EXIT.INVALID_INPUT,
  code: 'INVALID_NAME',
  message: [lit(`--permit ${value}`), /no longer limit/],
  hint: /--allow-broad-permit/,
  json: true,
});

const badPermit = (value, message, hint) => ({
  title: `init --permit ${value} is refused`,
  home: 'empty',
  args: ['init', '--permit', value],
  status: EXIT.INVALID_INPUT,
  code: 'INVALID_NAME',
  message,
  hint,
});

const emptyPassword = (title, content) => ({
  title,
  setup: (ctx) => writeFileSync(join(ctx.work, 'p12.pass'), content, { mode: 0o600 }),
  args: (ctx) => [
    'issue',
    'server',
    'web',
    'web.localhost',
    '--p12-password-file',
    join(ctx.work, 'p12.pass'),
    '--out',
    join(ctx.work, 'out'),
  ],
  status: EXIT.PASSPHRASE,
  code: 'PASSPHRASE_MISSING',
  message: /PKCS#12 password is empty/,
  hint: /first line of the password file/,
  json: true,
});

/** An NSS database in the case folder that trusts the case's root (made before the snapshot). */
function trustInNss(ctx) {
  const db = join(ctx.work, 'nssdb');
  mkdirSync(db);
  const made = run('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
  if (made.status !== 0) throw new Error(`certutil -N: ${made.stderr}`);
  const installed = mcpki(['--home', ctx.home, 'trust', 'install', '--store', 'nss', '--nss-db', db]);
  if (installed.status !== 0) throw new Error(`trust install: ${installed.stderr}`);
  mkdirSync(join(ctx.work, 'bin'));
  return db;
}

export const CASES = [
  // item 18: IPv4 forms that are not dotted quads
  ambiguous('127.1', '127.0.0.1'),
  ambiguous('0x7f.1', '127.0.0.1'),
  ambiguous('2130706433', '127.0.0.1'),
  ambiguous('017.0.0.1', '15.0.0.1'),
  ambiguous('0x7f000001', '127.0.0.1', 'client'),
  {
    title: 'issue server: an e-mail address at 127.1 is refused as ambiguous',
    args: issue('server', 'amb', 'localhost', 'ops@127.1'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: [/ambiguous name/, lit('ops@127.1')],
    hint: lit('127.0.0.1'),
  },
  {
    title: 'issue batch: a line with 127.1 is refused as ambiguous and nothing is issued',
    setup: (ctx) => writeFileSync(join(ctx.work, 'req.batch'), 'server ok ok.localhost\nserver amb 127.1\n'),
    args: (ctx) => ['issue', 'batch', join(ctx.work, 'req.batch'), '--out', join(ctx.work, 'out')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: [/ambiguous name/, lit('"127.1"')],
    hint: lit('127.0.0.1'),
  },

  // item 4: URI and e-mail SANs are constrained
  outsideSan(
    'issue server: a SPIFFE ID of another trust domain is outside the constraints',
    'spiffe://prod.bigcorp.com/x',
  ),
  outsideSan('issue server: an https URI of a public site is outside the constraints', 'https://www.google.com/'),
  outsideSan(
    'issue client: an e-mail address at a public domain is outside the constraints',
    'ceo@bigcorp.com',
    'client',
    /e-mail addresses at/,
  ),
  outsideSan(
    'issue client: an e-mail domain that only starts with a permitted name is outside',
    'ceo@test.bigcorp.com',
    'client',
    /e-mail addresses at/,
  ),
  outsideSan(
    'issue server: a URI whose host is an IP address cannot be constrained and is refused',
    'https://127.0.0.1:8443/',
    'server',
    /IP address/,
  ),
  outsideSan(
    'issue server: a URI without a host cannot be constrained and is refused',
    'file:///etc/passwd',
    'server',
    /no host/,
  ),
  outsideSan(
    'issue server: a URI on the bare "test" (only names below .test are permitted) is refused',
    'https://test/',
    'server',
    /URIs whose host is/,
  ),
  {
    title: 'issue batch: a line with an outside URI stops the batch before anything is issued',
    setup: (ctx) =>
      writeFileSync(join(ctx.work, 'req.batch'), 'server ok ok.localhost\nserver evil spiffe://evil.example/x\n'),
    args: (ctx) => ['issue', 'batch', join(ctx.work, 'req.batch'), '--out', join(ctx.work, 'out')],
    status: EXIT.NOT_PERMITTED,
    code: 'NAME_NOT_PERMITTED',
    message: [outside, lit('spiffe://evil.example/x')],
  },

  // item 19: --permit values that remove a constraint
  broadPermit('0.0.0.0/0', 'every IPv4 address'),
  broadPermit('::/0', 'every IPv6 address'),
  broadPermit('0.0.0.0/1', 'half of all IPv4 addresses'),
  broadPermit('com', 'a public top-level domain'),
  broadPermit('.org', 'every name under a public top-level domain'),
  broadPermit('.', 'every DNS name'),
  {
    ...broadPermit('0.0.0.0/0', 'on a home that has a CA, with --force'),
    title: 'init --force --permit 0.0.0.0/0 is refused before the CA is touched',
    home: 'ca',
    args: ['init', '--force', '--permit', '0.0.0.0/0'],
  },
  badPermit('127.1', [/ambiguous name/, lit('"127.1"')], lit('127.0.0.1')),
  badPermit('127.1/8', [/ambiguous network/, lit('127.1/8')], lit('127.0.0.1/8')),
  badPermit(
    'https://corp.example',
    [/only spiffe:\/\/ trust domains/, lit('https://corp.example')],
    /--permit \.corp\.example/,
  ),
  badPermit(
    'spiffe://prod.example/workload',
    [/invalid permitted SPIFFE trust domain/, lit('spiffe://prod.example/workload')],
    /spiffe:\/\/prod\.example \(no path\)/,
  ),
  badPermit('spiffe://prod.example:8443', [/invalid permitted SPIFFE trust domain/], /no path/),
  emptyPassword('issue --p12-password-file: an empty password file is refused', ''),
  emptyPassword(
    'issue --p12-password-file: a password file whose first line is empty is refused',
    '\r\nsecret-on-line-two\n',
  ),

  // item 11: init never replaces a CA, nor a half-made one
  {
    title: 'init with other options on a home that holds a CA is refused (exit 5)',
    args: ['init', '--key', 'ec-p384'],
    status: EXIT.EXISTS,
    code: 'CA_EXISTS',
    message: [/a CA already exists/, /ca/],
    hint: /--force/,
    json: true,
  },
  {
    title: 'init where only a root key is left (a half-made CA) refuses instead of overwriting the key',
    home: 'empty',
    setup: (ctx) => {
      mkdirSync(join(ctx.home, 'ca'), { mode: 0o700 });
      writeFileSync(join(ctx.home, 'ca', 'root.key'), 'not really a key\n', { mode: 0o600 });
    },
    args: ['init'],
    status: EXIT.EXISTS,
    code: 'CA_EXISTS',
    message: /a CA already exists/,
    hint: /--force/,
  },
  {
    title: 'init where another user planted root.crt in a world-writable ca folder does not build on it',
    home: 'empty',
    world: true,
    homeArg: (ctx) => join(ctx.public, 'home'),
    setup: (ctx) => {
      asNobody('sh', [
        '-c',
        `mkdir -m 0777 ${join(ctx.public, 'home')} && mkdir -m 0777 ${join(ctx.public, 'home', 'ca')} && echo planted > ${join(ctx.public, 'home', 'ca', 'root.crt')}`,
      ]);
    },
    args: ['init'],
    status: [EXIT.EXISTS, EXIT.UNSAFE_PATH],
    message: /already exists|owned by|writable/,
  },

  // item 22: init --force over a root trusted in a store mcpki cannot change here
  {
    title: 'init --force with the root trusted in an NSS database and no certutil refuses (exit 11), CA unchanged',
    skip: !hasCommand('certutil') && 'certutil is not installed',
    setup: trustInNss,
    args: ['init', '--force'],
    env: { PATH: '/nonexistent-mcpki-path' },
    status: EXIT.TRUST,
    code: 'TRUST_TOOL_MISSING',
    message: [/installed in NSS databases/, /nssdb/],
    hint: /mcpki trust uninstall/,
    json: true,
  },
];
