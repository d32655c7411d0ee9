// Options (issue 8: empty values, bad numbers, bad key types, repeated flags, unknown commands): each is
// refused before anything is read or written, as a usage error (exit 2) or invalid input (exit 3), with one
// error line naming the option and one hint.
import { EXIT, lit } from './harness.js';

const SERVER = ['issue', 'server', 'web', 'web.localhost'];

/** An option given an empty value: a usage error naming the option, with a hint to give a value. */
const empty = (command, flag, { home, extra = [] } = {}) => ({
  title: `${command.join(' ')} ${flag} "": an empty value is a usage error`,
  home,
  args: [...command, ...extra, flag, ''],
  status: EXIT.USAGE,
  code: 'USAGE',
  message: [new RegExp(`^error: ${flag} was given an empty value$|^${flag} was given an empty value$`)],
  hint: new RegExp(`give ${flag} <[^>]+> a value, or leave the option out`),
});

export const CASES = [
  // empty option values (an empty --out would otherwise mean the default folder)
  { ...empty(SERVER, '--out'), json: true },
  empty(SERVER, '--days'),
  empty(SERVER, '--key'),
  empty(SERVER, '--p12-password-file', { extra: ['--p12'] }),
  empty(['issue', 'client', 'agent'], '--out'),
  empty(['issue', 'batch', '-'], '--out'),
  { ...empty(['check', 'localhost:1'], '--ca'), json: true },
  empty(['check', 'localhost:1'], '--servername'),
  empty(['check', 'localhost:1'], '--timeout'),
  empty(['check', 'web'], '--key'),
  empty(['crl'], '--days'),
  empty(['crl'], '--out'),
  empty(['events'], '--limit'),
  empty(['list'], '--expiring'),
  empty(['init'], '--permit', { home: 'none' }),
  {
    title: '--out "  " (only spaces) is an empty value too',
    args: [...SERVER, '--out', '  '],
    status: EXIT.USAGE,
    message: [/--out was given an empty value/],
  },
  // bad --days
  {
    title: 'issue --days 0',
    args: [...SERVER, '--days', '0'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_DAYS',
    message: [/--days must be a whole number from 1 to 398, got 0/],
    json: true,
  },
  {
    title: 'issue --days -1',
    args: [...SERVER, '--days', '-1'],
    status: EXIT.USAGE,
    message: [lit("'-1'"), /whole number/],
  },
  {
    title: 'issue --days 1e9',
    args: [...SERVER, '--days', '1e9'],
    status: EXIT.USAGE,
    message: [lit("'1e9'"), /whole number/],
  },
  {
    title: 'issue --days 1.5',
    args: [...SERVER, '--days', '1.5'],
    status: EXIT.USAGE,
    message: [lit("'1.5'"), /whole number/],
  },
  {
    title: 'issue --days 399 (over the limit)',
    args: [...SERVER, '--days', '399'],
    status: EXIT.INVALID_INPUT,
    message: [/from 1 to 398, got 399/],
  },
  {
    title: 'issue --days with 22 digits',
    args: [...SERVER, '--days', '9999999999999999999999'],
    status: EXIT.INVALID_INPUT,
    message: [/from 1 to 398/],
  },
  {
    title: 'check --timeout 0',
    args: ['check', 'localhost:1', '--timeout', '0'],
    status: EXIT.INVALID_INPUT,
    message: [lit('--timeout "0"')],
  },
  // bad key types
  {
    title: 'issue --key rsa-1024',
    args: [...SERVER, '--key', 'rsa-1024'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_KEY_TYPE',
    message: [lit('"rsa-1024"')],
    hint: /ec-p256/,
    json: true,
  },
  {
    title: 'issue --key EC-P256 (case matters)',
    args: [...SERVER, '--key', 'EC-P256'],
    status: EXIT.INVALID_INPUT,
    message: [lit('"EC-P256"')],
  },
  { title: 'issue --key dsa', args: [...SERVER, '--key', 'dsa'], status: EXIT.INVALID_INPUT, message: [lit('"dsa"')] },
  // a flag given twice: which value wins is not obvious, so neither does
  {
    title: 'issue --days 30 --days 40',
    args: [...SERVER, '--days', '30', '--days', '40'],
    status: EXIT.USAGE,
    code: 'USAGE',
    message: [/--days was given more than once/],
    hint: /give --days once/,
    json: true,
  },
  {
    title: 'issue --out A --out B',
    args: (ctx) => [...SERVER, '--out', ctx.work, '--out', `${ctx.work}/b`],
    status: EXIT.USAGE,
    message: [/--out was given more than once/],
  },
  {
    title: 'issue --key ec-p256 --key rsa-2048',
    args: [...SERVER, '--key', 'ec-p256', '--key', 'rsa-2048'],
    status: EXIT.USAGE,
    message: [/--key was given more than once/],
  },
  {
    title: 'check --timeout 1 --timeout 2',
    args: ['check', 'localhost:1', '--timeout', '1', '--timeout', '2'],
    status: EXIT.USAGE,
    message: [/--timeout was given more than once/],
  },
  // numbers out of range that reached the inventory
  {
    title: 'events --limit with 20 digits (was an inventory error advising to move mcpki.db aside)',
    args: ['events', '--limit', '99999999999999999999'],
    status: EXIT.USAGE,
    code: 'USAGE',
    message: [/from 1 to 1000000/],
    hint: /mcpki events --help/,
    json: true,
    check: (ctx, result) => {
      if (/mcpki\.db/.test(result.stderr + result.stdout)) throw new Error(`blames the inventory: ${result.stderr}`);
    },
  },
  { title: 'events --limit 0', args: ['events', '--limit', '0'], status: EXIT.USAGE, message: [/from 1 to 1000000/] },
  // --servername: what SNI can carry
  {
    title: 'check --servername with a space',
    args: ['check', 'localhost:1', '--servername', 'a b'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [lit('--servername "a b" is not a DNS name')],
    json: true,
  },
  {
    title: 'check --servername with ESC and U+202E is refused, shown escaped',
    args: ['check', 'localhost:1', '--servername', 'a\u001b[2J\u202eb'],
    status: EXIT.INVALID_INPUT,
    message: [/is not a DNS name/, lit('\\u001b[2J\\u202eb')],
  },
  {
    title: 'check --servername with a semicolon',
    args: ['check', 'localhost:1', '--servername', 'a.localhost;b'],
    status: EXIT.INVALID_INPUT,
    message: [/is not a DNS name/],
  },
  // unknown commands and options
  {
    title: 'an unknown command',
    args: ['frobnicate'],
    status: EXIT.USAGE,
    message: [lit("unknown command 'frobnicate'")],
    hint: /mcpki --help/,
    json: true,
  },
  {
    title: 'an unknown subcommand',
    args: ['issue', 'frob'],
    status: EXIT.USAGE,
    message: [lit("unknown command 'frob'")],
    hint: /mcpki issue --help/,
  },
  {
    title: 'an unknown option',
    args: ['list', '--frobnicate'],
    status: EXIT.USAGE,
    message: [lit("unknown option '--frobnicate'")],
  },
  {
    title: 'a name that looks like an option',
    args: ['issue', 'server', 'web', '-x'],
    status: EXIT.USAGE,
    message: [lit("unknown option '-x'")],
    hint: /put "--" before it/,
  },
  {
    title: 'issue server without a name',
    args: ['issue', 'server'],
    status: EXIT.USAGE,
    message: [/missing required argument 'name'/],
  },
  {
    title: 'an unknown command full of control characters is shown escaped',
    args: ['frob\u001b[2J\u202e'],
    status: EXIT.USAGE,
    message: [lit('frob\\e[2J\\u202e')],
    check: (ctx, result) => {
      if (/[\u001b\u202e]/.test(result.stderr))
        throw new Error(`raw control character on stderr: ${JSON.stringify(result.stderr)}`);
    },
  },
];
