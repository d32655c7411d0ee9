// `mcpki store migrate --to postgres://…`: the home's SQLite inventory copied, table by table, into an empty
// PostgreSQL inventory at the same schema version, then compared row by row (counts and SHA-256 over every
// value in key order). The SQLite file is opened read-only and left as it was. The home's renewal state
// (scope '' in its SQLite file, one home) arrives under the home's scope in PostgreSQL, where several homes
// share the table: it is compared as it must arrive, SQLite's '' read as that scope.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import type { Context } from '../context.js';
import { McpkiError, fix } from '../errors.js';
import { parseStoreLocation, type PostgresLocation } from './location.js';
import { MIGRATIONS } from './migrations.js';
import { POSTGRES_MIGRATIONS } from './migrations-postgres.js';
import { PostgresConnection } from './postgres.js';
import { openDatabase } from './sqlite.js';
import { homeScope, storeError } from './store.js';

/** Every table that holds state, parents before children (foreign keys); `locks` is per process and not copied. */
const TABLES: readonly { name: string; key: string; identity?: string; scope?: string }[] = [
  { name: 'settings', key: 'key' },
  { name: 'authorities', key: 'id', identity: 'id' },
  { name: 'certificates', key: 'id', identity: 'id' },
  { name: 'events', key: 'id', identity: 'id' },
  { name: 'acme_accounts', key: 'id', identity: 'id' },
  // scope: the column whose '' (a SQLite file's one home) becomes the migrating home's scope
  { name: 'renewal_state', key: 'scope, name', scope: 'scope' },
  { name: 'acme_server_accounts', key: 'id' },
  { name: 'acme_server_orders', key: 'id', identity: 'rowid' },
  { name: 'acme_server_authorizations', key: 'id' },
  { name: 'acme_server_challenges', key: 'id' },
  { name: 'acme_server_certificates', key: 'serial' },
  { name: 'acme_server_eab_keys', key: 'kid' },
];
/** rows per INSERT: PostgreSQL allows 65,535 parameters in one statement */
const CHUNK_PARAMETERS = 30_000;

export interface TableCopy {
  table: string;
  rows: number;
  /** SHA-256 of every row in key order, equal on both sides */
  sha256: string;
}

export interface StoreMigrateResult {
  from: string;
  to: string;
  schemaVersion: number;
  tables: TableCopy[];
}

function columnsOf(db: Database.Database, table: string): string[] {
  return (db.prepare(`SELECT name FROM pragma_table_info(?)`).all(table) as { name: string }[]).map((c) => c.name);
}

/** One value as text, the same whichever database it came from (numbers, text, NULL). */
function canonical(value: unknown): string {
  if (value === null || value === undefined) return '\u0000';
  return String(value);
}

function digest(rows: Iterable<Record<string, unknown>>, columns: readonly string[]): { rows: number; sha256: string } {
  const hash = createHash('sha256');
  let count = 0;
  for (const row of rows) {
    count++;
    for (const column of columns) hash.update(canonical(row[column])).update('\u0001');
    hash.update('\u0002');
  }
  return { rows: count, sha256: hash.digest('hex') };
}

/**
 * The order rows are compared in, the same on both sides: SQLite compares text by its bytes (BINARY), and
 * PostgreSQL by the database's collation (en_US puts "a-b" after "A_b" and ignores case first) unless told
 * "C", which compares bytes too. Integer keys need no collation.
 */
function orderOf(table: { key: string; identity?: string }, dialect: 'sqlite' | 'postgres'): string {
  if (table.identity !== undefined) return table.identity;
  const keys = table.key.split(', ');
  return dialect === 'sqlite' ? keys.join(', ') : keys.map((key) => `${key} COLLATE "C"`).join(', ');
}

/** Runs one step on the PostgreSQL side; its errors become STORE_UNAVAILABLE, STORE_BUSY… naming the URL. */
function onTarget<T>(to: PostgresLocation, step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (error instanceof McpkiError) throw error;
    throw storeError(error, to.label, 'postgres');
  }
}

/**
 * A source row's values as they are written to PostgreSQL (and compared): the scope column's '' becomes the
 * migrating home's scope.
 */
function arriving(table: { scope?: string }, columns: readonly string[], scope: string) {
  const at = table.scope === undefined ? -1 : columns.indexOf(table.scope);
  return (row: Record<string, unknown>): unknown[] =>
    columns.map((c, i) => (i === at && (row[c] === '' || row[c] === null) ? scope : row[c]));
}

/** Source rows as they arrive in PostgreSQL (arriving()), for the comparison. */
function* asArrived(
  rows: Iterable<Record<string, unknown>>,
  table: { scope?: string },
  columns: readonly string[],
  scope: string,
): Iterable<Record<string, unknown>> {
  const values = arriving(table, columns, scope);
  for (const row of rows) {
    const arrived = values(row);
    yield Object.fromEntries(columns.map((c, i) => [c, arrived[i]]));
  }
}

/**
 * Copies the SQLite inventory at `databasePath` into an empty PostgreSQL one; `home` (by default the folder of
 * the database) names the scope its renewal state is kept under there.
 */
export function migrateStore(
  databasePath: string,
  to: PostgresLocation,
  home: string = dirname(databasePath),
): StoreMigrateResult {
  const scope = homeScope(home);
  if (!existsSync(databasePath)) {
    throw new McpkiError(
      'STORE_MISSING',
      `there is no SQLite inventory at ${databasePath} to copy`,
      fix('check {--home DIR}: it names the home whose mcpki.db is copied'),
    );
  }
  const source = openDatabase(databasePath, { readonly: true, fileMustExist: true });
  let target: PostgresConnection | undefined;
  try {
    const version = source.pragma('user_version', { simple: true }) as number;
    if (version !== MIGRATIONS.length) {
      throw new McpkiError(
        'STORE_VERSION',
        `the inventory ${databasePath} has schema version ${version}, this mcpki copies version ${MIGRATIONS.length}`,
        version < MIGRATIONS.length
          ? 'run any mcpki command on the home once (e.g. mcpki list) to bring it up to date'
          : 'upgrade mcpki',
      );
    }
    const pg = (target = onTarget(to, () => PostgresConnection.open(to)));
    onTarget(to, () => pg.migrate(POSTGRES_MIGRATIONS));
    for (const table of TABLES) {
      const row = onTarget(to, () => pg.prepare(`SELECT COUNT(*) AS n FROM ${table.name}`).get()) as { n: number };
      if (row.n !== 0) {
        throw new McpkiError(
          'STORE_NOT_EMPTY',
          `the PostgreSQL inventory ${to.label} is not empty (${row.n} rows in ${table.name})`,
          'copy into an empty database or schema (e.g. add ?schema=NEW to the URL); nothing was written',
        );
      }
    }
    const tables: TableCopy[] = [];
    onTarget(to, () =>
      pg.transaction(() => {
        for (const table of TABLES) {
          const columns = columnsOf(source, table.name);
          const sourceColumns = table.identity === 'rowid' ? [...columns, 'rowid'] : columns;
          const select = source.prepare(
            `SELECT ${sourceColumns.join(', ')} FROM ${table.name} ORDER BY ${table.identity === 'rowid' ? 'rowid' : table.key}`,
          );
          const perRow = sourceColumns.length;
          const chunk = Math.max(1, Math.floor(CHUNK_PARAMETERS / perRow));
          const values = arriving(table, sourceColumns, scope);
          let batch: unknown[][] = [];
          const flush = () => {
            if (batch.length === 0) return;
            const placeholders = batch.map(() => `(${sourceColumns.map(() => '?').join(', ')})`).join(', ');
            const overriding = table.identity === 'rowid' ? ' OVERRIDING SYSTEM VALUE' : '';
            pg.prepare(
              `INSERT INTO ${table.name} (${sourceColumns.join(', ')})${overriding} VALUES ${placeholders}`,
            ).run(batch.flat());
            batch = [];
          };
          for (const row of select.iterate() as Iterable<Record<string, unknown>>) {
            batch.push(values(row));
            if (batch.length >= chunk) flush();
          }
          flush();
          if (table.identity) {
            pg.prepare(
              `SELECT setval(pg_get_serial_sequence('${table.name}', '${table.identity}'), COALESCE((SELECT MAX(${table.identity}) FROM ${table.name}), 0) + 1, false)`,
            ).get();
          }
        }
      }),
    );
    for (const table of TABLES) {
      const columns = columnsOf(source, table.name);
      const order = orderOf(table, 'sqlite');
      const sourceRows = source
        .prepare(`SELECT ${columns.join(', ')} FROM ${table.name} ORDER BY ${order}`)
        .iterate() as Iterable<Record<string, unknown>>;
      const mine = digest(
        table.scope === undefined ? sourceRows : asArrived(sourceRows, table, columns, scope),
        columns,
      );
      const theirs = digest(
        onTarget(
          to,
          () =>
            pg
              .prepare(`SELECT ${columns.join(', ')} FROM ${table.name} ORDER BY ${orderOf(table, 'postgres')}`)
              .all() as Record<string, unknown>[],
        ),
        columns,
      );
      if (mine.rows !== theirs.rows || mine.sha256 !== theirs.sha256) {
        throw new McpkiError(
          'STORE_CORRUPT',
          `the copy of ${table.name} differs: ${mine.rows} rows (sha256 ${mine.sha256.slice(0, 12)}) in SQLite, ${theirs.rows} (sha256 ${theirs.sha256.slice(0, 12)}) in PostgreSQL`,
          'report a bug with this message; the SQLite inventory is unchanged, drop the PostgreSQL schema before trying again',
        );
      }
      tables.push({ table: table.name, rows: mine.rows, sha256: mine.sha256 });
    }
    return { from: databasePath, to: to.label, schemaVersion: version, tables };
  } finally {
    target?.close();
    source.close();
  }
}

/** `mcpki store migrate --to URL`: the home's SQLite inventory into an empty PostgreSQL one. */
export function migrateInventory(context: Context, to: string): StoreMigrateResult {
  const location = parseStoreLocation(to);
  if (location.kind !== 'postgres') {
    throw new McpkiError(
      'INVALID_INPUT',
      `--to ${to} is not a PostgreSQL URL`,
      fix('give {--to|store:} postgres://USER@HOST:5432/DB?sslmode=verify-full&sslrootcert=CA.pem'),
    );
  }
  if (context.storeLocation.kind !== 'sqlite') {
    throw new McpkiError(
      'INVALID_INPUT',
      `this home's inventory is already in PostgreSQL (${context.storeLocation.label})`,
      fix('run store migrate without {--store|store:} and MCPKI_STORE, on the home whose mcpki.db is to be copied'),
    );
  }
  return migrateStore(context.layout.database, location, context.home);
}
