// Deploying one certificate to its targets as a set, with reload hooks, the verify probe and rollback.
//
// Order of operations in deployTargets (one certificate, all its targets):
//   0. render every target in memory; compare with the disk (content, mode, and owner/group when given);
//      nothing that is already identical is touched, so a second run changes nothing (mtimes included).
//   1. create missing parent folders (0700, chowned like the target that needs them);
//   2. every changed file goes to a temp file `.NAME.mcpki-tmp-…` in its own folder: O_EXCL, fchmod to the
//      final mode, fchown, write, fsync;
//   3. every file about to be replaced is hard-linked to `.NAME.mcpki-prev-…` (the same inode, so the old
//      bytes, mode and owner are kept exactly), then the folders are fsynced;
//   4. all renames, back to back (no I/O but rename(2) between them), then the folders are fsynced;
//   5. the `.mcpki-prev-` links are removed — by deployTargets, or after the hooks and verify succeeded
//      (deployWithHooks), or renamed back over the targets to roll back (restoreBackup).
//
// Crash guarantee (kill -9 at any moment): every single file is either its complete old or its complete new
// version (rename is atomic), so a `combined`, `p12` or `k8s-secret` target, which holds key and certificate
// in one file, is always a matching pair. Separate `cert` + `key` (+ `fullchain`) files cannot be replaced by
// one atomic operation: they can only mismatch when the process dies inside step 4, a window of a few
// rename(2) calls with nothing else in between. A killed deploy always leaves its `.mcpki-prev-` links (they
// are removed only after step 4 completed); the next deployTargets for the same targets sees them, treats
// those targets as changed even when their content already matches, rewrites them and reports them in
// `recovered` (so deployWithHooks reruns the reload hooks that the killed run may never have run), and then
// removes the links. `repairCheck` reports on-disk cert/key mismatches and interrupted deploys without
// writing anything. Assumes one deployer per target at a time (the caller holds the home's lock).
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  chownSync,
  closeSync,
  copyFileSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  statSync,
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

function plan(targets: readonly Target[], material: Material, listings?: LeftoverListings): Plan[] {
  const seen = new Set<string>();
  const ids = new Map<string, number>();
  for (const target of targets) {
    validateTarget(target);
    const path = resolve(target.path);
    if (seen.has(path)) throw new McpkiError('INVALID_INPUT', `certificate ${material.name}: two targets write ${path}`, 'give every target its own path');
    seen.add(path);
  }
  return targets.map((target) => {
    const path = resolve(target.path);
    const uid = resolveId(target.owner, 'passwd', path, ids);
    const gid = resolveId(target.group, 'group', path, ids);
    checkOwnership(path, uid, gid);
    const rendered = renderTarget(target, material);
    const stat = statOrNull(path);
    if (stat?.isDirectory()) throw new McpkiError('WRITE_FAILED', `target ${path} is a folder`, 'give a file path');
    const stale = staleBackups(path, listings);
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
    return { target, path, data: rendered.data, mode: rendered.mode, uid, gid, existed: stat !== null, stale, changed: !upToDate };
  });
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

function writeTemp(p: Plan): string {
  const temp = join(dirname(p.path), `.${basename(p.path)}${TEMP_MARKER}${randomBytes(6).toString('hex')}`);
  // O_EXCL and a 0600 start: no one else can open it before its final mode and owner are set
  const fd = openSync(temp, 'wx', 0o600);
  try {
    if (p.uid !== undefined || p.gid !== undefined) fchownSync(fd, p.uid ?? -1, p.gid ?? -1);
    fchmodSync(fd, p.mode); // explicit, so the umask does not change the configured mode
    writeSync(fd, p.data);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    tryUnlink(temp);
    throw error;
  }
  closeSync(fd);
  return temp;
}

/** Keeps the file at `path` reachable as a `.mcpki-prev-` sibling: a hard link, or a copy where links fail. */
function keepPrevious(path: string): string {
  const previous = join(dirname(path), `.${basename(path)}${PREV_MARKER}${randomBytes(6).toString('hex')}`);
  try {
    linkSync(path, previous);
  } catch (error) {
    if (lstatSync(path).isSymbolicLink()) throw error;
    copyFileSync(path, previous);
    const stat = statSync(path);
    chownSync(previous, stat.uid, stat.gid);
    const fd = openSync(previous, 'r');
    try {
      fchmodSync(fd, stat.mode & 0o7777);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  return previous;
}

function syncDirs(paths: readonly string[]): void {
  for (const dir of new Set(paths.map((path) => dirname(path)))) fsyncDir(dir);
}

/**
 * Writes every target of one certificate whose bytes, mode or owner differ from `material`, as a set (see
 * the order of operations at the top of this file). Throws WRITE_FAILED with every target as it was before
 * when any step up to the renames fails.
 */
export function deployTargets(targets: readonly Target[], material: Material, options: DeployOptions = {}): DeployResult {
  const plans = plan(targets, material, options.listings);
  const changed = plans.filter((p) => p.changed);
  const result: DeployResult = {
    changed: changed.map((p) => p.path),
    unchanged: plans.filter((p) => !p.changed).map((p) => p.path),
    created: changed.filter((p) => !p.existed).map((p) => p.path),
    recovered: changed.filter((p) => p.stale.length > 0).map((p) => p.path),
  };
  if (changed.length === 0) return result;

  const backup: DeployBackup = { entries: [], createdDirs: [], stale: changed.flatMap((p) => p.stale), listings: options.listings };
  const temps: string[] = [];
  const abort = (error: McpkiError): McpkiError => {
    temps.forEach(tryUnlink);
    for (const entry of backup.entries) if (entry.previous) tryUnlink(entry.previous);
    removeCreatedDirs(backup.createdDirs);
    return error;
  };

  // 1 + 2: folders and temp files
  for (const p of changed) removeStaleTempsFor(p.path, options.listings);
  try {
    createDirs(changed, backup.createdDirs);
  } catch (error) {
    throw abort(error instanceof McpkiError ? error : writeFailed(dirname(changed[0]!.path), error, 'create the folder for'));
  }
  for (const p of changed) {
    try {
      temps.push(writeTemp(p));
    } catch (error) {
      throw abort(writeFailed(p.path, error));
    }
  }
  // 3: links to the files about to be replaced
  for (const p of changed) {
    try {
      backup.entries.push({ path: p.path, previous: p.existed ? keepPrevious(p.path) : null });
    } catch (error) {
      throw abort(writeFailed(p.path, error, 'keep a copy of'));
    }
  }
  try {
    syncDirs(changed.map((p) => p.path));
  } catch (error) {
    throw abort(writeFailed(dirname(changed[0]!.path), error, 'sync'));
  }
  // 4: the renames, back to back
  let renamed = 0;
  try {
    for (; renamed < changed.length; renamed++) renameSync(temps[renamed]!, changed[renamed]!.path);
  } catch (error) {
    const failed = changed[renamed]!.path;
    restoreEntries(backup.entries.slice(0, renamed));
    temps.slice(renamed).forEach(tryUnlink);
    for (const entry of backup.entries.slice(renamed)) if (entry.previous) tryUnlink(entry.previous);
    removeCreatedDirs(backup.createdDirs);
    throw writeFailed(failed, error, 'rename into place');
  }
  syncDirs(changed.map((p) => p.path));
  // 5
  if (options.keepBackup) result.backup = backup;
  else discardBackup(backup);
  return result;
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
    restoreEntries(backup.entries);
    syncDirs(backup.entries.map((entry) => entry.path));
  } catch (error) {
    throw new McpkiError('WRITE_FAILED', `cannot restore the previous files (${errnoCode(error)})`, `the previous versions are kept as .NAME${PREV_MARKER}… next to each target; rename them back by hand`, { cause: error });
  }
  removeCreatedDirs(backup.createdDirs);
}

/** The deploy is final: removes the `.mcpki-prev-` links (and those an interrupted earlier deploy left). */
export function discardBackup(backup: DeployBackup): void {
  for (const entry of backup.entries) if (entry.previous) tryUnlink(entry.previous);
  for (const path of backup.stale) {
    tryUnlink(path);
    for (const names of backup.listings?.values() ?? []) names.delete(basename(path));
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
  /** targets with `.mcpki-prev-` links left by a killed deploy (the next deploy rewrites them) */
  interrupted: string[];
}

/**
 * Reads one certificate's targets from disk, writes nothing, and reports what a deploy must repair: missing
 * or unreadable files, a private key that does not belong to the certificate next to it (in one file or
 * across the cert/key/fullchain files of the set), leaves with different serials, interrupted deploys.
 */
export function repairCheck(targets: readonly Target[]): RepairReport {
  const problems: RepairProblem[] = [];
  const interrupted: string[] = [];
  const leaves: { path: string; serial: string; spki: Buffer }[] = [];
  const keys: { path: string; spki: Buffer }[] = [];
  for (const target of targets) {
    const path = resolve(target.path);
    if (staleBackups(path).length > 0) interrupted.push(path);
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
