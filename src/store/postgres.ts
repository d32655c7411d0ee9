// The inventory on PostgreSQL. node-postgres is asynchronous and the inventory's interface is synchronous (as
// better-sqlite3 is): one worker thread holds the session and the calling thread waits for each reply with
// Atomics.wait. A statement costs one round trip to the server, during which this thread does nothing else,
// exactly as a better-sqlite3 statement blocks it for the duration of its disk I/O.
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { McpkiError } from '../errors.js';
import type { Connection, SqlStatement } from './connection.js';
import type { PostgresLocation } from './location.js';
import type { Reply, Request, WorkerData } from './postgres-worker.js';

/** Advisory locks use the two-key form: this namespace, then a 32-bit hash of the schema and the lock's name. */
const LOCK_NAMESPACE = 0x6d63706b; // "mcpk"

/** FNV-1a, as a signed 32-bit integer (an advisory lock key). */
export function lockKey(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}
/** The longest one request may take: connect (10 s) plus the statement timeout (60 s), with a margin. */
const CALL_TIMEOUT_MS = 90_000;

/**
 * dist/store/postgres-worker.cjs (the build's bundle with pg inside, faster to start), else its source
 * postgres-worker.js; whether this code runs from dist/store or from a bundle in dist/.
 */
function workerFile(): string {
  for (const candidate of [
    './postgres-worker.cjs',
    './store/postgres-worker.cjs',
    './postgres-worker.js',
    './store/postgres-worker.js',
  ]) {
    const path = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new McpkiError(
    'INSTALL_INCOMPLETE',
    'the PostgreSQL worker (dist/store/postgres-worker.js) is missing',
    'reinstall mcpki (npm run build in a checkout)',
  );
}

/** `?` and `@name` parameters (better-sqlite3's) as PostgreSQL's `$1`…; quoted text is left alone. */
export function toPostgresSql(sql: string): { text: string; names: string[] | undefined; count: number } {
  const names: string[] = [];
  let count = 0;
  let named = false;
  const text = sql.replace(/'(?:[^']|'')*'|\?|@([A-Za-z_][A-Za-z0-9_]*)/g, (match, name: string | undefined) => {
    if (match.startsWith("'")) return match;
    if (match === '?') return `$${++count}`;
    named = true;
    let index = names.indexOf(name!);
    if (index < 0) index = names.push(name!) - 1;
    return `$${index + 1}`;
  });
  return { text, names: named ? names : undefined, count: named ? names.length : count };
}

function toValue(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'bigint') return value.toString();
  return value;
}

export class PostgresConnection implements Connection {
  readonly dialect = 'postgres' as const;
  readonly label: string;
  readonly schema: string;
  /** increases when the worker starts a new session (after a lost connection) */
  session = 0;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));
  private nextId = 1;
  private depth = 0;
  private closed = false;

  private constructor(location: PostgresLocation) {
    this.label = location.label;
    this.schema = location.schema;
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const ssl =
      location.sslMode === 'disable'
        ? false
        : {
            rejectUnauthorized: location.sslMode !== 'require',
            ...(location.ca ? { ca: location.ca } : {}),
            ...(location.cert ? { cert: location.cert } : {}),
            ...(location.key ? { key: location.key } : {}),
            // verify-ca: the chain, not the name
            ...(location.sslMode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
          };
    const data: WorkerData = {
      flag: this.flag,
      port: port2,
      // the schema's writers never interleave (SQLite's BEGIN IMMEDIATE)
      writerLock: [LOCK_NAMESPACE, lockKey(`${location.schema}:writer`)],
      config: {
        host: location.host,
        port: location.port,
        user: location.user,
        password: location.password,
        database: location.database,
        ssl,
        application_name: 'mcpki',
        options: `-c search_path="${location.schema}"`,
        connectionTimeoutMillis: 10_000,
        statement_timeout: 60_000,
        lock_timeout: 30_000,
        query_timeout: 65_000,
      },
    };
    this.worker = new Worker(workerFile(), { workerData: data, transferList: [port2] });
    this.worker.unref();
    this.port.unref();
  }

  /** Starts the session (one round trip, so a wrong URL or password is reported here). */
  static open(location: PostgresLocation): PostgresConnection {
    const connection = new PostgresConnection(location);
    try {
      connection.call({ op: 'query', text: 'SELECT 1', values: [], rows: 'none' });
    } catch (error) {
      connection.close();
      throw error;
    }
    return connection;
  }

  private call(request: Request): NonNullable<Reply['result']> {
    if (this.closed) throw Object.assign(new Error('the inventory connection is closed'), { code: 'CLOSED' });
    const id = this.nextId++;
    Atomics.store(this.flag, 0, 0);
    this.port.postMessage({ id, request });
    const deadline = Date.now() + CALL_TIMEOUT_MS;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0 || Atomics.wait(this.flag, 0, 0, left) === 'timed-out') {
        throw Object.assign(new Error(`no answer from PostgreSQL in ${CALL_TIMEOUT_MS / 1000} s`), {
          code: 'ETIMEDOUT',
          connection: true,
        });
      }
      // a late reply to a request that timed out earlier is dropped
      for (let message = receiveMessageOnPort(this.port); message; message = receiveMessageOnPort(this.port)) {
        const reply = message.message as Reply;
        if (reply.id !== id) continue;
        this.session = reply.session;
        if (reply.error) {
          throw Object.assign(new Error(reply.error.message), {
            code: reply.error.code,
            connection: reply.error.connection,
          });
        }
        return reply.result!;
      }
      Atomics.store(this.flag, 0, 0);
    }
  }

  prepare(sql: string): SqlStatement {
    const { text, names } = toPostgresSql(sql);
    const values = (params: unknown[]): unknown[] => {
      if (names) {
        const object = (params[0] ?? {}) as Record<string, unknown>;
        return names.map((name) => toValue(object[name]));
      }
      return params.flat().map(toValue);
    };
    return {
      run: (...params) => ({
        changes: this.call({ op: 'query', text, values: values(params), rows: 'none' }).rowCount,
      }),
      get: (...params) => this.call({ op: 'query', text, values: values(params), rows: 'one' }).rows[0],
      all: (...params) => this.call({ op: 'query', text, values: values(params), rows: 'all' }).rows,
    };
  }

  /** Several statements in one round trip, without parameters (migrations). */
  exec(sql: string): void {
    this.call({ op: 'exec', text: sql });
  }

  get inTransaction(): boolean {
    return this.depth > 0;
  }

  transaction<T>(fn: () => T): T {
    if (this.depth > 0) {
      const name = `mcpki_${this.depth}`;
      this.call({ op: 'savepoint', name });
      this.depth++;
      try {
        const result = fn();
        this.call({ op: 'release', name });
        return result;
      } catch (error) {
        try {
          this.call({ op: 'rollback-to', name });
        } catch {
          // the outer transaction fails as well and rolls back
        }
        throw error;
      } finally {
        this.depth--;
      }
    }
    this.call({ op: 'begin' });
    this.depth = 1;
    try {
      const result = fn();
      this.call({ op: 'commit' });
      return result;
    } catch (error) {
      try {
        this.call({ op: 'rollback' });
      } catch {
        // the session is gone: the server has rolled back
      }
      throw error;
    } finally {
      this.depth = 0;
    }
  }

  migrate(migrations: readonly string[]): void {
    // most opens find the schema current: one round trip instead of the locked transaction's six
    try {
      const row = this.prepare('SELECT version FROM mcpki_schema').get() as { version: number } | undefined;
      if (row?.version === migrations.length) return;
    } catch (error) {
      if ((error as { code?: string }).code !== '42P01') throw error; // 42P01: no such table yet
    }
    this.transaction(() => {
      // the lock is the same for every schema: CREATE SCHEMA of two schemas at once may conflict in the catalog
      this.call({
        op: 'query',
        text: 'SELECT pg_advisory_xact_lock($1, $2)',
        values: [LOCK_NAMESPACE, lockKey('migrate')],
        rows: 'none',
      });
      if (this.schema !== 'public') this.exec(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      this.exec('CREATE TABLE IF NOT EXISTS mcpki_schema (version INTEGER NOT NULL)');
      const row = this.prepare('SELECT version FROM mcpki_schema').get() as { version: number } | undefined;
      const current = row?.version ?? 0;
      if (current > migrations.length) {
        throw new McpkiError(
          'STORE_VERSION',
          `the inventory ${this.label} has schema version ${current}, newer than this mcpki understands (${migrations.length})`,
          'upgrade mcpki on this host to the version the other hosts run',
        );
      }
      for (let v = current; v < migrations.length; v++) this.exec(migrations[v]!);
      if (!row) this.prepare('INSERT INTO mcpki_schema (version) VALUES (?)').run(migrations.length);
      else if (current !== migrations.length)
        this.prepare('UPDATE mcpki_schema SET version = ?').run(migrations.length);
    });
  }

  /** pg_try_advisory_lock on this session: held until unlock or until the session ends (the process dies). */
  tryAdvisoryLock(name: string): boolean {
    const row = this.prepare('SELECT pg_try_advisory_lock(?, ?) AS locked').get(
      LOCK_NAMESPACE,
      lockKey(`${this.schema}:${name}`),
    ) as { locked: boolean };
    return row.locked;
  }

  /**
   * pg_advisory_lock on this session, waiting at most `waitMs` (lock_timeout for this one statement: the three
   * run as one implicit transaction, so a timeout also undoes the SET). Throws PostgreSQL's 55P03 when the wait
   * runs out. Held until advisoryUnlock or until the session ends.
   */
  advisoryLock(name: string, waitMs: number): void {
    const ms = Math.max(1, Math.floor(waitMs));
    this.exec(
      `SET lock_timeout = ${ms}; SELECT pg_advisory_lock(${LOCK_NAMESPACE}, ${lockKey(`${this.schema}:${name}`)}); RESET lock_timeout`,
    );
  }

  advisoryUnlock(name: string): void {
    this.prepare('SELECT pg_advisory_unlock(?, ?)').get(LOCK_NAMESPACE, lockKey(`${this.schema}:${name}`));
  }

  close(): void {
    if (this.closed) return;
    try {
      this.call({ op: 'close' });
    } catch {
      // ending a lost session
    }
    this.closed = true;
    void this.worker.terminate();
  }
}
