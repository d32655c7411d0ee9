// mcpki acme against a real ACME server: Debian's Pebble, started on loopback by test/pebble.js.
// Certificates are checked with openssl against Pebble's own root, fetched from its management API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, hasCommand, mcpki, mcpkiAsync, run, tempDir, testStore } from './helpers.js';
import { hasPebble, portIsFree, startPebble } from './pebble.js';

const skip = !hasPebble() && 'Pebble is not installed (apt-get install pebble)';

/** A dns-01 hook that sets and clears TXT records through challtestsrv's management API. */
function writeDnsHook(dir, { fail = false } = {}) {
  const path = join(dir, fail ? 'failing-hook.mjs' : 'dns-hook.mjs');
  writeFileSync(
    path,
    `#!/usr/bin/env node
const [action, domain, fqdn, value] = process.argv.slice(2);
if (${fail}) { console.error('hook: refusing ' + action + ' for ' + domain); process.exit(1); }
const path = action === 'present' ? '/set-txt' : '/clear-txt';
const body = action === 'present' ? { host: fqdn, value } : { host: fqdn };
const res = await fetch(process.env.CHALLTESTSRV + path, { method: 'POST', body: JSON.stringify(body) });
if (!res.ok) { console.error('challtestsrv answered ' + res.status); process.exit(1); }
`,
  );
  chmodSync(path, 0o755);
  return path;
}

async function verifyAgainstPebble(pebble, issued, names) {
  const dir = tempDir('mcpki-acme-verify-');
  try {
    const root = join(dir.dir, 'pebble-root.pem');
    writeFileSync(root, await pebble.rootPem());
    const verified = run('openssl', ['verify', '-CAfile', root, '-untrusted', issued.paths.chain, issued.paths.cert]);
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    const text = run('openssl', ['x509', '-in', issued.paths.cert, '-noout', '-ext', 'subjectAltName']).stdout;
    const sans = text
      .split('\n')
      .slice(1)
      .join(',')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .sort();
    assert.deepEqual(sans, names.map((n) => (/^[\d.]+$/.test(n) ? `IP Address:${n}` : `DNS:${n}`)).sort());
    const fromCert = run('openssl', ['x509', '-in', issued.paths.cert, '-noout', '-pubkey']).stdout;
    assert.equal(fromCert, run('openssl', ['pkey', '-in', issued.paths.key, '-pubout']).stdout, 'key matches');
    assert.equal((statSync(issued.paths.key).mode & 0o777).toString(8), '600');
  } finally {
    dir.cleanup();
  }
}

describe('ACME against Pebble', { skip }, () => {
  let pebble;
  let work;
  let home;
  const env = () => ({ CHALLTESTSRV: pebble.challtestsrvUrl });

  before(async () => {
    pebble = await startPebble();
    work = tempDir('mcpki-acme-');
    home = join(work.dir, 'home');
    const registered = mcpki([
      '--home',
      home,
      '--json',
      'acme',
      'account',
      'register',
      '--directory',
      pebble.directoryUrl,
      '--ca-bundle',
      pebble.caBundlePath,
      '--email',
      'ops@example.com',
      '--agree-tos',
      '--name',
      'pebble',
    ]);
    assert.equal(registered.status, 0, registered.stderr + registered.stdout);
    assert.match(registered.json.account.accountUrl, /^https:\/\/127\.0\.0\.1:\d+\//);
    assert.equal((statSync(registered.json.account.keyPath).mode & 0o777).toString(8), '600');
    assert.ok(!registered.stdout.includes('PRIVATE KEY'));
  });
  after(async () => {
    await pebble?.stop();
    work?.cleanup();
  });

  test('http-01 with the built-in responder', async () => {
    const names = ['web.test', 'www.web.test'];
    const result = await mcpkiAsync([
      '--home',
      home,
      '--json',
      'acme',
      'issue',
      'web',
      ...names.flatMap((n) => ['-d', n]),
      '--http-port',
      String(pebble.httpPort),
      '--http-host',
      '127.0.0.1',
    ]);
    assert.equal(result.status, 0, result.stderr + result.stdout);
    const issued = JSON.parse(result.stdout);
    assert.equal(issued.certificate.issuer, 'acme:pebble');
    assert.match(issued.certificate.orderUrl, /^https:\/\/127\.0\.0\.1/);
    await verifyAgainstPebble(pebble, issued, names);
    assert.equal(await portIsFree(pebble.httpPort), true, 'the responder was stopped');
  });

  test('http-01 through a webroot served by another server', async () => {
    const webroot = join(work.dir, 'webroot');
    mkdirSync(webroot);
    let served = 0;
    const server = createServer((req, res) => {
      const file = join(webroot, decodeURIComponent(new URL(req.url, 'http://x').pathname));
      if (!file.startsWith(webroot) || !existsSync(file)) return res.writeHead(404).end();
      served++;
      res.writeHead(200, { 'content-type': 'text/plain' }).end(readFileSync(file));
    });
    await new Promise((resolve) => server.listen(pebble.httpPort, '127.0.0.1', resolve));
    try {
      const result = await mcpkiAsync([
        '--home',
        home,
        '--json',
        'acme',
        'issue',
        'site',
        '-d',
        'site.test',
        '--webroot',
        webroot,
      ]);
      assert.equal(result.status, 0, result.stderr + result.stdout);
      await verifyAgainstPebble(pebble, JSON.parse(result.stdout), ['site.test']);
      assert.ok(served >= 1, 'Pebble fetched the token from our server');
      assert.ok(!existsSync(join(webroot, '.well-known')), 'the token and the folders mcpki created are gone');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('dns-01 through a hook, with a wildcard', async () => {
    const hook = writeDnsHook(work.dir);
    const names = ['*.wild.test', 'wild.test'];
    const result = await mcpkiAsync(
      [
        '--home',
        home,
        '--json',
        'acme',
        'issue',
        'wild',
        ...names.flatMap((n) => ['-d', n]),
        '--challenge',
        'dns-01',
        '--dns-hook',
        `${process.execPath} ${hook}`,
      ],
      { env: env() },
    );
    assert.equal(result.status, 0, result.stderr + result.stdout);
    await verifyAgainstPebble(pebble, JSON.parse(result.stdout), names);
  });

  test('tls-alpn-01 with the built-in responder', async () => {
    const result = await mcpkiAsync([
      '--home',
      home,
      '--json',
      'acme',
      'issue',
      'alpn',
      '-d',
      'alpn.test',
      '--challenge',
      'tls-alpn-01',
      '--alpn-port',
      String(pebble.tlsAlpnPort),
    ]);
    assert.equal(result.status, 0, result.stderr + result.stdout);
    await verifyAgainstPebble(pebble, JSON.parse(result.stdout), ['alpn.test']);
    assert.equal(await portIsFree(pebble.tlsAlpnPort), true);
  });

  test('revocation through ACME is recorded in the inventory', async () => {
    const issued = await mcpkiAsync([
      '--home',
      home,
      '--json',
      'acme',
      'issue',
      'gone',
      '-d',
      'gone.test',
      '--http-port',
      String(pebble.httpPort),
      '--http-host',
      '127.0.0.1',
    ]);
    assert.equal(issued.status, 0, issued.stderr);
    const revoked = await mcpkiAsync(['--home', home, '--json', 'acme', 'revoke', 'gone', '--reason', 'keyCompromise']);
    assert.equal(revoked.status, 0, revoked.stderr + revoked.stdout);
    const shown = mcpki(['--home', home, '--json', 'show', 'gone']).json.certificate;
    assert.equal(shown.state, 'revoked');
    assert.equal(shown.revocationReason, 'keyCompromise');
    const again = await mcpkiAsync(['--home', home, 'acme', 'revoke', 'gone']);
    assert.equal(again.status, 5);
  });

  test('account list, show and deactivate', async () => {
    const other = mcpki([
      '--home',
      home,
      'acme',
      'account',
      'register',
      '--directory',
      pebble.directoryUrl,
      '--ca-bundle',
      pebble.caBundlePath,
      '--agree-tos',
      '--name',
      'short-lived',
    ]);
    assert.equal(other.status, 0, other.stderr);
    const listed = mcpki(['--home', home, '--json', 'acme', 'account', 'list']).json.accounts.map((a) => a.name);
    assert.ok(listed.includes('pebble') && listed.includes('short-lived'));
    const shown = mcpki(['--home', home, 'acme', 'account', 'show', 'short-lived']);
    assert.match(shown.stdout, /status\s+valid/);
    assert.ok(!shown.stdout.includes('PRIVATE KEY'));
    const deactivated = await mcpkiAsync(['--home', home, '--json', 'acme', 'account', 'deactivate', 'short-lived']);
    assert.equal(deactivated.status, 0, deactivated.stderr);
    assert.equal(JSON.parse(deactivated.stdout).account.status, 'deactivated');
    const refused = await mcpkiAsync([
      '--home',
      home,
      'acme',
      'issue',
      'nope',
      '-d',
      'nope.test',
      '--account',
      'short-lived',
      '--http-port',
      String(pebble.httpPort),
      '--http-host',
      '127.0.0.1',
    ]);
    assert.equal(refused.status, 3);
    assert.match(refused.stderr, /deactivated/);
  });

  test('a staging account does not replace a production certificate unless --force', async () => {
    const staging = mcpki([
      '--home',
      home,
      'acme',
      'account',
      'register',
      '--directory',
      pebble.directoryUrl,
      '--ca-bundle',
      pebble.caBundlePath,
      '--agree-tos',
      '--name',
      'pebble-staging',
      '--staging',
    ]);
    assert.equal(staging.status, 0, staging.stderr);
    const http = ['--http-port', String(pebble.httpPort), '--http-host', '127.0.0.1'];
    const prod = await mcpkiAsync([
      '--home',
      home,
      '--json',
      'acme',
      'issue',
      'prod',
      '-d',
      'prod.test',
      '--account',
      'pebble',
      ...http,
    ]);
    assert.equal(prod.status, 0, prod.stderr);
    const certPath = JSON.parse(prod.stdout).paths.cert;
    const before = readFileSync(certPath, 'utf8');
    const refused = await mcpkiAsync([
      '--home',
      home,
      'acme',
      'issue',
      'prod',
      '-d',
      'prod.test',
      '--account',
      'pebble-staging',
      ...http,
    ]);
    assert.equal(refused.status, 5, refused.stderr);
    assert.match(refused.stderr, /production certificate/);
    assert.match(refused.stderr, /hint: .*--force/);
    assert.equal(readFileSync(certPath, 'utf8'), before);
    const forced = await mcpkiAsync([
      '--home',
      home,
      '--json',
      'acme',
      'issue',
      'prod',
      '-d',
      'prod.test',
      '--account',
      'pebble-staging',
      '--force',
      ...http,
    ]);
    assert.equal(forced.status, 0, forced.stderr);
    assert.equal(JSON.parse(forced.stdout).certificate.environment, 'staging');
  });

  test(
    'progress per step on a terminal, none without one',
    { skip: !hasCommand('script') && 'script(1) missing' },
    async () => {
      const command = `${process.execPath} ${BIN} --home ${home} acme issue tty -d tty.test --account pebble --http-port ${pebble.httpPort} --http-host 127.0.0.1`;
      const child = spawn('script', ['-qc', command, '/dev/null'], { env: { ...process.env, NO_COLOR: '1' } });
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      const status = await new Promise((resolve) => child.on('close', resolve));
      assert.equal(status, 0, output);
      for (const step of ['account', 'order', 'authorization', 'challenge', 'finalize', 'download', 'write'])
        assert.match(output, new RegExp(`^${step}\\s`, 'm'), step);
      const quiet = await mcpkiAsync([
        '--home',
        home,
        'acme',
        'issue',
        'tty',
        '-d',
        'tty.test',
        '--account',
        'pebble',
        '--http-port',
        String(pebble.httpPort),
        '--http-host',
        '127.0.0.1',
      ]);
      assert.equal(quiet.status, 0, quiet.stderr);
      assert.equal(quiet.stderr, '');
    },
  );

  test('an ACME certificate declared in mcpki.yaml renews through the service', async () => {
    const { createContext, loadConfig } = await import('../dist/index.js');
    const { startService } = await import('../dist/service/serve.js');
    const config = join(work.dir, 'acme.yaml');
    writeFileSync(
      config,
      `version: 1
certificates:
  - name: served
    issuer: acme:pebble
    names: [served.test]
    challenge: { type: http-01, port: ${pebble.httpPort}, host: 127.0.0.1 }
    targets:
      - { type: combined, path: deploy/served.pem }
`,
    );
    let now = new Date();
    const context = createContext({ ...testStore(home), home, now: () => now });
    const service = await startService(context, {
      loadConfig: () => loadConfig(config),
      schedule: '0 0 1 1 *',
      scheduler: { runOnStart: false, now: () => now },
    });
    try {
      await service.checkNow();
      const first = service.lastResult.items[0];
      assert.equal(first.action, 'issued', JSON.stringify(first.error));
      const deployed = join(work.dir, 'deploy', 'served.pem');
      const serialOf = () =>
        run('openssl', ['x509', '-in', deployed, '-noout', '-serial']).stdout.trim().replace('serial=', '');
      const firstSerial = serialOf();
      await service.checkNow();
      assert.equal(service.lastResult.items[0].action, 'unchanged');
      const notAfter = Date.parse(mcpki(['--home', home, '--json', 'show', 'served']).json.certificate.notAfter);
      now = new Date(notAfter - 86_400_000); // a day before expiry: well inside the last third
      await service.checkNow();
      const renewed = service.lastResult.items[0];
      assert.equal(renewed.action, 'renewed', JSON.stringify(renewed.error));
      assert.notEqual(serialOf(), firstSerial);
      assert.equal(mcpki(['--home', home, '--json', 'show', 'served']).json.certificate.issuer, 'acme:pebble');
    } finally {
      await service.stop();
      context.close();
    }
  });

  test('a challenge that cannot succeed: typed error naming domain and challenge, old files untouched, port released', async () => {
    const first = await mcpkiAsync([
      '--home',
      home,
      '--json',
      'acme',
      'issue',
      'keep',
      '-d',
      'keep.test',
      '--account',
      'pebble',
      '--http-port',
      String(pebble.httpPort),
      '--http-host',
      '127.0.0.1',
    ]);
    assert.equal(first.status, 0, first.stderr);
    const paths = JSON.parse(first.stdout).paths;
    const before = Object.fromEntries(Object.values(paths).map((p) => [p, readFileSync(p, 'utf8')]));

    // a new account: Pebble may reuse the first order's valid authorization for the same account (see pebble.js)
    const fresh = mcpki([
      '--home',
      home,
      'acme',
      'account',
      'register',
      '--directory',
      pebble.directoryUrl,
      '--ca-bundle',
      pebble.caBundlePath,
      '--agree-tos',
      '--name',
      'fresh',
    ]);
    assert.equal(fresh.status, 0, fresh.stderr);
    const failingHook = writeDnsHook(work.dir, { fail: true });
    const viaHook = await mcpkiAsync(
      [
        '--home',
        home,
        '--json',
        'acme',
        'issue',
        'keep',
        '-d',
        'keep.test',
        '--account',
        'fresh',
        '--challenge',
        'dns-01',
        '--dns-hook',
        `${process.execPath} ${failingHook}`,
      ],
      { env: env() },
    );
    assert.equal(viaHook.status, 13, viaHook.stdout);
    const hookError = JSON.parse(viaHook.stdout).error;
    assert.match(hookError.message, /keep\.test/);
    assert.match(hookError.message + hookError.hint, /dns-01|hook/);
    const leftovers = mcpki(['--home', home, '--json', 'events', '--type', 'acme.challenge.cleanup-failed']).json
      .events;
    assert.equal(leftovers.at(-1).detail.identifier, 'keep.test', 'the failed cleanup hook is on record');

    // nothing listens where Pebble connects: our responder is on another port
    const elsewhere = (await import('./pebble.js')).freePorts;
    const [otherPort] = await elsewhere(1);
    const unreachable = await mcpkiAsync([
      '--home',
      home,
      '--json',
      'acme',
      'issue',
      'keep',
      '-d',
      'keep.test',
      '--account',
      'fresh',
      '--http-port',
      String(otherPort),
      '--http-host',
      '127.0.0.1',
    ]);
    assert.equal(unreachable.status, 13, unreachable.stdout);
    const error = JSON.parse(unreachable.stdout).error;
    assert.equal(error.code, 'CHALLENGE_FAILED');
    assert.match(error.message, /^http-01 challenge for keep\.test failed: /);
    assert.equal(error.message.match(/challenge for/g).length, 1, 'the prefix is not repeated');
    assert.match(
      error.message,
      new RegExp(
        `port ${pebble.httpPort} of keep\\.test was not reachable from the CA \\(the responder here listened on port ${otherPort}\\)`,
      ),
    );
    assert.equal(await portIsFree(otherPort), true, 'the standalone responder was stopped');

    for (const [path, content] of Object.entries(before))
      assert.equal(readFileSync(path, 'utf8'), content, `${path} untouched`);
    assert.equal(
      mcpki(['--home', home, '--json', 'show', 'keep']).json.certificate.serial,
      JSON.parse(first.stdout).certificate.serial,
    );
  });
});

describe('ACME: External Account Binding', { skip }, () => {
  test('registration without EAB fails clearly; with EAB it succeeds', async () => {
    const kid = 'kid-1';
    const hmac = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W';
    const pebble = await startPebble({ eab: { [kid]: hmac } });
    const work = tempDir('mcpki-acme-eab-');
    try {
      const base = [
        '--home',
        join(work.dir, 'home'),
        '--json',
        'acme',
        'account',
        'register',
        '--directory',
        pebble.directoryUrl,
        '--ca-bundle',
        pebble.caBundlePath,
        '--agree-tos',
      ];
      const without = mcpki(base);
      assert.equal(without.status, 13, without.stdout + without.stderr);
      assert.equal(without.json.error.code, 'EAB_REQUIRED');
      assert.match(without.json.error.hint, /--eab-kid/);

      const hmacFile = join(work.dir, 'eab.hmac');
      writeFileSync(hmacFile, `${hmac}\n`, { mode: 0o600 });
      const withEab = mcpki([...base, '--eab-kid', kid, '--eab-hmac-file', hmacFile]);
      assert.equal(withEab.status, 0, withEab.stdout + withEab.stderr);
      assert.equal(withEab.json.account.eabKid, kid);
      assert.ok(!withEab.stdout.includes(hmac), 'the HMAC key is never printed');

      const unreadable = mcpki([
        ...base,
        '--name',
        'x',
        '--eab-kid',
        kid,
        '--eab-hmac-file',
        join(work.dir, 'missing'),
      ]);
      assert.equal(unreadable.status, 12);
    } finally {
      await pebble.stop();
      work.cleanup();
    }
  });
});

describe('ACME: nonces rejected 30% of the time', { skip }, () => {
  test('10 orders in a row all succeed', async () => {
    const pebble = await startPebble({ nonceReject: 30 });
    const work = tempDir('mcpki-acme-nonce-');
    try {
      const home = join(work.dir, 'home');
      const registered = mcpki([
        '--home',
        home,
        'acme',
        'account',
        'register',
        '--directory',
        pebble.directoryUrl,
        '--ca-bundle',
        pebble.caBundlePath,
        '--agree-tos',
      ]);
      assert.equal(registered.status, 0, registered.stderr);
      for (let i = 0; i < 10; i++) {
        const result = await mcpkiAsync([
          '--home',
          home,
          'acme',
          'issue',
          `n${i}`,
          '-d',
          `n${i}.test`,
          '--http-port',
          String(pebble.httpPort),
          '--http-host',
          '127.0.0.1',
        ]);
        assert.equal(result.status, 0, `order ${i}: ${result.stderr}`);
      }
      assert.equal(mcpki(['--home', home, '--json', 'list']).json.certificates.length, 10);
    } finally {
      await pebble.stop();
      work.cleanup();
    }
  });
});

describe('ACME: bad input', () => {
  test('each fails with its exit code and a hint, and writes nothing', async () => {
    const work = tempDir('mcpki-acme-bad-');
    try {
      const home = join(work.dir, 'home');
      const cases = [
        {
          args: ['acme', 'account', 'register', '--directory', 'letsencrypt-prod', '--agree-tos'],
          status: 3,
          message: /unknown ACME directory "letsencrypt-prod"/,
        },
        {
          args: ['acme', 'account', 'register', '--directory', 'http://127.0.0.1:1/dir', '--agree-tos'],
          status: 3,
          message: /not an https:\/\/ URL/,
        },
        {
          args: ['acme', 'account', 'register', '--directory', 'https://127.0.0.1:1/dir', '--agree-tos'],
          status: 15,
          message: /cannot reach the ACME server/,
        },
        {
          args: ['acme', 'account', 'register', '--directory', 'letsencrypt-staging'],
          status: 3,
          message: /terms of service/,
        },
        {
          args: [
            'acme',
            'account',
            'register',
            '--directory',
            'letsencrypt-staging',
            '--agree-tos',
            '--eab-kid',
            'k',
            '--eab-hmac-file',
            join(work.dir, 'nope'),
          ],
          status: 12,
          message: /cannot read the EAB HMAC file/,
        },
        { args: ['acme', 'issue', 'x', '-d', 'x.test'], status: 10, message: /no ACME account is registered/ },
        {
          args: ['acme', 'issue', 'x', '-d', 'x.test', '--account', 'ghost'],
          status: 10,
          message: /no ACME account named "ghost"/,
        },
        { args: ['acme', 'issue', 'x', '-d', 'bad..name'], status: 3, message: /invalid name "bad\.\.name"/ },
        {
          args: ['acme', 'issue', 'x', '-d', '*.wild.test'],
          status: 3,
          message: /wildcard "\*\.wild\.test" can only be validated with dns-01/,
        },
        { args: ['acme', 'issue', 'x'], status: 3, message: /no domain given/ },
        { args: ['acme', 'issue', 'x', '-d', 'x.test', '--challenge', 'smoke-01'], status: 3, message: /smoke-01/ },
      ];
      for (const c of cases) {
        const result = await mcpkiAsync(['--home', home, ...c.args], { env: { MCPKI_EAB_HMAC: '' } });
        assert.equal(result.status, c.status, `${c.args.join(' ')}: ${result.stderr}`);
        assert.match(result.stderr, c.message, c.args.join(' '));
        assert.match(result.stderr, /^hint: /m, c.args.join(' '));
        assert.ok(!existsSync(join(home, 'acme')), `${c.args.join(' ')} wrote an account`);
        assert.ok(!existsSync(join(home, 'certs')), `${c.args.join(' ')} wrote certificates`);
      }
    } finally {
      work.cleanup();
    }
  });
});

describe('a hostile ACME server', () => {
  test('an endless body is cut off (no memory exhaustion); credentials in the directory URL are refused', async (t) => {
    const { createServer: createHttpsServer } = await import('node:https');
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const home = join(dir, 'home');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const issued = mcpki([
      '--home',
      home,
      '--json',
      'issue',
      'server',
      's',
      'localhost',
      '127.0.0.1',
      '--out',
      join(dir, 'tls'),
    ]);
    assert.equal(issued.status, 0, issued.stderr);
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    let sent = 0;
    const server = createHttpsServer(
      { key: readFileSync(issued.json.paths.key), cert: readFileSync(issued.json.paths.fullchain) },
      (req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"newNonce":"');
        const pump = () => {
          while (sent < 2048 * 1024 * 1024 && res.write(chunk)) sent += chunk.length;
        };
        res.on('drain', pump);
        res.on('close', () => res.off('drain', pump));
        pump();
      },
    );
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      server.closeAllConnections();
      server.close();
    });
    const url = `https://127.0.0.1:${server.address().port}/dir`;
    const started = Date.now();
    const result = await mcpkiAsync([
      '--home',
      home,
      'acme',
      'account',
      'register',
      '--agree-tos',
      '--directory',
      url,
      '--ca-bundle',
      join(home, 'ca', 'root.crt'),
    ]);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /^error: .+/m);
    assert.doesNotMatch(result.stderr, /this is a bug|heap out of memory/);
    assert.ok(sent < 256 * 1024 * 1024, `the client read ${sent} bytes`);
    assert.ok(Date.now() - started < 25_000, 'fails well before the request timeout');

    const withCredentials = mcpki([
      '--home',
      home,
      'acme',
      'account',
      'register',
      '--agree-tos',
      '--directory',
      'https://ops:s3cret@127.0.0.1:1/dir',
    ]);
    assert.equal(withCredentials.status, 3, withCredentials.stderr);
    assert.match(
      withCredentials.stderr,
      /^error: ACME directory URL https:\/\/127\.0\.0\.1:1\/dir carries a user name or password$/m,
    );
    assert.doesNotMatch(withCredentials.stderr, /s3cret/);
  });
});

describe('ACME: the account key on disk', { skip }, () => {
  test('a key that others may read, or a symlink, is refused before it is used; the account stays valid', async (t) => {
    const pebble = await startPebble();
    const work = tempDir();
    t.after(async () => {
      await pebble.stop();
      work.cleanup();
    });
    const home = join(work.dir, 'home');
    const registered = mcpki([
      '--home',
      home,
      '--json',
      'acme',
      'account',
      'register',
      '--directory',
      pebble.directoryUrl,
      '--ca-bundle',
      pebble.caBundlePath,
      '--agree-tos',
      '--name',
      'p',
    ]);
    assert.equal(registered.status, 0, registered.stderr);
    const keyPath = registered.json.account.keyPath;
    chmodSync(keyPath, 0o644);
    const loose = mcpki(['--home', home, 'acme', 'account', 'deactivate', 'p']);
    assert.equal(loose.status, 22, loose.stderr);
    assert.match(
      loose.stderr,
      /^error: refusing .+: key of ACME account "p" is accessible by group or others \(mode 0644\)$/m,
    );
    assert.match(loose.stderr, /^hint: chmod 600 /m);
    chmodSync(keyPath, 0o600);
    const shown = mcpki(['--home', home, '--json', 'acme', 'account', 'show', 'p']);
    assert.equal(shown.json.status ?? shown.json.account?.status, 'valid', shown.stdout);
  });
});
