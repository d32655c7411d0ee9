// Copies of the inventory and putting one back. The inventory holds what the CA files do not: which
// certificates are revoked and the CRL numbers used. A copy is made after every revocation and CA change
// (Store.backup, HOME/backups, the newest five kept); `mcpki inventory restore` puts one back after the
// inventory was lost, keeping whatever it replaces.
import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Context } from '../context.js';
import { McpkiError } from '../errors.js';
import { ensurePrivateDir } from '../home.js';
import { loadRootCertificate } from '../pki/ca-files.js';
import { isTrustedOwner, modeText, runningUid } from '../fs/safe-path.js';
import { isAlive } from '../process/alive.js';
import { tryUnlink } from '../fs/atomic.js';
import { readServiceLock } from '../process/lock-file.js';
import { MIGRATIONS } from './migrations.js';
import { backupDirOf, BACKUP_GENERATIONS, listBackups, openDatabase, Store } from './store.js';

export interface BackupResult {
  path: string;
  /** every copy now in HOME/backups, oldest first */
  backups: string[];
}

/** A copy of the inventory now (what happens by itself after revocations and CA changes). */
export function backupInventory(context: Context): BackupResult {
  const path = context.store().backup();
  return { path, backups: listBackups(backupDirOf(context.layout.database)) };
}

export interface RestoreResult {
  /** the copy that was put back */
  from: string;
  path: string;
  /** where the inventory it replaced was moved (null when there was none) */
  replaced: string | null;
  certificates: number;
  revoked: number;
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

function notAnInventory(source: string, why: string): McpkiError {
  return new McpkiError(
    'INVALID_INPUT',
    `${source} is not a usable mcpki inventory: ${why}`,
    'choose another copy (ls HOME/backups), or give the path of an mcpki.db',
  );
}

const TABLES = ['settings', 'authorities', 'certificates', 'events'];

/** Opens a copy and checks it is an intact mcpki inventory of this CA; returns what it holds. */
function inspectCopy(
  path: string,
  source: string,
  rootFingerprint: string | null,
): { certificates: number; revoked: number } {
  let db: Database.Database | undefined;
  try {
    db = openDatabase(path, { fileMustExist: true });
    const integrity = db.pragma('integrity_check', { simple: true }) as string;
    if (integrity !== 'ok')
      throw notAnInventory(source, `SQLite's integrity check says ${JSON.stringify(integrity.slice(0, 200))}`);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version < 1) throw notAnInventory(source, 'it has no mcpki schema');
    if (version > MIGRATIONS.length) {
      throw new McpkiError(
        'STORE_VERSION',
        `${source} has schema version ${version}, newer than this mcpki understands (${MIGRATIONS.length})`,
        'upgrade mcpki, then restore',
      );
    }
    const tables = new Set(
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map(
        (row) => row.name,
      ),
    );
    const missing = TABLES.filter((table) => !tables.has(table));
    if (missing.length) throw notAnInventory(source, `it lacks the table(s) ${missing.join(', ')}`);
    if (rootFingerprint) {
      const roots = (
        db.prepare("SELECT fingerprint FROM authorities WHERE role = 'root'").all() as { fingerprint: string }[]
      ).map((row) => row.fingerprint);
      if (!roots.includes(rootFingerprint)) {
        throw notAnInventory(
          source,
          `it belongs to another CA (its roots: ${roots.length ? roots.map((f) => f.slice(0, 23) + '…').join(', ') : 'none'}; this home's root: ${rootFingerprint.slice(0, 23)}…)`,
        );
      }
    }
    const count = (sql: string) => (db!.prepare(sql).get() as { n: number }).n;
    return {
      certificates: count('SELECT COUNT(*) AS n FROM certificates'),
      revoked: count("SELECT COUNT(*) AS n FROM certificates WHERE status = 'revoked'"),
    };
  } catch (error) {
    if (error instanceof McpkiError) throw error;
    throw notAnInventory(source, (error as Error).message.split('\n')[0]!.slice(0, 200));
  } finally {
    db?.close();
  }
}

/** Refuses while `mcpki serve` or an `apply` works on this home: they would keep writing to the old inventory. */
function checkNoService(context: Context): void {
  const service = readServiceLock(context.home);
  if (service && service.state !== 'dead') {
    throw new McpkiError(
      'SERVICE_RUNNING',
      `mcpki serve (pid ${service.pid} on ${service.hostname}) holds ${context.home}: the inventory cannot be replaced under it`,
      'stop the service first (e.g. systemctl stop mcpki), restore, then start it again',
    );
  }
  const database = context.layout.database;
  const stat = lstatOrNull(database);
  if (!stat?.isFile() || stat.size === 0) return;
  let db: Database.Database | undefined;
  try {
    db = openDatabase(database, { fileMustExist: true });
    const holders = db.prepare('SELECT name, pid, host FROM locks').all() as {
      name: string;
      pid: number;
      host: string;
    }[];
    const live = holders.find((h) => h.host !== hostname() || isAlive(h.pid));
    if (live) {
      throw new McpkiError(
        'SERVICE_RUNNING',
        `mcpki ${live.name} (pid ${live.pid} on ${live.host}) holds the lock of ${context.home}`,
        'wait for it to finish or stop it, then restore',
      );
    }
    // everything in the write-ahead log goes into the file that is moved aside
    db.pragma('wal_checkpoint(TRUNCATE)');
  } catch (error) {
    if (error instanceof McpkiError) throw error;
    // a damaged inventory is what a restore replaces
  } finally {
    db?.close();
  }
}

function rootFingerprintOf(context: Context): string | null {
  if (!lstatOrNull(context.layout.rootCert)) return null;
  // through the CA loader: a FIFO or a device never hangs, garbage is CA_CORRUPT
  return loadRootCertificate(context).root.fingerprint256;
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Puts a copy of the inventory back: the newest in HOME/backups, or `file`. The copy is checked (an intact
 * mcpki inventory of this home's CA) on a private copy of its own before anything is replaced; the inventory
 * it replaces, if any, is kept as mcpki.db.replaced-<time> (with its -wal/-shm files).
 */
export function restoreInventory(context: Context, file?: string): RestoreResult {
  const { layout } = context;
  ensurePrivateDir(context.home);
  const backups = backupDirOf(layout.database);
  let source: string;
  if (file !== undefined) {
    if (file === '')
      throw new McpkiError(
        'INVALID_INPUT',
        'the copy to restore is an empty path',
        'give the path of a copy, or nothing for the newest in HOME/backups',
      );
    source = resolve(file);
  } else {
    const newest = listBackups(backups).at(-1);
    if (!newest) {
      throw new McpkiError(
        'NOT_FOUND',
        `there is no copy of the inventory in ${backups}`,
        'give the path of a copy: mcpki inventory restore FILE',
      );
    }
    source = newest;
  }
  const stat = lstatOrNull(source);
  if (!stat) throw new McpkiError('NOT_FOUND', `${source} does not exist`, `give the path of a copy (ls ${backups})`);
  if (!stat.isFile()) {
    const type = stat.isSymbolicLink()
      ? 'a symlink'
      : stat.isDirectory()
        ? 'a folder'
        : stat.isFIFO()
          ? 'a FIFO'
          : 'a special file';
    throw new McpkiError(
      'INVALID_INPUT',
      `${source} is ${type}, not a regular file`,
      'give the path of the copy itself',
    );
  }
  // the inventory names files mcpki reads and writes (account keys, CA bundles, deploy paths): only a copy
  // this user or root made and no one else can have changed
  if (!isTrustedOwner(stat.uid)) {
    throw new McpkiError(
      'UNSAFE_PATH',
      `refusing ${source}: it is owned by uid ${stat.uid}, not by this user (uid ${runningUid()}) or root`,
      `check where the copy comes from; if it is yours, chown ${runningUid()} ${source}`,
    );
  }
  if ((stat.mode & 0o022) !== 0) {
    throw new McpkiError(
      'UNSAFE_PATH',
      `refusing ${source}: it is writable by ${stat.mode & 0o002 ? 'everyone' : 'its group'} (mode ${modeText(stat.mode)})`,
      `check where the copy comes from, then chmod go-w ${source}`,
    );
  }
  if (resolve(source) === resolve(layout.database)) {
    throw new McpkiError(
      'INVALID_INPUT',
      `${source} is the inventory itself`,
      `give a copy, e.g. the newest in ${backups}`,
    );
  }
  const current = lstatOrNull(layout.database);
  if (current && current.dev === stat.dev && current.ino === stat.ino) {
    throw new McpkiError(
      'INVALID_INPUT',
      `${source} is the inventory itself (a hard link to ${layout.database})`,
      `give a copy, e.g. the newest in ${backups}`,
    );
  }
  if (stat.size > RESTORE_LIMIT) {
    throw new McpkiError(
      'INVALID_INPUT',
      `${source} is ${stat.size} bytes; the limit for an inventory is ${RESTORE_LIMIT}`,
      'check that it is the right file (ls HOME/backups)',
    );
  }
  checkNoService(context);
  const rootFingerprint = rootFingerprintOf(context);
  removeStaleRestores(context.home);

  // a private copy first: what is checked is what is put in place
  const temp = join(context.home, `${RESTORE_TEMP}${process.pid}-${randomBytes(4).toString('hex')}`);
  let counts: { certificates: number; revoked: number };
  try {
    copyCopy(source, stat, temp);
    counts = inspectCopy(temp, source, rootFingerprint);
    fsyncPath(temp);
  } catch (error) {
    for (const suffix of ['', '-wal', '-shm', '-journal']) tryUnlink(temp + suffix);
    if (error instanceof McpkiError) throw error;
    throw new McpkiError(
      'WRITE_FAILED',
      `cannot copy ${source} into ${context.home} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      'check that the copy is readable and the home writable',
      { cause: error },
    );
  }
  for (const suffix of ['-wal', '-shm', '-journal']) tryUnlink(temp + suffix);

  let replaced: string | null = null;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  try {
    for (const suffix of ['', '-wal', '-shm']) {
      const path = layout.database + suffix;
      if (!lstatOrNull(path)) continue;
      const aside = `${layout.database}.replaced-${stamp}${suffix}`;
      renameSync(path, aside);
      if (suffix === '') replaced = aside;
    }
    renameSync(temp, layout.database);
    fsyncPath(context.home);
  } catch (error) {
    tryUnlink(temp);
    throw new McpkiError(
      'WRITE_FAILED',
      `cannot put ${source} in place of ${layout.database} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      `check ${context.home}; the replaced inventory, if any, is in ${replaced ?? 'place'}`,
      { cause: error },
    );
  }
  context.close();
  const store = Store.open(layout.database, context.now); // brings an older copy's schema up to date
  try {
    store.addEvent({ type: 'inventory.restored', detail: { from: source, replaced, generations: BACKUP_GENERATIONS } });
  } finally {
    store.close();
  }
  return { from: source, path: layout.database, replaced, ...counts };
}

/** The largest copy `inventory restore` takes (an inventory of a million certificates fits). */
const RESTORE_LIMIT = 2048 * 1024 * 1024;
const RESTORE_TEMP = '.mcpki.db.restore.mcpki-tmp-';

/**
 * Copies `source` into a new 0600 file `temp`, reading it through one descriptor opened without following a
 * symlink and checked with fstat to be the file inspected before (`seen`), and never more than RESTORE_LIMIT
 * bytes: a file swapped meanwhile, or one that grows, is refused. A sparse file is read, not copied as is.
 */
function copyCopy(source: string, seen: Stats, temp: string): void {
  const input = openSync(source, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  let output: number | undefined;
  try {
    const stat = fstatSync(input);
    if (!stat.isFile() || stat.dev !== seen.dev || stat.ino !== seen.ino) {
      throw new McpkiError(
        'UNSAFE_PATH',
        `refusing ${source}: it was replaced while it was being read`,
        'check where the copy comes from, then run again',
      );
    }
    output = openSync(temp, 'wx', 0o600);
    const chunk = Buffer.allocUnsafe(1024 * 1024);
    let total = 0;
    for (;;) {
      const n = readSync(input, chunk, 0, chunk.length, null);
      if (n === 0) break;
      total += n;
      if (total > RESTORE_LIMIT)
        throw new McpkiError(
          'INVALID_INPUT',
          `${source} grew past ${RESTORE_LIMIT} bytes while it was being read`,
          'check that it is the right file',
        );
      for (let written = 0; written < n;) written += writeSync(output, chunk, written, n - written);
    }
    fsyncSync(output);
  } finally {
    if (output !== undefined) closeSync(output);
    closeSync(input);
  }
}

/** Temp copies an interrupted restore left in the home (its process is gone): they can be large. */
function removeStaleRestores(home: string): void {
  let names: string[];
  try {
    names = readdirSync(home);
  } catch {
    return;
  }
  for (const name of names) {
    const match = new RegExp(`^${RESTORE_TEMP.replace(/\./g, '\\.')}(\\d+)-[0-9a-f]+(-wal|-shm|-journal)?$`).exec(name);
    if (match && !isAlive(Number(match[1]))) tryUnlink(join(home, name));
  }
}
