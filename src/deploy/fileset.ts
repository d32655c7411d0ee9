// The file-set layout on disk: naming, inspection, version folders, the `current` swap, adoption of plain
// files, publishing, rollback to the previous version, and what a killed deploy leaves in a set folder.
//
// File sets. When two or more of a certificate's `cert`, `key`, `chain` and `fullchain` targets are in one
// folder, they form a file set (the Kubernetes AtomicWriter "..data" pattern), e.g. for certificate `app`:
//   tls/app.crt -> .mcpki-set-app/current/app.crt        (each target path is a relative symlink)
//   tls/app.key -> .mcpki-set-app/current/app.key
//   tls/.mcpki-set-app/current -> v-<serial prefix>-<random>   (one symlink for the whole set)
//   tls/.mcpki-set-app/v-…/app.crt, app.key                  (the real files: the target's mode and owner)
// Replacing `current` with one rename(2) swaps every file of the set at once, so a reader, or a process
// killed at any instant, sees the old set or the new set, never a mix. The set folder is named after the
// certificate (names are unique in mcpki.yaml and limited to [A-Za-z0-9._-]), so two certificates deploying
// into one folder never share one, and nothing else in the folder is read or touched. The set folder and its
// version folders are 0700 when every file is 0600-like and owned by mcpki's user, else 0711: readers pass
// through without listing, and each file's own mode decides who reads it (as it did in the plain folder).
import { linkSync, lstatSync, readdirSync, readlinkSync, realpathSync, renameSync, type Stats } from 'node:fs';
import { link } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { McpkiError } from '../errors.js';
import { assertSafeFolder, isTrustedOwner, unsafe } from '../fs/safe-path.js';
import { TEMP_MARKER } from '../fs/atomic.js';
import {
  copyWithOwner,
  errnoCode,
  fsyncDir,
  makeFolder,
  makeFolderAsync,
  randomSuffix,
  removeTree,
  statOrNull,
  tempSymlink,
  tempSymlinkAsync,
  tryUnlink,
  writeFailed,
} from '../fs/files.js';
import type { SyncBatch } from '../fs/sync-batch.js';
import type { FileSet, Material, PathState, Plan, SetBackup, Target } from './types.js';

/** `.mcpki-set-NAME`: the folder of certificate NAME's file set, next to its targets */
export const SET_PREFIX = '.mcpki-set-';
export const CURRENT = 'current';
const VERSION_NAME = /^v-[A-Za-z0-9-]+$/;
/** target types that form a file set when two or more of them share a folder */
export const SET_TYPES: ReadonlySet<Target['type']> = new Set(['cert', 'key', 'chain', 'fullchain']);

export function validSetName(material: Material): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(material.name) && !material.name.includes('..');
}

export function setNameOf(material: Material): string {
  if (!validSetName(material)) {
    throw new McpkiError(
      'INVALID_INPUT',
      `certificate name ${JSON.stringify(material.name)} cannot name the folder of its file set`,
      'use letters, digits, ".", "_" and "-"',
    );
  }
  return `${SET_PREFIX}${material.name}`;
}

/**
 * A set folder, its version folders and its `current` link must be what mcpki made: a folder (not a symlink)
 * owned by this user or root, writable by no one else; `current` a symlink of ours. Anything another user
 * made (e.g. a `.mcpki-set-web` planted in a shared folder before the first deploy) is refused.
 */
function assertSetEntry(path: string, what: string, folder: boolean): void {
  let stat: Stats;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw writeFailed(path, error, 'read');
  }
  if (!isTrustedOwner(stat.uid)) {
    throw unsafe(
      path,
      `${what} is owned by uid ${stat.uid}, not by this user or root (mode ${(stat.mode & 0o7777).toString(8).padStart(4, '0')})`,
      `remove ${path} after checking it; the next deploy recreates it`,
    );
  }
  if (folder) {
    if (stat.isSymbolicLink())
      throw unsafe(path, `${what} is a symlink, not a folder`, `remove ${path}; the next deploy recreates it`);
    if (!stat.isDirectory())
      throw new McpkiError('WRITE_FAILED', `${path} is not a folder`, `remove ${path}; the next deploy recreates it`);
    assertSafeFolder(path, stat, what, true);
  }
}

/** What a file set's folder holds now: the version `current` points at and what killed runs left. */
export function inspectSet(dir: string, name: string): Pick<FileSet, 'exists' | 'version' | 'stale'> {
  const path = join(dir, name);
  assertSetEntry(path, 'the set folder', true);
  let entries: string[];
  try {
    entries = readdirSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { exists: false, version: null, stale: [] };
    throw new McpkiError(
      'WRITE_FAILED',
      `cannot read ${path} (${errnoCode(error)})`,
      `${path} holds the files of a certificate's set; it must be a folder mcpki can read`,
      { cause: error },
    );
  }
  let version: string | null = null;
  if (entries.includes(CURRENT)) {
    const current = join(path, CURRENT);
    assertSetEntry(current, 'the link to the current version', false);
    if (!lstatSync(current).isSymbolicLink())
      throw new McpkiError(
        'WRITE_FAILED',
        `${current} is not a symlink`,
        `remove ${current}; the next deploy recreates it`,
      );
    const text = readlinkSync(current);
    if (VERSION_NAME.test(text)) version = text;
  }
  for (const entry of entries)
    if (VERSION_NAME.test(entry)) assertSetEntry(join(path, entry), 'a version folder', true);
  const stale = entries.filter(
    (entry) => entry !== CURRENT && entry !== version && (VERSION_NAME.test(entry) || entry.includes(TEMP_MARKER)),
  );
  return { exists: true, version, stale: stale.map((entry) => join(path, entry)) };
}

/** A set member's path: missing, a regular file, our symlink into the set, or something else (a foreign symlink). */
export function inspectMember(path: string, link: string): { state: PathState; stat: Stats | null } {
  let stat: Stats;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { state: 'missing', stat: null };
    throw writeFailed(path, error, 'read');
  }
  if (stat.isSymbolicLink()) {
    const followed = statOrNull(path);
    if (!followed) return { state: 'missing', stat: null }; // dangling: nothing a reader could see
    stat = followed;
    if (!stat.isDirectory()) return { state: readlinkSync(path) === link ? 'link' : 'foreign', stat };
  }
  if (stat.isDirectory()) throw new McpkiError('WRITE_FAILED', `target ${path} is a folder`, 'give a file path');
  return { state: 'file', stat };
}

/** Folders a reader must pass: closed (0700) when every file is private to mcpki's user, else 0711 (pass, no listing). */
export function setFolderMode(members: readonly Plan[]): number {
  return members.every((p) => (p.mode & 0o077) === 0 && p.uid === undefined && p.gid === undefined) ? 0o700 : 0o711;
}

export function isFolder(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The text of a member's symlink: relative, so the folder can be moved or mounted elsewhere as a whole. */
export function memberLink(setName: string, path: string): string {
  return `${setName}/${CURRENT}/${basename(path)}`;
}

/** Points the set's `current` at `version` with one rename(2). */
function swapCurrent(setPath: string, version: string): void {
  renameSync(tempSymlink(version, join(setPath, CURRENT)), join(setPath, CURRENT));
}

/**
 * Targets the set no longer declares but whose symlinks still point into it keep their last content as plain
 * files (what they were before sets existed), so no service is left with a dangling path.
 */
export function releaseDropped(set: FileSet): void {
  if (!set.version) return;
  const keep = new Set(set.members.map((p) => basename(p.path)));
  let names: string[];
  try {
    names = readdirSync(join(set.path, set.version));
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(set.dir, name);
    if (keep.has(name)) continue;
    try {
      if (!lstatSync(path).isSymbolicLink() || readlinkSync(path) !== memberLink(set.name, path)) continue;
    } catch {
      continue;
    }
    const temp = join(set.dir, `.${name}${TEMP_MARKER}${randomSuffix()}`);
    copyWithOwner(path, temp);
    renameSync(temp, path);
  }
}

/**
 * Migration: a version holding (as hard links, same inodes) exactly what the members show now, made current,
 * then every member that is a plain file or a foreign symlink is replaced by our symlink. Readers see the same
 * bytes throughout; afterwards the set swaps like any other.
 */
export function adopt(set: FileSet, backup: SetBackup): void {
  const version = `v-adopted-${randomSuffix()}`;
  const folder = join(set.path, version);
  makeFolder(folder, set.dirMode);
  try {
    for (const p of set.members) {
      if (p.state === 'missing') continue;
      const to = join(folder, basename(p.path));
      if (p.state === 'foreign') {
        copyWithOwner(p.path, to); // a file outside the set: never share its inode
      } else {
        const from = p.state === 'link' ? realpathSync(p.path) : p.path;
        try {
          linkSync(from, to);
        } catch {
          copyWithOwner(from, to);
        }
      }
      // once converted, the member's path is a symlink: link the new version from the adopted file
      if (p.source) p.source = to;
    }
    fsyncDir(folder);
    fsyncDir(set.path);
    swapCurrent(set.path, version);
  } catch (error) {
    removeTree(folder);
    throw error;
  }
  fsyncDir(set.path);
  if (set.version) backup.superseded.push(join(set.path, set.version));
  set.version = version;
  backup.previous = version;
  const converted = set.members.filter((p) => p.state === 'file' || p.state === 'foreign');
  for (const p of converted) {
    renameSync(tempSymlink(memberLink(set.name, p.path), p.path), p.path);
    p.state = 'link';
  }
  if (converted.length > 0) fsyncDir(set.dir);
}

/** A set's new version name: the serial's first hex digits and a random part. */
function versionName(material: Material): string {
  return `v-${
    material.serial
      .toLowerCase()
      .replace(/[^0-9a-f]/g, '')
      .slice(0, 16) || 'x'
  }-${randomSuffix()}`;
}

/** The new version folder, complete and synced (now, or at `sync`'s flush), and the temp symlinks whose renames will publish it. */
export function prepareSet(set: FileSet, material: Material, backup: SetBackup, sync: SyncBatch): void {
  const version = versionName(material);
  const folder = join(set.path, version);
  makeFolder(folder, set.dirMode);
  backup.next = version;
  for (const p of set.members) {
    const to = join(folder, basename(p.path));
    if (p.source) {
      try {
        linkSync(p.source, to);
        continue;
      } catch {
        // another file system or a link not allowed: write it
      }
    }
    sync.writeNewFile(to, p);
  }
  sync.dir(folder);
  backup.swapTemp = tempSymlink(version, join(set.path, CURRENT));
  for (const p of set.members) {
    if (p.state === 'missing') backup.linkTemps.push([tempSymlink(memberLink(set.name, p.path), p.path), p.path]);
  }
  sync.dir(set.path);
}

/**
 * prepareSet with its folder, files and symlinks made on libuv's thread pool, so that many sets are prepared
 * at once (deployMany): the same steps in the same order, on the same paths.
 */
export async function prepareSetAsync(
  set: FileSet,
  material: Material,
  backup: SetBackup,
  sync: SyncBatch,
): Promise<void> {
  const version = versionName(material);
  const folder = join(set.path, version);
  await makeFolderAsync(folder, set.dirMode);
  backup.next = version;
  for (const p of set.members) {
    const to = join(folder, basename(p.path));
    if (p.source) {
      try {
        await link(p.source, to);
        continue;
      } catch {
        // another file system or a link not allowed: write it
      }
    }
    await sync.writeNewFileAsync(to, p);
  }
  sync.dir(folder);
  backup.swapTemp = await tempSymlinkAsync(version, join(set.path, CURRENT));
  for (const p of set.members) {
    if (p.state === 'missing')
      backup.linkTemps.push([await tempSymlinkAsync(memberLink(set.name, p.path), p.path), p.path]);
  }
  sync.dir(set.path);
}

export function publishSet(s: SetBackup): void {
  renameSync(s.swapTemp!, join(s.path, CURRENT));
  s.swapTemp = null;
  for (const [temp, path] of s.linkTemps) {
    renameSync(temp, path);
    s.links.push(path);
  }
  s.linkTemps = [];
}

/** Before anything was published: the new version and temp symlinks go; an adopted version stays current. */
export function abortSet(s: SetBackup): void {
  if (s.swapTemp) tryUnlink(s.swapTemp);
  for (const [temp] of s.linkTemps) tryUnlink(temp);
  if (s.next) removeTree(join(s.path, s.next));
  for (const folder of s.superseded) removeTree(folder);
  if (s.created && !s.previous) removeTree(s.path);
}

/** Points `current` back at the previous version (or removes what a first deploy created). */
export function restoreSet(s: SetBackup): void {
  for (const path of s.links) tryUnlink(path);
  s.links = [];
  if (!s.swapTemp) {
    if (s.previous) swapCurrent(s.path, s.previous);
    else tryUnlink(join(s.path, CURRENT));
    fsyncDir(s.path);
  }
  abortSet(s);
}

/** For a member of a file set (our symlink): what a killed deploy left in the set folder. */
export function setLeftovers(path: string): string[] {
  let text: string;
  try {
    if (!lstatSync(path).isSymbolicLink()) return [];
    text = readlinkSync(path);
  } catch {
    return [];
  }
  const match = /^(\.mcpki-set-[^/]+)\/current\/[^/]+$/.exec(text);
  try {
    return match ? inspectSet(dirname(path), match[1]!).stale : [];
  } catch {
    return [];
  }
}
