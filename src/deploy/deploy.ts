// Deploying one certificate to its targets as a set, with reload hooks, the verify probe and rollback.
//
// Step 0 is plan.ts, file sets are fileset.ts, the `.mcpki-prev-` links and rollback are backup.ts, and
// repair.ts checks targets on disk without writing anything.
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
// run), and then removes the leftovers. Assumes one deployer per target at a time (the caller holds the home's
// lock).
import { chmodSync, readFileSync, renameSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { McpkiError } from '../errors.js';
import {
  discardBackup,
  keepPrevious,
  removeStaleTempsFor,
  restoreBackup,
  restoreEntries,
  type DeployBackup,
} from './backup.js';
import { tempPathFor } from '../fs/atomic.js';
import { makeFolder, removeCreatedDirs, tryUnlink, writeFailed } from '../fs/files.js';
import { eachInParallel, removeAll } from '../fs/parallel.js';
import { SyncBatch } from '../fs/sync-batch.js';
import { createDirs } from './folders.js';
import {
  abortSet,
  adopt,
  CURRENT,
  prepareSet,
  prepareSetAsync,
  publishSet,
  releaseDropped,
  restoreSet,
} from './fileset.js';
import { describeHookResult, hookFailed, runHook, type HookResult } from './hooks.js';
import { plan } from './plan.js';
import { readTargetContents } from './targets.js';
import type { DirChecks, FileSet, LeftoverListings, Material, Plan, SetBackup, Target } from './types.js';
import { formatHostPort, type HostPort } from '../net/address.js';
import { verifyServedSerial, type VerifyResult } from './verify.js';

export { discardBackup, PREV_MARKER, restoreBackup, type BackupEntry, type DeployBackup } from './backup.js';
export { SET_PREFIX } from './fileset.js';
export type { LeftoverListings, SetBackup } from './types.js';
export { repairCheck, type RepairProblem, type RepairReport } from './repair.js';

export const DEFAULT_HOOK_TIMEOUT_MS = 60_000;

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

/** A deploy whose new files are written (and synced, or recorded in its SyncBatch) but not yet renamed into place. */
interface PreparedDeploy {
  result: DeployResult;
  /** absent when nothing changed */
  backup?: DeployBackup;
  temps: string[];
  singles: Plan[];
  dissolved: FileSet[];
}

/** Steps 0–3: everything up to the renames. Throws WRITE_FAILED with every target as it was. */
function prepareDeploy(
  targets: readonly Target[],
  material: Material,
  listings: LeftoverListings | undefined,
  sync: SyncBatch,
  checked?: DirChecks,
): PreparedDeploy {
  const started = beginDeploy(targets, material, listings, sync, checked);
  if (!started.live) return started.prepared;
  for (const [set, s] of started.live) {
    try {
      prepareSet(set, material, s, sync);
    } catch (error) {
      throw setFailed(started.prepared, set, error);
    }
  }
  return finishPrepare(started.prepared, sync);
}

/**
 * prepareDeploy with the set versions' folders, files and symlinks made on libuv's thread pool (deployMany
 * runs several at once): the same steps on the same paths, in the same order for each certificate.
 */
async function prepareDeployAsync(
  targets: readonly Target[],
  material: Material,
  listings: LeftoverListings | undefined,
  sync: SyncBatch,
  checked?: DirChecks,
): Promise<PreparedDeploy> {
  const started = beginDeploy(targets, material, listings, sync, checked);
  if (!started.live) return started.prepared;
  for (const [set, s] of started.live) {
    try {
      await prepareSetAsync(set, material, s, sync);
    } catch (error) {
      throw setFailed(started.prepared, set, error);
    }
  }
  return finishPrepare(started.prepared, sync);
}

function setFailed(prepared: PreparedDeploy, set: FileSet, error: unknown): McpkiError {
  abortPrepared(prepared);
  return error instanceof McpkiError ? error : writeFailed(set.path, error, 'prepare the new files in');
}

/**
 * Steps 0–2 up to the new set versions: the plan, folders, temp files of single files, set folders (created,
 * adopted). `live`: the sets whose new version is still to be made, each with its backup; absent when nothing
 * changed.
 */
function beginDeploy(
  targets: readonly Target[],
  material: Material,
  listings: LeftoverListings | undefined,
  sync: SyncBatch,
  checked?: DirChecks,
): { prepared: PreparedDeploy; live?: [FileSet, SetBackup][] } {
  const { plans, sets } = plan(targets, material, listings, checked);
  const changed = plans.filter((p) => p.changed);
  const result: DeployResult = {
    changed: changed.map((p) => p.path),
    unchanged: plans.filter((p) => !p.changed).map((p) => p.path),
    created: changed.filter((p) => !p.existed).map((p) => p.path),
    recovered: changed.filter((p) => p.stale.length > 0 || (p.set?.stale.length ?? 0) > 0).map((p) => p.path),
  };
  if (changed.length === 0) return { prepared: { result, temps: [], singles: [], dissolved: [] } };

  const singles = changed.filter((p) => !p.set);
  const live = sets.filter((s) => s.changed && !s.dissolve);
  const backup: DeployBackup = {
    entries: [],
    createdDirs: [],
    stale: changed.flatMap((p) => p.stale),
    sets: [],
    listings,
  };
  const prepared: PreparedDeploy = {
    result,
    backup,
    temps: [],
    singles,
    dissolved: sets.filter((s) => s.dissolve),
  };
  const abort = (error: McpkiError): McpkiError => {
    abortPrepared(prepared);
    return error;
  };

  // 1 + 2: folders, temp files, new set versions
  for (const p of changed) removeStaleTempsFor(p.path, listings);
  try {
    createDirs(changed, backup.createdDirs);
  } catch (error) {
    throw abort(
      error instanceof McpkiError ? error : writeFailed(dirname(changed[0]!.path), error, 'create the folder for'),
    );
  }
  for (const p of singles) {
    try {
      const temp = tempPathFor(p.path);
      sync.writeNewFile(temp, p);
      prepared.temps.push(temp);
    } catch (error) {
      throw abort(writeFailed(p.path, error));
    }
  }
  const started: [FileSet, SetBackup][] = [];
  for (const set of live) {
    const s: SetBackup = {
      path: set.path,
      dir: set.dir,
      created: false,
      previous: set.version,
      next: null,
      swapTemp: null,
      linkTemps: [],
      links: [],
      superseded: [],
      stale: set.stale,
    };
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
    } catch (error) {
      throw abort(error instanceof McpkiError ? error : writeFailed(set.path, error, 'prepare the new files in'));
    }
    started.push([set, s]);
  }
  return { prepared, live: started };
}

/** Step 3: links to the single files about to be replaced; the folders synced (now, or at `sync`'s flush). */
function finishPrepare(prepared: PreparedDeploy, sync: SyncBatch): PreparedDeploy {
  const { backup, singles } = prepared;
  const abort = (error: McpkiError): McpkiError => {
    abortPrepared(prepared);
    return error;
  };
  for (const p of singles) {
    try {
      backup!.entries.push({ path: p.path, previous: p.existed ? keepPrevious(p.path) : null });
    } catch (error) {
      throw abort(writeFailed(p.path, error, 'keep a copy of'));
    }
  }
  try {
    sync.dirsOf([...singles.map((p) => p.path), ...backup!.sets.flatMap((s) => s.linkTemps.map(([temp]) => temp))]);
  } catch (error) {
    throw abort(writeFailed(dirname(prepared.result.changed[0]!), error, 'sync'));
  }
  return prepared;
}

/** Undoes a prepared deploy that was not published: temp files, `-prev-` links, new versions, created folders. */
function abortPrepared(prepared: PreparedDeploy): void {
  const backup = prepared.backup;
  if (!backup) return;
  prepared.temps.forEach(tryUnlink);
  for (const entry of backup.entries) if (entry.previous) tryUnlink(entry.previous);
  for (const s of backup.sets) abortSet(s);
  removeCreatedDirs(backup.createdDirs);
}

/**
 * Step 4: the renames, back to back: each set's `current` (every file of the set at once), new members'
 * symlinks, then the single files; the folders synced (now, or at `sync`'s flush). On a failed rename every
 * target is put back and WRITE_FAILED thrown.
 */
function publishDeploy(prepared: PreparedDeploy, sync: SyncBatch): void {
  const { backup, singles, temps } = prepared;
  if (!backup) return;
  let swapped = 0;
  let renamed = 0;
  try {
    for (; swapped < backup.sets.length; swapped++) publishSet(backup.sets[swapped]!);
    for (; renamed < singles.length; renamed++) renameSync(temps[renamed]!, singles[renamed]!.path);
  } catch (error) {
    const failed =
      renamed < singles.length && swapped === backup.sets.length
        ? singles[renamed]!.path
        : (backup.sets[swapped]?.path ?? '');
    restoreEntries(backup.entries.slice(0, renamed));
    temps.slice(renamed).forEach(tryUnlink);
    for (const entry of backup.entries.slice(renamed)) if (entry.previous) tryUnlink(entry.previous);
    for (const s of backup.sets) restoreSet(s);
    removeCreatedDirs(backup.createdDirs);
    throw writeFailed(failed, error, 'rename into place');
  }
  sync.dirsOf([...singles.map((p) => p.path), ...backup.sets.flatMap((s) => [join(s.path, CURRENT), ...s.links])]);
  backup.dissolved = prepared.dissolved;
}

/**
 * Writes every target of one certificate whose bytes, mode or owner differ from `material`, as a set (see
 * the order of operations at the top of this file). Throws WRITE_FAILED with every target as it was before
 * (or, after a migration, showing the same bytes through symlinks) when any step up to the renames fails.
 */
export function deployTargets(
  targets: readonly Target[],
  material: Material,
  options: DeployOptions = {},
): DeployResult {
  const sync = new SyncBatch(false);
  const prepared = prepareDeploy(targets, material, options.listings, sync);
  const { result, backup } = prepared;
  if (!backup) return result;
  publishDeploy(prepared, sync);
  // 5
  if (options.keepBackup) result.backup = backup;
  else discardBackup(backup);
  return result;
}

// ---- hooks and verify -----------------------------------------------------------------------------------

export interface DeployHooks {
  /** commands as argv arrays, run in order without a shell */
  reload?: string[][];
  /** per hook (default 60 s) */
  timeoutMs?: number;
  /** host:port to probe after the hooks */
  verify?: string | HostPort;
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
export function hookEnvironment(
  targets: readonly Target[],
  material: Material,
  extra: Record<string, string> = {},
): Record<string, string> {
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
  // read only when a rollback would run the hooks with it
  const previousSerial = hooks.reload?.length ? serialOnDisk(targets) : '';
  const deploy = deployTargets(targets, material, { keepBackup: true, listings });
  const backup = deploy.backup;
  delete deploy.backup;
  if (!backup) return { deploy, hooks: [], rolledBack: false };
  return settle(targets, material, hooks, env, deploy, backup, previousSerial);
}

/**
 * After the renames: the reload hooks and the verify probe, then the previous files discarded, or restored
 * (and the hooks run again) when a hook or the probe failed.
 */
async function settle(
  targets: readonly Target[],
  material: Material,
  hooks: DeployHooks,
  env: Record<string, string>,
  deploy: DeployResult,
  backup: DeployBackup,
  previousSerial: string,
  later?: string[],
): Promise<DeployOutcome> {
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
        failure = {
          reason: 'DEPLOY_HOOK_FAILED',
          message: `reload hook ${JSON.stringify(argv.join(' '))} for ${material.name} failed: ${describeHookResult(result)}`,
        };
        break;
      }
    }
    if (!failure && hooks.verify) {
      const options: Parameters<typeof verifyServedSerial>[2] = { timeoutMs: hooks.verifyTimeoutMs ?? 10_000 };
      if (hooks.verifyServername) options.servername = hooks.verifyServername;
      verified = await verifyServedSerial(hooks.verify, material.serial, options);
      if (!verified.ok)
        failure = {
          reason: 'DEPLOY_VERIFY_FAILED',
          message: `verify ${typeof hooks.verify === 'string' ? hooks.verify : formatHostPort(hooks.verify)} for ${material.name} failed: ${verified.error ?? 'the new serial is not served'}`,
        };
    }
  } catch (error) {
    failure = {
      reason: 'DEPLOY_HOOK_FAILED',
      message: `reload hooks for ${material.name} failed: ${(error as Error).message}`,
    };
  }

  if (!failure) {
    discardBackup(backup, later);
    const outcome: DeployOutcome = { deploy, hooks: results, rolledBack: false };
    if (verified) outcome.verified = verified;
    return outcome;
  }

  const details: DeployFailureDetails = {
    reason: failure.reason,
    rolledBack: false,
    deploy,
    hooks: results,
    rollbackHooks: [],
  };
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

export interface DeployJob {
  targets: readonly Target[];
  material: Material;
  hooks?: DeployHooks;
}

/**
 * deployWithHooks for many certificates at once (apply and renew, one chunk of certificates at a time), with
 * the same guarantees: every certificate's new files are written first, all of them made durable with one
 * syncfs per file system, then every certificate's renames, synced once more, and only then each
 * certificate's hooks and probe (and its rollback). Each job's outcome, or the error that failed it (the
 * others go on), in the order of `jobs`. `before`: a deferred SyncBatch and files to remove that the caller
 * (issuance) wrote and replaced, synced with the first flush. The replaced files and versions are removed
 * last, once every new file and rename is durable; with `before.removeAtEnd` they are listed there instead, for
 * the caller to remove at the end of its run (before it releases the home's lock): on ext4 without a journal,
 * every new inode is found by skipping the inodes freed in the last minutes one by one (recently_deleted), so
 * a run that frees as it goes makes each later chunk's files slower to create.
 */
export async function deployMany(
  jobs: readonly DeployJob[],
  listings?: LeftoverListings,
  before: { sync: SyncBatch; remove: string[]; removeAtEnd?: string[] } = {
    sync: new SyncBatch(true),
    remove: [],
  },
  checked: DirChecks = new Map(),
): Promise<(DeployOutcome | Error)[]> {
  // what the caller wrote before (issued files) is synced by the first flush and removed at the end
  const { sync, remove: later } = before;
  const outcomes: (DeployOutcome | Error)[] = new Array(jobs.length);
  const prepared: (PreparedDeploy | undefined)[] = new Array(jobs.length);
  const previousSerials: string[] = new Array(jobs.length);
  // several certificates' new files at once: each one's steps in order, their file operations on the thread pool
  await eachInParallel(
    jobs.map((_, i) => i),
    async (i) => {
      const job = jobs[i]!;
      try {
        previousSerials[i] = job.hooks?.reload?.length ? serialOnDisk(job.targets) : '';
        const p = await prepareDeployAsync(job.targets, job.material, listings, sync, checked);
        if (p.backup) prepared[i] = p;
        else outcomes[i] = { deploy: p.result, hooks: [], rolledBack: false };
      } catch (error) {
        outcomes[i] = error as Error;
      }
    },
  );
  const fail = (i: number, error: unknown, what: string): void => {
    outcomes[i] = error instanceof McpkiError ? error : writeFailed(dirname(jobs[i]!.targets[0]!.path), error, what);
    prepared[i] = undefined;
  };
  try {
    sync.flush();
  } catch (error) {
    prepared.forEach((p, i) => {
      if (!p) return;
      abortPrepared(p);
      fail(i, error, 'sync');
    });
  }
  prepared.forEach((p, i) => {
    if (!p) return;
    try {
      publishDeploy(p, sync);
    } catch (error) {
      fail(i, error, 'rename into place');
    }
  });
  try {
    sync.flush();
  } catch (error) {
    // in place but perhaps not durable: put the previous files back rather than report them written
    prepared.forEach((p, i) => {
      if (!p) return;
      try {
        restoreBackup(p.backup!);
      } catch {
        // reported below; the previous versions stay next to the targets
      }
      fail(i, error, 'sync');
    });
  }
  for (let i = 0; i < jobs.length; i++) {
    const p = prepared[i];
    if (!p) continue;
    const job = jobs[i]!;
    try {
      outcomes[i] = await settle(
        job.targets,
        job.material,
        job.hooks ?? {},
        {},
        p.result,
        p.backup!,
        previousSerials[i]!,
        later,
      );
    } catch (error) {
      outcomes[i] = error as Error;
    }
  }
  sync.flush(); // nothing to deploy: the caller's writes
  // removeAll does not reject: a file it cannot remove stays (the next deploy removes it as a leftover)
  if (before.removeAtEnd) before.removeAtEnd.push(...later);
  else await removeAll(later);
  return outcomes;
}
