// Deploying one certificate to its targets as a set, with reload hooks, the verify probe and rollback.
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
//
// Order of operations in deployTargets (one certificate, all its targets):
//   0. render every target in memory; compare with the disk (content, mode, and owner/group when given,
//      following symlinks; a set member must also be our symlink); nothing identical is touched, so a second
//      run changes nothing (no new version, mtimes included).
//   1. create missing parent folders (0700, chowned like the target that needs them);
//   2. single files (`combined`, `p12`, `k8s-secret`, and set types alone in their folder) go to a temp file
//      `.NAME.mcpki-tmp-…` in their own folder: O_EXCL, fchmod to the final mode, fchown, write, fsync.
//      Each changed set gets a new version folder: unchanged members are hard-linked from the current version
//      (same inode, mtime kept), the others written like temp files; then a temp symlink to it
//      (`.current.mcpki-tmp-…`) and temp symlinks for members that do not exist yet, then fsyncs.
//      Migration comes first when a member is a plain file (or a symlink of someone else's): its bytes are
//      hard-linked (or copied) into a `v-adopted-…` version made current, then our symlink is renamed over
//      it — readers see the same bytes throughout. Members no longer declared keep their last content as
//      plain files.
//   3. every single file about to be replaced is hard-linked to `.NAME.mcpki-prev-…` (the same inode, so the
//      old bytes, mode and owner are kept exactly), then the folders are fsynced;
//   4. all renames, back to back (no I/O but rename(2) between them): each set's `current`, the symlinks of
//      new members, the single files; then the folders are fsynced;
//   5. the previous versions and `.mcpki-prev-` links are removed — by deployTargets, or after the hooks and
//      verify succeeded (deployWithHooks), or put back to roll back (restoreBackup: `current` points at the
//      previous version again).
//
// Crash guarantee (kill -9 at any moment): every single file is either its complete old or its complete new
// version (rename is atomic), so a `combined`, `p12` or `k8s-secret` target, which holds key and certificate
// in one file, is always a matching pair; and the files of a set always come from one version, so separate
// `cert` + `key` (+ `chain`, `fullchain`) files in one folder always match. Strict layouts: every such target
// of the certificate in one folder (or each folder's files matching among themselves). Not strict: a
// certificate's cert and key in different folders (e.g. /etc/ssl/certs and /etc/ssl/private): they are single
// files, renamed one after the other in step 4, and can mismatch when the process dies between those renames.
// A killed deploy leaves evidence the next deploy acts on: `.mcpki-prev-` links next to single files, and
// version folders or temp symlinks in a set folder besides `current` and its version. The next deployTargets
// treats those targets as changed even when their content already matches, rewrites them (a new version for a
// set), reports them in `recovered` (so deployWithHooks reruns the reload hooks the killed run may never have
// run), and then removes the leftovers. `repairCheck` reports on-disk cert/key mismatches and interrupted
// deploys without writing anything. Assumes one deployer per target at a time (the caller holds the home's
// lock).
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { McpkiError } from '../errors.js';
import { TEMP_MARKER } from './atomic.js';
import { describeHookResult, hookFailed, runHook, type HookResult } from './hooks.js';
import { readTargetContents, renderTarget, spkiDer, targetUpToDate, validateTarget, type Material, type Target } from './targets.js';
import { verifyServedSerial, type VerifyResult } from './verify.js';

export const PREV_MARKER = '.mcpki-prev-';
/** `.mcpki-set-NAME`: the folder of certificate NAME's file set, next to its targets */
export const SET_PREFIX = '.mcpki-set-';
const CURRENT = 'current';
const VERSION_NAME = /^v-[A-Za-z0-9-]+$/;
/** target types that form a file set when two or more of them share a folder */
const SET_TYPES: ReadonlySet<Target['type']> = new Set(['cert', 'key', 'chain', 'fullchain']);
export const DEFAULT_HOOK_TIMEOUT_MS = 60_000;

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

export interface DeployResult {
  /** target paths whose content (or mode/owner) was written */
  changed: string[];
  unchanged: string[];
  /** the subset of `changed` that did not exist before */
  created: string[];
  /** the subset of `changed` an interrupted earlier deploy left behind (rewritten even if identical) */
  recovered: string[];
  /** present only with keepBackup and when something changed */
  backup?: DeployBackup;
}

export interface DeployOptions {
  /** keep the `.mcpki-prev-` links for a later restoreBackup/discardBackup (deployWithHooks does) */
  keepBackup?: boolean;
  /**
   * Folder listings shared by the deploys of one run that holds the home's lock (apply): leftovers can then
   * only predate the run, and each folder is listed once instead of once per certificate.
   */
  listings?: LeftoverListings;
}

/** Leftover names (`-prev-` links, temp files) per folder. */
export type LeftoverListings = Map<string, Set<string>>;

/** One set's swap: what publishing it needs and what undoing it needs. */
export interface SetBackup {
  /** the set folder */
  path: string;
  dir: string;
  /** this deploy created the set folder */
  created: boolean;
  /** the version `current` pointed at before the swap (after a migration: the adopted one), or null */
  previous: string | null;
  /** the new version */
  next: string | null;
  /** the temp symlink renamed over `current`; null once published */
  swapTemp: string | null;
  /** temp symlinks and the member paths (missing before) they are renamed over */
  linkTemps: [string, string][];
  /** member symlinks this deploy created (removed on rollback) */
  links: string[];
  /** versions replaced by an adopted one with the same inodes: removed on success and on rollback */
  superseded: string[];
  /** versions and temp symlinks an interrupted earlier deploy left: removed on success, kept on rollback */
  stale: string[];
}

/** missing; a plain file; our symlink into the set; a symlink someone else made */
type PathState = 'missing' | 'file' | 'link' | 'foreign';

interface Plan {
  target: Target;
  path: string;
  data: Buffer;
  mode: number;
  uid: number | undefined;
  gid: number | undefined;
  existed: boolean;
  stale: string[];
  changed: boolean;
  state: PathState;
  /** set members: a file already holding exactly these bytes, mode and owner (hard-linked into a new version) */
  source: string | null;
  set?: FileSet;
}

interface FileSet {
  /** the targets' folder */
  dir: string;
  /** `.mcpki-set-NAME` */
  name: string;
  path: string;
  exists: boolean;
  /** the version `current` points at */
  version: string | null;
  /** leftovers of killed runs in the set folder */
  stale: string[];
  members: Plan[];
  dirMode: number;
  changed: boolean;
  /** fewer than two of the certificate's set types remain in this folder: release the set */
  dissolve?: boolean;
}

function errnoCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'error';
}

function writeFailed(path: string, error: unknown, what = 'write'): McpkiError {
  return new McpkiError('WRITE_FAILED', `cannot ${what} ${path} (${errnoCode(error)})`, 'check that the folder is writable and the disk is not full; the previous files were left in place', { cause: error });
}

function tryUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null;
    throw writeFailed(path, error, 'read');
  }
}

// ---- owners -------------------------------------------------------------------------------------------

function getentId(database: 'passwd' | 'group', name: string): number | undefined {
  const result = spawnSync('getent', [database, name], { encoding: 'utf8' });
  if (result.status === 0) {
    const id = Number(result.stdout.split('\n')[0]!.split(':')[2]);
    if (Number.isInteger(id)) return id;
  }
  if (database === 'passwd') {
    const fallback = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    if (fallback.status === 0 && /^\d+\s*$/.test(fallback.stdout)) return Number(fallback.stdout.trim());
  }
  return undefined;
}

function resolveId(value: string | number | undefined, database: 'passwd' | 'group', path: string, cache: Map<string, number>): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' || /^\d+$/.test(value)) {
    const id = Number(value);
    if (!Number.isInteger(id) || id < 0) throw new McpkiError('INVALID_INPUT', `target ${path}: ${value} is not a valid ${database === 'passwd' ? 'uid' : 'gid'}`, 'give a name or a non-negative number');
    return id;
  }
  const key = `${database}:${value}`;
  let id = cache.get(key);
  if (id === undefined) {
    id = getentId(database, value);
    if (id === undefined) {
      throw new McpkiError('INVALID_INPUT', `target ${path}: no such ${database === 'passwd' ? 'user' : 'group'} ${JSON.stringify(value)}`, `create the ${database === 'passwd' ? 'user' : 'group'} or fix the name`);
    }
    cache.set(key, id);
  }
  return id;
}

function checkOwnership(path: string, uid: number | undefined, gid: number | undefined): void {
  const myUid = process.getuid?.();
  if (myUid === undefined || myUid === 0) return;
  if (uid !== undefined && uid !== myUid) {
    throw new McpkiError('INVALID_INPUT', `target ${path}: owner ${uid} needs root (running as uid ${myUid})`, 'run mcpki as root, or remove owner from the target');
  }
  if (gid !== undefined && gid !== process.getgid?.() && !(process.getgroups?.() ?? []).includes(gid)) {
    throw new McpkiError('INVALID_INPUT', `target ${path}: group ${gid} needs root or membership of that group`, 'run mcpki as root, or remove group from the target');
  }
}

// ---- planning ---------------------------------------------------------------------------------------

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

function staleBackups(path: string, listings?: LeftoverListings): string[] {
  const prefix = `.${basename(path)}${PREV_MARKER}`;
  return [...leftovers(dirname(path), listings)].filter((name) => name.startsWith(prefix)).map((name) => join(dirname(path), name));
}

function removeStaleTempsFor(path: string, listings?: LeftoverListings): void {
  const prefix = `.${basename(path)}${TEMP_MARKER}`;
  const names = leftovers(dirname(path), listings);
  for (const name of [...names]) {
    if (!name.startsWith(prefix)) continue;
    tryUnlink(join(dirname(path), name));
    names.delete(name);
  }
}

function validSetName(material: Material): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(material.name) && !material.name.includes('..');
}

function setNameOf(material: Material): string {
  if (!validSetName(material)) {
    throw new McpkiError('INVALID_INPUT', `certificate name ${JSON.stringify(material.name)} cannot name the folder of its file set`, 'use letters, digits, ".", "_" and "-"');
  }
  return `${SET_PREFIX}${material.name}`;
}

/** What a file set's folder holds now: the version `current` points at and what killed runs left. */
function inspectSet(dir: string, name: string): Pick<FileSet, 'exists' | 'version' | 'stale'> {
  const path = join(dir, name);
  let entries: string[];
  try {
    entries = readdirSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { exists: false, version: null, stale: [] };
    throw new McpkiError('WRITE_FAILED', `cannot read ${path} (${errnoCode(error)})`, `${path} holds the files of a certificate's set; it must be a folder mcpki can read`, { cause: error });
  }
  let version: string | null = null;
  if (entries.includes(CURRENT)) {
    const current = join(path, CURRENT);
    if (!lstatSync(current).isSymbolicLink()) throw new McpkiError('WRITE_FAILED', `${current} is not a symlink`, `remove ${current}; the next deploy recreates it`);
    const text = readlinkSync(current);
    if (VERSION_NAME.test(text)) version = text;
  }
  const stale = entries.filter((entry) => entry !== CURRENT && entry !== version && (VERSION_NAME.test(entry) || entry.includes(TEMP_MARKER)));
  return { exists: true, version, stale: stale.map((entry) => join(path, entry)) };
}

/** A set member's path: missing, a regular file, our symlink into the set, or something else (a foreign symlink). */
function inspectMember(path: string, link: string): { state: PathState; stat: Stats | null } {
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
function setFolderMode(members: readonly Plan[]): number {
  return members.every((p) => (p.mode & 0o077) === 0 && p.uid === undefined && p.gid === undefined) ? 0o700 : 0o711;
}

function plan(targets: readonly Target[], material: Material, listings?: LeftoverListings): { plans: Plan[]; sets: FileSet[] } {
  const seen = new Set<string>();
  const ids = new Map<string, number>();
  const setTypesPerDir = new Map<string, number>();
  for (const target of targets) {
    validateTarget(target);
    const path = resolve(target.path);
    if (seen.has(path)) throw new McpkiError('INVALID_INPUT', `certificate ${material.name}: two targets write ${path}`, 'give every target its own path');
    seen.add(path);
    if (SET_TYPES.has(target.type)) setTypesPerDir.set(dirname(path), (setTypesPerDir.get(dirname(path)) ?? 0) + 1);
  }
  const setName = [...setTypesPerDir.values()].some((count) => count >= 2) ? setNameOf(material) : '';
  const sets = new Map<string, FileSet>();
  const plans = targets.map((target): Plan => {
    const path = resolve(target.path);
    const dir = dirname(path);
    const uid = resolveId(target.owner, 'passwd', path, ids);
    const gid = resolveId(target.group, 'group', path, ids);
    checkOwnership(path, uid, gid);
    const rendered = renderTarget(target, material);
    const inSet = SET_TYPES.has(target.type) && (setTypesPerDir.get(dir) ?? 0) >= 2;
    let set: FileSet | undefined;
    let state: PathState;
    let stat: Stats | null;
    const stale = staleBackups(path, listings);
    if (inSet) {
      set = sets.get(dir);
      if (!set) {
        set = { dir, name: setName, path: join(dir, setName), members: [], dirMode: 0o700, changed: false, ...inspectSet(dir, setName) };
        sets.set(dir, set);
      }
      ({ state, stat } = inspectMember(path, memberLink(setName, path)));
    } else {
      stat = statOrNull(path);
      if (stat?.isDirectory()) throw new McpkiError('WRITE_FAILED', `target ${path} is a folder`, 'give a file path');
      state = stat ? 'file' : 'missing';
    }
    let upToDate = false;
    if (stat && stale.length === 0 && (stat.mode & 0o7777) === rendered.mode && (uid === undefined || stat.uid === uid) && (gid === undefined || stat.gid === gid)) {
      let existing: Buffer;
      try {
        existing = readFileSync(path);
      } catch (error) {
        throw writeFailed(path, error, 'read');
      }
      upToDate = targetUpToDate(target, material, rendered, existing);
    }
    const p: Plan = { target, path, data: rendered.data, mode: rendered.mode, uid, gid, existed: state !== 'missing', stale, changed: !upToDate, state, source: null, set };
    if (set) {
      // the real file already holds exactly this: the new version links it instead of writing it again
      if (upToDate) p.source = state === 'link' ? realpathSync(path) : state === 'file' ? path : null;
      p.changed = p.changed || state !== 'link' || set.stale.length > 0;
      set.members.push(p);
    }
    return p;
  });
  for (const set of sets.values()) {
    set.dirMode = setFolderMode(set.members);
    set.changed = set.members.some((p) => p.changed);
  }
  // a folder that held a set of this certificate and now has fewer than two of its files: the set is dissolved
  if (validSetName(material)) {
    const name = SET_PREFIX + material.name;
    for (const [dir, count] of setTypesPerDir) {
      if (count >= 2 || !isFolder(join(dir, name))) continue;
      const set: FileSet = { dir, name, path: join(dir, name), members: [], dirMode: 0o700, changed: true, dissolve: true, ...inspectSet(dir, name) };
      for (const p of plans) if (dirname(p.path) === dir && SET_TYPES.has(p.target.type)) p.changed = true;
      sets.set(dir, set);
    }
  }
  return { plans, sets: [...sets.values()] };
}

function isFolder(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The text of a member's symlink: relative, so the folder can be moved or mounted elsewhere as a whole. */
function memberLink(setName: string, path: string): string {
  return `${setName}/${CURRENT}/${basename(path)}`;
}

/** Missing folders from the outermost down. */
function missingDirs(dir: string): string[] {
  const missing: string[] = [];
  for (let current = dir; statOrNull(current) === null; current = dirname(current)) {
    missing.unshift(current);
    if (dirname(current) === current) break;
  }
  return missing;
}

function createDirs(plans: readonly Plan[], created: string[]): void {
  for (const p of plans) {
    for (const dir of missingDirs(dirname(p.path))) {
      try {
        mkdirSync(dir, { mode: 0o700 });
      } catch (error) {
        if (errnoCode(error) === 'EEXIST') continue;
        throw writeFailed(dir, error, 'create the folder');
      }
      created.push(dir);
      if (p.uid !== undefined || p.gid !== undefined) chownSync(dir, p.uid ?? -1, p.gid ?? -1);
    }
  }
}

function randomSuffix(): string {
  return randomBytes(6).toString('hex');
}

/** Creates `path` with O_EXCL, owner and final mode set before a byte is written, then the data, fsynced. */
function writeNewFile(path: string, p: Pick<Plan, 'data' | 'mode' | 'uid' | 'gid'>): void {
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

function writeTemp(p: Plan): string {
  const temp = join(dirname(p.path), `.${basename(p.path)}${TEMP_MARKER}${randomSuffix()}`);
  writeNewFile(temp, p);
  return temp;
}

/** A copy of `from` (followed) at `to` with the same bytes, mode and owner, fsynced. */
function copyWithOwner(from: string, to: string): void {
  const stat = statSync(from);
  const uid = stat.uid === process.getuid?.() ? undefined : stat.uid;
  const gid = stat.gid === process.getgid?.() ? undefined : stat.gid;
  writeNewFile(to, { data: readFileSync(from), mode: stat.mode & 0o7777, uid, gid });
}

/** Keeps the file at `path` reachable as a `.mcpki-prev-` sibling: a hard link, or a copy where links fail. */
function keepPrevious(path: string): string {
  const previous = join(dirname(path), `.${basename(path)}${PREV_MARKER}${randomSuffix()}`);
  try {
    linkSync(path, previous);
  } catch (error) {
    if (lstatSync(path).isSymbolicLink()) throw error;
    copyWithOwner(path, previous);
  }
  return previous;
}

function syncDirs(paths: readonly string[]): void {
  for (const dir of new Set(paths.map((path) => dirname(path)))) fsyncDir(dir);
}

/** Removes a set's version folder (its files are hard links or private copies; nothing else points into it). */
function removeTree(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

function makeFolder(path: string, mode: number): void {
  mkdirSync(path, { mode: 0o700 });
  if (mode !== 0o700) chmodSync(path, mode); // after the files are complete would be no safer: nothing points here yet
}

/** A symlink at a fresh temp name next to `path`, to be renamed over it. */
function tempSymlink(text: string, path: string): string {
  const temp = join(dirname(path), `.${basename(path)}${TEMP_MARKER}${randomSuffix()}`);
  symlinkSync(text, temp);
  return temp;
}

/** Points the set's `current` at `version` with one rename(2). */
function swapCurrent(setPath: string, version: string): void {
  renameSync(tempSymlink(version, join(setPath, CURRENT)), join(setPath, CURRENT));
}

/**
 * Targets the set no longer declares but whose symlinks still point into it keep their last content as plain
 * files (what they were before sets existed), so no service is left with a dangling path.
 */
function releaseDropped(set: FileSet): void {
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
function adopt(set: FileSet, backup: SetBackup): void {
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

/** The new version folder, complete and synced, and the temp symlinks whose renames will publish it. */
function prepareSet(set: FileSet, material: Material, backup: SetBackup): void {
  const version = `v-${material.serial.toLowerCase().replace(/[^0-9a-f]/g, '').slice(0, 16) || 'x'}-${randomSuffix()}`;
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
    writeNewFile(to, p);
  }
  fsyncDir(folder);
  backup.swapTemp = tempSymlink(version, join(set.path, CURRENT));
  for (const p of set.members) {
    if (p.state === 'missing') backup.linkTemps.push([tempSymlink(memberLink(set.name, p.path), p.path), p.path]);
  }
  fsyncDir(set.path);
}

/**
 * Writes every target of one certificate whose bytes, mode or owner differ from `material`, as a set (see
 * the order of operations at the top of this file). Throws WRITE_FAILED with every target as it was before
 * (or, after a migration, showing the same bytes through symlinks) when any step up to the renames fails.
 */
export function deployTargets(targets: readonly Target[], material: Material, options: DeployOptions = {}): DeployResult {
  const { plans, sets } = plan(targets, material, options.listings);
  const changed = plans.filter((p) => p.changed);
  const result: DeployResult = {
    changed: changed.map((p) => p.path),
    unchanged: plans.filter((p) => !p.changed).map((p) => p.path),
    created: changed.filter((p) => !p.existed).map((p) => p.path),
    recovered: changed.filter((p) => p.stale.length > 0 || (p.set?.stale.length ?? 0) > 0).map((p) => p.path),
  };
  if (changed.length === 0) return result;

  const singles = changed.filter((p) => !p.set);
  const live = sets.filter((s) => s.changed && !s.dissolve);
  const backup: DeployBackup = { entries: [], createdDirs: [], stale: changed.flatMap((p) => p.stale), sets: [], listings: options.listings };
  const temps: string[] = [];
  const abort = (error: McpkiError): McpkiError => {
    temps.forEach(tryUnlink);
    for (const entry of backup.entries) if (entry.previous) tryUnlink(entry.previous);
    for (const s of backup.sets) abortSet(s);
    removeCreatedDirs(backup.createdDirs);
    return error;
  };

  // 1 + 2: folders, temp files, new set versions
  for (const p of changed) removeStaleTempsFor(p.path, options.listings);
  try {
    createDirs(changed, backup.createdDirs);
  } catch (error) {
    throw abort(error instanceof McpkiError ? error : writeFailed(dirname(changed[0]!.path), error, 'create the folder for'));
  }
  for (const p of singles) {
    try {
      temps.push(writeTemp(p));
    } catch (error) {
      throw abort(writeFailed(p.path, error));
    }
  }
  for (const set of live) {
    const s: SetBackup = { path: set.path, dir: set.dir, created: false, previous: set.version, next: null, swapTemp: null, linkTemps: [], links: [], superseded: [], stale: set.stale };
    backup.sets.push(s);
    try {
      if (!set.exists) {
        makeFolder(set.path, set.dirMode);
        s.created = true;
      } else if ((statSync(set.path).mode & 0o7777) !== set.dirMode) {
        chmodSync(set.path, set.dirMode);
      }
      releaseDropped(set);
      if (set.members.some((p) => p.state === 'file' || p.state === 'foreign')) adopt(set, s);
      prepareSet(set, material, s);
    } catch (error) {
      throw abort(error instanceof McpkiError ? error : writeFailed(set.path, error, 'prepare the new files in'));
    }
  }
  // 3: links to the single files about to be replaced
  for (const p of singles) {
    try {
      backup.entries.push({ path: p.path, previous: p.existed ? keepPrevious(p.path) : null });
    } catch (error) {
      throw abort(writeFailed(p.path, error, 'keep a copy of'));
    }
  }
  try {
    syncDirs([...singles.map((p) => p.path), ...backup.sets.flatMap((s) => s.linkTemps.map(([temp]) => temp))]);
  } catch (error) {
    throw abort(writeFailed(dirname(changed[0]!.path), error, 'sync'));
  }
  // 4: the renames, back to back: each set's `current` (every file of the set at once), new members'
  // symlinks, then the single files
  let swapped = 0;
  let renamed = 0;
  try {
    for (; swapped < backup.sets.length; swapped++) publishSet(backup.sets[swapped]!);
    for (; renamed < singles.length; renamed++) renameSync(temps[renamed]!, singles[renamed]!.path);
  } catch (error) {
    const failed = renamed < singles.length && swapped === backup.sets.length ? singles[renamed]!.path : backup.sets[swapped]?.path ?? '';
    restoreEntries(backup.entries.slice(0, renamed));
    temps.slice(renamed).forEach(tryUnlink);
    for (const entry of backup.entries.slice(renamed)) if (entry.previous) tryUnlink(entry.previous);
    for (const s of backup.sets) restoreSet(s);
    removeCreatedDirs(backup.createdDirs);
    throw writeFailed(failed, error, 'rename into place');
  }
  syncDirs([...singles.map((p) => p.path), ...backup.sets.flatMap((s) => [join(s.path, CURRENT), ...s.links])]);
  backup.dissolved = sets.filter((s) => s.dissolve);
  // 5
  if (options.keepBackup) result.backup = backup;
  else discardBackup(backup);
  return result;
}

function publishSet(s: SetBackup): void {
  renameSync(s.swapTemp!, join(s.path, CURRENT));
  s.swapTemp = null;
  for (const [temp, path] of s.linkTemps) {
    renameSync(temp, path);
    s.links.push(path);
  }
  s.linkTemps = [];
}

/** Before anything was published: the new version and temp symlinks go; an adopted version stays current. */
function abortSet(s: SetBackup): void {
  if (s.swapTemp) tryUnlink(s.swapTemp);
  for (const [temp] of s.linkTemps) tryUnlink(temp);
  if (s.next) removeTree(join(s.path, s.next));
  for (const folder of s.superseded) removeTree(folder);
  if (s.created && !s.previous) removeTree(s.path);
}

/** Points `current` back at the previous version (or removes what a first deploy created). */
function restoreSet(s: SetBackup): void {
  for (const path of s.links) tryUnlink(path);
  s.links = [];
  if (!s.swapTemp) {
    if (s.previous) swapCurrent(s.path, s.previous);
    else tryUnlink(join(s.path, CURRENT));
    fsyncDir(s.path);
  }
  abortSet(s);
}

function restoreEntries(entries: readonly BackupEntry[]): void {
  for (const entry of [...entries].reverse()) {
    if (entry.previous) renameSync(entry.previous, entry.path);
    else tryUnlink(entry.path);
  }
}

function removeCreatedDirs(dirs: readonly string[]): void {
  for (const dir of [...dirs].reverse()) {
    try {
      rmdirSync(dir);
    } catch {
      // not empty (something else lives there now) or already gone
    }
  }
}

/** Puts every replaced file back (the same inode: bytes, mode, owner) and removes files the deploy created. */
export function restoreBackup(backup: DeployBackup): void {
  try {
    for (const s of [...backup.sets].reverse()) restoreSet(s);
    restoreEntries(backup.entries);
    syncDirs(backup.entries.map((entry) => entry.path));
  } catch (error) {
    throw new McpkiError('WRITE_FAILED', `cannot restore the previous files (${errnoCode(error)})`, `the previous versions are kept as .NAME${PREV_MARKER}… next to each target and as ${SET_PREFIX}NAME/v-… folders; rename them back by hand`, { cause: error });
  }
  removeCreatedDirs(backup.createdDirs);
}

/**
 * The deploy is final: removes the `.mcpki-prev-` links and previous set versions (and what an interrupted
 * earlier deploy left), and releases dissolved sets.
 */
export function discardBackup(backup: DeployBackup): void {
  for (const entry of backup.entries) if (entry.previous) tryUnlink(entry.previous);
  for (const path of backup.stale) {
    tryUnlink(path);
    for (const names of backup.listings?.values() ?? []) names.delete(basename(path));
  }
  for (const s of backup.sets) {
    if (s.previous && s.previous !== s.next) removeTree(join(s.path, s.previous));
    for (const path of [...s.superseded, ...s.stale]) removeTree(path);
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

// ---- repair check -------------------------------------------------------------------------------------

export interface RepairProblem {
  path: string;
  problem: string;
}

export interface RepairReport {
  ok: boolean;
  problems: RepairProblem[];
  /** targets with `.mcpki-prev-` links, or in a set with leftover versions, left by a killed deploy (the next deploy rewrites them) */
  interrupted: string[];
}

/** For a member of a file set (our symlink): what a killed deploy left in the set folder. */
function setLeftovers(path: string): string[] {
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

/**
 * Reads one certificate's targets from disk (through the symlinks of file sets), writes nothing, and reports
 * what a deploy must repair: missing or unreadable files, a private key that does not belong to the certificate next to it (in one file or
 * across the cert/key/fullchain files of the set), leaves with different serials, interrupted deploys.
 */
export function repairCheck(targets: readonly Target[]): RepairReport {
  const problems: RepairProblem[] = [];
  const interrupted: string[] = [];
  const leaves: { path: string; serial: string; spki: Buffer }[] = [];
  const keys: { path: string; spki: Buffer }[] = [];
  for (const target of targets) {
    const path = resolve(target.path);
    if (staleBackups(path).length > 0 || setLeftovers(path).length > 0) interrupted.push(path);
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (error) {
      problems.push({ path, problem: errnoCode(error) === 'ENOENT' ? 'missing' : `unreadable (${errnoCode(error)})` });
      continue;
    }
    try {
      const { leaf, key } = readTargetContents(target, data);
      const wantsLeaf = target.type !== 'key' && target.type !== 'chain';
      const wantsKey = target.type === 'key' || target.type === 'combined' || target.type === 'p12' || target.type === 'k8s-secret';
      if (wantsLeaf && !leaf) problems.push({ path, problem: 'no certificate in the file' });
      if (wantsKey && !key) problems.push({ path, problem: 'no private key in the file' });
      if (leaf) leaves.push({ path, serial: leaf.serialNumber, spki: spkiDer(leaf) });
      if (key) keys.push({ path, spki: spkiDer(key) });
      if (leaf && key && !spkiDer(leaf).equals(spkiDer(key))) problems.push({ path, problem: 'the private key does not match the certificate in the same file' });
    } catch (error) {
      problems.push({ path, problem: `cannot be parsed (${(error as Error).message})` });
    }
  }
  const first = leaves[0];
  for (const leaf of leaves.slice(1)) {
    if (first && leaf.serial !== first.serial) problems.push({ path: leaf.path, problem: `holds serial ${leaf.serial}, ${first.path} holds ${first.serial}` });
  }
  for (const key of keys) {
    for (const leaf of leaves) {
      if (key.path !== leaf.path && !key.spki.equals(leaf.spki)) problems.push({ path: key.path, problem: `the private key does not match the certificate in ${leaf.path}` });
    }
  }
  return { ok: problems.length === 0 && interrupted.length === 0, problems, interrupted };
}

// ---- hooks and verify -----------------------------------------------------------------------------------

export interface DeployHooks {
  /** commands as argv arrays, run in order without a shell */
  reload?: string[][];
  /** per hook (default 60 s) */
  timeoutMs?: number;
  /** host:port to probe after the hooks */
  verify?: string;
  /** how long the probe keeps trying to see the new serial (default 10 s) */
  verifyTimeoutMs?: number;
  verifyServername?: string;
}

export interface DeployOutcome {
  deploy: DeployResult;
  hooks: HookResult[];
  verified?: VerifyResult;
  rolledBack: boolean;
}

export interface DeployFailureDetails {
  /** the error code this failure will get once errors.ts has it */
  reason: 'DEPLOY_HOOK_FAILED' | 'DEPLOY_VERIFY_FAILED';
  rolledBack: boolean;
  deploy: DeployResult;
  hooks: HookResult[];
  /** the hooks run again after the previous files were restored */
  rollbackHooks: HookResult[];
  verified?: VerifyResult;
  rollbackError?: string;
}

export class DeployError extends McpkiError {
  readonly details: DeployFailureDetails;

  constructor(message: string, hint: string, details: DeployFailureDetails) {
    super(details.reason, message, hint);
    this.name = 'DeployError';
    this.details = details;
  }
}

function firstPath(targets: readonly Target[], type: Target['type']): string {
  const target = targets.find((t) => t.type === type);
  return target ? resolve(target.path) : '';
}

/** The environment every reload hook gets (laid over mcpki's own environment). */
export function hookEnvironment(targets: readonly Target[], material: Material, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...extra,
    MCPKI_CERT_NAME: material.name,
    MCPKI_SERIAL: material.serial,
    MCPKI_CERT_PATH: firstPath(targets, 'cert'),
    MCPKI_KEY_PATH: firstPath(targets, 'key'),
    MCPKI_FULLCHAIN_PATH: firstPath(targets, 'fullchain'),
    MCPKI_TARGETS: JSON.stringify(targets.map((t) => ({ type: t.type, path: resolve(t.path) }))),
    MCPKI_ROLLBACK: '0',
  };
}

/** The serial of the certificate currently on disk in the first readable certificate-bearing target. */
function serialOnDisk(targets: readonly Target[]): string {
  for (const target of targets) {
    if (target.type === 'key' || target.type === 'chain') continue;
    try {
      const leaf = readTargetContents(target, readFileSync(target.path)).leaf;
      if (leaf) return leaf.serialNumber;
    } catch {
      // missing or unreadable: try the next one
    }
  }
  return '';
}

/**
 * deployTargets, then — if anything changed — every reload hook in order, then the verify probe. When a hook
 * fails (non-zero exit, timeout, cannot start) or the probe does not see the new serial, the previous files
 * are restored, the hooks run again (MCPKI_ROLLBACK=1, MCPKI_SERIAL = the restored serial) so the service
 * reloads the old certificate, and a DeployError is thrown with `details.rolledBack`.
 */
export async function deployWithHooks(
  targets: readonly Target[],
  material: Material,
  hooks: DeployHooks = {},
  env: Record<string, string> = {},
  listings?: LeftoverListings,
): Promise<DeployOutcome> {
  const previousSerial = serialOnDisk(targets);
  const deploy = deployTargets(targets, material, { keepBackup: true, listings });
  const backup = deploy.backup;
  delete deploy.backup;
  if (!backup) return { deploy, hooks: [], rolledBack: false };

  const timeoutMs = hooks.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  const hookEnv = hookEnvironment(targets, material, env);
  const results: HookResult[] = [];
  let failure: { reason: DeployFailureDetails['reason']; message: string } | undefined;
  let verified: VerifyResult | undefined;
  try {
    for (const argv of hooks.reload ?? []) {
      const result = await runHook(argv, hookEnv, timeoutMs);
      results.push(result);
      if (hookFailed(result)) {
        failure = { reason: 'DEPLOY_HOOK_FAILED', message: `reload hook ${JSON.stringify(argv.join(' '))} for ${material.name} failed: ${describeHookResult(result)}` };
        break;
      }
    }
    if (!failure && hooks.verify) {
      const options: Parameters<typeof verifyServedSerial>[2] = { timeoutMs: hooks.verifyTimeoutMs ?? 10_000 };
      if (hooks.verifyServername) options.servername = hooks.verifyServername;
      verified = await verifyServedSerial(hooks.verify, material.serial, options);
      if (!verified.ok) failure = { reason: 'DEPLOY_VERIFY_FAILED', message: `verify ${hooks.verify} for ${material.name} failed: ${verified.error ?? 'the new serial is not served'}` };
    }
  } catch (error) {
    failure = { reason: 'DEPLOY_HOOK_FAILED', message: `reload hooks for ${material.name} failed: ${(error as Error).message}` };
  }

  if (!failure) {
    discardBackup(backup);
    const outcome: DeployOutcome = { deploy, hooks: results, rolledBack: false };
    if (verified) outcome.verified = verified;
    return outcome;
  }

  const details: DeployFailureDetails = { reason: failure.reason, rolledBack: false, deploy, hooks: results, rollbackHooks: [] };
  if (verified) details.verified = verified;
  try {
    restoreBackup(backup);
    details.rolledBack = true;
  } catch (error) {
    details.rollbackError = (error as Error).message;
  }
  if (details.rolledBack) {
    const rollbackEnv = { ...hookEnv, MCPKI_SERIAL: previousSerial, MCPKI_ROLLBACK: '1' };
    for (const argv of hooks.reload ?? []) details.rollbackHooks.push(await runHook(argv, rollbackEnv, timeoutMs));
  }
  const rollbackHookFailed = details.rollbackHooks.find(hookFailed);
  const hint = details.rolledBack
    ? rollbackHookFailed
      ? `the previous files were restored, but the hook failed again (${describeHookResult(rollbackHookFailed)}); check the service`
      : 'the previous files were restored and the hooks ran again; fix the hook or the service and run again'
    : `rollback failed too: ${details.rollbackError}`;
  throw new DeployError(`${failure.message}${details.rolledBack ? ' (rolled back)' : ''}`, hint, details);
}
