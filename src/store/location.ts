// Where the inventory lives, parsed once at the edge (--store, MCPKI_STORE, `store:` in mcpki.yaml): the
// home's SQLite file by default, or a PostgreSQL database given as a libpq-style URL.
import { isIP } from '../net/ip.js';
import { McpkiError } from '../errors.js';
import { INPUT_LIMITS, readInputFile } from '../fs/read.js';

export type SslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

export interface PostgresLocation {
  kind: 'postgres';
  host: string;
  port: number;
  user: string | undefined;
  /** from the URL or PGPASSWORD; never in messages, never in a child process */
  password: string | undefined;
  database: string;
  sslMode: SslMode;
  /** PEM text read from sslrootcert (verify-ca, verify-full) and sslcert/sslkey (client certificate) */
  ca: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  /** `schema=`: the inventory's tables live in this schema (several inventories in one database) */
  schema: string;
  /** the URL without its password, for messages */
  label: string;
}

export interface SqliteLocation {
  kind: 'sqlite';
}

export type StoreLocation = SqliteLocation | PostgresLocation;

const SSL_MODES: readonly SslMode[] = ['disable', 'require', 'verify-ca', 'verify-full'];
const KNOWN_PARAMETERS = new Set(['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'schema']);
const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;

function invalid(value: string, why: string, hint: string): McpkiError {
  return new McpkiError('INVALID_INPUT', `store URL ${value}: ${why}`, hint);
}

/** Hides the password of a URL given by the user, for messages. */
export function redactUrl(value: string): string {
  return value.replace(/^([a-z]+:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

/**
 * `sqlite` (or an empty value): the home's mcpki.db. `postgres://USER[:PASSWORD]@HOST[:PORT]/DB?sslmode=…`:
 * PostgreSQL. A host other than loopback must say its sslmode: an inventory that decides who holds
 * certificates is not sent in clear text by default. `readFiles: false` checks the URL only (mcpki.yaml's
 * `store:` when the file is validated): the certificate and key files are read when the inventory is opened.
 */
export function parseStoreLocation(
  value: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  options: { readFiles?: boolean } = {},
): StoreLocation {
  const readFiles = options.readFiles ?? true;
  if (value === undefined || value === '' || value === 'sqlite') return { kind: 'sqlite' };
  const shown = redactUrl(value);
  if (/[\x00-\x1f\x7f]/.test(value)) {
    throw invalid(JSON.stringify(shown), 'contains control characters', 'write the URL on one line, as printable text');
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(
      shown,
      'is not a URL',
      'write postgres://USER@HOST:5432/DATABASE?sslmode=verify-full&sslrootcert=CA.pem, or sqlite',
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw invalid(shown, `scheme ${url.protocol.replace(/:$/, '')} is not supported`, 'use postgres://… or sqlite');
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw invalid(shown, 'names no host', 'write postgres://USER@HOST:5432/DATABASE');
  const port = url.port ? Number(url.port) : 5432;
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!database || database.includes('/')) {
    throw invalid(shown, 'names no database', 'end the URL with /DATABASE, e.g. postgres://mcpki@db:5432/mcpki');
  }
  for (const key of url.searchParams.keys()) {
    if (!KNOWN_PARAMETERS.has(key)) {
      throw invalid(shown, `unknown parameter ${key}`, `use only ${[...KNOWN_PARAMETERS].join(', ')}`);
    }
  }
  const mode = url.searchParams.get('sslmode');
  if (mode !== null && !SSL_MODES.includes(mode as SslMode)) {
    throw invalid(
      shown,
      `sslmode=${mode} is not one of ${SSL_MODES.join(', ')}`,
      'use sslmode=verify-full with sslrootcert=CA.pem',
    );
  }
  const loopback = host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
  if (mode === null && !loopback) {
    throw invalid(
      shown,
      `names no sslmode for the remote host ${host}`,
      'add ?sslmode=verify-full&sslrootcert=CA.pem (or sslmode=disable to send the inventory in clear text)',
    );
  }
  const sslMode = (mode ?? 'disable') as SslMode;
  const schema = url.searchParams.get('schema') ?? 'public';
  if (!SCHEMA.test(schema)) {
    throw invalid(
      shown,
      `schema=${schema} is not a plain lower-case name`,
      'use letters a-z, digits and _ (at most 63), e.g. schema=mcpki',
    );
  }
  const readPem = (parameter: string, maxBytes: number): string | undefined => {
    const path = url.searchParams.get(parameter);
    if (path === null) return undefined;
    if (!readFiles) return '';
    return readInputFile(path, { what: `the store URL's ${parameter}`, maxBytes }).toString('utf8');
  };
  const ca = readPem('sslrootcert', INPUT_LIMITS.pem);
  if ((sslMode === 'verify-full' || sslMode === 'verify-ca') && (ca === undefined || (readFiles && !ca))) {
    throw invalid(
      shown,
      `sslmode=${sslMode} needs sslrootcert`,
      'add &sslrootcert=PATH of the CA that signed the server certificate',
    );
  }
  const user = url.username ? decodeURIComponent(url.username) : env.PGUSER;
  const password = url.password ? decodeURIComponent(url.password) : env.PGPASSWORD;
  return {
    kind: 'postgres',
    host,
    port,
    user,
    password,
    database,
    sslMode,
    ca,
    cert: readPem('sslcert', INPUT_LIMITS.pem),
    key: readPem('sslkey', INPUT_LIMITS.secret),
    schema,
    label: `postgres://${user ? `${encodeURIComponent(user)}@` : ''}${url.host}/${encodeURIComponent(database)}${schema === 'public' ? '' : `?schema=${schema}`}`,
  };
}
