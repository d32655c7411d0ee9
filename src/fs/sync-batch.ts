// fsync, now or for many files at once. A deploy of one certificate syncs each file and folder as it goes; a
// run that deploys hundreds (apply, renew) writes every file first and makes them all durable with one
// syncfs(2) per file system (coreutils `sync -f`) before the first rename, then once more after the renames:
// the same guarantee (nothing is renamed into place before its bytes are on disk; a target is reported
// written only once its rename is) for a few milliseconds instead of several fsyncs per certificate.
import { spawnSync } from 'node:child_process';
import { closeSync, fchmodSync, fchownSync, fsyncSync, openSync, statSync, writeSync } from 'node:fs';
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
