// Batch issuance's syncs: every chunk is made durable with syncfs, by one shell started once for the batch,
// not by a new child of the (large, multi-threaded) mcpki process each time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, mcpki, run, storeEnv, tempDir } from './helpers.js';

test('issue batch: each syncfs comes from `sync -f` started by one shell, not by mcpki itself', (t) => {
  if (run('strace', ['-V']).status !== 0) return t.skip('strace is not installed');
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    const out = join(dir, 'out');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const n = 600;
    writeFileSync(
      join(dir, 'requests.txt'),
      Array.from({ length: n }, (_, i) => `server s${i} s${i}.localhost`).join('\n'),
    );
    const trace = join(dir, 'strace.txt');
    const result = run(
      'strace',
      [
        '-f',
        '-o',
        trace,
        '-e',
        'trace=execve,clone,clone3,fork,vfork,syncfs',
        '-e',
        'signal=none',
        process.execPath,
        BIN,
        '--home',
        home,
        'issue',
        'batch',
        join(dir, 'requests.txt'),
        '--out',
        out,
      ],
      { timeout: 300_000, env: { ...process.env, ...storeEnv(['--home', home]) } },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.equal(readdirSync(out).filter((f) => f.endsWith('.key')).length, n);
    const lines = readFileSync(trace, 'utf8').split('\n');
    // pid → the pid that started it (clone without CLONE_THREAD: a process, not a thread)
    const parent = new Map();
    const threadsOf = new Map();
    const unfinished = new Map();
    for (const line of lines) {
      // strace splits a call another thread interrupts: "PID clone(ARGS <unfinished ...>", "PID <... clone resumed>) = N"
      const start = /^(\d+)\s+(?:clone3?|fork|vfork)\((.*)<unfinished \.\.\.>/.exec(line);
      if (start) {
        unfinished.set(start[1], start[2]);
        continue;
      }
      const whole = /^(\d+)\s+(?:clone3?|fork|vfork)\((.*)\)\s+=\s+(\d+)/.exec(line);
      const resumed = /^(\d+)\s+<\.\.\. (?:clone3?|fork|vfork) resumed>.*\)\s+=\s+(\d+)/.exec(line);
      if (!whole && !resumed) continue;
      const [caller, args, child] = whole
        ? [whole[1], whole[2], whole[3]]
        : [resumed[1], unfinished.get(resumed[1]), resumed[2]];
      if (/CLONE_THREAD/.test(args ?? '')) threadsOf.set(Number(child), Number(caller));
      else parent.set(Number(child), Number(caller));
    }
    const processOf = (pid) => {
      while (threadsOf.has(pid)) pid = threadsOf.get(pid);
      return pid;
    };
    const execs = lines
      .map((line) => /^(\d+)\s+execve\("([^"]+)"/.exec(line))
      .filter((m) => m && !/ENOENT/.test(m.input))
      .map((m) => ({ pid: Number(m[1]), file: m[2] }));
    const mcpkiPid = execs[0].pid;
    const syncs = execs.filter((e) => e.file.endsWith('/sync'));
    // strace splits a call another traced thread interrupts: "PID syncfs(N <unfinished ...>", then
    // "PID <... syncfs resumed>) = 0"; the resumed line is the call's end
    const syncfs = lines.filter(
      (line) => /\bsyncfs\(\d+\)\s+=\s+0/.test(line) || /<\.\.\. syncfs resumed>.*\)\s+=\s+0/.test(line),
    );
    assert.ok(syncs.length >= 2, `at least one sync before and one after the renames (${syncs.length})`);
    assert.equal(syncfs.length, syncs.length, 'every sync -f made its syncfs call');
    const shells = execs.filter((e) => e.file === '/bin/sh' && processOf(parent.get(e.pid)) === mcpkiPid);
    assert.equal(shells.length, 1, 'one shell started by mcpki');
    for (const sync of syncs)
      assert.equal(parent.get(sync.pid), shells[0].pid, 'sync -f is started by the shell, not by mcpki');
  } finally {
    cleanup();
  }
});

test('FileSystemSyncer: syncs before it answers, several at once; a folder name it cannot pass or a dead shell answers false', async (t) => {
  if (process.platform !== 'linux') return t.skip('syncfs is Linux only');
  const { FileSystemSyncer } = await import('../dist/fs/sync-batch.js');
  const { dir, cleanup } = tempDir();
  const syncer = FileSystemSyncer.start();
  try {
    assert.ok(syncer, 'started');
    assert.equal(syncer.syncNow([dir, dir]), true);
    const first = syncer.begin([dir]);
    const second = syncer.begin([dir]);
    assert.equal(syncer.end(first), true);
    assert.equal(syncer.end(second), true);
    assert.equal(syncer.syncNow([]), true, 'nothing to sync');
    const odd = join(dir, 'a\nb');
    mkdirSync(odd);
    assert.equal(syncer.syncNow([odd]), false, 'a name with a line break is not passed to the shell');
    // the shell killed: the next sync answers false (the caller then fsyncs each file) instead of waiting
    process.kill(syncer.shell.pid, 'SIGKILL');
    const started = Date.now();
    assert.equal(syncer.syncNow([dir]), false);
    assert.ok(Date.now() - started < 10_000, 'noticed without waiting for the timeout');
  } finally {
    syncer?.close();
    cleanup();
  }
});
