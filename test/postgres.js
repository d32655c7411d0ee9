// Test harness: a throw-away PostgreSQL cluster (Debian's `postgresql` package) on loopback.
//
//   const pg = await startPostgres({ tls: { certFile, keyFile, caFile } });
//   const url = await pg.createDatabase('inventory_a');   // postgres://user:password@127.0.0.1:PORT/inventory_a
//   ... the store under test connects to url ...
//   await pg.restart();                                  // same port, same data, new postmaster
//   await pg.stop();                                     // no process left, scratch folder removed
//
// What it does:
// - `initdb` (with --no-sync) into SCRATCH/data, a folder made under os.tmpdir() for this cluster only, then
//   `pg_ctl start` with a postgresql.conf and pg_hba.conf written here (nothing from /etc/postgresql is used).
// - initdb and pg_ctl refuse to run as root: as root, both run as `nobody:nogroup` through
//   `setpriv --reuid --regid --clear-groups`, with SCRATCH/data and SCRATCH/run owned by nobody, mode 0700.
//   SCRATCH itself stays root's (0755), so nobody cannot replace the folders the harness later removes.
//   Not as root, they run as the calling user.
// - The server listens on 127.0.0.1 on a free port only, and on a unix socket in SCRATCH/run (0700).
// - Authentication is scram-sha-256 everywhere (TCP and the socket): a superuser role `mcpki_test` with a random
//   password, set by initdb from a password file that is removed right after. There is no `trust` line.
// - With `tls`, the certificate (send the full chain: leaf then intermediate) and key are copied into
//   SCRATCH/data (owned by the server's user, 0600; PostgreSQL refuses a key others can read), `ssl = on`, and
//   TCP connections without TLS are refused (`hostssl` only). `tls.caFile`, when given, is put in url()'s
//   `sslmode=verify-full&sslrootcert=…`.
// - The harness itself talks to the server over the unix socket (createDatabase, query), so it works with or
//   without TLS.
// The children get a small environment of their own (no PG* variable of the caller leaks in).
// stop() runs `pg_ctl stop -m fast`; when that fails or the postmaster outlives it, the postmaster and the
// processes it started are killed by their PIDs (SIGKILL). A process 'exit' hook and SIGINT/SIGTERM/SIGHUP hooks
// do the same for whatever is left, and for an initdb or pg_ctl still running, and remove the scratch folders, as
// a last resort.
import { execFile, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fchownSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
  chmodSync,
  chownSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { freePorts } from './pebble.js';

const SUPERUSER = 'mcpki_test';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------
// Finding the binaries

function hasBinaries(dir) {
  return Boolean(dir) && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'));
}

let binDirCache;

/**
 * The folder with initdb and pg_ctl: MCPKI_TEST_PG_BINDIR, else `pg_config --bindir` (libpq-dev's pg_config
 * may be missing, or name a version whose server is not installed), else the newest /usr/lib/postgresql/N/bin.
 * Null when none has both.
 */
export function postgresBinDir() {
  if (binDirCache !== undefined) return binDirCache;
  const candidates = [];
  if (process.env.MCPKI_TEST_PG_BINDIR) candidates.push(process.env.MCPKI_TEST_PG_BINDIR);
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (fromConfig.status === 0) candidates.push(fromConfig.stdout.trim());
  try {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(join('/usr/lib/postgresql', v, 'bin'));
  } catch {
    // no Debian layout
  }
  binDirCache = candidates.find(hasBinaries) ?? null;
  return binDirCache;
}

/** True when PostgreSQL's server binaries are installed (tests can `skip` otherwise). */
export function hasPostgres() {
  if (!postgresBinDir()) return false;
  return process.getuid?.() !== 0 || existsSync('/usr/bin/setpriv') || spawnSync('setpriv', ['--version']).status === 0;
}

/** Why hasPostgres() is false, for a test's skip reason. */
export function postgresMissingReason() {
  if (!postgresBinDir())
    return 'PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian package "postgresql" or set MCPKI_TEST_PG_BINDIR';
  if (!hasPostgres()) return 'setpriv (util-linux) not found: needed to run PostgreSQL as nobody when running as root';
  return null;
}

// ---------------------------------------------------------------------------------------------------------
// Processes: who runs the server, and what is alive

const isRoot = () => process.getuid?.() === 0;

function nobodyIds() {
  const uid = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) throw new Error('postgres harness: user "nobody" not found');
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** The server's user: nobody when we are root, else ourselves. */
function serverOwner() {
  if (isRoot()) return nobodyIds();
  return { uid: process.getuid(), gid: process.getgid() };
}

/** Runs a PostgreSQL program as the server's user; resolves { code, stdout, stderr } (never rejects). */
function runAsServer(owner, bin, args, { cwd, env, timeoutMs = 60_000 }) {
  const [command, argv] = isRoot()
    ? ['setpriv', [`--reuid=${owner.uid}`, `--regid=${owner.gid}`, '--clear-groups', '--', bin, ...args]]
    : [bin, args];
  return new Promise((resolve) => {
    const child = execFile(
      command,
      argv,
      { cwd, env, timeout: timeoutMs, encoding: 'utf8' },
      (error, stdout, stderr) => {
        liveCommands.delete(child);
        resolve({ code: error ? (error.code ?? 1) : 0, stdout: stdout ?? '', stderr: stderr ?? '' });
      },
    );
    liveCommands.add(child);
  });
}

/** Reads /proc/PID/stat: { state, ppid } or null when there is no such process. */
function procStat(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], ppid: Number(rest[1]) };
  } catch {
    return null;
  }
}

/** True when PID is a live process (a zombie, which nobody may ever reap in a container, counts as gone). */
export function processAlive(pid) {
  if (!pid) return false;
  if (existsSync('/proc/self/stat')) {
    const stat = procStat(pid);
    return stat !== null && stat.state !== 'Z' && stat.state !== 'X';
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** The live processes whose parent is PID (a postmaster's checkpointer, walwriter, backends, …). */
export function childProcesses(pid) {
  if (!pid || !existsSync('/proc/self/stat')) return [];
  const children = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(entry);
    if (stat && stat.ppid === pid && stat.state !== 'Z' && stat.state !== 'X') children.push(Number(entry));
  }
  return children;
}

function killNow(pids) {
  for (const pid of pids) {
    // 0 would be our own process group, negative numbers other groups, 1 init: never those.
    if (!Number.isInteger(pid) || pid <= 1) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** SIGKILLs a postmaster and its children (each child is in its own process group, so one by one). */
function killCluster(pid) {
  if (!pid) return [];
  const children = childProcesses(pid);
  killNow([pid, ...children]);
  return [pid, ...children];
}

async function waitGone(pids, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(processAlive)) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// Last-resort cleanup

const liveClusters = new Map(); // scratch dir -> () => number (current postmaster PID)
const liveCommands = new Set(); // initdb or pg_ctl still running
let hooksInstalled = false;

function cleanupAllNow() {
  for (const child of liveCommands) child.kill('SIGKILL');
  liveCommands.clear();
  for (const [dir, currentPid] of liveClusters) {
    killCluster(currentPid());
    rmSync(dir, { recursive: true, force: true });
  }
  liveClusters.clear();
}

function installHooks() {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    const onSignal = () => {
      cleanupAllNow();
      process.removeListener(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Files in the scratch folder

/**
 * Writes a new file owned by the server's user with mode 0600. O_EXCL: an existing name (even a symlink
 * planted in the server-owned folder) makes it fail instead of being followed.
 */
function writeOwned(path, content, owner) {
  try {
    unlinkSync(path);
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
  }
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, content);
    if (isRoot()) fchownSync(fd, owner.uid, owner.gid);
  } finally {
    closeSync(fd);
  }
}

/** A test-supplied certificate or key: a regular file of at most 1 MiB. */
function readSmallFile(path, what) {
  const st = statSync(path);
  if (!st.isFile()) throw new Error(`postgres harness: the ${what} ${path} is not a regular file`);
  if (st.size > 1024 * 1024) throw new Error(`postgres harness: the ${what} ${path} is larger than 1 MiB`);
  return readFileSync(path);
}

/** A value for postgresql.conf: single-quoted, quotes doubled, no control characters. */
function confString(value) {
  const text = String(value);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(text))
    throw new Error(`postgres harness: control character in ${JSON.stringify(text)}`);
  return `'${text.replace(/'/g, "''")}'`;
}

function postgresqlConf({ port, runDir, tls, maxConnections }) {
  return `# written by test/postgres.js for a throw-away test cluster
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = ${confString(runDir)}
unix_socket_permissions = 0700
max_connections = ${maxConnections}
shared_buffers = 16MB
dynamic_shared_memory_type = posix
password_encryption = 'scram-sha-256'
timezone = 'UTC'
log_timezone = 'UTC'
# No crash safety, on purpose: this cluster is thrown away after the test, and a lost write after an OS crash
# cannot matter. Never copy these three settings to a real server.
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
ssl = ${tls ? 'on' : 'off'}
${tls ? "ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n" : ''}`;
}

function hbaConf({ tls }) {
  return `# written by test/postgres.js: a password (SCRAM) for everyone, no trust
local all all scram-sha-256
${tls ? 'hostssl' : 'host'} all all 127.0.0.1/32 scram-sha-256
`;
}

// ---------------------------------------------------------------------------------------------------------

/**
 * Creates and starts a throw-away cluster.
 *
 * @param {object} [options]
 * @param {{certFile: string, keyFile: string, caFile?: string}} [options.tls] serve TLS with these files
 *   (certFile: the full chain) and accept TCP connections only over TLS; caFile goes into url().
 * @param {number} [options.maxConnections=100]
 * @param {number} [options.timeoutMs=60000] for initdb and for each pg_ctl run.
 * @returns {Promise<object>} { host, port, user, password, url(dbname, params), createDatabase(name),
 *   query(sql, params, dbname), stop(), restart({ downMs }), pid, dir, dataDir, socketDir, logs(), startup }
 */
export async function startPostgres(options = {}) {
  const binDir = postgresBinDir();
  const missing = postgresMissingReason();
  if (missing) throw new Error(`postgres harness: ${missing}`);
  const owner = serverOwner();
  const timeoutMs = options.timeoutMs ?? 60_000;
  const tls = options.tls;
  const maxConnections = options.maxConnections ?? 100;

  const started = Date.now();
  installHooks();
  const dir = mkdtempSync(join(tmpdir(), 'mcpki-pg-'));
  chmodSync(dir, 0o755); // nobody must reach data/ and run/, but cannot create or rename anything here
  const dataDir = join(dir, 'data');
  const runDir = join(dir, 'run');
  const logFile = join(runDir, 'postgres.log');
  let postmasterPid = 0;
  liveClusters.set(dir, () => postmasterPid);
  const removeDir = () => {
    liveClusters.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  };

  const env = { PATH: '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C', TZ: 'UTC', HOME: runDir };
  const run = (program, args) => runAsServer(owner, join(binDir, program), args, { cwd: runDir, env, timeoutMs });
  const logTail = (lines = 40) => {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };

  const password = randomBytes(18).toString('hex');
  let port;
  const timings = {};
  try {
    for (const folder of [dataDir, runDir]) {
      mkdirSync(folder, { mode: 0o700 });
      if (isRoot()) chownSync(folder, owner.uid, owner.gid);
    }
    const pwFile = join(runDir, 'initdb.pw');
    writeOwned(pwFile, `${password}\n`, owner);
    const initdb = await run('initdb', [
      '-D',
      dataDir,
      '-U',
      SUPERUSER,
      `--pwfile=${pwFile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync', // a throw-away cluster: skipping the fsyncs saves most of initdb's time on slow disks
      '--no-instructions',
    ]);
    unlinkSync(pwFile);
    if (initdb.code !== 0) throw new Error(`postgres harness: initdb failed (${initdb.code}):\n${initdb.stderr}`);
    timings.initdbMs = Date.now() - started;

    writeOwned(join(dataDir, 'pg_hba.conf'), hbaConf({ tls }), owner);
    if (tls) {
      writeOwned(join(dataDir, 'server.crt'), readSmallFile(tls.certFile, 'certificate'), owner);
      writeOwned(join(dataDir, 'server.key'), readSmallFile(tls.keyFile, 'key'), owner);
    }

    // A port can be taken by someone else between choosing and binding it: retry with a new one.
    for (let attempt = 1; ; attempt++) {
      [port] = await freePorts(1);
      writeOwned(join(dataDir, 'postgresql.conf'), postgresqlConf({ port, runDir, tls, maxConnections }), owner);
      const startAt = Date.now();
      const r = await run('pg_ctl', [
        'start',
        '-w',
        '-t',
        String(Math.ceil(timeoutMs / 1000)),
        '-D',
        dataDir,
        '-l',
        logFile,
        '-s',
      ]);
      if (r.code === 0) {
        timings.startMs = Date.now() - startAt;
        break;
      }
      const log = logTail();
      if (attempt < 3 && /could not bind|address already in use/i.test(log)) continue;
      throw new Error(`postgres harness: pg_ctl start failed (${r.code}): ${r.stderr.trim()}\n--- log:\n${log}`);
    }
    postmasterPid = readPostmasterPid(dataDir, owner);
  } catch (error) {
    // pg_ctl may give up waiting (-t) while a postmaster it started is still coming up: kill that one too.
    const pid = postmasterPid || pidFromFile(dataDir, owner);
    if (pid) {
      killCluster(pid);
      await waitGone([pid], 5000);
    }
    removeDir();
    error.dir = dir;
    throw error;
  }
  timings.totalMs = Date.now() - started;

  const host = '127.0.0.1';
  const adminConfig = (database) => ({ host: runDir, port, user: SUPERUSER, password, database });

  async function query(sql, params = [], database = 'postgres') {
    const client = new pg.Client(adminConfig(database));
    await client.connect();
    try {
      return await client.query(sql, params);
    } finally {
      await client.end();
    }
  }

  let stopped;
  const handle = {
    host,
    port,
    user: SUPERUSER,
    password,
    dir,
    dataDir,
    socketDir: runDir,
    /** { initdbMs, startMs, totalMs } of this start. */
    startup: timings,
    /** The current postmaster's PID (a new one after restart()). */
    get pid() {
      return postmasterPid;
    },
    /** The last lines of the server log. */
    logs: logTail,

    /**
     * postgres://user:password@127.0.0.1:PORT/DBNAME; with tls.caFile, `?sslmode=verify-full&sslrootcert=CA`.
     * `params` adds query parameters (a null value removes one).
     */
    url(dbname = 'postgres', params = {}) {
      const u = new URL(`postgres://${host}:${port}/`);
      u.username = SUPERUSER;
      u.password = password;
      u.pathname = `/${encodeURIComponent(dbname)}`;
      const all = { ...(tls?.caFile ? { sslmode: 'verify-full', sslrootcert: tls.caFile } : {}), ...params };
      for (const [key, value] of Object.entries(all))
        if (value !== null && value !== undefined) u.searchParams.set(key, value);
      return u.toString();
    },

    /** Creates an empty database NAME (lower-case letters, digits, _) owned by the superuser; returns url(NAME). */
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name))
        throw new Error(`postgres harness: database name ${JSON.stringify(name)} is not [a-z_][a-z0-9_]{0,62}`);
      await query(`CREATE DATABASE "${name}"`);
      return handle.url(name);
    },

    /** Runs one statement as the superuser over the unix socket (a connection of its own). */
    query,

    /**
     * Stops the server (fast: sessions are cut, nothing is lost), keeps it down `downMs`, starts it again on
     * the same port with the same data. Connections made before are broken.
     */
    async restart({ downMs = 0 } = {}) {
      await stopServer();
      if (downMs > 0) await sleep(downMs);
      const r = await run('pg_ctl', [
        'start',
        '-w',
        '-t',
        String(Math.ceil(timeoutMs / 1000)),
        '-D',
        dataDir,
        '-l',
        logFile,
        '-s',
      ]);
      if (r.code !== 0)
        throw new Error(
          `postgres harness: pg_ctl start (restart) failed (${r.code}): ${r.stderr.trim()}\n--- log:\n${logTail()}`,
        );
      postmasterPid = readPostmasterPid(dataDir, owner);
    },

    /**
     * Stops the server and removes the scratch folder. Idempotent. Resolves { killed }: true when
     * `pg_ctl stop` did not do it and the processes were killed by PID.
     */
    stop() {
      stopped ??= (async () => {
        try {
          return await stopServer();
        } finally {
          removeDir();
        }
      })();
      return stopped;
    },
  };

  async function stopServer() {
    const pid = postmasterPid;
    const children = childProcesses(pid);
    const r = await run('pg_ctl', ['stop', '-w', '-m', 'fast', '-t', '10', '-D', dataDir, '-s']);
    let killed = false;
    if (r.code !== 0 || !(await waitGone([pid], 2000))) {
      killed = true;
      killCluster(pid);
    }
    // Children of a killed postmaster exit when they notice it is gone; kill them anyway and wait.
    killNow(children.filter(processAlive));
    if (!(await waitGone([pid, ...children], 5000)))
      throw new Error(`postgres harness: postmaster ${pid} or its children still alive after SIGKILL`);
    postmasterPid = 0;
    return { killed };
  }

  return handle;
}

/**
 * The first line of DATA/postmaster.pid as a PID, or 0. The file is the server user's: a PID is taken only when
 * that process runs as the server's user, so a planted number cannot make root kill anything else.
 */
function pidFromFile(dataDir, owner) {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 1) return 0;
    const uid = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m);
    return uid && Number(uid[1]) === owner.uid ? pid : 0;
  } catch {
    return 0;
  }
}

/** The postmaster's PID: the first line of DATA/postmaster.pid, alive. */
function readPostmasterPid(dataDir, owner) {
  const pid = pidFromFile(dataDir, owner);
  if (!pid || !processAlive(pid))
    throw new Error(`postgres harness: no live postmaster in ${join(dataDir, 'postmaster.pid')}`);
  return pid;
}
