// The ownership rules mcpki applies before it writes into a folder or reads a private file, in the spirit of
// OpenSSH's StrictModes: trust only what the running user or root owns. A folder on the way that another user
// owns, or that is writable by group or others without being a sticky folder owned by us or root (like /tmp),
// could have its entries swapped under us; a symlink another user owns could point anywhere.
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { McpkiError } from '../errors.js';

/** More symlink hops than this is a loop (Linux's own limit is 40). */
const MAX_SYMLINK_HOPS = 40;

export function runningUid(): number {
  return process.getuid?.() ?? 0;
}

export function isTrustedOwner(uid: number): boolean {
  return uid === 0 || uid === runningUid();
}

export function modeText(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

export function lstatOrNull(path: string): Stats | null {
  try {
    // a missing path answers undefined instead of an exception: a batch of 2,000 looks up 8,000 files not
    // there yet, and an exception costs ~7 µs each (other errors, ENOTDIR among them, still throw)
    return lstatSync(path, { throwIfNoEntry: false }) ?? null;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new McpkiError(
      'WRITE_FAILED',
      `cannot inspect ${path} (${code ?? 'error'})`,
      'check that the path is reachable by this user',
      { cause: error },
    );
  }
}

export function unsafe(path: string, why: string, hint: string): McpkiError {
  return new McpkiError('UNSAFE_PATH', `refusing ${path}: ${why}`, hint);
}

/**
 * A folder is safe to write in when we or root own it and no one else can rename its entries. `strict`: no
 * group or other write at all, not even on a sticky folder (mcpki's own folders: the home, ca/, a set folder).
 */
export function assertSafeFolder(path: string, stat: Stats, what: string, strict = false): void {
  if (!isTrustedOwner(stat.uid)) {
    throw unsafe(
      path,
      `${what} is owned by uid ${stat.uid}, not by this user (uid ${runningUid()}) or root`,
      `use a folder that only this user or root owns, or chown ${runningUid()} ${path} after checking its content`,
    );
  }
  if ((stat.mode & 0o022) !== 0 && (strict || (stat.mode & 0o1000) === 0)) {
    const who = stat.mode & 0o002 ? 'everyone' : 'its group';
    throw unsafe(
      path,
      `${what} is writable by ${who} (mode ${modeText(stat.mode)})`,
      `chmod go-w ${path}, or use a folder only this user can write`,
    );
  }
}

/**
 * Folders assertSafeDir found safe in one run, by the absolute path walked, with their real paths. A folder
 * that we or root own and no one else can write, under parents alike, can only be changed by us or root, so
 * one walk per run is enough: the next paths under it are walked from there.
 */
export type SafeDirs = Map<string, string>;

/**
 * Checks every component of a folder path from / down, following only symlinks that we or root own, and
 * returns the real path. Components that do not exist yet are allowed (we will create them, 0700). Throws
 * UNSAFE_PATH naming the component, its owner and mode; nothing is created or written. With `checked`, the
 * walk starts below the deepest folder on the way already found safe in this run (and records the ones it
 * checks).
 */
export function assertSafeDir(path: string, what = 'a folder on the way', checked?: SafeDirs): string {
  let hops = 0;
  const walk = (absolute: string): string => {
    const parts = absolute.split(sep).filter(Boolean);
    let current: string = sep;
    let start = 0;
    if (checked) {
      for (let i = parts.length; i >= 0; i--) {
        const known = checked.get(i === 0 ? sep : sep + parts.slice(0, i).join(sep));
        if (known !== undefined) {
          current = known;
          start = i;
          break;
        }
      }
    }
    if (start === 0) {
      assertSafeFolder(current, lstatSync(current), what);
      checked?.set(sep, sep);
    }
    for (let i = start; i < parts.length; i++) {
      const next = join(current, parts[i]!);
      const stat = lstatOrNull(next);
      if (!stat) return join(next, ...parts.slice(i + 1));
      if (stat.isSymbolicLink()) {
        if (!isTrustedOwner(stat.uid)) {
          throw unsafe(
            next,
            `it is a symlink owned by uid ${stat.uid}`,
            `remove ${next} or replace it with a folder this user or root owns`,
          );
        }
        if (++hops > MAX_SYMLINK_HOPS)
          throw unsafe(next, 'too many levels of symlinks', `check the symlinks on the way to ${absolute}`);
        const target = readlinkSync(next);
        current = walk(isAbsolute(target) ? target : resolve(dirname(next), target));
        continue;
      }
      if (!stat.isDirectory()) {
        throw new McpkiError(
          'WRITE_FAILED',
          `cannot use ${next}: it is not a folder`,
          `remove ${next} or choose another path`,
        );
      }
      assertSafeFolder(next, stat, what);
      current = next;
      checked?.set(sep + parts.slice(0, i + 1).join(sep), current);
    }
    return current;
  };
  return walk(resolve(path));
}

/**
 * A private file (a key, a password file) must be a regular file, not a symlink, owned by us or root, and
 * neither readable nor writable by group or others. `missingOk` returns false for a file that does not exist.
 */
export function assertPrivateFile(path: string, what = 'private file', missingOk = false): boolean {
  const stat = lstatOrNull(path);
  if (!stat) {
    if (missingOk) return false;
    throw new McpkiError('NOT_FOUND', `${what} ${path} does not exist`, 'restore it from a backup');
  }
  if (stat.isSymbolicLink()) throw unsafe(path, `${what} is a symlink`, `replace ${path} with the file itself (0600)`);
  if (!stat.isFile()) throw unsafe(path, `${what} is not a regular file`, `restore ${path} from a backup`);
  if (!isTrustedOwner(stat.uid)) {
    throw unsafe(
      path,
      `${what} is owned by uid ${stat.uid}, not by this user (uid ${runningUid()}) or root`,
      `chown ${runningUid()} ${path} after checking it was not replaced`,
    );
  }
  if ((stat.mode & 0o077) !== 0) {
    throw unsafe(
      path,
      `${what} is accessible by group or others (mode ${modeText(stat.mode)})`,
      `chmod 600 ${path}, and consider the key exposed if others could read it`,
    );
  }
  return true;
}
