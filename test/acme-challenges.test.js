// ACME challenge providers (src/acme/challenges/), each checked by an independent peer: curl / node:http for
// http-01, the file system for webroot, a real hook script plus the openssl CLI (and pebble-challtestsrv as a
// DNS server) for dns-01, `openssl s_client` / `openssl x509` / `openssl asn1parse` for tls-alpn-01.
// Every server a test starts, it stops; every port is picked by the OS (port 0) and checked free afterwards.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import dgram from 'node:dgram';
import { join } from 'node:path';
import { hasCommand, run, tempDir, ROOT } from './helpers.js';
import { McpkiError } from '../dist/index.js';
import {
  CHALLENGE_ERROR_CODES,
  Dns01HookProvider,
  Http01Provider,
  TlsAlpn01Provider,
  WebrootProvider,
  assertChallengeSupports,
  createChallengeProvider,
  dnsTxtValue,
  formatCommand,
  splitCommand,
  sniNameFor,
} from '../dist/acme/challenges/index.js';

const HAS_CURL = hasCommand('curl');
const HAS_OPENSSL = hasCommand('openssl');
const CHALLTESTSRV = '/usr/bin/pebble-challtestsrv';

function task(type, identifier, token, options = {}) {
  return {
    type,
    identifier,
    wildcard: false,
    token,
    keyAuthorization: `${token}.${options.thumbprint ?? 'Zm9vYmFyLXRodW1icHJpbnQtb2YtdGhlLWFjY291bnQta2V5'}`,
    ...options,
  };
}

/** True when a TCP port can be bound on 127.0.0.1 (then released again). */
function tcpPortFree(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function occupy(host = '127.0.0.1') {
  return new Promise((resolve) => {
    const server = net.createServer((socket) => socket.destroy());
    server.listen({ port: 0, host }, () => resolve(server));
  });
}

function closeServer(server) {
  return new Promise((resolve) => server.close(() => resolve()));
}

function httpGet(port, path, { agent, method = 'GET' } = {}) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port, path, method, agent, headers: { host: 'example.test' } },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => (body += chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode, body, type: response.headers['content-type'] }),
        );
      },
    );
    request.on('error', reject);
    request.end();
  });
}

/** Runs a program without blocking the event loop (the servers under test live in this process). */
function runAsync(cmd, args, { input, timeout = 15_000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        ...process.env,
        http_proxy: '',
        HTTP_PROXY: '',
        https_proxy: '',
        HTTPS_PROXY: '',
        all_proxy: '',
        ALL_PROXY: '',
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

async function curl(port, path) {
  // --resolve: the request goes out as it would from a CA, for http://example.test:PORT/...
  const result = await runAsync('curl', [
    '-s',
    '--max-time',
    '10',
    '--path-as-is',
    '--resolve',
    `example.test:${port}:127.0.0.1`,
    '-o',
    '-',
    '-w',
    '\n%{http_code}',
    `http://example.test:${port}${path}`,
  ]);
  const cut = result.stdout.lastIndexOf('\n');
  return { body: result.stdout.slice(0, cut), status: Number(result.stdout.slice(cut + 1)) };
}

async function rejectsWith(promiseOrFn, check) {
  let error;
  try {
    await (typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn);
  } catch (e) {
    error = e;
  }
  assert.ok(error, 'expected an error');
  assert.ok(error instanceof McpkiError, `expected an McpkiError, got ${error?.stack ?? error}`);
  check(error);
  return error;
}

/** A process is gone when it has no /proc entry or is a zombie nobody reaped yet. */
function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------
describe('http-01 standalone responder', () => {
  test('serves the key authorization to curl and node:http, 404 to anything else; close() frees the port', async () => {
    const provider = new Http01Provider({ port: 0, host: '127.0.0.1' });
    try {
      assert.equal(provider.port, undefined, 'nothing listens before the first present()');
      const a = task('http-01', 'example.test', 'tokenA_-1');
      const b = task('http-01', 'www.example.test', 'tokenB');
      await provider.present(a);
      await provider.present(b);
      const port = provider.port;
      assert.ok(port > 0);

      const viaNode = await httpGet(port, `/.well-known/acme-challenge/${a.token}`);
      assert.deepEqual(viaNode, { status: 200, body: a.keyAuthorization, type: 'text/plain' });
      assert.equal((await httpGet(port, `/.well-known/acme-challenge/${b.token}`)).body, b.keyAuthorization);
      assert.equal((await httpGet(port, `/.well-known/acme-challenge/unknown`)).status, 404);
      assert.equal((await httpGet(port, `/.well-known/acme-challenge/`)).status, 404);
      assert.equal((await httpGet(port, `/`)).status, 404);
      assert.equal((await httpGet(port, `/.well-known/acme-challenge/${a.token}`, { method: 'POST' })).status, 404);
      const head = await httpGet(port, `/.well-known/acme-challenge/${a.token}`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      if (HAS_CURL) {
        assert.deepEqual(await curl(port, `/.well-known/acme-challenge/${a.token}`), {
          status: 200,
          body: a.keyAuthorization,
        });
        assert.equal((await curl(port, `/.well-known/acme-challenge/nope`)).status, 404);
        assert.equal(
          (await curl(port, `/.well-known/acme-challenge/../../.well-known/acme-challenge/${a.token}`)).status,
          404,
          'no path normalisation on our side',
        );
      }

      await provider.cleanup(a);
      assert.equal(
        (await httpGet(port, `/.well-known/acme-challenge/${a.token}`)).status,
        404,
        'cleanup removes the answer',
      );
      assert.equal((await httpGet(port, `/.well-known/acme-challenge/${b.token}`)).status, 200, 'other tokens stay');

      // a keep-alive connection must not hold close() up or keep the port
      const agent = new http.Agent({ keepAlive: true });
      assert.equal((await httpGet(port, `/.well-known/acme-challenge/${b.token}`, { agent })).status, 200);
      const started = Date.now();
      await provider.close();
      assert.ok(Date.now() - started < 1000, 'close() does not wait for idle keep-alive connections');
      agent.destroy();
      assert.equal(await tcpPortFree(port), true, 'the port is free after close()');
      await provider.close(); // idempotent
      await provider.cleanup(b); // safe after close
    } finally {
      await provider.close();
    }
  });

  test('a port in use gives a typed one-line error naming the port; close() is still safe', async () => {
    const blocker = await occupy();
    const port = blocker.address().port;
    const provider = new Http01Provider({ port, host: '127.0.0.1' });
    try {
      await rejectsWith(provider.present(task('http-01', 'example.test', 'tok')), (error) => {
        assert.equal(error.code, CHALLENGE_ERROR_CODES.portInUse);
        assert.equal(error.code, 'LISTEN_FAILED', 'a local problem, not the CA refusing');
        assert.equal(error.exitCode, 18);
        assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port} is already in use`));
        assert.doesNotMatch(error.message, /\n/);
        assert.match(error.hint, /--webroot/);
        assert.match(error.hint, /--http-port/);
      });
      assert.equal(provider.port, undefined);
      await provider.cleanup(task('http-01', 'example.test', 'tok'));
      await provider.close();
      await provider.close();
    } finally {
      await provider.close();
      await closeServer(blocker);
    }
    assert.equal(await tcpPortFree(port), true);
    // the same provider works once the port is free again
    const again = new Http01Provider({ port, host: '127.0.0.1' });
    try {
      await again.present(task('http-01', 'example.test', 'tok'));
      assert.equal((await httpGet(port, '/.well-known/acme-challenge/tok')).status, 200);
    } finally {
      await again.close();
    }
    assert.equal(await tcpPortFree(port), true);
  });

  test(
    'permission denied on port 80 as a non-root user: typed error naming the port',
    { skip: process.getuid?.() !== 0 && 'needs root to switch to nobody' },
    () => {
      const unprivilegedStart = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
      if (unprivilegedStart <= 80) return; // this kernel lets anybody bind port 80: nothing to refuse
      const script = `
      const { Http01Provider } = await import(${JSON.stringify(join(ROOT, 'dist/acme/challenges/index.js'))});
      const p = new Http01Provider({ host: '127.0.0.1' });
      try { await p.present({ type: 'http-01', identifier: 'example.test', wildcard: false, token: 't', keyAuthorization: 't.x' }); console.log('listening?!'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })); }
      finally { await p.close(); }`;
      const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        uid: 65534,
        gid: 65534,
        encoding: 'utf8',
        cwd: '/',
        env: { PATH: process.env.PATH },
      });
      assert.equal(result.status, 0, result.stderr);
      const error = JSON.parse(result.stdout);
      assert.equal(error.code, CHALLENGE_ERROR_CODES.portDenied);
      assert.equal(error.message, 'cannot start the http-01 responder: permission denied to listen on 127.0.0.1:80');
      assert.match(error.hint, /CAP_NET_BIND_SERVICE/);
      assert.match(error.hint, /--webroot/);
    },
  );

  test('refuses wildcard names and tokens that are not base64url', async () => {
    const provider = new Http01Provider({ port: 0, host: '127.0.0.1' });
    try {
      await rejectsWith(provider.present({ ...task('http-01', 'example.test', 'tok'), wildcard: true }), (error) => {
        assert.equal(error.code, 'INVALID_INPUT');
        assert.match(error.message, /\*\.example\.test: a wildcard name cannot be validated with http-01/);
        assert.match(error.hint, /dns-01/);
      });
      await rejectsWith(provider.present(task('http-01', 'example.test', '../../etc/passwd')), (error) =>
        assert.match(error.message, /not base64url/),
      );
      await rejectsWith(
        provider.present({ ...task('http-01', 'example.test', 'tok'), keyAuthorization: 'other.thumb' }),
        (error) => {
          assert.equal(error.code, 'INTERNAL');
          assert.equal(error.message, 'the http-01 key authorization for example.test is not "token.thumbprint"');
        },
      );
      assert.equal(provider.port, undefined, 'nothing was started');
    } finally {
      await provider.close();
    }
    assert.throws(
      () => assertChallengeSupports('http-01', ['example.test', '*.example.test']),
      /wildcard name cannot be validated with http-01/,
    );
    assert.throws(() => assertChallengeSupports('tls-alpn-01', ['*.example.test']), /tls-alpn-01/);
    assertChallengeSupports('dns-01', ['*.example.test', 'example.test']);
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('http-01 webroot', () => {
  test('writes the token file 0644 (whatever the umask), removes it and the folders it created', async () => {
    const { dir, cleanup } = tempDir();
    const umask = process.umask(0o077);
    try {
      const webroot = join(dir, 'www');
      mkdirSync(webroot);
      writeFileSync(join(webroot, 'index.html'), 'hello');
      const provider = createChallengeProvider({ webroot });
      assert.ok(provider instanceof WebrootProvider);
      assert.equal(provider.type, 'http-01');
      const a = task('http-01', 'example.test', 'tokenA');
      const b = task('http-01', 'example.test', 'tokenB');
      await provider.present(a);
      await provider.present(b);
      const fileA = join(webroot, '.well-known', 'acme-challenge', 'tokenA');
      assert.equal(readFileSync(fileA, 'utf8'), a.keyAuthorization);
      assert.equal(statSync(fileA).mode & 0o777, 0o644);
      assert.equal(statSync(join(webroot, '.well-known')).mode & 0o777, 0o755);
      assert.equal(statSync(join(webroot, '.well-known', 'acme-challenge')).mode & 0o777, 0o755);
      assert.deepEqual(
        run('ls', ['-A', join(webroot, '.well-known', 'acme-challenge')])
          .stdout.split('\n')
          .filter(Boolean),
        ['tokenA', 'tokenB'],
        'no temp files left',
      );

      await provider.cleanup(a);
      assert.equal(existsSync(fileA), false);
      assert.equal(existsSync(join(webroot, '.well-known', 'acme-challenge', 'tokenB')), true, 'the other token stays');
      await provider.cleanup(b);
      assert.equal(existsSync(join(webroot, '.well-known')), false, 'both folders it created are gone');
      assert.equal(readFileSync(join(webroot, 'index.html'), 'utf8'), 'hello');
      await provider.cleanup(b); // twice: nothing happens
      await provider.close?.();
    } finally {
      process.umask(umask);
      cleanup();
    }
  });

  test('keeps folders that existed before and files it did not write', async () => {
    const { dir, cleanup } = tempDir();
    try {
      mkdirSync(join(dir, '.well-known'));
      writeFileSync(join(dir, '.well-known', 'security.txt'), 'Contact: x');
      const provider = new WebrootProvider(dir);
      // cleanup before any present is safe and touches nothing
      await provider.cleanup(task('http-01', 'example.test', 'tok'));
      await provider.present(task('http-01', 'example.test', 'tok'));
      assert.equal(existsSync(join(dir, '.well-known', 'acme-challenge', 'tok')), true);
      await provider.close(); // close removes what cleanup was not called for
      assert.equal(existsSync(join(dir, '.well-known', 'acme-challenge')), false);
      assert.equal(readFileSync(join(dir, '.well-known', 'security.txt'), 'utf8'), 'Contact: x');

      // a folder with foreign content stays
      await provider.present(task('http-01', 'example.test', 'tok2'));
      writeFileSync(join(dir, '.well-known', 'acme-challenge', 'someone-else'), 'x');
      await provider.cleanup(task('http-01', 'example.test', 'tok2'));
      assert.equal(existsSync(join(dir, '.well-known', 'acme-challenge', 'tok2')), false);
      assert.equal(existsSync(join(dir, '.well-known', 'acme-challenge', 'someone-else')), true);
    } finally {
      cleanup();
    }
  });

  test('a missing webroot is a clear error', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const provider = new WebrootProvider(join(dir, 'missing'));
      await rejectsWith(provider.present(task('http-01', 'example.test', 'tok')), (error) => {
        assert.equal(error.code, 'INVALID_INPUT');
        assert.match(error.message, /webroot .*missing is not a folder/);
      });
      assert.equal(existsSync(join(dir, 'missing')), false, 'nothing created');
      await provider.cleanup(task('http-01', 'example.test', 'tok'));
    } finally {
      cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('dns-01 hook', () => {
  /** A hook that logs one line per argument and the MCPKI_ACME_* environment to LOG, then runs BODY. */
  function writeHook(dir, name, body = '') {
    const path = join(dir, name);
    const log = join(dir, 'hook.log');
    writeFileSync(
      path,
      `#!/bin/sh
{
  echo "--- call"
  for arg in "$@"; do printf 'arg=%s\\n' "$arg"; done
  env | grep '^MCPKI_ACME_' | sort
} >> '${log}'
${body}
`,
    );
    chmodSync(path, 0o755);
    return { path, log };
  }

  function readCalls(log) {
    if (!existsSync(log)) return [];
    return readFileSync(log, 'utf8')
      .split('--- call\n')
      .filter(Boolean)
      .map((block) => {
        const lines = block.trim().split('\n');
        return {
          argv: lines.filter((l) => l.startsWith('arg=')).map((l) => l.slice(4)),
          env: Object.fromEntries(
            lines
              .filter((l) => l.startsWith('MCPKI_'))
              .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
          ),
        };
      });
  }

  function opensslTxtValue(keyAuthorization) {
    const result = run('sh', [
      '-c',
      `printf %s "$1" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '='`,
      'sh',
      keyAuthorization,
    ]);
    assert.equal(result.status, 0, result.stderr);
    return result.stdout.trim();
  }

  test(
    'present/cleanup run the hook as argv with the documented arguments and environment',
    { skip: !HAS_OPENSSL && 'openssl missing' },
    async () => {
      const { dir, cleanup } = tempDir('mcpki test dns '); // a space in the path: the hook path must be quoted
      try {
        const hook = writeHook(dir, 'my hook.sh');
        const provider = createChallengeProvider({
          type: 'dns-01',
          dnsHook: `'${hook.path}' --zone "example test" plain\\ word`,
          dnsTimeoutSeconds: '10',
          env: { PATH: process.env.PATH, KEEP: 'me' },
        });
        assert.ok(provider instanceof Dns01HookProvider);
        assert.equal(provider.type, 'dns-01');
        const base = task('dns-01', 'example.test', 'tokA');
        const wildcard = { ...task('dns-01', 'example.test', 'tokB'), wildcard: true };
        await provider.present(base);
        await provider.present(wildcard);
        await provider.cleanup(wildcard);
        await provider.cleanup(base);
        await provider.cleanup(base); // a second cleanup does not run the hook again
        await provider.close();

        const value = opensslTxtValue(base.keyAuthorization);
        const wildValue = opensslTxtValue(wildcard.keyAuthorization);
        assert.equal(dnsTxtValue(base.keyAuthorization), value);
        assert.notEqual(value, wildValue);
        const calls = readCalls(hook.log);
        const expect = (action, v, wild) => ({
          argv: ['--zone', 'example test', 'plain word', action, 'example.test', '_acme-challenge.example.test.', v],
          env: {
            MCPKI_ACME_ACTION: action,
            MCPKI_ACME_DOMAIN: 'example.test',
            MCPKI_ACME_FQDN: '_acme-challenge.example.test.',
            MCPKI_ACME_VALUE: v,
            MCPKI_ACME_WILDCARD: wild,
          },
        });
        assert.deepEqual(calls, [
          expect('present', value, '0'),
          expect('present', wildValue, '1'),
          expect('cleanup', wildValue, '1'),
          expect('cleanup', value, '0'),
        ]);
      } finally {
        cleanup();
      }
    },
  );

  test('the hook never sees the secrets mcpki reads (root passphrase, EAB HMAC, PKCS#12 password)', async () => {
    const { dir, cleanup } = tempDir();
    const secrets = {
      MCPKI_ROOT_PASSPHRASE: 'root-secret-1',
      MCPKI_P12_PASSWORD: 'p12-secret-2',
      MCPKI_EAB_HMAC: 'eab-secret-3',
      MCPKI_OTHER_SECRET: 'other-secret-4',
    };
    const saved = { ...process.env };
    try {
      const dump = join(dir, 'env.txt');
      const hook = join(dir, 'dump-env');
      writeFileSync(hook, `#!/bin/sh\nenv >> '${dump}'\n`);
      chmodSync(hook, 0o755);
      // from the process environment (the CLI's case) and from an environment given by a library caller
      Object.assign(process.env, secrets, { KEPT_VARIABLE: 'kept' });
      for (const provider of [
        new Dns01HookProvider({ hook }),
        new Dns01HookProvider({ hook, env: { ...process.env } }),
      ]) {
        const t = task('dns-01', 'example.test', 'tok');
        await provider.present(t);
        await provider.cleanup(t);
        await provider.close();
      }
      const seen = readFileSync(dump, 'utf8');
      assert.equal(seen.match(/^MCPKI_ACME_ACTION=/gm)?.length, 4, 'four hook runs');
      assert.equal(seen.match(/^KEPT_VARIABLE=kept$/gm)?.length, 4, 'the rest of the environment is kept');
      for (const [name, value] of Object.entries(secrets)) {
        assert.ok(!seen.includes(name) && !seen.includes(value), `${name} reached the hook`);
      }
    } finally {
      for (const name of [...Object.keys(secrets), 'KEPT_VARIABLE']) if (!(name in saved)) delete process.env[name];
      cleanup();
    }
  });

  test(
    'the TXT value matches openssl for the RFC 8555 example and odd inputs',
    { skip: !HAS_OPENSSL && 'openssl missing' },
    () => {
      for (const keyAuthorization of [
        'evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI',
        'a.b',
        'ümlaut.x',
        '',
      ]) {
        assert.equal(dnsTxtValue(keyAuthorization), opensslTxtValue(keyAuthorization), keyAuthorization);
      }
    },
  );

  test('a hook that exits 1: typed error naming the domain, the hook, the exit code and its last stderr line', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const hook = writeHook(
        dir,
        'failing-hook',
        `echo "looking up zone" ; echo "warning: something" >&2 ; echo "error: zone example.test not found" >&2 ; exit 1`,
      );
      const provider = new Dns01HookProvider({ hook: [hook.path, '--verbose'] });
      const t = task('dns-01', 'example.test', 'tok');
      const error = await rejectsWith(provider.present(t), (error) => {
        assert.equal(error.code, CHALLENGE_ERROR_CODES.hookFailed);
        assert.equal(error.code, 'CHALLENGE_FAILED');
        assert.equal(
          error.message,
          `dns-01 present hook for example.test failed (exit code 1): ${hook.path} --verbose: error: zone example.test not found`,
        );
        assert.match(error.hint, /run the hook by hand/);
      });
      assert.equal(error.cause.name, 'HookFailure');
      assert.equal(error.cause.run.exitCode, 1);
      assert.match(error.cause.run.stdout, /looking up zone/);
      assert.match(error.cause.message, /warning: something\nerror: zone example\.test not found/);
      // cleanup after a failed present still runs the hook (the record may be half there), and reports failure too
      await rejectsWith(provider.cleanup(t), (error) => {
        assert.match(error.message, /^dns-01 cleanup hook for example\.test failed \(exit code 1\)/);
        assert.match(error.hint, /remove the TXT record _acme-challenge\.example\.test\. /);
      });
      assert.equal(readCalls(hook.log).length, 2);
      await provider.cleanup(t); // nothing left to undo: no third call
      assert.equal(readCalls(hook.log).length, 2);
    } finally {
      cleanup();
    }
  });

  test('a hook that runs past the timeout is killed with its whole process group', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const pids = join(dir, 'pids');
      const hook = writeHook(
        dir,
        'slow-hook',
        `echo "$$" > '${pids}' ; sleep 30 & echo "$!" >> '${pids}' ; echo "waiting for the DNS API" >&2 ; wait`,
      );
      const provider = new Dns01HookProvider({ hook: hook.path, timeoutSeconds: 0.5 });
      const started = Date.now();
      await rejectsWith(provider.present(task('dns-01', 'slow.example.test', 'tok')), (error) => {
        assert.equal(error.code, 'CHALLENGE_FAILED');
        assert.equal(
          error.message,
          `dns-01 present hook for slow.example.test timed out after 0.5 s and was killed: ${hook.path}: waiting for the DNS API`,
        );
        assert.match(error.hint, /--dns-timeout/);
        assert.equal(error.cause.run.timedOut, true);
      });
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
      const [shellPid, sleepPid] = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
      for (let i = 0; i < 50 && (alive(shellPid) || alive(sleepPid)); i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(alive(shellPid), false, 'the hook is gone');
      assert.equal(alive(sleepPid), false, 'its child is gone too');
    } finally {
      cleanup();
    }
  });

  test('a digest in place of the key authorization is refused before the hook runs', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const hook = writeHook(dir, 'hook');
      const provider = new Dns01HookProvider({ hook: hook.path });
      const t = task('dns-01', 'example.test', 'tok');
      // what acme-client's getChallengeKeyAuthorization returns for dns-01: already the TXT value
      await rejectsWith(provider.present({ ...t, keyAuthorization: dnsTxtValue(t.keyAuthorization) }), (error) => {
        assert.equal(error.code, 'INTERNAL');
        assert.match(error.message, /dns-01 key authorization for example\.test is not "token\.thumbprint"/);
      });
      await provider.cleanup({ ...t, keyAuthorization: dnsTxtValue(t.keyAuthorization) });
      assert.deepEqual(readCalls(hook.log), [], 'the hook never ran');
    } finally {
      cleanup();
    }
  });

  test('a missing hook program is a clear error, and cleanup after it is safe', async () => {
    const provider = new Dns01HookProvider({ hook: '/nonexistent/dns-hook --flag' });
    await rejectsWith(provider.present(task('dns-01', 'example.test', 'tok')), (error) => {
      assert.equal(error.code, 'INVALID_INPUT');
      assert.equal(error.message, 'cannot run the dns-01 hook /nonexistent/dns-hook --flag (ENOENT)');
      assert.match(error.hint, /not run through a shell/);
    });
    await assert.rejects(provider.cleanup(task('dns-01', 'example.test', 'tok')), /ENOENT/);
    await provider.cleanup(task('dns-01', 'example.test', 'tok'));
  });

  test('splitCommand keeps quoted words and never involves a shell', async () => {
    assert.deepEqual(splitCommand('hook'), ['hook']);
    assert.deepEqual(splitCommand('  /usr/bin/hook   --zone  example.com\t-v\n'), [
      '/usr/bin/hook',
      '--zone',
      'example.com',
      '-v',
    ]);
    assert.deepEqual(splitCommand(`a 'b c' "d \\"e\\" \\\\ \\x" f\\ g '' "" h'i'"j"`), [
      'a',
      'b c',
      'd "e" \\ \\x',
      'f g',
      '',
      '',
      'hij',
    ]);
    assert.deepEqual(splitCommand(`'it'\\''s'`), [`it's`]);
    assert.deepEqual(splitCommand('echo $(touch /tmp/x) `id` ; rm -rf * | cat > out && ~'), [
      'echo',
      '$(touch',
      '/tmp/x)',
      '`id`',
      ';',
      'rm',
      '-rf',
      '*',
      '|',
      'cat',
      '>',
      'out',
      '&&',
      '~',
    ]);
    assert.deepEqual(splitCommand(`"$HOME" '$HOME'`), ['$HOME', '$HOME']);
    assert.deepEqual(splitCommand(''), []);
    for (const bad of [`'open`, `"open`, `"a\\"`, 'trailing\\']) {
      assert.throws(
        () => splitCommand(bad),
        (error) => error instanceof McpkiError && error.code === 'INVALID_INPUT' && /unterminated/.test(error.message),
        bad,
      );
    }
    for (const argv of [['a'], ['a b', "it's", '$(x)', '', 'plain-word_1.0:/x']])
      assert.deepEqual(splitCommand(formatCommand(argv)), argv);
    assert.deepEqual(
      splitCommand(formatCommand(['a', "it's"])),
      run('sh', ['-c', `for a in ${formatCommand(['a', "it's"])}; do printf '%s\\n' "$a"; done`])
        .stdout.trim()
        .split('\n'),
      'a shell reads formatCommand the same way',
    );

    // through a real hook: $(...) and ; arrive literally, nothing is executed
    const { dir, cleanup } = tempDir();
    try {
      const marker = join(dir, 'touched');
      const hook = writeHook(dir, 'hook');
      const provider = createChallengeProvider({
        type: 'dns-01',
        dnsHook: `${hook.path} "$(touch ${marker})" ; touch ${marker} \`touch ${marker}\``,
      });
      await provider.present(task('dns-01', 'example.test', 'tok'));
      await provider.cleanup(task('dns-01', 'example.test', 'tok'));
      assert.equal(existsSync(marker), false, 'no shell ran');
      const [call] = readCalls(hook.log);
      assert.deepEqual(call.argv.slice(0, 5), [`$(touch ${marker})`, ';', 'touch', marker, `\`touch`]);
    } finally {
      cleanup();
    }
  });

  test(
    'propagation check: waits until pebble-challtestsrv serves the TXT value, times out clearly otherwise',
    { skip: (!existsSync(CHALLTESTSRV) || !HAS_CURL) && 'pebble-challtestsrv or curl missing' },
    async () => {
      const { dir, cleanup } = tempDir();
      const dnsPort = await freeUdpAndTcpPort();
      const managementPort = await freeTcpPort();
      const server = spawn(
        CHALLTESTSRV,
        [
          '-dns01',
          `127.0.0.1:${dnsPort}`,
          '-management',
          `127.0.0.1:${managementPort}`,
          '-http01',
          '',
          '-https01',
          '',
          '-tlsalpn01',
          '',
          '-defaultIPv6',
          '',
        ],
        { stdio: 'ignore' },
      );
      try {
        await waitForTcp(managementPort);
        // the hook sets the record through challtestsrv's management API, after a delay, so the check must poll
        const hook = writeHook(
          dir,
          'challtestsrv-hook',
          `[ "$1" = present ] || exit 0
(sleep 0.7; curl -s -X POST -d "{\\"host\\":\\"$3\\",\\"value\\":\\"$4\\"}" http://127.0.0.1:${managementPort}/set-txt) >/dev/null 2>&1 &`,
        );
        const provider = createChallengeProvider({
          type: 'dns-01',
          dnsHook: hook.path,
          dnsResolver: `127.0.0.1:${dnsPort}`,
          propagationTimeoutSeconds: 10,
        });
        const t = task('dns-01', 'propagated.example.test', 'tok');
        const started = Date.now();
        await provider.present(t);
        const waited = Date.now() - started;
        assert.ok(waited >= 600 && waited < 8000, `waited ${waited} ms`);
        await provider.cleanup(t);
        await provider.close();

        const silent = writeHook(dir, 'silent-hook', 'exit 0');
        const never = new Dns01HookProvider({
          hook: silent.path,
          propagationCheck: { resolver: `127.0.0.1:${dnsPort}`, timeoutSeconds: 1 },
        });
        await rejectsWith(never.present(task('dns-01', 'never.example.test', 'tok')), (error) => {
          assert.equal(error.code, 'CHALLENGE_FAILED');
          assert.match(
            error.message,
            new RegExp(
              `^TXT record _acme-challenge\\.never\\.example\\.test\\. not visible at 127\\.0\\.0\\.1:${dnsPort} after 1 s`,
            ),
          );
        });
        await never.cleanup(task('dns-01', 'never.example.test', 'tok'));
        await never.close();
      } finally {
        server.kill('SIGKILL');
        await new Promise((r) =>
          server.exitCode !== null || server.signalCode !== null ? r() : server.once('exit', r),
        );
        cleanup();
      }
    },
  );

  test('propagationSeconds sleeps after present', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const hook = writeHook(dir, 'hook');
      const provider = createChallengeProvider({ type: 'dns-01', dnsHook: hook.path, propagationSeconds: '0.4' });
      const started = Date.now();
      await provider.present(task('dns-01', 'example.test', 'tok'));
      assert.ok(Date.now() - started >= 390);
      await provider.cleanup(task('dns-01', 'example.test', 'tok'));
    } finally {
      cleanup();
    }
  });
});

function freeTcpPort() {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function freeUdpAndTcpPort() {
  for (;;) {
    const port = await freeTcpPort();
    const socket = dgram.createSocket('udp4');
    const ok = await new Promise((resolve) => {
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise((r) => socket.close(r));
    if (ok) return port;
  }
}

async function waitForTcp(port) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing listens on ${port}`);
}

// ---------------------------------------------------------------------------------------------------------
describe('tls-alpn-01 responder', { skip: !HAS_OPENSSL && 'openssl missing' }, () => {
  function sClient(port, args) {
    return new Promise((resolve) => {
      const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.on('close', (status) => {
        clearTimeout(timer);
        const pem = out.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/)?.[0];
        resolve({ status, out, pem, alpn: out.match(/ALPN protocol: (.*)/)?.[1] });
      });
    });
  }

  function sha256Hex(text) {
    const result = run('openssl', ['dgst', '-sha256', '-hex', '-r'], { input: text });
    return result.stdout.split(' ')[0].toUpperCase();
  }

  /** The acmeIdentifier extension as openssl reads it: critical flag and extnValue bytes (hex). */
  function acmeIdentifierOf(pem) {
    const text = run('openssl', ['x509', '-noout', '-text'], { input: pem }).stdout;
    const lines = run('openssl', ['asn1parse'], { input: pem }).stdout.split('\n');
    const at = lines.findIndex((l) => l.includes(':1.3.6.1.5.5.7.1.31'));
    assert.ok(at >= 0, 'acmeIdentifier extension present');
    const critical = lines[at + 1].includes('BOOLEAN') && lines[at + 1].trim().endsWith(':255');
    const valueLine = critical ? lines[at + 2] : lines[at + 1];
    assert.match(valueLine, /OCTET STRING/);
    return {
      textCritical: /1\.3\.6\.1\.5\.5\.7\.1\.31: critical/.test(text),
      critical,
      value: valueLine.split('[HEX DUMP]:')[1]?.trim(),
      text,
    };
  }

  test('openssl s_client with acme-tls/1 gets the validation certificate; everything else is refused', async () => {
    const provider = new TlsAlpn01Provider({ port: 0, host: '127.0.0.1' });
    try {
      const a = task('tls-alpn-01', 'alpn.example.test', 'tokA');
      const b = task('tls-alpn-01', 'other.example.test', 'tokB');
      await provider.present(a);
      await provider.present(b);
      const port = provider.port;

      for (const [t, extra] of [
        [a, []],
        [b, []],
        [a, ['-tls1_2']],
      ]) {
        const ok = await sClient(port, ['-servername', t.identifier, '-alpn', 'acme-tls/1', ...extra]);
        assert.equal(ok.status, 0, ok.out);
        assert.equal(ok.alpn, 'acme-tls/1');
        assert.ok(ok.pem, 'a certificate was presented');
        const ext = acmeIdentifierOf(ok.pem);
        assert.equal(ext.textCritical, true, ext.text);
        assert.equal(ext.critical, true);
        assert.equal(
          ext.value,
          `0420${sha256Hex(t.keyAuthorization)}`,
          'DER OCTET STRING of SHA-256(keyAuthorization)',
        );
        const san = run('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], { input: ok.pem }).stdout;
        assert.match(san, new RegExp(`^\\s+DNS:${t.identifier.replace(/\./g, '\\.')}$`, 'm'));
        assert.doesNotMatch(san, /,/, 'the identifier is the only SAN');
        const pub = run('openssl', ['x509', '-noout', '-text'], { input: ok.pem }).stdout;
        assert.match(pub, /NIST CURVE: P-256/);
      }
      const sniCaseInsensitive = await sClient(port, ['-servername', 'ALPN.Example.TEST', '-alpn', 'acme-tls/1']);
      assert.equal(sniCaseInsensitive.status, 0, sniCaseInsensitive.out);

      const noAlpn = await sClient(port, ['-servername', a.identifier]);
      assert.notEqual(noAlpn.status, 0);
      assert.equal(noAlpn.pem, undefined, 'no certificate without acme-tls/1');
      assert.match(noAlpn.out, /no application protocol/);
      const otherAlpn = await sClient(port, ['-servername', a.identifier, '-alpn', 'h2,http/1.1']);
      assert.notEqual(otherAlpn.status, 0);
      assert.equal(otherAlpn.pem, undefined);
      const unknownName = await sClient(port, ['-servername', 'unknown.example.test', '-alpn', 'acme-tls/1']);
      assert.notEqual(unknownName.status, 0);
      assert.equal(unknownName.pem, undefined);
      assert.match(unknownName.out, /unrecognized name/);
      const noSni = await sClient(port, ['-noservername', '-alpn', 'acme-tls/1']);
      assert.notEqual(noSni.status, 0);
      assert.equal(noSni.pem, undefined);
      // not TLS at all
      if (HAS_CURL)
        assert.notEqual((await runAsync('curl', ['-s', '--max-time', '5', `http://127.0.0.1:${port}/`])).status, 0);

      await provider.cleanup(a);
      const afterCleanup = await sClient(port, ['-servername', a.identifier, '-alpn', 'acme-tls/1']);
      assert.notEqual(afterCleanup.status, 0);
      assert.equal((await sClient(port, ['-servername', b.identifier, '-alpn', 'acme-tls/1'])).status, 0);

      await provider.close();
      assert.equal(await tcpPortFree(port), true, 'the port is free after close()');
      await provider.close();
    } finally {
      await provider.close();
    }
  });

  test('IP identifiers (RFC 8738): reverse-DNS SNI, iPAddress SAN', async () => {
    assert.equal(sniNameFor('127.0.0.1'), '1.0.0.127.in-addr.arpa');
    assert.equal(sniNameFor('2001:db8::1'), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
    assert.equal(sniNameFor('Example.TEST'), 'example.test');
    const provider = new TlsAlpn01Provider({ port: 0, host: '127.0.0.1' });
    try {
      const t = task('tls-alpn-01', '127.0.0.1', 'tokIP');
      await provider.present(t);
      const ok = await sClient(provider.port, ['-servername', '1.0.0.127.in-addr.arpa', '-alpn', 'acme-tls/1']);
      assert.equal(ok.status, 0, ok.out);
      assert.match(
        run('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], { input: ok.pem }).stdout,
        /IP Address:127\.0\.0\.1/,
      );
      assert.equal(acmeIdentifierOf(ok.pem).value, `0420${sha256Hex(t.keyAuthorization)}`);
    } finally {
      await provider.close();
    }
  });

  test('a port in use gives a typed error naming the port; close() is still safe', async () => {
    const blocker = await occupy();
    const port = blocker.address().port;
    const provider = createChallengeProvider({ type: 'tls-alpn-01', alpnPort: String(port), alpnHost: '127.0.0.1' });
    try {
      await rejectsWith(provider.present(task('tls-alpn-01', 'example.test', 'tok')), (error) => {
        assert.equal(error.code, 'LISTEN_FAILED', 'a local problem, not the CA refusing');
        assert.equal(error.exitCode, 18);
        assert.equal(error.message, `cannot start the tls-alpn-01 responder: 127.0.0.1:${port} is already in use`);
        assert.match(error.hint, /--alpn-port/);
      });
      await provider.cleanup(task('tls-alpn-01', 'example.test', 'tok'));
      await provider.close();
      await rejectsWith(provider.present({ ...task('tls-alpn-01', 'example.test', 'tok'), wildcard: true }), (error) =>
        assert.match(error.message, /wildcard/),
      );
    } finally {
      await provider.close();
      await closeServer(blocker);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('createChallengeProvider', () => {
  test('picks the provider from the parsed options, with defaults', () => {
    const http01 = createChallengeProvider({});
    assert.ok(http01 instanceof Http01Provider);
    assert.equal(http01.type, 'http-01');
    assert.ok(createChallengeProvider({ type: 'http-01', httpPort: '8080' }) instanceof Http01Provider);
    assert.ok(createChallengeProvider({ type: 'TLS-ALPN-01' }) instanceof TlsAlpn01Provider);
    assert.ok(createChallengeProvider({ type: 'dns-01', dnsHook: ['/bin/true'] }) instanceof Dns01HookProvider);
    assert.ok(createChallengeProvider({ webroot: '/var/www' }) instanceof WebrootProvider);
  });

  test('bad or conflicting options are clear errors', () => {
    const cases = [
      [{ type: 'http-02' }, 'INVALID_INPUT', /unknown challenge type "http-02"/],
      [{ type: 'dns-01' }, 'USAGE', /dns-01 needs --dns-hook CMD/],
      [{ type: 'dns-01', dnsHook: '' }, 'USAGE', /the dns-01 hook command is empty/],
      [{ type: 'dns-01', dnsHook: `'unterminated` }, 'INVALID_INPUT', /unterminated single quote/],
      [
        { type: 'dns-01', dnsHook: 'h', dnsTimeoutSeconds: 'soon' },
        'INVALID_INPUT',
        /--dns-timeout must be a positive number of seconds/,
      ],
      [{ type: 'dns-01', dnsHook: 'h', dnsResolver: 'not an address' }, 'INVALID_INPUT', /is not a DNS server address/],
      [
        { type: 'dns-01', dnsHook: 'h', propagationTimeoutSeconds: 5 },
        'USAGE',
        /--dns-propagation-timeout needs --dns-resolver/,
      ],
      [
        { type: 'dns-01', dnsHook: 'h', httpPort: 80 },
        'USAGE',
        /--http-port applies only to --challenge http-01, not dns-01/,
      ],
      [{ type: 'http-01', dnsHook: 'h' }, 'USAGE', /--dns-hook applies only to --challenge dns-01/],
      [{ type: 'tls-alpn-01', webroot: '/var/www' }, 'USAGE', /--webroot applies only to --challenge http-01/],
      [{ webroot: '/var/www', httpPort: 80 }, 'USAGE', /--http-port and --webroot cannot be combined/],
      [{ httpPort: '80x' }, 'INVALID_INPUT', /--http-port must be a port number/],
      [{ httpPort: 70000 }, 'INVALID_INPUT', /--http-port must be a port number/],
      [{ type: 'tls-alpn-01', alpnPort: '-1' }, 'INVALID_INPUT', /--alpn-port must be a port number/],
    ];
    for (const [options, code, message] of cases) {
      assert.throws(
        () => createChallengeProvider(options),
        (error) =>
          error instanceof McpkiError &&
          error.code === code &&
          message.test(error.message) &&
          typeof error.hint === 'string',
        JSON.stringify(options),
      );
    }
  });
});
