// CLI manners (issue 10 items 7–9): help, terminal width, progress, dates, --var, batch errors, PKCS#12
// password, `list --expiring` for scripts, key modes in `check`, `trust install` as a normal user, revoked
// client certificates in `check`, and the example mcpki.yaml next to the quick start.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import https from 'node:https';
import { BIN, ROOT, hasCommand, mcpki, mcpkiAsync, run, tempDir } from './helpers.js';

const IS_ROOT = process.getuid?.() === 0;
const HAS_SETPRIV = hasCommand('setpriv');
const HAS_PYTHON = hasCommand('python3');

/**
 * Runs the CLI on a real pseudo-terminal of `columns` columns (Python's pty module: the CLI sees a TTY on
 * stdout and stderr, both read back through the master side). Returns the output with CR LF as LF.
 */
const PTY = `
import os, pty, sys, struct, fcntl, termios, select, time
cols = int(sys.argv[1]); argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 50, cols, 0, 0))
out = b''
start = time.time()
while True:
    try:
        r, _, _ = select.select([fd], [], [], 300)
        if not r: break
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data: break
    out += data
_, status = os.waitpid(pid, 0)
sys.stderr.write('%.3f' % (time.time() - start))
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status))
`;

function onTerminal(columns, args, env = {}) {
  const result = spawnSync('python3', ['-c', PTY, String(columns), process.execPath, BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', ...env },
    timeout: 300_000,
  });
  return { status: result.status, output: result.stdout.replace(/\r\n/g, '\n'), seconds: Number(result.stderr) };
}

const DATE = /^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/;
const ISO = /\d{4}-\d\d-\d\dT\d\d:\d\d/;

let tmp;
let home;
const h = (...args) => mcpki(['--home', home, ...args]);

before(() => {
  tmp = tempDir('mcpki-manners-');
  home = join(tmp.dir, 'home');
  const init = h('init');
  assert.equal(init.status, 0, init.stderr);
});
after(() => tmp.cleanup());

describe('help', () => {
  test('a group named without a subcommand prints its help on stdout and exits 0', () => {
    for (const args of [[], ['issue'], ['trust'], ['ca'], ['acme']]) {
      const result = h(...args);
      assert.equal(result.status, 0, `mcpki ${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.stderr, '', `mcpki ${args.join(' ')} writes nothing to stderr`);
      assert.match(
        result.stdout,
        new RegExp(`^Usage: mcpki ${args.join(' ')}${args.length ? ' ' : ''}\\[options\\] \\[command\\]`),
      );
      assert.doesNotMatch(result.stdout + result.stderr, /outputHelp/);
    }
    // an unknown subcommand is still a usage error
    const unknown = h('issue', 'bogus');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command 'bogus'/);
  });

  test('mcpki help issue server shows that subcommand; every help lists the global --home and --json', () => {
    const help = h('help', 'issue', 'server');
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: mcpki issue server \[options\] <name> \[san\.\.\.\]/);
    assert.match(help.stdout, /--p12-password-file/);
    assert.deepEqual(h('help', 'issue', 'server').stdout, h('issue', 'server', '--help').stdout);
    assert.match(h('help', 'trust', 'install').stdout, /^Usage: mcpki trust install/);
    const typo = h('help', 'isue');
    assert.equal(typo.status, 2);
    assert.match(typo.stderr, /unknown command 'isue'/);
    assert.match(typo.stderr, /did you mean issue\?/);
    assert.equal(h('help').status, 0);
    for (const args of [['issue', 'server'], ['trust', 'install'], ['list'], ['template', 'render']]) {
      const sub = h(...args, '--help');
      assert.equal(sub.status, 0);
      assert.match(sub.stdout, /Global Options:[\s\S]*--home <dir>[\s\S]*--json/, `mcpki ${args.join(' ')} --help`);
    }
  });
});

describe('tables and dates', { skip: !HAS_PYTHON && 'python3 is needed for a pseudo-terminal' }, () => {
  test('template list fits an 80-column terminal; a pipe still gets one line per template', () => {
    const piped = h('template', 'list');
    assert.equal(piped.status, 0);
    const names = piped.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(/\s+/)[0]);
    assert.ok(names.length > 10);
    assert.ok(
      Math.max(...piped.stdout.split('\n').map((l) => l.length)) > 160,
      'unwrapped, the table is wider than two terminals',
    );

    for (const columns of [80, 120]) {
      const shown = onTerminal(columns, ['--home', home, 'template', 'list']);
      assert.equal(shown.status, 0, shown.output);
      const lines = shown.output.trimEnd().split('\n');
      const widest = Math.max(...lines.map((l) => l.length));
      assert.ok(widest <= columns, `${widest} columns at ${columns}:\n${shown.output}`);
      // nothing is lost: every template starts a row, and every word of the descriptions is there
      const starts = lines
        .filter((l) => /^\S/.test(l))
        .slice(1)
        .map((l) => l.split(/\s+/)[0]);
      assert.deepEqual(starts, names);
      const words = (text) =>
        text
          .split(/[\s,]+/)
          .filter(Boolean)
          .sort();
      const pipedWords = words(piped.stdout);
      const shownWords = words(shown.output);
      for (const word of pipedWords.filter((w) => w.length <= 20))
        assert.ok(shownWords.includes(word), `"${word}" is shown`);
    }
  });

  test('one date format in human output: list, show, events, issue, ca show, crl, check', () => {
    const issued = h('issue', 'server', 'dated', 'dated.localhost', '--days', '30');
    assert.equal(issued.status, 0, issued.stderr);
    assert.match(issued.stdout, /valid until \d{4}-\d\d-\d\d \d\d:\d\d UTC\n/);
    const list = h('list');
    const row = list.stdout.split('\n').find((l) => l.startsWith('dated '));
    assert.match(row, /\d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    const show = h('show', 'dated');
    for (const key of ['not before', 'not after']) {
      const value = show.stdout
        .split('\n')
        .find((l) => l.startsWith(key))
        .slice(key.length)
        .trim()
        .replace(/ \(.*\)$/, '');
      assert.match(value, DATE, `${key}: ${value}`);
    }
    const events = h('events', '--limit', '3');
    for (const line of events.stdout.trim().split('\n').slice(1)) assert.match(line.slice(0, 20), DATE);
    assert.match(h('ca', 'show').stdout, /\d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    assert.match(h('crl').stdout, /next update \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    const check = h('check', 'dated');
    assert.match(check.stdout, /valid for \d+ more days \(until \d{4}-\d\d-\d\d \d\d:\d\d UTC\)/);
    for (const output of [issued, list, show, events, h('ca', 'show'), check])
      assert.doesNotMatch(output.stdout, ISO, output.stdout);
    // --json keeps ISO 8601
    assert.match(h('--json', 'show', 'dated').json.certificate.notAfter, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
});

describe('progress on a terminal', { skip: !HAS_PYTHON && 'python3 is needed for a pseudo-terminal' }, () => {
  test('a batch that runs over 2 s shows a progress line on the terminal, erased at the end; a pipe never gets one', () => {
    const file = join(tmp.dir, 'slow-batch.txt');
    writeFileSync(file, [1, 2, 3, 4].map((i) => `server slow-${i} slow-${i}.localhost`).join('\n') + '\n');
    const shown = onTerminal(100, ['--home', home, 'issue', 'batch', file, '--key', 'rsa-4096']);
    assert.equal(shown.status, 0, shown.output);
    assert.match(shown.output, /issued 4 certificates/);
    const progress = /\r\u001b\[2Kissuing 4 certificates… \d+s/;
    if (shown.seconds >= 3) {
      assert.match(shown.output, progress, `${shown.seconds} s without a progress line`);
      // the last progress line is erased before the result is printed
      const last = shown.output.lastIndexOf('issuing 4 certificates…');
      assert.ok(shown.output.indexOf('\r\u001b[2K', last) > last, 'erased');
    } else if (shown.seconds < 1.8) {
      assert.doesNotMatch(shown.output, progress, 'no progress for short work');
    }
    writeFileSync(file, [5, 6, 7, 8].map((i) => `server slow-${i} slow-${i}.localhost`).join('\n') + '\n');
    const piped = h('issue', 'batch', file, '--key', 'rsa-4096');
    assert.equal(piped.status, 0, piped.stderr);
    assert.doesNotMatch(piped.stderr + piped.stdout, /issuing 4 certificates…|\u001b/);
  });

  test('crl and apply draw their line at once (their work can block), erase it when done; never in a pipe', () => {
    const erasedAfter = (output, label) => {
      const at = output.lastIndexOf(`\r\u001b[2K${label}…`);
      assert.ok(at >= 0, `no "${label}…" line in ${JSON.stringify(output)}`);
      assert.ok(output.indexOf('\r\u001b[2K', at + 1) > at, `"${label}…" is erased`);
      // the result comes after the erase, on a clean line
      return output.slice(output.indexOf('\r\u001b[2K', at + 1) + 5);
    };
    const crl = onTerminal(100, ['--home', home, 'crl']);
    assert.equal(crl.status, 0, crl.output);
    assert.match(erasedAfter(crl.output, 'signing the CRL'), /^wrote CRL #\d+/);
    const piped = h('crl');
    assert.doesNotMatch(piped.stdout + piped.stderr, /signing the CRL|\u001b/);

    const config = join(tmp.dir, 'progress.yaml');
    writeFileSync(config, `version: 1\ncertificates:\n  - name: progress-1\n    names: [progress-1.localhost]\n`, {
      mode: 0o644,
    });
    const apply = onTerminal(100, ['--home', home, 'apply', '-c', config]);
    assert.equal(apply.status, 0, apply.output);
    assert.match(erasedAfter(apply.output, 'applying 1 certificates'), /progress-1/);
    const json = onTerminal(100, ['--home', home, '--json', 'apply', '-c', config]);
    assert.doesNotMatch(json.output, /applying|\u001b/, '--json never draws progress');
  });
});

describe('input', () => {
  test('--var with an empty value is an error, as is a variable the template does not have', () => {
    const empty = h('--json', 'template', 'render', 'mcp/client.ts', '--var', 'name=');
    assert.equal(empty.status, 3, empty.stdout);
    assert.match(empty.json.error.message, /--var name= is empty/);
    const bogus = h('--json', 'template', 'render', 'mcp/client.ts', '--var', 'bogus=');
    assert.equal(bogus.status, 3, bogus.stdout);
    assert.match(bogus.json.error.message, /has no variable "bogus"/);
    const fine = h(
      'template',
      'render',
      'mcp/client.ts',
      '--var',
      'name=agent',
      '--var',
      'ca=/ca.crt',
      '--var',
      'fullchain=/f.pem',
      '--var',
      'key=/k.key',
    );
    assert.equal(fine.status, 0, fine.stderr);
  });

  test('a batch reports every bad line with its number, and issues nothing', () => {
    const file = join(tmp.dir, 'bad-batch.txt');
    writeFileSync(
      file,
      [
        'server ok-1 ok-1.localhost',
        'sever typo-1 typo.localhost',
        '# a comment',
        'server bad_name!! x.localhost',
        'client',
        'server ok-2 "not a name"',
        'server ok-3 ok-3.localhost',
      ].join('\n') + '\n',
    );
    const result = h('--json', 'issue', 'batch', file);
    assert.equal(result.status, 3, result.stdout);
    assert.match(result.json.error.message, /4 bad lines \(2, 4, 5, 6\)/);
    assert.equal(result.json.error.details.length, 4);
    assert.match(result.json.error.details[0], /^line 2: expected "server\|client NAME/);
    assert.match(result.json.error.details[1], /^line 4 \(bad_name!!\): invalid certificate name "bad_name!!"/);
    assert.match(result.json.error.details[2], /^line 5: expected/);
    assert.match(result.json.error.details[3], /^line 6 \(ok-2\): invalid name ""not"/);
    const human = h('issue', 'batch', file);
    for (const n of [2, 4, 5, 6]) assert.match(human.stderr, new RegExp(`^  line ${n}[: ]`, 'm'));
    assert.equal(
      h('--json', 'list').json.certificates.some((c) => c.name.startsWith('ok-')),
      false,
      'nothing issued',
    );

    const json = join(tmp.dir, 'bad-batch.json');
    writeFileSync(json, JSON.stringify([{ name: 'j-1' }, { name: 'j 2' }, 7, { name: 'j-4', sans: ['a b'] }]));
    const entries = h('--json', 'issue', 'batch', json);
    assert.equal(entries.status, 3);
    assert.match(entries.json.error.message, /3 bad entries \(2, 3, 4\)/);
  });

  test('--p12 says which password it used, never the one given', () => {
    const hasOpenssl = hasCommand('openssl');
    const opens = (path, password) =>
      run('openssl', ['pkcs12', '-in', path, '-nokeys', '-passin', `pass:${password}`]).status === 0;
    const byDefault = h('issue', 'client', 'p12-default', 'p12@example.test', '--p12');
    assert.equal(byDefault.status, 0, byDefault.stderr);
    assert.match(byDefault.stdout, /password "changeit", the default/);
    if (hasOpenssl) assert.ok(opens(join(home, 'certs', 'p12-default', 'p12-default.p12'), 'changeit'));

    const secret = 'Sup3r-s3cret-pass';
    const env = mcpki(['--home', home, 'issue', 'client', 'p12-env2', '--p12'], {
      env: { MCPKI_P12_PASSWORD: secret },
    });
    assert.equal(env.status, 0, env.stderr);
    assert.match(env.stdout, /password from MCPKI_P12_PASSWORD/);
    assert.doesNotMatch(env.stdout + env.stderr, new RegExp(secret));
    if (hasOpenssl) assert.ok(opens(join(home, 'certs', 'p12-env2', 'p12-env2.p12'), secret));

    const passFile = join(tmp.dir, 'p12.pass');
    writeFileSync(passFile, `${secret}\n`, { mode: 0o600 });
    const fromFile = h(
      '--json',
      'issue',
      'server',
      'p12-file',
      'p12-file.localhost',
      '--p12',
      '--p12-password-file',
      passFile,
    );
    assert.equal(fromFile.status, 0, fromFile.stdout);
    assert.deepEqual(fromFile.json.p12Password, { source: 'file', file: passFile });
    assert.doesNotMatch(JSON.stringify(fromFile.json), new RegExp(secret));
    const human = h('issue', 'server', 'p12-file2', 'p12-file2.localhost', '--p12-password-file', passFile);
    assert.match(human.stdout, new RegExp(`password from ${passFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

    const batchFile = join(tmp.dir, 'p12-batch.txt');
    writeFileSync(batchFile, 'client p12-b1\nclient p12-b2\n');
    const batch = h('issue', 'batch', batchFile, '--p12');
    assert.equal(batch.status, 0, batch.stderr);
    assert.match(batch.stdout, /PKCS#12 files: password "changeit", the default/);
    assert.doesNotMatch(h('issue', 'server', 'no-p12', 'no-p12.localhost').stdout, /password/);
  });
});

describe('list --expiring for scripts', () => {
  test('exits 24 when something expires within the window, 0 when nothing does', () => {
    const own = join(tmp.dir, 'expiring-home');
    assert.equal(mcpki(['--home', own, 'init']).status, 0);
    assert.equal(mcpki(['--home', own, 'issue', 'server', 'long', 'long.localhost', '--days', '90']).status, 0);
    const none = mcpki(['--home', own, 'list', '--expiring', '10d']);
    assert.equal(none.status, 0, none.stderr);
    assert.equal(mcpki(['--home', own, 'issue', 'server', 'short', 'short.localhost', '--days', '5']).status, 0);
    const some = mcpki(['--home', own, 'list', '--expiring', '10d']);
    assert.equal(some.status, 24, some.stderr);
    assert.match(some.stdout, /^short /m);
    assert.doesNotMatch(some.stdout, /^long /m);
    const json = mcpki(['--home', own, '--json', 'list', '--expiring', '10d']);
    assert.equal(json.status, 24);
    assert.deepEqual(
      json.json.certificates.map((c) => c.name),
      ['short'],
    );
    // without --expiring, a list is a list
    assert.equal(mcpki(['--home', own, 'list']).status, 0);
    // documented
    assert.match(readFileSync(join(ROOT, 'docs', 'cli.md'), 'utf8'), /\| 24 \|[^\n]*--expiring/);
  });
});

describe('check: key modes', { skip: !IS_ROOT && 'chgrp to another group needs root' }, () => {
  test("a 0640 key with a service group is info; 0640 with the owner's own group, or 0644, is a warning", () => {
    const issued = h('--json', 'issue', 'server', 'grouped', 'grouped.localhost');
    const { cert, key } = issued.json.paths;
    const finding = (json) => json.findings.find((f) => f.id === 'key-permissions');
    chmodSync(key, 0o640);
    chownSync(key, 0, 65534); // root:nogroup, as mcpki.yaml's mode: "0640", group: … writes it
    const service = h('--json', 'check', cert, '--key', key);
    assert.equal(finding(service.json).severity, 'info', JSON.stringify(finding(service.json)));
    assert.match(finding(service.json).message, /group nogroup \(mode 0640\)/);
    assert.equal(service.status, 0, service.stdout);

    chownSync(key, 0, 0); // root's own group: 0640 serves no purpose
    const own = h('--json', 'check', cert, '--key', key);
    assert.equal(finding(own.json).severity, 'warning');
    assert.equal(own.status, 19);

    chownSync(key, 0, 65534);
    chmodSync(key, 0o644);
    const world = h('--json', 'check', cert, '--key', key);
    assert.equal(finding(world.json).severity, 'warning');
    assert.match(finding(world.json).message, /every user/);
    chmodSync(key, 0o660);
    assert.equal(finding(h('--json', 'check', cert, '--key', key).json).severity, 'warning', 'a group-writable key');
  });
});

describe(
  'trust install as a normal user',
  { skip: (!IS_ROOT || !HAS_SETPRIV) && 'needs root and setpriv to run as nobody' },
  () => {
    test('changing nothing exits 11 and names the sudo command with the full path and --home', () => {
      // a home the unprivileged user can read the root certificate of
      chmodSync(tmp.dir, 0o755);
      const dir = join(tmp.dir, 'trust-nobody');
      mkdirSync(dir, { mode: 0o755 });
      chmodSync(dir, 0o755);
      const own = join(dir, 'home');
      assert.equal(mcpki(['--home', own, 'init']).status, 0);
      chmodSync(own, 0o755);
      chmodSync(join(own, 'ca'), 0o755);
      const userHome = join(dir, 'user');
      mkdirSync(userHome, { mode: 0o755 });
      const env = { PATH: process.env.PATH, HOME: userHome, NO_COLOR: '1' };
      const asNobody = (args) => {
        const result = spawnSync(
          'setpriv',
          ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, BIN, '--home', own, ...args],
          { encoding: 'utf8', env, cwd: '/', timeout: 60_000 },
        );
        return { status: result.status, stdout: result.stdout, stderr: result.stderr };
      };
      const human = asNobody(['trust', 'install']);
      assert.equal(human.status, 11, human.stdout + human.stderr);
      const expected = `sudo ${BIN} trust install --store system --home ${own}`;
      assert.match(human.stderr, /^error: no trust store was changed/m);
      assert.ok(human.stderr.includes(expected), `${human.stderr}\nshould name: ${expected}`);
      assert.match(human.stderr, /^  system:\w+ .*needs root/m);
      const json = asNobody(['--json', 'trust', 'install']);
      assert.equal(json.status, 11);
      const error = JSON.parse(json.stdout).error;
      assert.equal(error.code, 'TRUST_PERMISSION');
      assert.ok(error.hint.includes(expected), error.hint);
      // the explicit --store system error names the same command
      const system = JSON.parse(asNobody(['--json', 'trust', 'install', '--store', 'system']).stdout).error;
      assert.equal(system.hint, `run: ${expected}`);
      // status changes nothing and is not an error; nor is uninstall when no store holds the root
      assert.equal(asNobody(['trust', 'status']).status, 0);
      const uninstall = asNobody(['trust', 'uninstall']);
      assert.equal(uninstall.status, 0, uninstall.stdout + uninstall.stderr);
      // the command it names works: as root, it installs (then clean up)
      const sudoLess = spawnSync(BIN, ['trust', 'install', '--store', 'system', '--home', own], {
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1' },
      });
      assert.equal(sudoLess.status, 0, sudoLess.stdout + sudoLess.stderr);
      assert.equal(mcpki(['--home', own, 'trust', 'uninstall', '--store', 'system']).status, 0);
    });
  },
);

describe('check: revoked and client certificates', () => {
  const servers = [];
  const start = (options) =>
    new Promise((resolve) => {
      const s = https.createServer({ ...options, requestCert: true, rejectUnauthorized: true }, (req, res) =>
        res.end('ok\n'),
      );
      s.on('tlsClientError', () => {});
      servers.push(s);
      s.listen(0, '127.0.0.1', () => resolve(s.address().port));
    });
  after(() => Promise.all(servers.map((s) => new Promise((done) => s.close(done)))));

  test('check --client-cert says the client is revoked, whether the server refuses it or (without a CRL) accepts it', async () => {
    const web = h('--json', 'issue', 'server', 'rv-web', 'localhost', '127.0.0.1').json;
    const agent = h('--json', 'issue', 'client', 'rv-agent', 'rv-agent@example.test').json;
    assert.ok(web && agent);
    const revoke = h('revoke', 'rv-agent', '--reason', 'keyCompromise');
    assert.equal(revoke.status, 0, revoke.stderr);
    assert.equal(h('crl').status, 0);
    const read = (path) => readFileSync(path);
    const crlBlocks = readFileSync(join(home, 'ca', 'crl.pem'), 'utf8').match(
      /-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----\n?/g,
    );
    const withCrl = await start({
      key: read(web.paths.key),
      cert: read(web.paths.fullchain),
      ca: read(web.paths.ca),
      crl: crlBlocks,
    });
    const withoutCrl = await start({
      key: read(web.paths.key),
      cert: read(web.paths.fullchain),
      ca: read(web.paths.ca),
    });

    const refused = await mcpkiAsync([
      '--home',
      home,
      '--json',
      'check',
      `localhost:${withCrl}`,
      '--client-cert',
      'rv-agent',
    ]);
    const refusedFinding = JSON.parse(refused.stdout).findings.find((f) => f.id === 'client-cert');
    assert.match(
      refusedFinding.message,
      /refuses rv-agent's client certificate: rv-agent is revoked \(keyCompromise, \d{4}-\d\d-\d\d \d\d:\d\d UTC\)/,
    );
    assert.match(refusedFinding.fix, /mcpki issue client rv-agent/);

    const accepted = await mcpkiAsync([
      '--home',
      home,
      '--json',
      'check',
      `localhost:${withoutCrl}`,
      '--client-cert',
      'rv-agent',
    ]);
    const acceptedFinding = JSON.parse(accepted.stdout).findings.find((f) => f.id === 'client-cert');
    assert.equal(acceptedFinding.severity, 'failure', JSON.stringify(acceptedFinding));
    assert.match(acceptedFinding.message, /accepts rv-agent's client certificate although rv-agent is revoked/);
    assert.match(acceptedFinding.fix, /mcpki crl/);
    assert.equal(accepted.status, 20);

    const human = await mcpkiAsync(['--home', home, 'check', `localhost:${withCrl}`, '--client-cert', 'rv-agent']);
    assert.match(human.stdout, /rv-agent is revoked/);
  });

  test('check on a client certificate file suggests issue client, on a server one issue server', () => {
    const agent = h('--json', 'issue', 'client', 'cf-agent', 'cf-agent@example.test').json;
    const web = h('--json', 'issue', 'server', 'cf-web', 'cf-web.localhost').json;
    assert.equal(h('revoke', 'cf-agent').status, 0);
    assert.equal(h('revoke', 'cf-web').status, 0);
    const fixes = (path) =>
      JSON.parse(h('--json', 'check', path).stdout)
        .findings.map((f) => f.fix ?? '')
        .join('\n');
    const client = fixes(agent.paths.cert);
    assert.match(client, /mcpki issue client cf-agent/);
    assert.doesNotMatch(client, /issue server/);
    assert.match(fixes(web.paths.cert), /mcpki issue server cf-web/);
    // by name, too
    const byName = JSON.parse(h('--json', 'check', 'cf-agent').stdout)
      .findings.map((f) => f.fix ?? '')
      .join('\n');
    assert.doesNotMatch(byName, /issue server/);
  });
});

describe('the example mcpki.yaml next to the quick start', () => {
  const example = readFileSync(join(ROOT, 'templates', 'mcpki.example.yaml'), 'utf8');
  const exampleNames = [...example.matchAll(/^ {2}- name: (\S+)/gm)].map((m) => m[1]);

  test('declares none of the names the README quick start issues', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const quick = new Set([...readme.matchAll(/mcpki issue (?:server|client) ([\w.-]+)/g)].map((m) => m[1]));
    for (const m of readme.matchAll(/^ {2}- name: (\S+)/gm)) quick.add(m[1]);
    assert.ok(quick.has('my-mcp') && quick.has('agent'), [...quick].join(', '));
    assert.ok(exampleNames.length >= 4);
    assert.deepEqual(
      exampleNames.filter((n) => quick.has(n)),
      [],
    );
  });

  test('after the quick start, renew --dry-run on the example is a validation error naming acme account register', () => {
    const own = join(tmp.dir, 'quick-home');
    assert.equal(mcpki(['--home', own, 'init']).status, 0);
    assert.equal(mcpki(['--home', own, 'issue', 'server', 'my-mcp', 'localhost', '127.0.0.1']).status, 0);
    assert.equal(mcpki(['--home', own, 'issue', 'client', 'agent', 'agent@example.test']).status, 0);
    const config = join(tmp.dir, 'example.yaml');
    writeFileSync(config, example, { mode: 0o644 });
    const dry = mcpki(['--home', own, '--json', 'renew', '--dry-run', '-c', config]);
    assert.equal(dry.status, 3, dry.stdout + dry.stderr);
    assert.match(dry.json.error.message, /acme:letsencrypt is not a registered ACME account/);
    assert.match(
      dry.json.error.hint,
      /mcpki acme account register --name letsencrypt --directory letsencrypt --email EMAIL --agree-tos/,
    );
    assert.equal(dry.json.error.details.length, 2, 'public-api and public-wild');
    assert.match(
      dry.json.error.details[0],
      /example\.yaml:\d+ certificates\[2\]\.issuer \(public-api\): ACME account "letsencrypt" is not registered/,
    );
    const human = mcpki(['--home', own, 'apply', '-c', config]);
    assert.equal(human.status, 3);
    assert.match(human.stderr, /mcpki acme account register/);
    // nothing was planned or issued from it
    assert.deepEqual(
      mcpki(['--home', own, '--json', 'list'])
        .json.certificates.map((c) => c.name)
        .sort(),
      ['agent', 'my-mcp'],
    );
    // a file that names no ACME account is not affected
    const local = join(tmp.dir, 'local.yaml');
    writeFileSync(local, 'version: 1\ncertificates:\n  - name: only-local\n    names: [only-local.localhost]\n', {
      mode: 0o644,
    });
    assert.equal(mcpki(['--home', own, 'renew', '--dry-run', '-c', local]).status, 0);
  });
});
