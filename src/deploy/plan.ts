// Step 0 of a deploy (see deploy.ts): every target rendered in memory and compared with the disk, its owner
// resolved, and the set types sharing a folder grouped into file sets.
import { readFileSync, realpathSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { McpkiError } from '../errors.js';
import { assertSafeDir, isTrustedOwner, lstatOrNull, unsafe } from '../fs/safe-path.js';
import { staleBackups } from './backup.js';
import { statOrNull, writeFailed } from '../fs/files.js';
import {
  inspectMember,
  inspectSet,
  isFolder,
  memberLink,
  SET_PREFIX,
  SET_TYPES,
  setFolderMode,
  setNameOf,
  validSetName,
} from './fileset.js';
import { checkOwnership, hasModeAndOwner, resolveId } from './owners.js';
import { renderTarget, targetUpToDate, validateTarget } from './targets.js';
import type { DirChecks, FileSet, LeftoverListings, Material, PathState, Plan, Target } from './types.js';

/**
 * In a folder others may write in (sticky, like /tmp), what already sits at a target's path must be ours,
 * root's or the target owner's: a file or symlink another user planted there is refused, not adopted.
 */
function assertNotPlanted(path: string, uid: number | undefined): void {
  const stat = lstatOrNull(path);
  if (!stat || isTrustedOwner(stat.uid) || (stat.uid === uid && !stat.isSymbolicLink())) return;
  const kind = stat.isSymbolicLink() ? 'a symlink' : stat.isFile() ? 'a file' : 'an entry';
  throw unsafe(
    path,
    `target is ${kind} owned by uid ${stat.uid} in a folder others can write`,
    `remove ${path} after checking it, or deploy into a folder only this user or root can write`,
  );
}

/**
 * Every folder on the way to every target (fs/safe-path.ts), before anything is read or written. Returns the
 * target folders that others may write in (sticky, like /tmp), where planted entries must be refused. With
 * `checked`, a folder already checked in this chunk of certificates is not walked again.
 */
function checkTargetDirs(targets: readonly Target[], checked?: DirChecks): Set<string> {
  const sharedDirs = new Set<string>();
  for (const dir of new Set(targets.map((target) => dirname(resolve(target.path))))) {
    let shared = checked?.get(dir);
    if (shared === undefined) {
      const real = assertSafeDir(dir, `a folder on the way to ${dir}`);
      const stat = lstatOrNull(real);
      shared = !!stat && (stat.mode & 0o022) !== 0;
      checked?.set(dir, shared);
    }
    if (shared) sharedDirs.add(dir);
  }
  return sharedDirs;
}

/**
 * The checks of plan() that need no certificate, for certificate `name`'s targets: each target's fields, every
 * folder on the way, entries another user planted at a target's path, and the set folder, its version folders
 * and `current` link where they exist. Run before a certificate is issued, so that a target the deploy would
 * refuse (UNSAFE_PATH) is found before anything is issued or recorded. Reads only.
 */
export function checkTargets(targets: readonly Target[], name: string, checked?: DirChecks): void {
  for (const target of targets) validateTarget(target);
  const sharedDirs = checkTargetDirs(targets, checked);
  const ids = new Map<string, number>();
  const setDirs = new Set<string>();
  for (const target of targets) {
    const path = resolve(target.path);
    const uid = resolveId(target.owner, 'passwd', path, ids);
    resolveId(target.group, 'group', path, ids);
    if (sharedDirs.has(dirname(path))) assertNotPlanted(path, uid);
    if (SET_TYPES.has(target.type)) setDirs.add(dirname(path));
  }
  if (!validSetName({ name } as Material)) return;
  for (const dir of setDirs) inspectSet(dir, SET_PREFIX + name);
}

export function plan(
  targets: readonly Target[],
  material: Material,
  listings?: LeftoverListings,
  checked?: DirChecks,
): { plans: Plan[]; sets: FileSet[] } {
  const seen = new Set<string>();
  const ids = new Map<string, number>();
  const setTypesPerDir = new Map<string, number>();
  for (const target of targets) {
    validateTarget(target);
    const path = resolve(target.path);
    if (seen.has(path))
      throw new McpkiError(
        'INVALID_INPUT',
        `certificate ${material.name}: two targets write ${path}`,
        'give every target its own path',
      );
    seen.add(path);
    if (SET_TYPES.has(target.type)) setTypesPerDir.set(dirname(path), (setTypesPerDir.get(dirname(path)) ?? 0) + 1);
  }
  const setName = [...setTypesPerDir.values()].some((count) => count >= 2) ? setNameOf(material) : '';
  // every folder on the way to every target, before anything is read or written (fs/safe-path.ts)
  const sharedDirs = checkTargetDirs(targets, checked);
  const sets = new Map<string, FileSet>();
  const plans = targets.map((target): Plan => {
    const path = resolve(target.path);
    const dir = dirname(path);
    const uid = resolveId(target.owner, 'passwd', path, ids);
    const gid = resolveId(target.group, 'group', path, ids);
    checkOwnership(path, uid, gid);
    if (sharedDirs.has(dir)) assertNotPlanted(path, uid);
    const rendered = renderTarget(target, material);
    const inSet = SET_TYPES.has(target.type) && (setTypesPerDir.get(dir) ?? 0) >= 2;
    let set: FileSet | undefined;
    let state: PathState;
    let stat: Stats | null;
    const stale = staleBackups(path, listings);
    if (inSet) {
      set = sets.get(dir);
      if (!set) {
        set = {
          dir,
          name: setName,
          path: join(dir, setName),
          members: [],
          dirMode: 0o700,
          changed: false,
          ...inspectSet(dir, setName),
        };
        sets.set(dir, set);
      }
      ({ state, stat } = inspectMember(path, memberLink(setName, path)));
    } else {
      stat = statOrNull(path);
      if (stat?.isDirectory()) throw new McpkiError('WRITE_FAILED', `target ${path} is a folder`, 'give a file path');
      state = stat ? 'file' : 'missing';
    }
    let upToDate = false;
    if (stat && stale.length === 0 && hasModeAndOwner(stat, rendered.mode, uid, gid)) {
      let existing: Buffer;
      try {
        existing = readFileSync(path);
      } catch (error) {
        throw writeFailed(path, error, 'read');
      }
      upToDate = targetUpToDate(target, material, rendered, existing);
    }
    const p: Plan = {
      target,
      path,
      data: rendered.data,
      mode: rendered.mode,
      uid,
      gid,
      existed: state !== 'missing',
      stale,
      changed: !upToDate,
      state,
      source: null,
      set,
    };
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
      const set: FileSet = {
        dir,
        name,
        path: join(dir, name),
        members: [],
        dirMode: 0o700,
        changed: true,
        dissolve: true,
        ...inspectSet(dir, name),
      };
      for (const p of plans) if (dirname(p.path) === dir && SET_TYPES.has(p.target.type)) p.changed = true;
      sets.set(dir, set);
    }
  }
  return { plans, sets: [...sets.values()] };
}
