// Crash-safe file writes: a temp file in the same folder, fsync, rename over the target, fsync the folder.
// A reader (or a process killed at any moment) sees the old file or the new one, never a torn one.
import { spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { McpkiError } from '../errors.js';

export const TEMP_MARKER = '.mcpki-tmp-';

export interface FileToWrite {
  path: string;
  data: string | Buffer;
  /** 0o600 for keys, 0o644 for certificates */
  mode: number;
}

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}${TEMP_MARKER}${randomBytes(6).toString('hex')}`);
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
 * place; if any write fails, no target is touched and the temp files are removed.
 */
export function writeFilesAtomic(files: readonly FileToWrite[]): void {
  const temps: string[] = [];
  try {
    for (const file of files) temps.push(writeTemp(file));
  } catch (error) {
    for (const temp of temps) tryUnlink(temp);
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const failed = files[temps.length]?.path ?? '';
    throw new McpkiError('WRITE_FAILED', `cannot write ${failed} (${code})`, 'check that the folder exists and is writable, and that the disk is not full', { cause: error });
  }
  const dirs = new Set<string>();
  files.forEach((file, i) => {
    renameSync(temps[i]!, file.path);
    dirs.add(dirname(file.path));
  });
  for (const dir of dirs) fsyncPath(dir);
}

/**
 * Many files at once (batch issuance): the same guarantees as writeFilesAtomic, but instead of one fsync per
 * file, one syncfs(2) per file system (coreutils `sync -f`) before the renames and one after. With
 * thousands of files that is the difference between seconds and milliseconds. Falls back to per-file fsync
 * where `sync -f` is not available.
 */
export function writeManyFilesAtomic(files: readonly FileToWrite[]): void {
  const temps: string[] = [];
  try {
    for (const file of files) temps.push(writeTemp(file, false));
  } catch (error) {
    for (const temp of temps) tryUnlink(temp);
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new McpkiError('WRITE_FAILED', `cannot write ${files[temps.length]?.path ?? ''} (${code})`, 'check that the folder exists and is writable, and that the disk is not full', { cause: error });
  }
  const dirs = [...new Set(files.map((file) => dirname(file.path)))];
  if (!syncFileSystems(dirs)) temps.forEach(fsyncPath);
  files.forEach((file, i) => renameSync(temps[i]!, file.path));
  if (!syncFileSystems(dirs)) dirs.forEach(fsyncPath);
}

/** syncfs(2) on the file system of each folder, one call per device. False when that is not possible. */
function syncFileSystems(dirs: readonly string[]): boolean {
  if (process.platform !== 'linux') return false;
  const byDevice = new Map<number, string>();
  for (const dir of dirs) {
    const device = statSync(dir).dev;
    if (!byDevice.has(device)) byDevice.set(device, dir);
  }
  const result = spawnSync('sync', ['-f', ...byDevice.values()], { stdio: 'ignore' });
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

/** Removes temp files a killed process left behind in a folder. Returns how many it removed. */
export function removeStaleTemps(dir: string): number {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (name.startsWith('.') && name.includes(TEMP_MARKER)) {
      tryUnlink(join(dir, name));
      removed++;
    }
  }
  return removed;
}
