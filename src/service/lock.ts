// One `mcpki serve` per home: a lock file HOME/serve.lock holding {pid, hostname, startedAt, token, …}.
//
// Why a file and not flock(2): Node has no flock, and a lock must survive (be recognisably stale after) kill -9,
// power loss and reboots. What the file holds lets any process decide whether its holder is still alive:
//  - another host (shared home on NFS): never judged stale, we cannot see that host's processes;
//  - a different boot id (/proc/sys/kernel/random/boot_id): stale, the holder died with the previous boot;
//  - process.kill(pid, 0) → ESRCH: stale; EPERM: alive (another user's process);
//  - a live PID whose start time (/proc/PID/stat field 22) differs from the recorded one: stale, the PID was reused
//    (after a reboot or a wrap-around a low PID is often reused by an unrelated daemon, which must not block us).
//
// Creating: the content is written and fsynced to a temp file first, then link(2)ed to serve.lock. link fails
// with EEXIST if the lock exists (exclusive like O_EXCL) and, unlike open(O_EXCL)+write, the lock never exists
// half-written, so a reader never mistakes a lock being created for a corrupt one.
//
// Taking over a stale lock, and the race: two processes (say systemd restarting the service while someone starts it
// by hand) can both see the same stale lock. "Re-check, then rename a fresh file over it" alone is not enough: both
// can re-check before either renames, and both would believe they hold the lock. So the replacement is guarded by
// claim files, created with link(2) (exclusive), that nobody but their creator ever removes while they matter:
//  1. read serve.lock (identity X: its token), judge it stale;
//  2. create serve.lock.claim-X. Only one process can. The others see EEXIST and read the claim: if its holder is
//     alive they retry from 1 a few milliseconds later (and by then find the winner's live lock and fail with its
//     PID). If its holder is dead (killed in the middle of a takeover) the claim stays where it is and the next
//     claim in the chain, serve.lock.claim-C (C: the dead claim's own random token), decides instead; and so on.
//     A dead process never renames anything again, so at most one live process holds the last claim of the chain;
//  3. holding it, re-read serve.lock: only that holder may replace a lock whose identity is X, so if it still says
//     X nobody else can change it now; rename our temp file over it (atomic). If it no longer says X (a slower
//     process whose claim came after the winner finished), give up and retry from 1;
//  4. remove the claims of the chain. Claims for X are obsolete once serve.lock no longer says X (tokens are never
//     reused, so it never says X again), which is also the only condition under which leftovers are removed.
// No step depends on timing: a crash at any point leaves either a live lock, a stale lock or a dead claim, and
// each of these is resolved by the next acquirer. release() removes the lock only if it still holds our token;
// held() lets the service check, e.g. on every tick, that the lock is still its own.
import { closeSync, fsyncSync, linkSync, openSync, readdirSync, renameSync, writeSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { McpkiError, fix } from '../errors.js';
import { ensurePrivateDir } from '../home.js';
import { tryUnlink } from '../fs/atomic.js';
import {
  LOCK_FILE_NAME,
  corruptId,
  errno,
  holderState,
  lockFileError as fsError,
  lockPath,
  processStartTime,
  readBootId,
  readJson,
  readLockFile,
  type LockHolderState,
  type ServiceLockInfo,
} from '../process/lock-file.js';

export {
  LOCK_FILE_NAME,
  lockPath,
  readServiceLock,
  type LockHolderState,
  type ServiceLockInfo,
  type ServiceLockStatus,
} from '../process/lock-file.js';

export interface ServiceLock {
  readonly path: string;
  readonly info: ServiceLockInfo;
  /** true while serve.lock still carries our token */
  held(): boolean;
  /** Removes serve.lock if it is still ours; returns whether it removed it. Idempotent. */
  release(): boolean;
}

export interface AcquireOptions {
  /** for tests: the time written as startedAt */
  now?: () => Date;
}

/** How long acquire keeps retrying while another process is in the middle of taking over (busy machines are slow). */
const ACQUIRE_BUDGET_MS = 15_000;
const RETRY_SLEEP_MS = 5;
/** Dead claimants tolerated in one chain (each is a process killed inside a takeover) */
const MAX_CHAIN = 64;

/** Takes the one-instance lock of `home` or throws (naming the PID that holds it). */
export function acquireServiceLock(home: string, options: AcquireOptions = {}): ServiceLock {
  ensurePrivateDir(home);
  const path = lockPath(home);
  const info: ServiceLockInfo = {
    version: 1,
    pid: process.pid,
    hostname: osHostname(),
    startedAt: (options.now?.() ?? new Date()).toISOString(),
    token: randomBytes(12).toString('hex'),
  };
  const bootId = readBootId();
  if (bootId) info.bootId = bootId;
  const start = processStartTime(process.pid);
  if (start) info.processStart = start;

  removeLeftovers(home);
  const temp = writeTemp(home, JSON.stringify(info) + '\n');
  try {
    const deadline = Date.now() + ACQUIRE_BUDGET_MS;
    for (let attempt = 0; attempt < 100 || Date.now() < deadline; attempt++) {
      // 1. the common case: no lock
      try {
        linkSync(temp, path);
        return makeLock(path, info);
      } catch (error) {
        if (errno(error) !== 'EEXIST') throw fsError(error, path);
      }
      // 2. a lock exists: whose?
      const current = readLockFile(path);
      if (current === 'missing') continue; // released meanwhile: try again
      if (current !== 'corrupt') {
        const state = holderState(current);
        if (state !== 'dead') throw runningError(path, current, state);
      }
      // 3. stale: take it over under a claim named after its identity
      const staleId = current === 'corrupt' ? corruptId(path) : current.token;
      if (staleId === undefined) continue;
      const outcome = takeOver(home, path, temp, staleId, info);
      if (outcome === 'taken') return makeLock(path, info);
      sleep(outcome === 'busy' ? RETRY_SLEEP_MS : 0);
    }
    throw new McpkiError(
      'INVALID_INPUT',
      `could not take the service lock ${path}: it kept changing`,
      `another mcpki serve may be starting for this home; try again, or check ${path}`,
    );
  } finally {
    tryUnlink(temp);
  }
}

// --- takeover -----------------------------------------------------------------------------------------------

function takeOver(
  home: string,
  path: string,
  temp: string,
  staleId: string,
  info: ServiceLockInfo,
): 'taken' | 'retry' | 'busy' {
  const claimInfo: ClaimInfo = {
    pid: info.pid,
    hostname: info.hostname,
    token: randomBytes(12).toString('hex'),
    for: staleId,
  };
  if (info.bootId) claimInfo.bootId = info.bootId;
  if (info.processStart) claimInfo.processStart = info.processStart;
  const claimTemp = writeTemp(home, JSON.stringify(claimInfo) + '\n');
  const chain: string[] = []; // claims of dead claimants we passed, then ours
  let outcome: 'taken' | 'retry' | 'busy' = 'busy';
  try {
    let target = staleId;
    let mine = false;
    for (let depth = 0; depth < MAX_CHAIN && !mine; depth++) {
      const claim = join(home, `${LOCK_FILE_NAME}.claim-${target}`);
      try {
        linkSync(claimTemp, claim);
        chain.push(claim);
        mine = true;
        break;
      } catch (error) {
        if (errno(error) !== 'EEXIST') throw fsError(error, claim);
      }
      // somebody else is taking it over right now, or died doing so
      const other = readJson(claim);
      if (other === 'missing') return (outcome = 'retry'); // removed: the lock changed, or its holder gave up
      let next: string | undefined;
      if (other === 'corrupt' || typeof (other as ClaimInfo).token !== 'string') {
        next = corruptId(claim); // not written by this code (we link complete files): nobody holds it
      } else {
        if (holderState(other as ClaimInfo) !== 'dead') return (outcome = 'busy');
        next = (other as ClaimInfo).token;
      }
      if (next === undefined) return (outcome = 'retry');
      chain.push(claim);
      target = next;
    }
    if (!mine) return (outcome = 'busy');
    // we hold the last claim of the chain: nobody else may replace a lock whose identity is staleId
    if (currentId(path) !== staleId) return (outcome = 'retry');
    try {
      renameSync(temp, path);
    } catch (error) {
      throw fsError(error, path);
    }
    return (outcome = 'taken');
  } finally {
    // once the lock no longer says staleId (taken, or changed meanwhile) every claim of its chain is obsolete; while
    // it does, only our own claim (if any) goes: the dead claims we passed still decide who may replace staleId
    if (outcome === 'taken' || currentId(path) !== staleId) {
      for (const claim of chain) tryUnlink(claim);
    } else {
      const last = chain.at(-1);
      if (last && sameClaim(last, claimInfo.token)) tryUnlink(last);
    }
    tryUnlink(claimTemp);
  }
}

interface ClaimInfo {
  pid: number;
  hostname: string;
  /** random, per claim: names the next claim of the chain if this claimant dies */
  token: string;
  /** the identity of the stale lock this claim is about */
  for: string;
  bootId?: string;
  processStart?: string;
}

/** The identity of the lock on disk: its token; inode and mtime for a corrupt one; undefined when there is none. */
function currentId(path: string): string | undefined {
  const now = readLockFile(path);
  return now === 'missing' ? undefined : now === 'corrupt' ? corruptId(path) : now.token;
}

function sameClaim(path: string, token: string): boolean {
  const value = readJson(path);
  return typeof value === 'object' && value !== null && (value as ClaimInfo).token === token;
}

// --- the lock object ----------------------------------------------------------------------------------------

function makeLock(path: string, info: ServiceLockInfo): ServiceLock {
  let released = false;
  const ours = () => {
    const current = readLockFile(path);
    return typeof current === 'object' && current.token === info.token;
  };
  return {
    path,
    info,
    held: () => !released && ours(),
    release() {
      if (released) return false;
      released = true;
      // Only a stale-lock takeover replaces a lock, and ours is not stale while we run, so the check and the unlink
      // cannot be separated by a replacement of a live lock.
      if (!ours()) return false;
      tryUnlink(path);
      return true;
    },
  };
}

// --- files --------------------------------------------------------------------------------------------------

const TEMP_PREFIX = `.${LOCK_FILE_NAME}.tmp-`;

function writeTemp(home: string, content: string): string {
  const temp = join(home, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', 0o600);
    writeSync(fd, content);
    fsyncSync(fd);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    tryUnlink(temp);
    throw fsError(error, temp);
  }
  closeSync(fd);
  return temp;
}

/** Temp and claim files of dead processes on this host (a crash in the middle of an acquisition). */
function removeLeftovers(home: string): void {
  let names: string[];
  try {
    names = readdirSync(home);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(TEMP_PREFIX)) {
      const pid = Number(name.slice(TEMP_PREFIX.length).split('-')[0]);
      if (Number.isSafeInteger(pid) && pid > 0 && holderState({ pid, hostname: osHostname() }) === 'dead')
        tryUnlink(join(home, name));
    } else if (name.startsWith(`${LOCK_FILE_NAME}.claim-`)) {
      // obsolete once serve.lock no longer carries the identity it is about (that identity never comes back)
      const claim = join(home, name);
      const content = readJson(claim);
      if (content === 'missing') continue;
      const about = typeof content === 'object' && content !== null ? (content as Partial<ClaimInfo>).for : undefined;
      if (typeof about !== 'string') continue; // foreign or corrupt: the takeover chain deals with it
      if (currentId(lockPath(home)) !== about) tryUnlink(claim);
    }
  }
}

function runningError(path: string, holder: ServiceLockInfo, state: LockHolderState): McpkiError {
  const since = holder.startedAt ? `, since ${holder.startedAt}` : '';
  if (state === 'unknown') {
    return new McpkiError(
      'SERVICE_RUNNING',
      `mcpki serve is already running for this home on host ${holder.hostname} (PID ${holder.pid}${since}); lock ${path}`,
      `stop it on ${holder.hostname} (kill ${holder.pid}); if that host is gone for good, delete ${path}`,
    );
  }
  const self = holder.pid === process.pid ? ' — this process' : '';
  return new McpkiError(
    'SERVICE_RUNNING',
    `mcpki serve is already running for this home (PID ${holder.pid}${self}${since}); lock ${path}`,
    fix(
      `stop it with "kill ${holder.pid}" (SIGTERM: it finishes in-flight work and exits), or use another {--home DIR}`,
    ),
  );
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleep(ms: number): void {
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}
