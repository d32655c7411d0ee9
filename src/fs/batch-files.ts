// Files written in chunks (batch issuance): the temp files of a chunk are written without an fsync each (by
// any thread), made durable together, and renamed into place; then the folders are made durable. One
// syncfs(2) per file system (FileSystemSyncer in sync-batch.ts) does each of those two steps for a whole chunk;
// where it is not available, every temp file and then every folder is fsynced. The crash guarantee is writeFilesAtomic's:
// a target is its old content or its complete new content, never a torn file.
import { closeSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { renameAll, tempPathFor, tryUnlink, writeError, type FileToWrite } from './atomic.js';

/** Writes one file to a new temp name next to it (created O_EXCL with its final mode), not yet synced. */
export function writeUnsyncedTemp(file: FileToWrite): string {
  const temp = tempPathFor(file.path);
  let fd: number;
  try {
    fd = openSync(temp, 'wx', file.mode);
  } catch (error) {
    throw writeError(file.path, error);
  }
  try {
    // a string is encoded by the write itself, without a Buffer on the heap
    if (typeof file.data === 'string') writeSync(fd, file.data);
    else writeSync(fd, file.data);
  } catch (error) {
    tryUnlink(temp);
    throw writeError(file.path, error);
  } finally {
    closeSync(fd);
  }
  return temp;
}

/** The folders files are in, one each. */
export function foldersOf(paths: readonly string[]): string[] {
  return [...new Set(paths.map((path) => dirname(path)))];
}

/**
 * Renames synced temp files over their targets, all or nothing (as writeFilesAtomic). Not yet durable: then
 * the folders are synced.
 */
export function renameTemps(targets: readonly string[], temps: readonly string[]): void {
  renameAll(
    targets.map((path) => ({ path, data: '', mode: 0 })),
    temps,
  );
}
