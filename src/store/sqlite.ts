// The embedded inventory: one SQLite file in the home. WAL plus a busy timeout let many mcpki processes share
// it; writes are short IMMEDIATE transactions.
import Database from 'better-sqlite3';
import { closeSync, existsSync, openSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { McpkiError } from '../errors.js';
import type { Connection, SqlStatement } from './connection.js';
import { x5tS256 } from './thumbprint.js';

/** The addon, loaded once per process (each command-group bundle has its own copy of this module). */
const ADDON = Symbol.for('mcpki.betterSqlite3Addon');

/**
 * better-sqlite3's addon where npm built it, found the way Node finds the package (node_modules of this
 * module's folder, then of each folder above) and loaded with process.dlopen. Without it better-sqlite3 asks
 * the `bindings` package, which probes a dozen paths; require.resolve and require of the .node file cost about
 * 1 ms more of every command's start-up than these few stat calls (issue 9).
 */
function nativeAddon(): object | undefined {
  const shared = globalThis as typeof globalThis & Record<symbol, object | undefined>;
  if (shared[ADDON]) return shared[ADDON];
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (basename(dir) !== 'node_modules') {
      const addon = join(dir, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
      if (existsSync(addon)) {
        const module = { exports: {} };
        process.dlopen(module, addon);
        return (shared[ADDON] = module.exports);
      }
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** A better-sqlite3 connection with the addon npm built (for checking copies; the inventory itself goes through Store). */
export function openDatabase(
  path: string,
  options: { fileMustExist?: boolean; readonly?: boolean } = {},
): Database.Database {
  const addon = nativeAddon();
  // better-sqlite3 takes the loaded addon object as nativeBinding too (its types name only a path)
  return new Database(path, { ...options, ...(addon ? { nativeBinding: addon as unknown as string } : {}) });
}

export class SqliteConnection implements Connection {
  readonly dialect = 'sqlite' as const;
  readonly label: string;
  readonly db: Database.Database;

  private constructor(path: string, db: Database.Database) {
    this.label = path;
    this.db = db;
  }

  /** Opens (creating, mode 0600) the inventory file. Errors are better-sqlite3's or the file system's. */
  static open(path: string): SqliteConnection {
    // the inventory holds every certificate and the audit log: private to its owner like the keys
    closeSync(openSync(path, 'a', 0o600));
    const db = openDatabase(path);
    try {
      db.pragma('busy_timeout = 30000');
      db.pragma('journal_mode = WAL');
      // FULL: a commit fsyncs the WAL, so a row is durable once its transaction commits (NORMAL made it durable
      // only at the next checkpoint); the command line then need not close the inventory (src/cli/command.ts)
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
    } catch (error) {
      db.close();
      throw error;
    }
    return new SqliteConnection(path, db);
  }

  prepare(sql: string): SqlStatement {
    return this.db.prepare(sql) as unknown as SqlStatement;
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  migrate(migrations: readonly string[]): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    if (current === migrations.length) return;
    if (current > migrations.length) {
      throw new McpkiError(
        'STORE_VERSION',
        `the inventory ${this.label} has schema version ${current}, newer than this mcpki understands (${migrations.length})`,
        'upgrade mcpki',
      );
    }
    // used by the migration that adds the thumbprint column to fill it for existing rows
    this.db.function('x5t_s256', { deterministic: true }, (pem: unknown) =>
      typeof pem === 'string' ? x5tS256(pem) : null,
    );
    // IMMEDIATE takes the write lock first, so two processes never run the same migration.
    this.db
      .transaction(() => {
        const version = this.db.pragma('user_version', { simple: true }) as number;
        for (let v = version; v < migrations.length; v++) this.db.exec(migrations[v]!);
        this.db.pragma(`user_version = ${migrations.length}`);
      })
      .immediate();
  }

  close(): void {
    this.db.close();
  }
}
