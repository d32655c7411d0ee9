// What a deploy keeps to undo or finish itself: each replaced single file stays reachable as a
// `.NAME.mcpki-prev-…` hard link next to it (step 3 in deploy.ts), each swapped set keeps its previous version;
// restoreBackup puts them back, discardBackup removes them (step 5). Also the leftovers (`-prev-` links, temp
// files) a killed deploy left next to a target.
import { linkSync, lstatSync, readdirSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { McpkiError } from '../errors.js';
import { TEMP_MARKER } from '../fs/atomic.js';
import {
  copyWithOwner,
  errnoCode,
  randomSuffix,
  removeCreatedDirs,
  removeTree,
  syncDirs,
  tryUnlink,
} from '../fs/files.js';
import { releaseDropped, restoreSet, SET_PREFIX } from './fileset.js';
import type { FileSet, LeftoverListings, SetBackup } from './types.js';

export const PREV_MARKER = '.mcpki-prev-';

export interface BackupEntry {
  path: string;
  /** the hard link holding the replaced file, or null when the target did not exist before */
  previous: string | null;
}

/** What a rollback needs; pass to restoreBackup or discardBackup exactly once. */
export interface DeployBackup {
  entries: BackupEntry[];
  /** folders this deploy created, parents first */
  createdDirs: string[];
  /** `.mcpki-prev-` links an interrupted earlier deploy left; removed on success, kept on rollback */
  stale: string[];
  /** the file sets this deploy swapped */
  sets: SetBackup[];
  /** sets whose folder no longer holds two of their files: released once the deploy is final */
  dissolved?: FileSet[];
  /** the run's shared folder listings, updated when the stale links are removed */
  listings?: LeftoverListings;
}

/** `.NAME.mcpki-prev-…` links an interrupted deploy left next to `path`. */
function leftovers(dir: string, listings?: LeftoverListings): Set<string> {
  let names = listings?.get(dir);
  if (!names) {
    try {
      names = new Set(readdirSync(dir).filter((name) => name.includes(PREV_MARKER) || name.includes(TEMP_MARKER)));
    } catch {
      names = new Set();
    }
    listings?.set(dir, names);
  }
  return names;
}

export function staleBackups(path: string, listings?: LeftoverListings): string[] {
  const prefix = `.${basename(path)}${PREV_MARKER}`;
  return [...leftovers(dirname(path), listings)]
    .filter((name) => name.startsWith(prefix))
    .map((name) => join(dirname(path), name));
}

export function removeStaleTempsFor(path: string, listings?: LeftoverListings): void {
  const prefix = `.${basename(path)}${TEMP_MARKER}`;
  const names = leftovers(dirname(path), listings);
  for (const name of [...names]) {
    if (!name.startsWith(prefix)) continue;
    tryUnlink(join(dirname(path), name));
    names.delete(name);
  }
}

/** Keeps the file at `path` reachable as a `.mcpki-prev-` sibling: a hard link, or a copy where links fail. */
export function keepPrevious(path: string): string {
  const previous = join(dirname(path), `.${basename(path)}${PREV_MARKER}${randomSuffix()}`);
  try {
    linkSync(path, previous);
  } catch (error) {
    if (lstatSync(path).isSymbolicLink()) throw error;
    copyWithOwner(path, previous);
  }
  return previous;
}

export function restoreEntries(entries: readonly BackupEntry[]): void {
  for (const entry of [...entries].reverse()) {
    if (entry.previous) renameSync(entry.previous, entry.path);
    else tryUnlink(entry.path);
  }
}

/** Puts every replaced file back (the same inode: bytes, mode, owner) and removes files the deploy created. */
export function restoreBackup(backup: DeployBackup): void {
  try {
    for (const s of [...backup.sets].reverse()) restoreSet(s);
    restoreEntries(backup.entries);
    syncDirs(backup.entries.map((entry) => entry.path));
  } catch (error) {
    throw new McpkiError(
      'WRITE_FAILED',
      `cannot restore the previous files (${errnoCode(error)})`,
      `the previous versions are kept as .NAME${PREV_MARKER}… next to each target and as ${SET_PREFIX}NAME/v-… folders; rename them back by hand`,
      { cause: error },
    );
  }
  removeCreatedDirs(backup.createdDirs);
}

/**
 * The deploy is final: removes the `.mcpki-prev-` links and previous set versions (and what an interrupted
 * earlier deploy left), or adds them to `later`, and releases dissolved sets.
 */
export function discardBackup(backup: DeployBackup, later?: string[]): void {
  // with `later`, the caller removes them (many at once, in parallel: fs/parallel.ts)
  const unlink = later ? (path: string) => later.push(path) : tryUnlink;
  const remove = later ? (path: string) => later.push(path) : removeTree;
  for (const entry of backup.entries) if (entry.previous) unlink(entry.previous);
  for (const path of backup.stale) {
    unlink(path);
    for (const names of backup.listings?.values() ?? []) names.delete(basename(path));
  }
  for (const s of backup.sets) {
    if (s.previous && s.previous !== s.next) remove(join(s.path, s.previous));
    for (const path of [...s.superseded, ...s.stale]) remove(path);
  }
  for (const set of backup.dissolved ?? []) {
    try {
      releaseDropped(set);
      removeTree(set.path);
    } catch {
      // kept: the next deploy of this certificate tries again
    }
  }
}
