// First steps as mkcert users take them: `mcpki init && mcpki issue server localhost`, run again and again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mcpki, run, tempDir } from './helpers.js';

test('init on a home whose CA matches the options says so and exits 0; the CA is kept as it is', () => {
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  try {
    const created = mcpki([
      '--home',
      home,
      '--json',
      'init',
      '--key',
      'ec-p384',
      '--permit',
      '.corp.example',
      '--permit',
      'fd00::/8',
    ]);
    assert.equal(created.status, 0, created.stderr);
    const rootPem = readFileSync(join(home, 'ca', 'root.crt'), 'utf8');
    // the same options, given in another order and spelling (upper case, ::1 is in the defaults anyway)
    const again = mcpki([
      '--home',
      home,
      '--json',
      'init',
      '--permit',
      'FD00::/8',
      '--key',
      'ec-p384',
      '--permit',
      '.corp.example',
    ]);
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.equal(again.json.existing, true);
    assert.equal(again.json.root.fingerprint, created.json.root.fingerprint);
    assert.equal(readFileSync(join(home, 'ca', 'root.crt'), 'utf8'), rootPem, 'root.crt is untouched');
    const human = mcpki([
      '--home',
      home,
      'init',
      '--key',
      'ec-p384',
      '--permit',
      '.corp.example',
      '--permit',
      'fd00::/8',
    ]);
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stdout, /already matches these options: nothing changed/);
    const events = mcpki(['--home', home, '--json', 'events']).json.events.filter((e) => e.type === 'ca.created');
    assert.equal(events.length, 1, 'one CA was created, once');
  } finally {
    cleanup();
  }
});

test('init with different options still needs --force: exit 5 naming what differs, nothing replaced', () => {
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  try {
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const rootPem = readFileSync(join(home, 'ca', 'root.crt'), 'utf8');
    const cases = [
      [['init', '--key', 'rsa-2048'], /key type ec-p256, not rsa-2048/],
      [['init', '--permit', '.corp.example'], /other permitted names/],
      [['init', '--no-name-constraints'], /name constraints/],
      [['init', '--encrypt-root'], /not encrypted/],
    ];
    for (const [args, message] of cases) {
      const refused = mcpki(['--home', home, '--json', ...args], {
        env: { MCPKI_ROOT_PASSPHRASE: 'correct horse battery' },
      });
      assert.equal(refused.status, 5, `${args.join(' ')}: ${refused.stdout}${refused.stderr}`);
      assert.equal(refused.json.error.code, 'CA_EXISTS');
      assert.match(refused.json.error.message, message, args.join(' '));
      assert.match(refused.json.error.hint, /--force/);
    }
    assert.equal(readFileSync(join(home, 'ca', 'root.crt'), 'utf8'), rootPem);
    const replaced = mcpki(['--home', home, 'init', '--key', 'rsa-2048', '--force']);
    assert.equal(replaced.status, 0, replaced.stderr);
    assert.notEqual(readFileSync(join(home, 'ca', 'root.crt'), 'utf8'), rootPem);
  } finally {
    cleanup();
  }
});

test('an encrypted-root CA matches init --encrypt-root; a CA that cannot be read is not replaced', () => {
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  const env = { MCPKI_ROOT_PASSPHRASE: 'correct horse battery' };
  try {
    assert.equal(mcpki(['--home', home, 'init', '--encrypt-root'], { env }).status, 0);
    const again = mcpki(['--home', home, '--json', 'init', '--encrypt-root'], { env });
    assert.equal(again.status, 0, again.stdout);
    assert.equal(again.json.existing, true);
    // the same options with a passphrase that does not open the root key: refused, not "matches"
    const wrong = mcpki(['--home', home, '--json', 'init', '--encrypt-root'], {
      env: { MCPKI_ROOT_PASSPHRASE: 'not the passphrase' },
    });
    assert.equal(wrong.status, 12, wrong.stdout);
    const plain = mcpki(['--home', home, '--json', 'init']);
    assert.equal(plain.status, 5);
    assert.match(plain.json.error.message, /encrypted root key/);
    // a broken intermediate: init refuses rather than calling it a match or replacing it
    const broken = join(home, 'ca', 'intermediate.crt');
    const before = readFileSync(broken, 'utf8');
    run('sh', ['-c', `printf garbage > '${broken}'`]);
    const refused = mcpki(['--home', home, '--json', 'init', '--encrypt-root'], { env });
    assert.equal(refused.status, 5, refused.stdout);
    assert.match(refused.json.error.message, /cannot be read/);
    assert.equal(readFileSync(broken, 'utf8'), 'garbage');
    assert.notEqual(before, 'garbage');
  } finally {
    cleanup();
  }
});

test('issue server NAME with no names after it: NAME is the name when it is a host name or IP (as mkcert does)', () => {
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  try {
    // the sequence a script re-runs
    for (let round = 0; round < 2; round++) {
      assert.equal(mcpki(['--home', home, 'init']).status, 0, `init, round ${round}`);
      const issued = mcpki(['--home', home, '--json', 'issue', 'server', 'localhost']);
      assert.equal(issued.status, 0, issued.stdout + issued.stderr);
      assert.deepEqual(issued.json.certificate.sans, [{ type: 'dns', value: 'localhost' }]);
      const text = run('openssl', ['x509', '-in', issued.json.paths.cert, '-noout', '-ext', 'subjectAltName']);
      assert.match(text.stdout, /DNS:localhost/);
      const verified = run('openssl', [
        'verify',
        '-CAfile',
        issued.json.paths.ca,
        '-untrusted',
        join(home, 'ca', 'intermediate.crt'),
        '-verify_hostname',
        'localhost',
        issued.json.paths.cert,
      ]);
      assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    }
    const ip = mcpki(['--home', home, '--json', 'issue', 'server', '127.0.0.1']);
    assert.equal(ip.status, 0, ip.stdout);
    assert.deepEqual(ip.json.certificate.sans, [{ type: 'ip', value: '127.0.0.1' }]);
    const sub = mcpki(['--home', home, '--json', 'issue', 'server', 'api.localhost']);
    assert.equal(sub.status, 0, sub.stdout);
    assert.deepEqual(sub.json.certificate.sans, [{ type: 'dns', value: 'api.localhost' }]);
    // a name this CA may not sign for, alone: today's error (no names), exit 3, with what to do
    const outside = mcpki(['--home', home, '--json', 'issue', 'server', 'my-mcp']);
    assert.equal(outside.status, 3, outside.stdout);
    assert.equal(outside.json.error.code, 'INVALID_NAME');
    assert.match(outside.json.error.message, /"my-mcp" has no names/);
    assert.match(outside.json.error.hint, /mcpki issue server my-mcp localhost/);
    // a client certificate never takes its name as a SAN
    const client = mcpki(['--home', home, '--json', 'issue', 'client', 'localhost']);
    assert.equal(client.status, 0, client.stdout);
    assert.deepEqual(client.json.certificate.sans, []);
  } finally {
    cleanup();
  }
});

test('init --no-ip-constraints: DNS, URI and e-mail stay constrained, IP addresses are not; OpenSSL verifies such a leaf', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    const made = mcpki(['--home', home, '--json', 'init', '--no-ip-constraints']);
    assert.equal(made.status, 0, made.stderr);
    const constraints = run('openssl', [
      'x509',
      '-in',
      join(home, 'ca', 'intermediate.crt'),
      '-noout',
      '-ext',
      'nameConstraints',
    ]).stdout;
    assert.match(constraints, /DNS:localhost/);
    assert.match(constraints, /URI:/);
    assert.doesNotMatch(constraints, /IP:/, constraints);
    assert.equal(mcpki(['--home', home, 'init', '--no-ip-constraints']).status, 0, 'the same options again: kept');
    assert.equal(mcpki(['--home', home, 'init']).status, 5, 'other options: --force needed');

    const issued = mcpki([
      '--home',
      home,
      'issue',
      'server',
      'app',
      'localhost',
      '10.1.2.3',
      '--out',
      join(dir, 'out'),
    ]);
    assert.equal(issued.status, 0, issued.stderr);
    assert.equal(
      mcpki(['--home', home, 'issue', 'server', 'web', 'www.example.com']).status,
      6,
      'DNS names are still constrained',
    );
    const verified = run('openssl', [
      'verify',
      '-x509_strict',
      '-CAfile',
      join(home, 'ca', 'root.crt'),
      '-untrusted',
      join(home, 'ca', 'intermediate.crt'),
      join(dir, 'out', 'app.crt'),
    ]);
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);

    const contradiction = mcpki([
      '--home',
      join(dir, 'other'),
      'init',
      '--no-ip-constraints',
      '--permit',
      '10.0.0.0/8',
    ]);
    assert.equal(contradiction.status, 2);
    assert.match(contradiction.stderr, /--permit 10\.0\.0\.0\/8 and --no-ip-constraints contradict each other/);
  } finally {
    cleanup();
  }
});
