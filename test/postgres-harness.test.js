// The test infrastructure for the PostgreSQL inventory (issue 12): test/postgres.js (a throw-away cluster made
// with initdb/pg_ctl, as nobody when root, on a loopback port) and test/tcp-proxy.js (the round-robin load
// balancer in front of several instances), checked with real peers: the `pg` driver, libpq's psql, and mcpki's
// own CA for the server certificate.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { tempDir, mcpki, run, hasCommand } from './helpers.js';
import { freePorts } from './pebble.js';
import { startPostgres, hasPostgres, postgresMissingReason, processAlive, childProcesses } from './postgres.js';
import { startRoundRobinProxy } from './tcp-proxy.js';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const skip = hasPostgres() ? false : postgresMissingReason();

function mcpkiOk(args) {
  const r = mcpki(args);
  assert.equal(r.status, 0, `mcpki ${args.join(' ')}: ${r.stderr}`);
  return r;
}

/** Connects with the pg driver, runs one query, disconnects; returns the rows. */
async function pgQuery(connectionString, sql, params = []) {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** The error a connection attempt fails with (the test fails when it succeeds). */
async function pgConnectError(connectionString) {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (error) {
    return error;
  } finally {
    await client.end().catch(() => {});
  }
  assert.fail(`connecting to ${connectionString} succeeded`);
}

/** The real UID of a process (the second field of /proc/PID/status's Uid line). */
function processUid(pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Uid:'));
  return Number(line.split(/\s+/)[1]);
}

describe('test/postgres.js: a throw-away PostgreSQL', { skip }, () => {
  let temp;
  let home;
  let otherRoot;
  let server;

  before(async () => {
    temp = tempDir('mcpki-pg-test-');
    home = join(temp.dir, 'home');
    mcpkiOk(['--home', home, 'init']);
    mcpkiOk(['--home', home, 'issue', 'server', 'pg', 'localhost', '127.0.0.1']);
    const other = join(temp.dir, 'other');
    mcpkiOk(['--home', other, 'init']);
    otherRoot = join(other, 'ca', 'root.crt');
    server = await startPostgres({
      tls: {
        certFile: join(home, 'certs', 'pg', 'pg.fullchain.pem'),
        keyFile: join(home, 'certs', 'pg', 'pg.key'),
        caFile: join(home, 'ca', 'root.crt'),
      },
    });
    test.diagnostic?.(`startup ${JSON.stringify(server.startup)}`);
  });

  after(async () => {
    await server?.stop();
    temp?.cleanup();
  });

  test('started on 127.0.0.1 only, with a password superuser, timings recorded', async () => {
    assert.match(
      server.url(),
      /^postgres:\/\/mcpki_test:[0-9a-f]{36}@127\.0\.0\.1:\d+\/postgres\?sslmode=verify-full&sslrootcert=/,
    );
    const [settings] = (
      await server.query(
        "SELECT current_setting('listen_addresses') AS listen, current_setting('port') AS port, current_setting('fsync') AS fsync, rolsuper FROM pg_roles WHERE rolname = current_user",
      )
    ).rows;
    assert.deepEqual(settings, { listen: '127.0.0.1', port: String(server.port), fsync: 'off', rolsuper: true });
    const hba = await server.query('SELECT type, auth_method FROM pg_hba_file_rules ORDER BY line_number');
    assert.deepEqual(hba.rows, [
      { type: 'local', auth_method: 'scram-sha-256' },
      { type: 'hostssl', auth_method: 'scram-sha-256' },
    ]);
    for (const key of ['initdbMs', 'startMs', 'totalMs']) assert.ok(server.startup[key] > 0, key);
  });

  test('the pg driver connects over TLS verify-full with a server certificate from mcpki', async () => {
    const [row] = await pgQuery(
      server.url(),
      'SELECT current_user AS user, s.ssl, s.version FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()',
    );
    assert.equal(row.user, 'mcpki_test');
    assert.equal(row.ssl, true);
    assert.match(row.version, /^TLSv1\.[23]$/);
    // by name as well as by address: the certificate holds both
    const byName = server.url().replace('@127.0.0.1:', '@localhost:');
    assert.deepEqual(await pgQuery(byName, 'SELECT 1 AS one'), [{ one: 1 }]);
  });

  test('libpq (psql) verifies the same server with sslmode=verify-full', { skip: !hasCommand('psql') }, () => {
    const conninfo = (root) =>
      `host=127.0.0.1 port=${server.port} user=${server.user} dbname=postgres sslmode=verify-full sslrootcert=${root}`;
    const env = { PATH: process.env.PATH, PGPASSWORD: server.password, PGCONNECT_TIMEOUT: '10' };
    const ok = run(
      'psql',
      [conninfo(join(home, 'ca', 'root.crt')), '-Atc', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'],
      { env },
    );
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), 't');
    const bad = run('psql', [conninfo(otherRoot), '-Atc', 'SELECT 1'], { env });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /certificate verify failed/);
  });

  test('a wrong root, no TLS, or a wrong password is refused', async () => {
    const wrongRoot = await pgConnectError(server.url('postgres', { sslrootcert: otherRoot }));
    assert.match(
      String(wrongRoot.code),
      /^(UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/,
    );
    const plain = await pgConnectError(server.url('postgres', { sslmode: 'disable', sslrootcert: null }));
    assert.equal(plain.code, '28000'); // no pg_hba.conf entry for a connection without TLS
    assert.match(plain.message, /no encryption/);
    const wrongPassword = await pgConnectError(
      server.url('postgres').replace(`:${server.password}@`, ':not-the-password@'),
    );
    assert.equal(wrongPassword.code, '28P01');
  });

  test('createDatabase gives isolated databases', async () => {
    const a = await server.createDatabase('harness_a');
    const b = await server.createDatabase('harness_b');
    assert.equal(new URL(a).pathname, '/harness_a');
    await pgQuery(a, 'CREATE TABLE t (v text)');
    await pgQuery(a, "INSERT INTO t VALUES ('in a')");
    assert.deepEqual(await pgQuery(a, 'SELECT v FROM t'), [{ v: 'in a' }]);
    assert.deepEqual(await pgQuery(b, "SELECT to_regclass('t') AS t"), [{ t: null }]);
    const [{ current_database: db }] = await pgQuery(b, 'SELECT current_database()');
    assert.equal(db, 'harness_b');
    await assert.rejects(server.createDatabase('bad"; DROP DATABASE postgres; --'), /is not \[a-z_\]/);
    await assert.rejects(server.createDatabase('harness_a'), /already exists/);
  });

  test('a server that cannot start: the error shows its log, and nothing is left', async () => {
    mcpkiOk(['--home', home, 'issue', 'server', 'other', 'other.test']);
    const error = await startPostgres({
      tls: {
        certFile: join(home, 'certs', 'pg', 'pg.fullchain.pem'),
        keyFile: join(home, 'certs', 'other', 'other.key'), // not the certificate's key
      },
    }).then(
      () => assert.fail('started with a key that does not match its certificate'),
      (e) => e,
    );
    assert.match(
      error.message,
      /pg_ctl start failed[\s\S]*could not load private key file "server.key": key values mismatch/,
    );
    assert.equal(existsSync(error.dir), false);
  });

  test('restart() keeps the data, the port and the password; open connections break', async () => {
    const url = await server.createDatabase('harness_restart');
    await pgQuery(url, 'CREATE TABLE kept (n int)');
    await pgQuery(url, 'INSERT INTO kept SELECT generate_series(1, 100)');
    const held = new pg.Client({ connectionString: url });
    await held.connect();
    const broken = new Promise((resolve) => held.on('error', resolve));
    const oldPid = server.pid;
    await server.restart();
    assert.notEqual(server.pid, oldPid);
    assert.equal(processAlive(oldPid), false);
    assert.ok(await broken, 'the connection made before the restart was cut');
    await held.end().catch(() => {});
    assert.deepEqual(await pgQuery(url, 'SELECT count(*)::int AS n, sum(n)::int AS s FROM kept'), [
      { n: 100, s: 5050 },
    ]);
  });

  test('the proxy carries TLS verify-full connections and skips a dead target', async () => {
    const [deadPort] = await freePorts(1);
    const proxy = await startRoundRobinProxy([
      { host: '127.0.0.1', port: server.port },
      { host: '127.0.0.1', port: deadPort },
    ]);
    try {
      const url = server.url('postgres').replace(`:${server.port}/`, `:${proxy.port}/`);
      for (let i = 0; i < 6; i++) {
        const [row] = await pgQuery(url, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
        assert.equal(row.ssl, true);
      }
      const [live, dead] = proxy.counts();
      assert.equal(live.connections, 6);
      assert.equal(dead.connections, 0);
      assert.equal(dead.failures, 3); // every other connection was first sent to the dead one
    } finally {
      await proxy.close();
    }
  });
});

describe('test/postgres.js: stop()', { skip }, () => {
  test('stop() leaves no process and no folder; the server ran as nobody when started as root', async () => {
    const server = await startPostgres();
    const { pid, dir, dataDir } = server;
    await server.query('SELECT 1'); // a backend came and went
    const children = childProcesses(pid);
    assert.ok(children.length >= 3, `checkpointer, background writer, walwriter…: ${children}`);
    if (process.getuid() === 0) {
      const nobody = Number(run('id', ['-u', 'nobody']).stdout.trim());
      assert.equal(processUid(pid), nobody);
      assert.equal(statSync(dataDir).uid, nobody);
      assert.equal(statSync(dataDir).mode & 0o777, 0o700);
      assert.equal(statSync(dir).uid, 0);
    }
    assert.deepEqual(await server.stop(), { killed: false });
    assert.equal(processAlive(pid), false);
    assert.deepEqual(children.filter(processAlive), []);
    assert.equal(existsSync(dir), false);
    assert.deepEqual(await server.stop(), { killed: false }, 'idempotent');
  });

  test('when pg_ctl stop fails, the postmaster and its children are killed by PID', async () => {
    const server = await startPostgres();
    const { pid, dir, dataDir } = server;
    const children = childProcesses(pid);
    // Without its PID file pg_ctl cannot find the server ("PID file does not exist"), so only the fallback
    // can stop it (the postmaster itself would notice and shut down only about a minute later).
    unlinkSync(join(dataDir, 'postmaster.pid'));
    assert.deepEqual(await server.stop(), { killed: true });
    assert.equal(processAlive(pid), false);
    assert.deepEqual(children.filter(processAlive), []);
    assert.equal(existsSync(dir), false);
  });
});

describe('test/postgres.js: a test process that ends without stop()', { skip }, () => {
  // A child process starts a cluster, prints its postmaster's PID and folder, then exits or is sent SIGTERM.
  const script = (end) => `
    import { startPostgres, childProcesses } from ${JSON.stringify(new URL('./postgres.js', import.meta.url).href)};
    const server = await startPostgres();
    console.log(JSON.stringify({ pid: server.pid, dir: server.dir, children: childProcesses(server.pid) }));
    ${end === 'exit' ? 'process.exit(3);' : 'setInterval(() => {}, 1000);'}
  `;
  for (const end of ['exit', 'SIGTERM']) {
    test(`${end}: the exit hooks kill the cluster and remove its folder`, async () => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script(end)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      let out = '';
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      const started = await new Promise((resolve, reject) => {
        child.stdout.on('data', (d) => {
          out += d;
          if (out.includes('\n')) resolve(JSON.parse(out));
        });
        child.once('exit', () => reject(new Error(`child exited before starting a cluster: ${err}`)));
      });
      if (end === 'SIGTERM') child.kill('SIGTERM');
      assert.deepEqual(await exited, end === 'exit' ? { code: 3, signal: null } : { code: null, signal: 'SIGTERM' });
      assert.ok(started.children.length >= 3);
      // SIGKILLed processes are gone at once, but give the kernel a moment to tear them down
      for (let i = 0; i < 100 && [started.pid, ...started.children].some(processAlive); i++) await sleep(20);
      assert.equal(processAlive(started.pid), false);
      assert.deepEqual(started.children.filter(processAlive), []);
      assert.equal(existsSync(started.dir), false);
    });
  }

  test('exit while initdb runs: initdb is killed, the folder removed, nothing else', async () => {
    // The child's os.tmpdir() is a folder of this test (reachable by nobody), so what it leaves is seen here.
    const temp = tempDir('mcpki-pg-hooks-');
    try {
      chmodSync(temp.dir, 0o755);
      const scratch = join(temp.dir, 'tmp');
      mkdirSync(scratch, { mode: 0o755 });
      const code = `
        import { startPostgres } from ${JSON.stringify(new URL('./postgres.js', import.meta.url).href)};
        startPostgres().catch(() => {});
        setTimeout(() => process.exit(3), 300);
      `;
      // its own process group: were the hook to signal "PID 0" it would kill that group, not this runner
      const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
        stdio: 'ignore',
        detached: true,
        env: { ...process.env, TMPDIR: scratch },
      });
      const exited = await new Promise((resolve) => child.once('exit', (c, signal) => resolve({ code: c, signal })));
      assert.deepEqual(exited, { code: 3, signal: null });
      const running = () =>
        readdirSync('/proc')
          .filter((p) => /^\d+$/.test(p))
          .filter((p) => {
            try {
              return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(scratch) && processAlive(Number(p));
            } catch {
              return false;
            }
          });
      for (let i = 0; i < 100 && running().length > 0; i++) await sleep(50);
      assert.deepEqual(running(), [], 'no initdb or postgres left running on the folder');
      assert.deepEqual(readdirSync(scratch), []);
    } finally {
      temp.cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// The proxy alone, with two `net` servers that answer with their name.

function startNamedServer(name) {
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('data', (data) => socket.write(`${name}:${data}`));
    socket.on('error', () => {});
  });
  return new Promise((resolve) => {
    server.listen({ host: '127.0.0.1', port: 0 }, () =>
      resolve({
        port: server.address().port,
        /** Stops listening and cuts its connections, like a killed process. */
        kill: () =>
          new Promise((done) => {
            server.close(() => done());
            for (const s of sockets) s.destroy();
          }),
      }),
    );
  });
}

/** One connection through the proxy: sends `ping\n`, resolves the first line answered, or 'closed'. */
function ask(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer through the proxy within 5 s'));
    }, 5000);
    socket.on('connect', () => socket.write('ping\n'));
    socket.on('data', (data) => {
      got += data;
      if (got.includes('\n')) {
        clearTimeout(timer);
        socket.end();
        resolve(got.trim());
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got ? got.trim() : 'closed');
    });
  });
}

describe('test/tcp-proxy.js: round robin', () => {
  test('spreads connections over two servers in turn, and survives one dying', async () => {
    const a = await startNamedServer('A');
    const b = await startNamedServer('B');
    const proxy = await startRoundRobinProxy([
      { host: '127.0.0.1', port: a.port },
      { host: '127.0.0.1', port: b.port },
    ]);
    try {
      const answers = [];
      for (let i = 0; i < 10; i++) answers.push(await ask(proxy.port));
      assert.deepEqual(answers, [
        'A:ping',
        'B:ping',
        'A:ping',
        'B:ping',
        'A:ping',
        'B:ping',
        'A:ping',
        'B:ping',
        'A:ping',
        'B:ping',
      ]);
      // ten at once as well: five each
      const together = await Promise.all(Array.from({ length: 10 }, () => ask(proxy.port)));
      assert.equal(together.filter((x) => x === 'A:ping').length, 5);
      assert.equal(together.filter((x) => x === 'B:ping').length, 5);

      await b.kill();
      const after = await Promise.all(Array.from({ length: 6 }, () => ask(proxy.port)));
      assert.deepEqual(after, Array(6).fill('A:ping'));
      assert.deepEqual(
        proxy.counts().map(({ connections, failures }) => ({ connections, failures })),
        [
          { connections: 16, failures: 0 },
          { connections: 10, failures: 3 },
        ],
      );

      await a.kill();
      assert.equal(await ask(proxy.port), 'closed', 'no target left: the client is closed, not left hanging');
    } finally {
      await proxy.close();
      await a.kill().catch(() => {});
      await b.kill().catch(() => {});
    }
  });

  test('close() cuts open connections', async () => {
    const a = await startNamedServer('A');
    const proxy = await startRoundRobinProxy([{ host: '127.0.0.1', port: a.port }]);
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port });
    await new Promise((resolve) => socket.once('connect', resolve));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('error', () => {});
    await proxy.close();
    await closed;
    await a.kill();
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port: proxy.port }, resolve);
        s.once('error', reject);
      }),
      /ECONNREFUSED/,
    );
  });
});
