// The PostgreSQL side of src/store/postgres.ts: one node-postgres client (one session) in a worker thread.
// The main thread posts a request and sleeps on `flag` until the reply is posted: the inventory keeps the
// synchronous interface SQLite has, and no other code needs to know which database it talks to.
import pg from 'pg';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';

export interface WorkerData {
  flag: Int32Array;
  port: MessagePort;
  config: pg.ClientConfig;
  /** the keys of the transaction-scoped advisory lock every writing transaction takes first */
  writerLock: [number, number];
}

export type Request =
  | { op: 'query'; text: string; values: unknown[]; rows: 'none' | 'one' | 'all' }
  | { op: 'exec'; text: string }
  | { op: 'begin' }
  | { op: 'savepoint'; name: string }
  | { op: 'release'; name: string }
  | { op: 'rollback-to'; name: string }
  | { op: 'commit' }
  | { op: 'rollback' }
  | { op: 'close' };

export interface Reply {
  id: number;
  result?: { rowCount: number; rows: unknown[] };
  error?: { message: string; code: string | undefined; connection: boolean };
  /** increases each time a new session starts: session-scoped locks of an older one are gone */
  session: number;
}

// int8 (COUNT(*), BIGINT ids) as numbers: every value mcpki keeps in one fits in 2^53
pg.types.setTypeParser(20, (value: string) => Number(value));

const data = workerData as WorkerData;
let client: pg.Client | undefined;
let session = 0;
/** a transaction is open on the server; if the session is lost inside one, statements fail until rollback */
let inTransaction = false;
let lostInTransaction = false;

/** Errors after which the session cannot be trusted: the next request starts a new one. */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? '';
  const message = (error as Error).message ?? '';
  return (
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)$/.test(code) ||
    /^(08|57P0)/.test(code) ||
    /Connection terminated|connection timeout|Client has encountered a connection error|not queryable|Connection ended/i.test(
      message,
    )
  );
}

async function connected(): Promise<pg.Client> {
  if (client) return client;
  const fresh = new pg.Client(data.config);
  fresh.on('error', () => {
    // the server went away between requests: start again at the next one
    if (client === fresh) dropClient();
  });
  try {
    await fresh.connect();
  } catch (error) {
    fresh.end().catch(() => undefined);
    throw error;
  }
  client = fresh;
  session++;
  return fresh;
}

function dropClient(): void {
  const old = client;
  client = undefined;
  if (inTransaction) lostInTransaction = true;
  old?.end().catch(() => undefined);
}

async function handle(request: Request): Promise<Reply['result']> {
  if (request.op === 'rollback') {
    inTransaction = false;
    if (lostInTransaction) {
      lostInTransaction = false;
      return { rowCount: 0, rows: [] }; // the server rolled it back when the session ended
    }
    if (client) await client.query('ROLLBACK');
    return { rowCount: 0, rows: [] };
  }
  if (request.op === 'close') {
    await client?.end();
    client = undefined;
    return { rowCount: 0, rows: [] };
  }
  if (lostInTransaction) {
    throw Object.assign(new Error('the connection to PostgreSQL was lost inside a transaction'), { code: '08006' });
  }
  const c = await connected();
  switch (request.op) {
    case 'query': {
      const result = await c.query({ text: request.text, values: request.values });
      const rows = request.rows === 'all' ? result.rows : request.rows === 'one' ? result.rows.slice(0, 1) : [];
      return { rowCount: result.rowCount ?? 0, rows };
    }
    case 'exec':
      await c.query(request.text);
      return { rowCount: 0, rows: [] };
    case 'begin':
      // one round trip: the simple protocol runs both statements
      inTransaction = true;
      await c.query(`BEGIN; SELECT pg_advisory_xact_lock(${data.writerLock[0] | 0}, ${data.writerLock[1] | 0})`);
      return { rowCount: 0, rows: [] };
    case 'savepoint':
      await c.query(`SAVEPOINT ${request.name}`);
      return { rowCount: 0, rows: [] };
    case 'release':
      await c.query(`RELEASE SAVEPOINT ${request.name}`);
      return { rowCount: 0, rows: [] };
    case 'rollback-to':
      await c.query(`ROLLBACK TO SAVEPOINT ${request.name}`);
      return { rowCount: 0, rows: [] };
    case 'commit':
      inTransaction = false;
      await c.query('COMMIT');
      return { rowCount: 0, rows: [] };
  }
}

data.port.on('message', ({ id, request }: { id: number; request: Request }) => {
  handle(request).then(
    (result) => reply({ id, result, session }),
    (error: unknown) => {
      const connection = isConnectionError(error);
      if (connection) dropClient();
      reply({
        id,
        error: {
          message: (error as Error).message ?? String(error),
          code: (error as { code?: string }).code,
          connection,
        },
        session,
      });
    },
  );
});

function reply(message: Reply): void {
  data.port.postMessage(message);
  Atomics.store(data.flag, 0, 1);
  Atomics.notify(data.flag, 0);
}

parentPort?.on('message', () => undefined);
