// File operations shared by deploy, the CRL publisher and anyone else who writes beside a user's files: writes
// with the final mode and owner set before a byte is written, fsynced; fresh temp names next to a path; folders
// created and removed.
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { chmod, mkdir, symlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { McpkiError } from '../errors.js';
import { fsyncPath as fsyncDir, tempPathFor, tryUnlink } from './atomic.js';

export { fsyncDir, tryUnlink };

/** The bytes of a file and what to create it with; uid/gid only when they differ from this process's. */
export interface FileContent {
  data: Buffer;
  mode: number;
  uid?: number;
  gid?: number;
}

export function errnoCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'error';
}

export function writeFailed(path: string, error: unknown, what = 'write'): McpkiError {
  return new McpkiError(
    'WRITE_FAILED',
    `cannot ${what} ${path} (${errnoCode(error)})`,
    'check that the folder is writable and the disk is not full; the previous files were left in place',
    { cause: error },
  );
}

export function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null;
    throw writeFailed(path, error, 'read');
  }
}

export function randomSuffix(): string {
  return randomBytes(6).toString('hex');
}

/** Creates `path` with O_EXCL, owner and final mode set before a byte is written, then the data, fsynced. */
export function writeNewFile(path: string, p: FileContent): void {
  // a 0600 start: no one else can open it before its final mode and owner are set
  const fd = openSync(path, 'wx', 0o600);
  try {
    if (p.uid !== undefined || p.gid !== undefined) fchownSync(fd, p.uid ?? -1, p.gid ?? -1);
    fchmodSync(fd, p.mode); // explicit, so the umask does not change the configured mode
    writeSync(fd, p.data);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    tryUnlink(path);
    throw error;
  }
  closeSync(fd);
}

/** A temp file beside `p.path` (same folder, so a rename replaces it atomically), written by writeNewFile. */
export function writeTemp(p: FileContent & { path: string }): string {
  const temp = tempPathFor(p.path);
  writeNewFile(temp, p);
  return temp;
}

/** A copy of `from` (followed) at `to` with the same bytes, mode and owner, fsynced. */
export function copyWithOwner(from: string, to: string): void {
  const stat = statSync(from);
  const uid = stat.uid === process.getuid?.() ? undefined : stat.uid;
  const gid = stat.gid === process.getgid?.() ? undefined : stat.gid;
  writeNewFile(to, { data: readFileSync(from), mode: stat.mode & 0o7777, uid, gid });
}

export function syncDirs(paths: readonly string[]): void {
  for (const dir of new Set(paths.map((path) => dirname(path)))) fsyncDir(dir);
}

/** Removes a folder and everything in it (deploy: a set's version folder, whose files are hard links or private copies). */
export function removeTree(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

export function makeFolder(path: string, mode: number): void {
  mkdirSync(path, { mode: 0o700 });
  if (mode !== 0o700) chmodSync(path, mode); // after the files are complete would be no safer: nothing points here yet
}

/** makeFolder on libuv's thread pool (many set versions at once). */
export async function makeFolderAsync(path: string, mode: number): Promise<void> {
  await mkdir(path, { mode: 0o700 });
  if (mode !== 0o700) await chmod(path, mode);
}

/** tempSymlink on libuv's thread pool. */
export async function tempSymlinkAsync(text: string, path: string): Promise<string> {
  const temp = tempPathFor(path);
  await symlink(text, temp);
  return temp;
}

/** A symlink at a fresh temp name next to `path`, to be renamed over it. */
export function tempSymlink(text: string, path: string): string {
  const temp = tempPathFor(path);
  symlinkSync(text, temp);
  return temp;
}

export function removeCreatedDirs(dirs: readonly string[]): void {
  for (const dir of [...dirs].reverse()) {
    try {
      rmdirSync(dir);
    } catch {
      // not empty (something else lives there now) or already gone
    }
  }
}
