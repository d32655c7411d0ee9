// fsync, now or for many files at once. A deploy of one certificate syncs each file and folder as it goes; a
// run that deploys hundreds (apply, renew) writes every file first and makes them all durable with one
// syncfs(2) per file system (coreutils `sync -f`) before the first rename, then once more after the renames:
// the same guarantee (nothing is renamed into place before its bytes are on disk; a target is reported
// written only once its rename is) for a few milliseconds instead of several fsyncs per certificate.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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

  /**
   * deferred: files and folders are synced by flush(), not as they are written; `syncer`: the run's shell that
   * syncs without a new child process each time (else `sync -f` is started for each flush)
   */
  constructor(
    readonly deferred: boolean,
    private readonly syncer?: FileSystemSyncer,
  ) {}

  /** syncfs(2) on the file systems of these folders now (syncFileSystems, through the run's shell if any). */
  syncNow(dirs: readonly string[]): boolean {
    return this.syncer ? this.syncer.syncNow(dirs) : syncFileSystems(dirs);
  }

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

  /**
   * writeNewFile on libuv's thread pool, for many files at once (deployMany): the same steps in the same order
   * (O_EXCL 0600, owner, final mode, data, fsync unless deferred; removed again on a failure).
   */
  async writeNewFileAsync(path: string, p: NewFile): Promise<void> {
    const handle = await open(path, 'wx', 0o600);
    try {
      if (p.uid !== undefined || p.gid !== undefined) await handle.chown(p.uid ?? -1, p.gid ?? -1);
      await handle.chmod(p.mode); // explicit, so the umask does not change the configured mode
      await handle.writeFile(p.data);
      if (!this.deferred) await handle.sync();
    } catch (error) {
      await handle.close();
      tryUnlink(path);
      throw error;
    }
    await handle.close();
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
    if (!this.syncNow(dirs)) {
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

/** A sync begun by FileSystemSyncer: how many answers it waits for. */
export interface PendingSync {
  count: number;
}

/** The shell's loop: one `sync -f DIR` a line read, answered 0 (done) or 1 on its own line. */
const SYNC_LOOP = 'while IFS= read -r dir; do sync -f -- "$dir" </dev/null && echo 0 || echo 1; done';
/** How long a caller waits for one answer before it falls back to fsync (a sync may wait long on a slow disk). */
const SYNC_WAIT_MS = 60_000;

/**
 * syncfs(2) (coreutils `sync -f`) many times in one run without starting a child of this process each time:
 * forking a large multi-threaded Node process costs tens of milliseconds, and a batch syncs once or twice a
 * chunk. One `/bin/sh` started at the beginning runs `sync -f` for each folder written to its standard input
 * and writes the answers to a file only the two of them hold (created O_EXCL 0600 and unlinked at once), which
 * this thread reads without its event loop: `syncNow` blocks, so it works inside an inventory transaction.
 * It answers false when the file systems could not be synced that way; the caller then fsyncs file by file.
 */
export class FileSystemSyncer {
  private readonly sleeper = new Int32Array(new SharedArrayBuffer(4));
  private readonly answer = Buffer.alloc(256);
  private read = 0;
  private dead = false;

  private constructor(
    private readonly shell: ChildProcess,
    private readonly answers: number,
  ) {
    shell.once('exit', () => (this.dead = true));
    shell.once('error', () => (this.dead = true));
    shell.stdin!.on('error', () => (this.dead = true));
    shell.unref();
  }

  /** Undefined where it cannot run (not Linux, no /bin/sh, no temp folder): then sync each file. */
  static start(): FileSystemSyncer | undefined {
    if (process.platform !== 'linux' || !existsSync('/bin/sh')) return undefined;
    let answers: number | undefined;
    try {
      const path = join(tmpdir(), `.mcpki-sync-${process.pid}-${randomBytes(6).toString('hex')}`);
      answers = openSync(path, 'wx+', 0o600);
      unlinkSync(path);
      const shell = spawn('/bin/sh', ['-c', SYNC_LOOP], { stdio: ['pipe', answers, 'ignore'], env: childEnv() });
      if (shell.pid === undefined) throw new Error('no shell');
      return new FileSystemSyncer(shell, answers);
    } catch {
      if (answers !== undefined) closeSync(answers);
      return undefined;
    }
  }

  /** The shell's answers since the last call, once all `count` of them are there; undefined when it is gone. */
  private wait(count: number): string | undefined {
    const deadline = Date.now() + SYNC_WAIT_MS;
    let text = '';
    for (let polls = 0; ; polls++) {
      const n = readSync(this.answers, this.answer, 0, this.answer.length, this.read);
      if (n > 0) {
        this.read += n;
        text += this.answer.toString('latin1', 0, n);
        if (text.split('\n').length - 1 >= count) return text;
        continue;
      }
      // the exit event cannot come while this thread waits: look at the process itself now and then
      if (this.dead || (polls % 100 === 99 && !alive(this.shell.pid!)) || Date.now() > deadline) {
        this.dead = true;
        return undefined;
      }
      Atomics.wait(this.sleeper, 0, 0, polls < 10 ? 0.2 : 1);
    }
  }

  /**
   * Starts syncing the file systems of these folders (one `sync -f` per device) and returns at once, so the
   * caller can work meanwhile; `end` waits for it. False when it could not start (then sync file by file).
   */
  begin(dirs: readonly string[]): PendingSync | false {
    if (this.dead) return false;
    const byDevice = new Map<number, string>();
    for (const dir of new Set(dirs)) {
      if (dir.includes('\n')) return false;
      const device = statSync(dir).dev;
      if (!byDevice.has(device)) byDevice.set(device, dir);
    }
    if (byDevice.size > 0) this.shell.stdin!.write([...byDevice.values()].map((dir) => `${dir}\n`).join(''));
    return { count: byDevice.size };
  }

  /** Whether a begun sync finished well. Syncs end in the order they began. */
  end(pending: PendingSync): boolean {
    if (pending.count === 0) return true;
    const text = this.wait(pending.count);
    return (
      text !== undefined &&
      text
        .split('\n')
        .slice(0, -1)
        .every((line) => line === '0')
    );
  }

  /** begin and end: synced when it returns true. */
  syncNow(dirs: readonly string[]): boolean {
    const pending = this.begin(dirs);
    return pending !== false && this.end(pending);
  }

  close(): void {
    this.dead = true;
    this.shell.stdin!.end();
    closeSync(this.answers);
  }
}

/** Whether a process still runs (not gone, not a zombie waiting to be reaped). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return !/^\S+ \(.*\) [ZX] /s.test(stat);
  } catch {
    return false;
  }
}
