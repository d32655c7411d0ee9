// Hostile input content (issue 8, items 12, 13 and 15): names with control characters, huge values, IDN,
// wildcards in the wrong place, and batch files that are malformed, empty or enormous. Every message shows
// the offending value escaped (no raw ESC, NUL, CR/LF, U+202E or U+2028 reaches the terminal) and cut when
// long ("…(N chars)"), and nothing is issued.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT, lit } from './harness.js';

// eslint-disable-next-line no-control-regex
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** stderr and stdout hold no raw control character and no line longer than `max`. */
function clean(max = 1300) {
  return (ctx, result) => {
    for (const [name, text] of [
      ['stderr', result.stderr],
      ['stdout', result.stdout],
    ]) {
      if (RAW.test(text)) throw new Error(`raw control character on ${name}: ${JSON.stringify(text.slice(0, 300))}`);
      const longest = Math.max(0, ...text.split('\n').map((line) => line.length));
      if (longest > max) throw new Error(`a ${longest}-character line on ${name}`);
    }
  };
}

const batch = (text) => (ctx) => writeFileSync(join(ctx.work, 'requests'), text);
const batchArgs = (ctx) => ['issue', 'batch', join(ctx.work, 'requests')];

export const CASES = [
  {
    title: 'a batch entry whose "out" climbs out with ".."',
    setup: batch('[{"name": "w1", "sans": ["w1.localhost"], "out": "../../etc"}]'),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/"out" climbs out of its folder/],
    json: true,
  },
  {
    title: 'a certificate with 101 names (at most 100)',
    args: ['issue', 'server', 'many', ...Array.from({ length: 101 }, (_, i) => `n${i}.localhost`)],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [/101 names for one certificate: at most 100/],
    json: true,
  },
  // control characters are escaped, in plain and --json output
  {
    title: 'a certificate name with ESC sequences is shown escaped',
    args: ['issue', 'server', 'a\u001b[31mred\u001b[0m', 'a.localhost'],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_NAME',
    message: [lit('a\\e[31mred\\e[0m')],
    check: clean(),
    json: true,
  },
  {
    title: 'a DNS name with U+202E (right-to-left override) is shown escaped',
    args: ['issue', 'server', 'web', 'moc.elgoog\u202e.localhost'],
    status: EXIT.INVALID_INPUT,
    message: [lit('moc.elgoog\\u202e.localhost')],
    check: clean(),
    json: true,
  },
  {
    title: 'an e-mail name with U+2028 (line separator) is shown escaped',
    args: ['issue', 'client', 'agent', 'ops@x\u2028.test'],
    status: EXIT.INVALID_INPUT,
    message: [lit('\\u2028')],
    check: clean(),
  },
  {
    title: 'a certificate name with CR/LF cannot forge a second output line',
    args: ['issue', 'server', 'web\r\nerror: forged', 'web.localhost'],
    status: EXIT.INVALID_INPUT,
    message: [lit('web\\r\\nerror: forged')],
    check: (ctx, result) => {
      clean()(ctx, result);
      if (result.stderr.split('\n').filter((line) => line.startsWith('error:')).length !== 1)
        throw new Error(`more than one error line: ${result.stderr}`);
    },
  },
  {
    title: 'a batch line with NUL, ESC and U+202E is shown escaped',
    setup: batch('server we\u0000b\u001b]0;pwned\u0007\u202e web.localhost\n'),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [lit('we\\0b\\e]0;pwned\\x07\\u202e')],
    check: clean(),
    json: true,
  },
  {
    title: 'a batch line with a bidi isolate (U+2066) and DEL is shown escaped',
    setup: batch('frob \u2066name\u007f\n'),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [lit('\\u2066name\\x7f')],
    check: clean(),
  },
  // long values are cut, the length is said
  {
    title: 'a 30 MB batch line is cut in the message, with its length',
    setup: batch(`serverx ${'a'.repeat(30_000_000)}\n`),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [/batch line 1/, /…\(30000001 chars\)/],
    check: (ctx, result) => {
      clean()(ctx, result);
      if (result.stderr.length > 2000) throw new Error(`stderr is ${result.stderr.length} characters`);
    },
    json: true,
  },
  {
    title: 'a 30 MB batch line of short words is cut as a whole',
    setup: batch(`frob ${'a.localhost '.repeat(2_500_000)}\n`),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [/batch line 1/, /…\(\d{7,} chars\)$/],
    check: clean(),
  },
  {
    title: 'a 100,000-character DNS name is cut in the message',
    args: ['issue', 'server', 'web', `${'a'.repeat(100_000)}.localhost`],
    status: EXIT.INVALID_INPUT,
    message: [/…\(1000\d\d chars\)/],
    check: clean(),
    json: true,
  },
  {
    title: 'a 5,000-character certificate name is cut in the message',
    args: ['issue', 'server', 'n'.repeat(5000), 'web.localhost'],
    status: EXIT.INVALID_INPUT,
    message: [/invalid certificate name/, /…\(500\d chars\)/],
    check: clean(),
  },
  // names: wildcards in the wrong place, IDN, addresses
  {
    title: 'a wildcard in the middle of a name',
    args: ['issue', 'server', 'web', 'a.*.localhost'],
    status: EXIT.INVALID_INPUT,
    message: [lit('"a.*.localhost"'), /wildcard/],
  },
  {
    title: 'two wildcards',
    args: ['issue', 'server', 'web', '*.*.localhost'],
    status: EXIT.INVALID_INPUT,
    message: [lit('"*.*.localhost"'), /wildcard/],
  },
  {
    title: 'a partial-label wildcard',
    args: ['issue', 'server', 'web', 'foo*.localhost'],
    status: EXIT.INVALID_INPUT,
    message: [/wildcard/],
  },
  {
    title: 'a bare wildcard',
    args: ['issue', 'server', 'web', '*'],
    status: EXIT.INVALID_INPUT,
    message: [lit('"*"')],
  },
  {
    title: 'an invalid punycode label',
    args: ['issue', 'server', 'web', 'xn--zz.localhost'],
    status: EXIT.INVALID_INPUT,
    message: [lit('xn--zz.localhost')],
  },
  {
    title: 'an IDN outside the name constraints',
    args: ['issue', 'server', 'web', 'bücher.example'],
    status: EXIT.NOT_PERMITTED,
    message: [/xn--bcher-kva\.example|bücher\.example/],
  },
  {
    title: 'an IPv4 address out of range',
    args: ['issue', 'server', 'web', '256.1.1.1'],
    status: EXIT.INVALID_INPUT,
    message: [/256\.1\.1\.1/],
  },
  {
    title: 'a network where a name belongs',
    args: ['issue', 'server', 'web', '10.0.0.0/8'],
    status: EXIT.INVALID_INPUT,
    message: [/10\.0\.0\.0\/8/],
  },
  {
    title: 'a path in the certificate name',
    args: ['issue', 'server', '../../etc/cron.d/x', 'web.localhost'],
    status: EXIT.INVALID_INPUT,
    message: [/invalid certificate name/],
  },
  // batch files (13, batch part): user errors are input errors, never internal ones
  {
    title: 'batch: an empty file holds no requests',
    setup: batch(''),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [/holds no requests/],
    json: true,
  },
  {
    title: 'batch: only comments and blank lines',
    setup: batch('# nothing\n\n   \n'),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [/holds no requests/],
  },
  {
    title: 'batch: an empty JSON array',
    setup: batch('[]'),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [/holds no requests/],
  },
  {
    title: 'batch from standard input with no requests',
    args: ['issue', 'batch', '-'],
    input: '\n',
    status: EXIT.INVALID_INPUT,
    message: [/batch from standard input holds no requests/],
  },
  {
    title: 'batch: an empty "out" would write into the working folder',
    setup: batch('[{"name":"web","sans":["web.localhost"],"out":""}]'),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [/"out" is empty/],
    json: true,
  },
  {
    title: 'batch: an unknown kind on a line',
    setup: batch('daemon web web.localhost\n'),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [/batch line 1/, lit('daemon web')],
  },
  {
    title: 'batch: invalid JSON',
    setup: batch('[{"name": "web",]'),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [/not valid JSON/],
  },
  {
    title: 'batch: 100,000 nested JSON arrays',
    setup: batch(`${'['.repeat(100_000)}${']'.repeat(100_000)}`),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [/batch entry 1 is not an object/],
  },
  {
    title: 'batch: a "__proto__" field',
    setup: batch('[{"name":"web","sans":["web.localhost"],"__proto__":{"out":"/etc"}}]'),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [lit('unknown field "__proto__"')],
  },
  {
    title: 'batch: "days" as a string',
    setup: batch('[{"name":"web","sans":["web.localhost"],"days":"30"}]'),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [lit('"days" must be a whole number')],
  },
  {
    title: 'batch: "days" of 1e9',
    setup: batch('[{"name":"web","sans":["web.localhost"],"days":1e9}]'),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [/from 1 to 398, got 1000000000/],
  },
  {
    title: 'batch: a bad key type',
    setup: batch('[{"name":"web","sans":["web.localhost"],"key":"rsa-512"}]'),
    args: batchArgs,
    status: EXIT.INVALID_INPUT,
    message: [lit('"rsa-512"')],
  },
  {
    title: 'batch: the same name twice',
    setup: (ctx) => writeFileSync(join(ctx.work, 'requests'), 'server web web.localhost\nserver web web.localhost\n'),
    args: (ctx) => [...batchArgs(ctx), '--out', join(ctx.work, 'out')],
    status: EXIT.INVALID_INPUT,
    message: [/two requests write/],
  },
  {
    title: 'batch: a second request outside the constraints issues nothing',
    setup: batch('server ok ok.localhost\nserver bad www.google.com\n'),
    args: batchArgs,
    status: EXIT.NOT_PERMITTED,
    message: [lit('www.google.com')],
  },
];
