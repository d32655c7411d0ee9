// Crash-safe file writes: a temp file in the same folder, fsync, rename over the target, fsync the folder.
// A reader (or a process killed at any moment) sees the old file or the new one, never a torn one.
import { spawnSync } from 'node:child_process';
import { childEnv } from '../process/env.js';
import { isAlive } from '../process/alive.js';
import {
  closeSync,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { McpkiError } from '../errors.js';
import { fsyncTogether } from './parallel.js';

export const TEMP_MARKER = '.mcpki-tmp-';

export interface FileToWrite {
  path: string;
  data: string | Buffer;
  /** 0o600 for keys, 0o644 for certificates */
  mode: number;
}

/** tempSuffix's random part, drawn once per thread (on first use: not every command writes a file) */
let threadPart: string | undefined;
let tempCounter = 0;

/**
 * The unique part of a temp name: this process's pid, then a random part drawn once per thread and a counter,
 * so processes writing into one folder (ten homes issuing into one --out) never collide, and a leftover can be
 * told from a live writer's file. Not random bytes per name: about 10 µs a call, 6,000 names in 1,000
 * renewals. A name that exists all the same is refused by O_EXCL, never followed.
 */
export function tempSuffix(): string {
  threadPart ??= `${process.pid}-${randomBytes(6).toString('hex')}`;
  return `${threadPart}${(tempCounter++).toString(16)}`;
}

export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}${TEMP_MARKER}${tempSuffix()}`);
}

export function writeError(path: string, error: unknown, what = 'write'): McpkiError {
  if (error instanceof McpkiError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  const why = code === 'EISDIR' ? ': a folder is in the way' : code === 'ENOSPC' ? ': the disk is full' : '';
  return new McpkiError(
    'WRITE_FAILED',
    `cannot ${what} ${path} (${code})${why}`,
    'check that the folder is writable, that nothing is in the way of the file and that the disk is not full; the previous files were left in place',
    { cause: error },
  );
}

function writeTemp(file: FileToWrite, sync = true): string {
  const temp = tempPathFor(file.path);
  // O_EXCL with the final mode: the key is never readable by others, not even for a moment
  const fd = openSync(temp, 'wx', file.mode);
  try {
    writeSync(fd, typeof file.data === 'string' ? Buffer.from(file.data) : file.data);
    if (sync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return temp;
}

export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes every file to a synced temp file first, and only when all of them are on disk renames them into
 * place. All or nothing: if a write fails, no target is touched; if a rename fails, the targets already
 * renamed get their previous files back (kept as hard links until the end) or are removed when they did
 * not exist. The temp files are removed either way; the error (WRITE_FAILED) names the file that failed.
 */
export function writeFilesAtomic(files: readonly FileToWrite[]): void {
  const temps = writeTemps(files, true);
  renameAll(files, temps);
  for (const dir of new Set(files.map((file) => dirname(file.path)))) fsyncPath(dir);
}

/**
 * Many files at once (batch issuance): the same guarantees as writeFilesAtomic, but instead of one fsync per
 * file, one syncfs(2) per file system (coreutils `sync -f`) before the renames and one after. With
 * thousands of files that is the difference between seconds and milliseconds. Falls back to per-file fsync
 * where `sync -f` is not available.
 */
export function writeManyFilesAtomic(files: readonly FileToWrite[]): void {
  const temps = writeTemps(files, false);
  const dirs = [...new Set(files.map((file) => dirname(file.path)))];
  try {
    if (!syncFileSystems(dirs)) temps.forEach(fsyncPath);
  } catch (error) {
    temps.forEach(tryUnlink);
    throw writeError(dirs[0] ?? '', error, 'sync');
  }
  renameAll(files, temps);
  if (!syncFileSystems(dirs)) dirs.forEach(fsyncPath);
}

function writeTemps(files: readonly FileToWrite[], sync: boolean): string[] {
  if (sync && files.length > 1) return writeSyncedTemps(files);
  const temps: string[] = [];
  try {
    for (const file of files) temps.push(writeTemp(file, sync));
  } catch (error) {
    for (const temp of temps) tryUnlink(temp);
    throw writeError(files[temps.length]?.path ?? '', error);
  }
  return temps;
}

/**
 * Every file written to its temp name first, then all of them fsynced together (fsyncTogether: one issue's
 * key, certificate, chain and CA file at about the cost of one fsync instead of four in a row).
 */
function writeSyncedTemps(files: readonly FileToWrite[]): string[] {
  const temps: string[] = [];
  const fds: number[] = [];
  let i = 0;
  try {
    for (; i < files.length; i++) {
      const file = files[i]!;
      const temp = tempPathFor(file.path);
      // O_EXCL with the final mode: the key is never readable by others, not even for a moment
      const fd = openSync(temp, 'wx', file.mode);
      fds.push(fd);
      temps.push(temp);
      writeSync(fd, typeof file.data === 'string' ? Buffer.from(file.data) : file.data);
    }
  } catch (error) {
    for (const fd of fds) closeSync(fd);
    for (const temp of temps) tryUnlink(temp);
    throw writeError(files[i]!.path, error);
  }
  try {
    fsyncTogether(fds);
  } catch (error) {
    for (const temp of temps) tryUnlink(temp);
    throw writeError(files[0]!.path, error, 'sync');
  }
  return temps;
}

/**
 * Renames every temp over its target. Before the first rename, each existing target is hard-linked to a
 * private name (same inode: bytes, mode and owner kept exactly) so a failed rename can put it back.
 */
export function renameAll(files: readonly FileToWrite[], temps: readonly string[]): void {
  const previous: (string | null)[] = [];
  try {
    for (const file of files) previous.push(keepPrevious(file.path));
  } catch (error) {
    previous.forEach((link) => link && tryUnlink(link));
    temps.forEach(tryUnlink);
    throw writeError(files[previous.length]!.path, error, 'keep the previous version of');
  }
  let renamed = 0;
  try {
    for (; renamed < files.length; renamed++) renameSync(temps[renamed]!, files[renamed]!.path);
  } catch (error) {
    for (let i = renamed - 1; i >= 0; i--) {
      const link = previous[i];
      try {
        if (link) renameSync(link, files[i]!.path);
        else unlinkSync(files[i]!.path);
      } catch {
        // nothing better to do: the error below names the file that failed
      }
    }
    temps.slice(renamed).forEach(tryUnlink);
    previous.slice(renamed).forEach((link) => link && tryUnlink(link));
    throw writeError(files[renamed]!.path, error);
  }
  previous.forEach((link) => link && tryUnlink(link));
}

/** How often keepPrevious looks again at a file another process keeps replacing. */
const KEEP_ATTEMPTS = 5;

/** A hard link to an existing regular file at a temp name next to it, or null when there is nothing to keep. */
function keepPrevious(path: string): string | null {
  for (let attempt = 1; ; attempt++) {
    // no exception for a missing file: batch issuance renames thousands of new files
    const stat = lstatSync(path, { throwIfNoEntry: false });
    if (!stat) return null;
    if (!stat.isFile() && !stat.isSymbolicLink()) return null; // a folder in the way: the rename fails before any harm
    const link = tempPathFor(path);
    try {
      linkSync(path, link);
      return link;
    } catch (error) {
      // link(2) says ENOENT when another process renamed its file over `path` between the lookup and the link
      // (the inode found is gone): the file there now is the one to keep (ten homes issuing into one --out)
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt === KEEP_ATTEMPTS) throw error;
    }
  }
}

/** syncfs(2) on the file system of each folder, one call per device. False when that is not possible. */
export function syncFileSystems(dirs: readonly string[]): boolean {
  if (process.platform !== 'linux') return false;
  const byDevice = new Map<number, string>();
  for (const dir of dirs) {
    const device = statSync(dir).dev;
    if (!byDevice.has(device)) byDevice.set(device, dir);
  }
  const result = spawnSync('sync', ['-f', ...byDevice.values()], { stdio: 'ignore', env: childEnv() });
  return result.status === 0;
}

export function writeFileAtomic(path: string, data: string | Buffer, mode: number): void {
  writeFilesAtomic([{ path, data, mode }]);
}

export function tryUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** Whether the process that made a temp file (pid in its name) may still be writing it. */
function writerAlive(name: string): boolean {
  const match = new RegExp(`${TEMP_MARKER.replace(/[.]/g, '\\.')}(\\d+)-[0-9a-f]+`).exec(name);
  if (!match) return false; // an older mcpki's name: leftovers of a killed process
  const pid = Number(match[1]);
  return pid !== process.pid && isAlive(pid);
}

/**
 * Removes temp files a killed process left behind in a folder, not those of a process still running (another
 * home writing into the same folder). Returns how many it removed.
 */
export function removeStaleTemps(dir: string): number {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (name.startsWith('.') && name.includes(TEMP_MARKER) && !writerAlive(name)) {
      tryUnlink(join(dir, name));
      removed++;
    }
  }
  return removed;
}
