// What the inventory needs from a database: prepared statements, serialized transactions and versioned
// migrations. SQLite (better-sqlite3, the default) and PostgreSQL (node-postgres in a worker thread) each
// provide one; src/store/store.ts writes its SQL once for both (`?` or `@name` parameters, RETURNING).

export interface RunResult {
  /** rows inserted, updated or deleted */
  changes: number;
}

export interface SqlStatement {
  run(...params: unknown[]): RunResult;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

export type Dialect = 'sqlite' | 'postgres';

export interface Connection {
  readonly dialect: Dialect;
  /** the file, or the URL without its password: what messages name */
  readonly label: string;
  prepare(sql: string): SqlStatement;
  /**
   * Runs `fn` as one transaction that no other writer interleaves with (SQLite: BEGIN IMMEDIATE; PostgreSQL: a
   * transaction-scoped advisory lock taken first). A nested call is a savepoint.
   */
  transaction<T>(fn: () => T): T;
  readonly inTransaction: boolean;
  /** Brings the schema to migrations.length, under a lock so two processes never run the same migration. */
  migrate(migrations: readonly string[]): void;
  close(): void;
}
