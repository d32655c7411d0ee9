// Reading HOME/serve.lock, the one-`mcpki serve`-per-home lock, and judging whether its holder is alive. The
// lock's writer (acquire, takeover, release) is src/service/lock.ts; this half sits low so that anything that
// must not run beside a service (inventory restore) can ask without loading the service.
import { readFileSync, statSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { McpkiError } from '../errors.js';

export const LOCK_FILE_NAME = 'serve.lock';

/** What serve.lock holds (version 1). */
export interface ServiceLockInfo {
  version: 1;
  pid: number;
  hostname: string;
  /** ISO time the lock was taken */
  startedAt: string;
  /** random, identifies this holder (release and takeover compare it) */
  token: string;
  /** Linux: /proc/sys/kernel/random/boot_id at acquisition */
  bootId?: string;
  /** Linux: the holder's start time in clock ticks since boot (/proc/PID/stat field 22), detects PID reuse */
  processStart?: string;
}

export type LockHolderState = 'alive' | 'dead' | 'unknown';

export interface ServiceLockStatus extends ServiceLockInfo {
  path: string;
  /** 'alive': the holder runs; 'dead': a stale lock the next serve takes over; 'unknown': another host holds it */
  state: LockHolderState;
}

export function lockPath(home: string): string {
  return join(home, LOCK_FILE_NAME);
}

/** The lock as it is on disk (for `status`), or null when no serve holds this home. */
export function readServiceLock(home: string): ServiceLockStatus | null {
  const path = lockPath(home);
  const current = readLockFile(path);
  if (current === 'missing') return null;
  if (current === 'corrupt') {
    return { version: 1, pid: 0, hostname: '', startedAt: '', token: '', path, state: 'dead' };
  }
  return { ...current, path, state: holderState(current) };
}

// --- liveness -----------------------------------------------------------------------------------------------

export function holderState(
  info: Pick<ServiceLockInfo, 'pid' | 'hostname' | 'bootId' | 'processStart'>,
): LockHolderState {
  if (info.hostname !== osHostname()) return 'unknown';
  if (!Number.isSafeInteger(info.pid) || info.pid <= 0) return 'dead'; // kill(0) or kill(-n) would signal a group
  const bootId = readBootId();
  if (info.bootId && bootId && info.bootId !== bootId) return 'dead';
  try {
    process.kill(info.pid, 0);
  } catch (error) {
    const code = errno(error);
    if (code === 'ESRCH') return 'dead';
    if (code !== 'EPERM') return 'alive'; // cannot tell: never break a lock we are unsure about
  }
  if (info.processStart) {
    const start = processStartTime(info.pid);
    if (start && start !== info.processStart) return 'dead'; // the PID now belongs to another process
  }
  return 'alive';
}

let bootIdCache: string | null | undefined;
export function readBootId(): string | undefined {
  if (bootIdCache === undefined) {
    try {
      bootIdCache = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      bootIdCache = null;
    }
  }
  return bootIdCache ?? undefined;
}

/** Field 22 of /proc/PID/stat (start time in clock ticks after boot); the command name (field 2) may hold spaces and parentheses. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = fields[19]; // fields[0] is field 3 (state)
    return start && /^\d+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

export function readLockFile(path: string): ServiceLockInfo | 'missing' | 'corrupt' {
  const value = readJson(path);
  if (value === 'missing' || value === 'corrupt') return value;
  const v = value as Partial<ServiceLockInfo>;
  if (
    typeof v.pid !== 'number' ||
    typeof v.hostname !== 'string' ||
    typeof v.token !== 'string' ||
    typeof v.startedAt !== 'string'
  )
    return 'corrupt';
  return value as ServiceLockInfo;
}

export function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (errno(error) === 'ENOENT') return 'missing';
    throw lockFileError(error, path);
  }
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? value : 'corrupt';
  } catch {
    return 'corrupt';
  }
}

/** A corrupt lock (not written by this code: we link complete files) is identified by inode and mtime. */
export function corruptId(path: string): string | undefined {
  try {
    const s = statSync(path);
    return `corrupt-${s.ino}-${Math.floor(s.mtimeMs)}`;
  } catch {
    return undefined;
  }
}

export function lockFileError(error: unknown, path: string): McpkiError {
  if (error instanceof McpkiError) return error;
  return new McpkiError(
    'WRITE_FAILED',
    `cannot use the service lock ${path} (${errno(error) ?? String(error)})`,
    'check that the mcpki home is writable',
    { cause: error },
  );
}

export function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
