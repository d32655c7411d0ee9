// fsync, now or for many files at once. A deploy of one certificate syncs each file and folder as it goes; a
// run that deploys hundreds (apply, renew) writes every file first and makes them all durable with one
// syncfs(2) per file system (coreutils `sync -f`) before the first rename, then once more after the renames:
// the same guarantee (nothing is renamed into place before its bytes are on disk; a target is reported
// written only once its rename is) for a few milliseconds instead of several fsyncs per certificate.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, fchmodSync, fchownSync, fsyncSync, openSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { childEnv } from '../process/env.js';
import { fsyncPath, tryUnlink } from './atomic.js';

/** The bytes of a new file and what to create it with; uid/gid only when they differ from this process's. */
export interface NewFile {
  data: Buffer;
  mode: number;
  uid?: number;
  gid?: number;
}

export class SyncBatch {
  private readonly files = new Set<string>();
  private readonly dirs = new Set<string>();

  /** deferred: files and folders are synced by flush(), not as they are written */
  constructor(readonly deferred: boolean) {}

  /** Creates `path` with O_EXCL, owner and final mode set before a byte is written, then the data; synced. */
  writeNewFile(path: string, p: NewFile): void {
    // a 0600 start: no one else can open it before its final mode and owner are set
    const fd = openSync(path, 'wx', 0o600);
    try {
      if (p.uid !== undefined || p.gid !== undefined) fchownSync(fd, p.uid ?? -1, p.gid ?? -1);
      fchmodSync(fd, p.mode); // explicit, so the umask does not change the configured mode
      writeSync(fd, p.data);
      if (!this.deferred) fsyncSync(fd);
    } catch (error) {
      closeSync(fd);
      tryUnlink(path);
      throw error;
    }
    closeSync(fd);
    if (this.deferred) this.files.add(path);
  }

  /** The folder's entries made durable (now, or at the next flush). */
  dir(path: string): void {
    if (this.deferred) this.dirs.add(path);
    else fsyncPath(path);
  }

  /** The folders of these paths. */
  dirsOf(paths: readonly string[]): void {
    for (const dir of new Set(paths.map((path) => dirname(path)))) this.dir(dir);
  }

  /** Everything recorded since the last flush is on disk when this returns (throws when it cannot be). */
  flush(): void {
    if (!this.deferred || (this.files.size === 0 && this.dirs.size === 0)) return;
    const dirs = [...this.dirs, ...[...this.files].map((path) => dirname(path))];
    if (!syncFileSystems(dirs)) {
      for (const path of this.files) fsyncPath(path);
      for (const path of this.dirs) fsyncPath(path);
    }
    this.files.clear();
    this.dirs.clear();
  }
}

/** syncfs(2) on the file system of each folder, one call per device. False when that is not possible. */
export function syncFileSystems(dirs: readonly string[]): boolean {
  if (process.platform !== 'linux' || dirs.length === 0) return false;
  const byDevice = new Map<number, string>();
  for (const dir of new Set(dirs)) {
    let device: number;
    try {
      device = statSync(dir).dev;
    } catch {
      return false;
    }
    if (!byDevice.has(device)) byDevice.set(device, dir);
  }
  const result = spawnSync('sync', ['-f', ...byDevice.values()], { stdio: 'ignore', env: childEnv() });
  return result.status === 0;
}

/**
 * The relay thread of FileSystemSyncer: it starts one shell that runs `sync -f DIR` for each line it reads and
 * answers 0 (done) or 1, and hands each answer to the waiting thread through shared memory. Plain JavaScript
 * (eval), so it loads nothing of mcpki.
 */
const RELAY = `
const { parentPort, workerData } = require('node:worker_threads');
const { spawn } = require('node:child_process');
const slots = new Int32Array(workerData.shared);
const waiting = [];
let dead = false;
const answer = (slot, value) => { Atomics.store(slots, slot, value); Atomics.notify(slots, slot); parentPort.postMessage(slot); };
const fail = () => { dead = true; for (const w of waiting.splice(0)) answer(w.slot, 2); };
const sh = spawn('/bin/sh', ['-c', 'while IFS= read -r dir; do sync -f -- "$dir" </dev/null && echo 0 || echo 1; done'], {
  stdio: ['pipe', 'pipe', 'ignore'],
  env: workerData.env,
});
sh.on('error', fail);
sh.on('exit', fail);
sh.stdin.on('error', fail);
let text = '';
sh.stdout.setEncoding('utf8');
sh.stdout.on('data', (chunk) => {
  text += chunk;
  let end;
  while ((end = text.indexOf('\\n')) >= 0) {
    const line = text.slice(0, end);
    text = text.slice(end + 1);
    const w = waiting[0];
    if (!w) continue;
    if (line !== '0') w.ok = false;
    if (--w.left === 0) { waiting.shift(); answer(w.slot, w.ok ? 1 : 2); }
  }
});
parentPort.on('message', ({ slot, dirs }) => {
  if (dead) return answer(slot, 2);
  waiting.push({ slot, left: dirs.length, ok: true });
  sh.stdin.write(dirs.map((d) => d + '\\n').join(''));
});
parentPort.once('close', () => sh.stdin.end());
`;

/** How long a synchronous caller waits for one answer before it falls back to fsync (the sync may hang on I/O). */
const SYNC_WAIT_MS = 60_000;
const SLOTS = 64;

/**
 * syncfs(2) (coreutils `sync -f`) many times in one run without starting a process each time: starting a child
 * from a large multi-threaded process costs tens of milliseconds, a shell started once and kept waiting costs a
 * millisecond a call. `syncNow` blocks (for use inside an inventory transaction), `sync` does not; both answer
 * false when the file systems could not be synced that way, and the caller fsyncs file by file instead.
 */
export class FileSystemSyncer {
  private readonly waiting = new Map<number, (ok: boolean) => void>();
  private next = 0;
  private closed = false;

  private constructor(
    private readonly worker: import('node:worker_threads').Worker,
    private readonly slots: Int32Array,
  ) {
    worker.on('message', (slot: number) => {
      const resolve = this.waiting.get(slot);
      if (!resolve) return;
      this.waiting.delete(slot);
      resolve(Atomics.load(this.slots, slot) === 1);
    });
    const fail = () => {
      this.closed = true;
      for (const resolve of this.waiting.values()) resolve(false);
      this.waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', fail);
    worker.unref();
  }

  /** Undefined where syncfs is not available (not Linux, no /bin/sh). */
  static start(): FileSystemSyncer | undefined {
    if (process.platform !== 'linux' || !existsSync('/bin/sh')) return undefined;
    const { Worker } = createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads');
    const shared = new SharedArrayBuffer(4 * SLOTS);
    const worker = new Worker(RELAY, { eval: true, workerData: { shared, env: childEnv() } });
    return new FileSystemSyncer(worker, new Int32Array(shared));
  }

  /** One folder per file system, or undefined when a folder cannot be passed on a line. */
  private devices(dirs: readonly string[]): string[] | undefined {
    const byDevice = new Map<number, string>();
    for (const dir of new Set(dirs)) {
      if (dir.includes('\n')) return undefined;
      const device = statSync(dir).dev;
      if (!byDevice.has(device)) byDevice.set(device, dir);
    }
    return [...byDevice.values()];
  }

  private send(dirs: readonly string[]): number | undefined {
    if (this.closed) return undefined;
    const devices = this.devices(dirs);
    if (!devices) return undefined;
    if (devices.length === 0) return -1;
    const slot = this.next;
    this.next = (this.next + 1) % SLOTS;
    Atomics.store(this.slots, slot, 0);
    this.worker.postMessage({ slot, dirs: devices });
    return slot;
  }

  /** Syncs the file systems of these folders; false when that failed (then fsync each file). */
  syncNow(dirs: readonly string[]): boolean {
    const slot = this.send(dirs);
    if (slot === undefined) return false;
    if (slot < 0) return true;
    Atomics.wait(this.slots, slot, 0, SYNC_WAIT_MS);
    this.waiting.delete(slot);
    return Atomics.load(this.slots, slot) === 1;
  }

  /** As syncNow, without blocking this thread. */
  sync(dirs: readonly string[]): Promise<boolean> {
    const slot = this.send(dirs);
    if (slot === undefined) return Promise.resolve(false);
    if (slot < 0) return Promise.resolve(true);
    return new Promise((resolve) => this.waiting.set(slot, resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.worker.terminate();
  }
}
