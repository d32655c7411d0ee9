// The command line leaves an SQLite inventory open when the process ends right after the command (no
// close-time checkpoint, two fsyncs fewer), which is safe only because a commit is durable by itself
// (synchronous = FULL). These tests check both halves with real peers: strace for the order of the system calls,
// Python's sqlite3 for what a crash leaves on disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, hasCommand, mcpki, tempDir } from './helpers.js';

const postgres = process.env.MCPKI_TEST_POSTGRES !== undefined;
const skipSqlite = postgres ? 'the inventory is PostgreSQL in this pass' : false;

/** Python's sqlite3 (another SQLite build than better-sqlite3's) reads a database folder; returns the names. */
function namesByPython(dbPath) {
  const r = spawnSync(
    'python3',
    [
      '-c',
      'import sqlite3, sys, json; c = sqlite3.connect(sys.argv[1]); ' +
        'print(json.dumps([r[0] for r in c.execute("select name from certificates order by id")]))',
      dbPath,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('the inventory is opened with synchronous = FULL (a commit fsyncs the WAL)', { skip: skipSqlite }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { SqliteConnection } = await import('../dist/store/sqlite.js');
    const connection = SqliteConnection.open(join(dir, 'mcpki.db'));
    try {
      assert.equal(connection.db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(connection.db.pragma('synchronous', { simple: true }), 2); // 2 = FULL
    } finally {
      connection.close();
    }
  } finally {
    cleanup();
  }
});

test(
  'issue: the row is in the fsynced WAL before the command reports success, and the next process replays it',
  { skip: skipSqlite || (!hasCommand('strace') && 'strace is not installed') },
  () => {
    const { dir, cleanup } = tempDir();
    try {
      const home = join(dir, 'home');
      assert.equal(mcpki(['--home', home, 'init']).status, 0);
      const trace = join(dir, 'trace');
      const r = spawnSync(
        'strace',
        [
          '-f',
          '-qq',
          '-s',
          '256',
          '-o',
          trace,
          '-e',
          'trace=openat,pwrite64,write,fsync,fdatasync,close,unlink,unlinkat',
          process.execPath,
          BIN,
          '--home',
          home,
          'issue',
          'server',
          'durable',
          'durable.localhost',
        ],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /durable/);
      const lines = readFileSync(trace, 'utf8').split('\n');
      const wal = join(home, 'mcpki.db-wal');
      const opened = lines.findIndex((l) => l.includes(`openat(AT_FDCWD, "${wal}"`) && / = \d+$/.test(l));
      assert.ok(opened >= 0, 'the WAL was opened');
      const fd = /= (\d+)$/.exec(lines[opened])[1];
      const onWal = (call) => (l) => l.includes(` ${call}(${fd},`) || l.includes(` ${call}(${fd})`);
      const lastWrite = lines.findLastIndex(onWal('pwrite64'));
      const report = lines.findIndex((l) => / write\(1, /.test(l) && l.includes('durable'));
      assert.ok(lastWrite > opened, 'the commit wrote the WAL');
      assert.ok(report > 0, 'the command wrote its report to stdout');
      const synced = lines.slice(lastWrite, report).some((l) => onWal('fsync')(l) || onWal('fdatasync')(l));
      assert.ok(synced, 'the WAL is fsynced after its last write and before the report');
      // no close-time checkpoint: the WAL is neither closed nor removed, mcpki.db is not fsynced
      assert.ok(!lines.slice(opened).some(onWal('close')), 'the WAL stays open until the process ends');
      assert.ok(!lines.some((l) => l.includes(`"${wal}"`) && /unlink/.test(l)), 'the WAL is not removed');
      assert.ok(statSync(wal).size > 0);

      // what a crash right after leaves: mcpki.db and its WAL (the shared-memory index is rebuilt from the WAL)
      const copy = join(dir, 'crashed');
      mkdirSync(copy);
      copyFileSync(join(home, 'mcpki.db'), join(copy, 'mcpki.db'));
      copyFileSync(wal, join(copy, 'mcpki.db-wal'));
      assert.ok(!existsSync(join(copy, 'mcpki.db-shm')));
      assert.deepEqual(namesByPython(join(copy, 'mcpki.db')), ['durable']);

      // the next mcpki process replays the WAL too
      const shown = mcpki(['--home', home, '--json', 'show', 'durable']);
      assert.equal(shown.status, 0, shown.stderr);
      assert.equal(shown.json.certificate.name, 'durable');
    } finally {
      cleanup();
    }
  },
);

test(
  'main() run in a process that goes on closes the inventory (the WAL is checkpointed)',
  {
    skip: skipSqlite,
  },
  () => {
    const { dir, cleanup } = tempDir();
    try {
      const home = join(dir, 'home');
      assert.equal(mcpki(['--home', home, 'init']).status, 0);
      // dist/cli.cjs's main() without bin/mcpki.js's early exit, as tests and the code-cache build run it
      const r = spawnSync(
        process.execPath,
        [
          '-e',
          `const { cli } = require(${JSON.stringify(BIN)}); cli.main(['node', 'mcpki', '--home', ${JSON.stringify(home)}, 'issue', 'server', 'kept', 'kept.localhost']).then(() => console.log('after main'));`,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /after main/);
      assert.equal(existsSync(join(home, 'mcpki.db-wal')), false, 'closing the last connection removes the WAL');
      assert.deepEqual(namesByPython(join(home, 'mcpki.db')), ['kept']);
    } finally {
      cleanup();
    }
  },
);

test(
  'issue server, list and show leave a small WAL for the next process; a batch, init and revoke checkpoint it',
  { skip: skipSqlite },
  () => {
    const { dir, cleanup } = tempDir();
    try {
      const home = join(dir, 'home');
      const wal = join(home, 'mcpki.db-wal');
      assert.equal(mcpki(['--home', home, 'init']).status, 0);
      assert.equal(existsSync(wal), false, 'init closes the inventory: mcpki.db alone holds the CA');
      assert.equal(mcpki(['--home', home, 'list']).status, 0);
      assert.equal(existsSync(wal), false, 'list leaves no empty WAL behind');
      const requests = join(dir, 'requests.txt');
      writeFileSync(requests, Array.from({ length: 200 }, (_, i) => `server b${i} b${i}.localhost\n`).join(''));
      const batch = mcpki(['--home', home, 'issue', 'batch', requests, '--out', join(dir, 'out')]);
      assert.equal(batch.status, 0, batch.stderr);
      assert.equal(existsSync(wal), false, 'the batch WAL (over 512 KiB) was checkpointed and removed at exit');
      assert.equal(namesByPython(join(home, 'mcpki.db')).length, 200);
      assert.equal(mcpki(['--home', home, 'issue', 'server', 'one', 'one.localhost']).status, 0);
      assert.ok(existsSync(wal) && statSync(wal).size <= 512 * 1024, 'one issue leaves its WAL');
      assert.equal(mcpki(['--home', home, 'list']).status, 0);
      assert.ok(existsSync(wal), 'list leaves it too');
      assert.equal(namesByPython(join(home, 'mcpki.db')).length, 201);
      // a command whose start-up does not count closes: its checkpoint puts everything back into mcpki.db
      assert.equal(mcpki(['--home', home, 'revoke', 'one']).status, 0);
      assert.equal(existsSync(wal), false, 'revoke closed the inventory');
    } finally {
      cleanup();
    }
  },
);
