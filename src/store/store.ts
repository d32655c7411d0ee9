// The inventory: the only module that speaks SQL, written once for both databases it runs on (the home's
// SQLite file, src/store/sqlite.ts, or PostgreSQL, src/store/postgres.ts). Writes are short transactions.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  unlinkSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { McpkiError, fix } from '../errors.js';
import { installError } from '../install.js';
import type { San } from '../pki/names.js';
import { AcmeServerTables } from './acme-server.js';
import { SharedKeyTables } from './shared-keys.js';
import { CrlTables } from './crls.js';
import { AcmeServerShared } from './acme-server-shared.js';
import type { Connection, SqlStatement } from './connection.js';
import type { PostgresLocation } from './location.js';
import { MIGRATIONS } from './migrations.js';
import { POSTGRES_MIGRATIONS } from './migrations-postgres.js';
import { PostgresConnection } from './postgres.js';
import { SqliteConnection } from './sqlite.js';
import { x5tS256 } from './thumbprint.js';

export { openDatabase } from './sqlite.js';
export { x5tS256 } from './thumbprint.js';

export type CertificateKind = 'server' | 'client';
export type CertificateStatus = 'valid' | 'superseded' | 'revoked';

export interface CertificatePaths {
  cert?: string;
  key?: string;
  fullchain?: string;
  ca?: string;
  p12?: string;
}

export interface NewCertificate {
  name: string;
  kind: CertificateKind;
  serial: string;
  subject: string;
  sans: San[];
  issuer: string;
  issuerSerial: string | null;
  profile: string | null;
  keyType: string;
  notBefore: string;
  notAfter: string;
  fingerprint: string;
  pem: string;
  paths: CertificatePaths;
  /** ACME: the order that produced it */
  orderUrl?: string | null;
  /** ACME: the RFC 9773 certificate identifier */
  ariCertId?: string | null;
  /** ACME: 'production' or 'staging' directory */
  environment?: 'production' | 'staging' | null;
}

/** What the CA suggested through ACME Renewal Information (RFC 9773). */
export interface RenewalInfoRecord {
  windowStart: string;
  windowEnd: string;
  /** when to ask again (from Retry-After) */
  nextCheck: string;
  explanationUrl: string | null;
}

export interface CertificateRecord extends NewCertificate {
  id: number;
  /** RFC 8705 x5t#S256: base64url (no padding) of the SHA-256 of the DER certificate */
  thumbprint: string;
  renewalInfo: RenewalInfoRecord | null;
  status: CertificateStatus;
  revokedAt: string | null;
  revocationReason: string | null;
  createdAt: string;
}

/** What a renewal plan and the service's metrics read of a certificate on record (Store.currentByNames). */
export type CertificateSummary = Pick<
  CertificateRecord,
  | 'name'
  | 'kind'
  | 'serial'
  | 'sans'
  | 'issuer'
  | 'profile'
  | 'keyType'
  | 'notBefore'
  | 'notAfter'
  | 'status'
  | 'renewalInfo'
>;

export interface NewAuthority {
  role: 'root' | 'intermediate';
  serial: string;
  subject: string;
  keyType: string;
  notBefore: string;
  notAfter: string;
  fingerprint: string;
  pem: string;
}

export interface AuthorityRecord extends NewAuthority {
  id: number;
  status: 'active' | 'retired';
  createdAt: string;
}

export interface NewAcmeAccount {
  name: string;
  directoryUrl: string;
  accountUrl: string;
  email?: string | null;
  /** the account key file (0600); the key itself is never stored here */
  keyPath: string;
  environment: 'production' | 'staging';
  eabKid?: string | null;
  /** extra trust for the ACME server's TLS (Pebble, step-ca) */
  caBundle?: string | null;
}

export interface AcmeAccountRecord extends NewAcmeAccount {
  id: number;
  email: string | null;
  eabKid: string | null;
  caBundle: string | null;
  status: 'valid' | 'deactivated';
  createdAt: string;
}

interface AcmeAccountRow {
  id: number;
  name: string;
  directory_url: string;
  account_url: string;
  email: string | null;
  key_path: string;
  environment: 'production' | 'staging';
  eab_kid: string | null;
  ca_bundle: string | null;
  status: 'valid' | 'deactivated';
  created_at: string;
}

function toAcmeAccount(row: AcmeAccountRow): AcmeAccountRecord {
  return {
    id: row.id,
    name: row.name,
    directoryUrl: row.directory_url,
    accountUrl: row.account_url,
    email: row.email,
    keyPath: row.key_path,
    environment: row.environment,
    eabKid: row.eab_kid,
    caBundle: row.ca_bundle,
    status: row.status,
    createdAt: row.created_at,
  };
}

export interface RenewalState {
  name: string;
  code: string | null;
  reason: string | null;
  nextCheck: string | null;
  ariTime: string | null;
  failures: number;
  lastAttempt: string | null;
  lastSuccess: string | null;
  lastFailure: string | null;
  lastError: string | null;
  /** what the last successful deploy left on disk (serial, and size/mtime/mode per target), as JSON */
  deployed: string | null;
}

export interface LockHolder {
  pid: number;
  host: string;
  acquiredAt: string;
}

export interface EventRecord {
  id: number;
  at: string;
  type: string;
  name: string | null;
  serial: string | null;
  detail: Record<string, unknown>;
}

export interface NewEvent {
  type: string;
  name?: string | null;
  serial?: string | null;
  detail?: Record<string, unknown>;
}

interface CertificateRow {
  id: number;
  name: string;
  kind: CertificateKind;
  serial: string;
  subject: string;
  sans: string;
  issuer: string;
  issuer_serial: string | null;
  profile: string | null;
  key_type: string;
  not_before: string;
  not_after: string;
  fingerprint: string;
  thumbprint: string;
  status: CertificateStatus;
  revoked_at: string | null;
  revocation_reason: string | null;
  pem: string;
  paths: string;
  created_at: string;
  order_url: string | null;
  ari_cert_id: string | null;
  environment: 'production' | 'staging' | null;
  ari_window_start: string | null;
  ari_window_end: string | null;
  ari_next_check: string | null;
  ari_explanation_url: string | null;
}

/**
 * The columns of a certificate row (Store.currentByNames), in rowFromValues's order: its PEM left empty
 * unless `pem`, its file paths too with `paths` false.
 */
const certificateColumns = (paths: boolean, pem = false) =>
  `id, name, kind, serial, subject, sans, issuer, issuer_serial, profile, key_type, not_before, not_after, fingerprint, status, revoked_at, revocation_reason, ${pem ? 'pem' : "'' AS pem"}, ${paths ? 'paths' : "'{}' AS paths"}, created_at, order_url, ari_cert_id, environment, ari_window_start, ari_window_end, ari_next_check, ari_explanation_url, forgotten_at, thumbprint`;
/** The columns of a renewal state row, in renewalStateOf's order, without the deploy fingerprint unless `deployed`. */
const stateColumns = (deployed: boolean) =>
  `name, code, reason, next_check, ari_time, failures, last_attempt, last_success, last_failure, last_error, ${deployed ? 'deployed' : 'NULL AS deployed'}`;

/**
 * A row of certificateColumns read as an array (better-sqlite3's raw mode): with 10,000 certificates, making
 * these objects here costs about half what better-sqlite3 takes to make them with named columns.
 */
function rowFromValues(v: unknown[]): CertificateRow {
  return {
    id: v[0],
    name: v[1],
    kind: v[2],
    serial: v[3],
    subject: v[4],
    sans: v[5],
    issuer: v[6],
    issuer_serial: v[7],
    profile: v[8],
    key_type: v[9],
    not_before: v[10],
    not_after: v[11],
    fingerprint: v[12],
    status: v[13],
    revoked_at: v[14],
    revocation_reason: v[15],
    pem: v[16],
    paths: v[17],
    created_at: v[18],
    order_url: v[19],
    ari_cert_id: v[20],
    environment: v[21],
    ari_window_start: v[22],
    ari_window_end: v[23],
    ari_next_check: v[24],
    ari_explanation_url: v[25],
    thumbprint: v[27],
  } as CertificateRow;
}

/**
 * currentByNames reads this many names or more through a memory map of mcpki.db, of at most this many bytes.
 * SQLite maps the file read-only (writes still go through write(2)), and mcpki never truncates mcpki.db.
 */
const MMAP_READ_FROM = 1_000;
const MMAP_READ_BYTES = 1024 * 1024 * 1024;

/** The columns of a CertificateSummary (Store.currentByNames): about half of the row, read 10,000 times by a plan. */
const SUMMARY_FIELDS = [
  'name',
  'kind',
  'serial',
  'sans',
  'issuer',
  'profile',
  'key_type',
  'not_before',
  'not_after',
  'status',
  'ari_window_start',
  'ari_window_end',
  'ari_next_check',
  'ari_explanation_url',
] as const;
const SUMMARY_COLUMNS = SUMMARY_FIELDS.join(', ');

/**
 * The record of a certificate just inserted, its fields named one by one: a spread of the caller's object (a
 * worker's message in batch issuance) followed by more fields missed V8's inline cache at every row, about
 * 40 µs each over 2,000 certificates, and copied whatever else the object held. In toCertificate's order: one
 * hidden class for both.
 */
function newRecord(c: NewCertificate, id: number, thumbprint: string, createdAt: string): CertificateRecord {
  return {
    id,
    name: c.name,
    kind: c.kind,
    serial: c.serial,
    subject: c.subject,
    sans: c.sans,
    issuer: c.issuer,
    issuerSerial: c.issuerSerial,
    profile: c.profile,
    keyType: c.keyType,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    fingerprint: c.fingerprint,
    thumbprint,
    status: 'valid',
    revokedAt: null,
    revocationReason: null,
    pem: c.pem,
    paths: c.paths,
    createdAt,
    orderUrl: c.orderUrl ?? null,
    ariCertId: c.ariCertId ?? null,
    environment: c.environment ?? null,
    renewalInfo: null,
  };
}

function toCertificate(row: CertificateRow): CertificateRecord {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    serial: row.serial,
    subject: row.subject,
    sans: JSON.parse(row.sans) as San[],
    issuer: row.issuer,
    issuerSerial: row.issuer_serial,
    profile: row.profile,
    keyType: row.key_type,
    notBefore: row.not_before,
    notAfter: row.not_after,
    fingerprint: row.fingerprint,
    thumbprint: row.thumbprint,
    status: row.status,
    revokedAt: row.revoked_at,
    revocationReason: row.revocation_reason,
    pem: row.pem,
    paths: JSON.parse(row.paths) as CertificatePaths,
    createdAt: row.created_at,
    orderUrl: row.order_url,
    ariCertId: row.ari_cert_id,
    environment: row.environment,
    renewalInfo: renewalInfoOf(row),
  };
}

function renewalInfoOf(row: CertificateRow): RenewalInfoRecord | null {
  return renewalInfoFrom(row.ari_window_start, row.ari_window_end, row.ari_next_check, row.ari_explanation_url);
}

/** A certificate's ARI window on record: all three times, or none. */
function renewalInfoFrom(
  windowStart: string | null,
  windowEnd: string | null,
  nextCheck: string | null,
  explanationUrl: string | null,
): RenewalInfoRecord | null {
  return windowStart && windowEnd && nextCheck ? { windowStart, windowEnd, nextCheck, explanationUrl } : null;
}

/** A summary from its columns' values in SUMMARY_FIELDS order (a raw SQLite row). */
function summaryOf(values: readonly unknown[]): CertificateSummary {
  const [name, kind, serial, sans, issuer, profile, keyType, notBefore, notAfter, status, start, end, next, url] =
    values as string[];
  return {
    name: name!,
    kind: kind as CertificateKind,
    serial: serial!,
    sans: JSON.parse(sans!) as San[],
    issuer: issuer!,
    profile: profile ?? null,
    keyType: keyType!,
    notBefore: notBefore!,
    notAfter: notAfter!,
    status: status as CertificateStatus,
    renewalInfo: renewalInfoFrom(start ?? null, end ?? null, next ?? null, url ?? null),
  };
}

function toSummary(row: CertificateRow): CertificateSummary {
  return summaryOf(SUMMARY_FIELDS.map((field) => row[field]));
}

interface AuthorityRow {
  id: number;
  role: 'root' | 'intermediate';
  serial: string;
  subject: string;
  key_type: string;
  not_before: string;
  not_after: string;
  fingerprint: string;
  status: 'active' | 'retired';
  pem: string;
  created_at: string;
}

function toAuthority(row: AuthorityRow): AuthorityRecord {
  return {
    id: row.id,
    role: row.role,
    serial: row.serial,
    subject: row.subject,
    keyType: row.key_type,
    notBefore: row.not_before,
    notAfter: row.not_after,
    fingerprint: row.fingerprint,
    status: row.status,
    pem: row.pem,
    createdAt: row.created_at,
  };
}

export function storeError(error: unknown, path: string, dialect: 'sqlite' | 'postgres' = 'sqlite'): McpkiError {
  const code = (error as { code?: string }).code ?? '';
  const message = (error as Error).message ?? String(error);
  if (dialect === 'postgres') return postgresError(error, path, code, message);
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new McpkiError(
      'STORE_BUSY',
      `the inventory ${path} stayed locked by another mcpki process`,
      'try again; if it persists, look for a hung mcpki process',
      { cause: error },
    );
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || /not a database|malformed/i.test(message)) {
    return new McpkiError(
      'STORE_CORRUPT',
      `the inventory ${path} is not a valid SQLite database`,
      `move it aside (mv ${path} ${path}.broken) and run the command again; certificate and key files are not affected`,
      { cause: error },
    );
  }
  if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code === 'SQLITE_PERM' || /^E[A-Z]+$/.test(code)) {
    return new McpkiError(
      'HOME_UNUSABLE',
      `cannot open the inventory ${path}: ${message}`,
      fix('check that the mcpki home folder is writable by this user (see {--home DIR})'),
      { cause: error },
    );
  }
  return new McpkiError(
    'STORE_CORRUPT',
    `inventory error in ${path}: ${message}`,
    `check the file, or move it aside (mv ${path} ${path}.broken) and run the command again`,
    { cause: error },
  );
}

/** PostgreSQL's SQLSTATE classes: the server or the network is away (retry), busy, refused, or the SQL failed. */
function postgresError(error: unknown, label: string, code: string, message: string): McpkiError {
  if ((error as { connection?: boolean }).connection || /^(08|57P0|53)/.test(code)) {
    return new McpkiError(
      'STORE_UNAVAILABLE',
      `the inventory ${label} cannot be reached: ${message}`,
      'check that PostgreSQL is running and reachable; mcpki retries on its own at its next step',
      { cause: error },
    );
  }
  if (code === '55P03' || code === '40P01' || code === '40001') {
    return new McpkiError(
      'STORE_BUSY',
      `the inventory ${label} stayed locked by another mcpki process`,
      'try again; if it persists, look for a hung mcpki process on any host',
      { cause: error },
    );
  }
  if (code.startsWith('28') || code === '3D000' || code === '42501') {
    return new McpkiError(
      'STORE_UNAVAILABLE',
      `the inventory ${label} refused this connection: ${message}`,
      'check the user, password (PGPASSWORD) and database name of the store URL, and that the role may create tables in it',
      { cause: error },
    );
  }
  return new McpkiError(
    'STORE_CORRUPT',
    `inventory error in ${label}: ${message}`,
    'check the database, or report a bug with this message',
    {
      cause: error,
    },
  );
}

/** How long a CRL publisher waits for another one to finish (a publication takes milliseconds). */
export const PUBLISH_LOCK_WAIT_MS = 60_000;

/** How many copies of the inventory HOME/backups keeps (the newest). */
export const BACKUP_GENERATIONS = 5;
/** Events after which the inventory is copied: a revocation, any change of the CA. */
const BACKUP_AFTER = /^(certificate\.(revoked|forgotten)$|ca\.)/;
/** mcpki-2030-01-31T12-00-00-000Z.db: sorts by time. */
export const BACKUP_NAME = /^mcpki-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z\.db$/;

/** The folder of the inventory's copies: HOME/backups. */
export function backupDirOf(databasePath: string): string {
  return join(dirname(databasePath), 'backups');
}

/** The copies in a backup folder, oldest first. */
export function listBackups(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => BACKUP_NAME.test(name))
    .sort()
    .map((name) => join(dir, name));
}

function fsyncFolder(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class Store {
  /** the SQLite file, or the PostgreSQL URL without its password */
  readonly path: string;
  private readonly db: Connection;
  private readonly now: () => Date;
  /** lock names are per home in a database several homes share */
  private readonly lockScope: string;
  /** this home's renewal_state rows: '' in a SQLite file (one home), homeScope(home) in PostgreSQL */
  private readonly renewalScope: string;
  private readonly statements = new Map<string, SqlStatement>();
  /** SQLite statements that return each row as an array of values (currentByNames) */
  private readonly rawStatements = new Map<string, SqlStatement>();
  /** set inside a transaction that recorded a revocation or CA change: copied once it commits */
  private backupDue = false;
  /** the last automatic copy: its path, or why it failed (the change itself is committed either way) */
  lastBackup: { path?: string; error?: string } | undefined;

  private constructor(db: Connection, now: () => Date, scope: string) {
    this.path = db.label;
    this.db = db;
    this.now = now;
    this.lockScope = scope === '' ? '' : `${scope}:`;
    this.renewalScope = scope;
  }

  /** The home's SQLite inventory (created 0600 and migrated). */
  static open(path: string, now: () => Date = () => new Date()): Store {
    let db: SqliteConnection | undefined;
    try {
      db = SqliteConnection.open(path);
      db.migrate(MIGRATIONS);
      return new Store(db, now, '');
    } catch (error) {
      db?.close();
      if (error instanceof McpkiError) throw error;
      throw installError(error) ?? storeError(error, path);
    }
  }

  /**
   * The inventory in PostgreSQL, shared by the homes (hosts) that name it; `home` scopes the locks that belong
   * to one home (one apply or serve per home at a time). node-postgres runs in a worker thread started here.
   */
  static openPostgres(location: PostgresLocation, home: string, now: () => Date = () => new Date()): Store {
    let db: PostgresConnection | undefined;
    try {
      db = PostgresConnection.open(location);
      db.migrate(POSTGRES_MIGRATIONS);
      return new Store(db, now, homeScope(home));
    } catch (error) {
      db?.close();
      if (error instanceof McpkiError) throw error;
      throw storeError(error, location.label, 'postgres');
    }
  }

  /** 'sqlite' or 'postgres' */
  get dialect(): Connection['dialect'] {
    return this.db.dialect;
  }

  /** The PostgreSQL connection, for session-scoped advisory locks; undefined on SQLite. */
  private get postgres(): PostgresConnection | undefined {
    return this.db.dialect === 'postgres' ? (this.db as PostgresConnection) : undefined;
  }

  private get sqlite(): SqliteConnection | undefined {
    return this.db.dialect === 'sqlite' ? (this.db as SqliteConnection) : undefined;
  }

  close(): void {
    this.db.close();
  }

  /** A SQLite statement that returns its rows as arrays of the selected columns, prepared once per connection. */
  private rawStatement(sqlite: SqliteConnection, sql: string): SqlStatement {
    let statement = this.rawStatements.get(sql);
    if (!statement) {
      statement = sqlite.db.prepare(sql).raw(true);
      this.rawStatements.set(sql, statement);
    }
    return statement;
  }

  /** Prepared once per connection: batch issuance runs the same inserts thousands of times. */
  private statement(sql: string): SqlStatement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs `fn` in one IMMEDIATE transaction; errors are mapped to McpkiError. */
  transaction<T>(fn: () => T): T {
    let result: T;
    try {
      result = this.db.transaction(fn);
    } catch (error) {
      if (!this.db.inTransaction) this.backupDue = false; // rolled back: nothing to copy
      if (error instanceof McpkiError) throw error;
      throw storeError(error, this.path, this.db.dialect);
    }
    if (this.backupDue && !this.db.inTransaction) {
      this.backupDue = false;
      this.backupAfterChange();
    }
    return result;
  }

  // --- backups --------------------------------------------------------------------------------------

  /**
   * A consistent copy of the inventory in HOME/backups/mcpki-<time>.db (0600), made online with SQLite's
   * VACUUM INTO (other processes may keep reading and writing); only the newest BACKUP_GENERATIONS are
   * kept. Returns the copy's path. Must not run inside a transaction.
   */
  backup(): string {
    const sqlite = this.sqlite;
    if (!sqlite) {
      throw new McpkiError(
        'INVALID_INPUT',
        `the inventory is in PostgreSQL (${this.path}): mcpki copies only SQLite inventories`,
        'back PostgreSQL up with its own tools (pg_dump, or your database backups)',
      );
    }
    const dir = backupDirOf(this.path);
    try {
      makePrivateDir(dir);
    } catch (error) {
      throw new McpkiError(
        'WRITE_FAILED',
        `cannot create the backup folder ${dir} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        'check that the mcpki home is writable and the disk is not full',
        { cause: error },
      );
    }
    let time = Date.now();
    let target: string;
    for (;;) {
      target = join(dir, `mcpki-${new Date(time).toISOString().replace(/[:.]/g, '-')}.db`);
      if (!existsSync(target)) break;
      time++;
    }
    const temp = join(dir, `.${basename(target)}.mcpki-tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      // VACUUM INTO writes into an absent or empty file: an empty one made here (O_EXCL) gives it mode 0600
      closeSync(openSync(temp, 'wx', 0o600));
      sqlite.db.prepare('VACUUM INTO ?').run(temp);
      const fd = openSync(temp, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, target);
      fsyncFolder(dir);
    } catch (error) {
      try {
        unlinkSync(temp);
      } catch {
        // never created
      }
      if (error instanceof McpkiError) throw error;
      throw new McpkiError(
        'WRITE_FAILED',
        `cannot write the inventory backup ${target} (${(error as { code?: string }).code ?? (error as Error).message})`,
        'check that the mcpki home is writable and the disk is not full',
        { cause: error },
      );
    }
    for (const old of listBackups(dir).slice(0, -BACKUP_GENERATIONS)) {
      try {
        unlinkSync(old);
      } catch {
        // removed by another process meanwhile
      }
    }
    return target;
  }

  /** The automatic copy after a revocation or CA change; a failure is remembered and logged, not thrown. */
  private backupAfterChange(): void {
    if (!this.sqlite) return; // PostgreSQL's backups are the database's own
    try {
      this.lastBackup = { path: this.backup() };
    } catch (error) {
      this.lastBackup = { error: (error as Error).message };
      try {
        this.addEvent({ type: 'inventory.backup-failed', detail: { error: (error as Error).message } });
      } catch {
        // the inventory itself is failing: the caller sees that on its next step
      }
    }
  }

  private run<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof McpkiError) throw error;
      throw storeError(error, this.path, this.db.dialect);
    }
  }

  /**
   * Caps this connection's page cache. better-sqlite3 builds SQLite with a 16 MB cache; a process that reads
   * every certificate once an hour (the service) would otherwise hold all of it, as memory that freeing later
   * does not give back to the system.
   */
  limitPageCache(kib: number): void {
    const sqlite = this.sqlite;
    if (sqlite) this.run(() => sqlite.db.pragma(`cache_size = -${Math.max(64, Math.floor(kib))}`));
  }

  integrityCheck(): string {
    const sqlite = this.sqlite;
    if (!sqlite) return this.run(() => (this.statement('SELECT 1 AS ok').get() ? 'ok' : 'no answer'));
    return this.run(() => sqlite.db.pragma('integrity_check', { simple: true }) as string);
  }

  // --- settings -------------------------------------------------------------------------------------

  getSetting(key: string): string | undefined {
    return this.run(
      () =>
        (this.statement('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined)?.value,
    );
  }

  setSetting(key: string, value: string): void {
    this.run(() =>
      this.statement(
        'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ).run(key, value),
    );
  }

  /**
   * Atomically increments a counter setting and returns the new value (CRL numbers). `atLeast`: a number
   * already used elsewhere (the published CRL's), so the counter never goes back even if the inventory did.
   */
  nextCounter(key: string, atLeast = 0n): bigint {
    return this.transaction(() => {
      const stored = BigInt(this.getSetting(key) ?? '0');
      const current = (stored > atLeast ? stored : atLeast) + 1n;
      this.setSetting(key, current.toString());
      return current;
    });
  }

  // --- authorities ----------------------------------------------------------------------------------

  addAuthority(authority: NewAuthority): AuthorityRecord {
    return this.run(() => {
      const createdAt = this.now().toISOString();
      const info = this.statement(
        `INSERT INTO authorities (role, serial, subject, key_type, not_before, not_after, fingerprint, pem, created_at)
           VALUES (@role, @serial, @subject, @keyType, @notBefore, @notAfter, @fingerprint, @pem, @createdAt) RETURNING id`,
      ).get({ ...authority, createdAt }) as { id: number };
      return { ...authority, id: Number(info.id), status: 'active', createdAt };
    });
  }

  retireAuthorities(role: 'root' | 'intermediate', exceptSerial?: string): void {
    this.run(() =>
      this.statement(
        `UPDATE authorities SET status = 'retired' WHERE role = ? AND status = 'active' AND serial != ?`,
      ).run(role, exceptSerial ?? ''),
    );
  }

  listAuthorities(): AuthorityRecord[] {
    return this.run(() =>
      (this.statement('SELECT * FROM authorities ORDER BY id').all() as AuthorityRow[]).map(toAuthority),
    );
  }

  // --- certificates ---------------------------------------------------------------------------------

  /** Records a new certificate; earlier valid certificates of the same name become "superseded". */
  addCertificate(certificate: NewCertificate): CertificateRecord {
    return this.run(() => {
      const createdAt = this.now().toISOString();
      const thumbprint = x5tS256(certificate.pem);
      this.statement(`UPDATE certificates SET status = 'superseded' WHERE name = ? AND status = 'valid'`).run(
        certificate.name,
      );
      const info = this.statement(
        `INSERT INTO certificates (name, kind, serial, subject, sans, issuer, issuer_serial, profile, key_type, not_before, not_after, fingerprint, pem, paths, created_at, order_url, ari_cert_id, environment, thumbprint)
           VALUES (@name, @kind, @serial, @subject, @sans, @issuer, @issuerSerial, @profile, @keyType, @notBefore, @notAfter, @fingerprint, @pem, @paths, @createdAt, @orderUrl, @ariCertId, @environment, @thumbprint) RETURNING id`,
      ).get({
        ...certificate,
        thumbprint,
        sans: JSON.stringify(certificate.sans),
        paths: JSON.stringify(certificate.paths),
        createdAt,
        orderUrl: certificate.orderUrl ?? null,
        ariCertId: certificate.ariCertId ?? null,
        environment: certificate.environment ?? null,
      }) as { id: number };
      return newRecord(certificate, Number(info.id), thumbprint, createdAt);
    });
  }

  /**
   * Batch issuance's insert: many certificates, each with its events, through one prepared statement each and
   * positional parameters; earlier valid certificates of the same names become "superseded", as addCertificate
   * does. `thumbprint`, when the signer already hashed the DER, spares parsing the PEM again. The caller holds
   * the transaction (one per chunk).
   */
  addIssuedCertificates(
    items: readonly { certificate: NewCertificate; thumbprint?: string; events: readonly NewEvent[] }[],
  ): CertificateRecord[] {
    return this.run(() => {
      const createdAt = this.now().toISOString();
      const supersede = this.statement(
        `UPDATE certificates SET status = 'superseded' WHERE name = ? AND status = 'valid'`,
      );
      const insert = this.statement(
        `INSERT INTO certificates (name, kind, serial, subject, sans, issuer, issuer_serial, profile, key_type, not_before, not_after, fingerprint, pem, paths, created_at, order_url, ari_cert_id, environment, thumbprint)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
      );
      const addEvent = this.statement('INSERT INTO events (at, type, name, serial, detail) VALUES (?, ?, ?, ?, ?)');
      const records: CertificateRecord[] = [];
      for (const { certificate: c, thumbprint = x5tS256(c.pem), events } of items) {
        supersede.run(c.name);
        const orderUrl = c.orderUrl ?? null;
        const ariCertId = c.ariCertId ?? null;
        const environment = c.environment ?? null;
        const info = insert.get(
          c.name,
          c.kind,
          c.serial,
          c.subject,
          JSON.stringify(c.sans),
          c.issuer,
          c.issuerSerial,
          c.profile,
          c.keyType,
          c.notBefore,
          c.notAfter,
          c.fingerprint,
          c.pem,
          JSON.stringify(c.paths),
          createdAt,
          orderUrl,
          ariCertId,
          environment,
          thumbprint,
        ) as { id: number };
        for (const event of events) {
          addEvent.run(
            createdAt,
            event.type,
            event.name ?? null,
            event.serial ?? null,
            JSON.stringify(event.detail ?? {}),
          );
          if (BACKUP_AFTER.test(event.type)) this.backupDue = true;
        }
        records.push(newRecord(c, Number(info.id), thumbprint, createdAt));
      }
      if (this.backupDue && !this.db.inTransaction) {
        this.backupDue = false;
        this.backupAfterChange();
      }
      return records;
    });
  }

  /** The newest certificate with this name, or the one with this serial (hex, any case, colons allowed). */
  findCertificate(nameOrSerial: string): CertificateRecord | undefined {
    return this.run(() => {
      const byName = this.statement(
        'SELECT * FROM certificates WHERE name = ? AND forgotten_at IS NULL ORDER BY id DESC LIMIT 1',
      ).get(nameOrSerial) as CertificateRow | undefined;
      if (byName) return toCertificate(byName);
      const serial = nameOrSerial.replace(/:/g, '').toUpperCase();
      const bySerial = this.statement('SELECT * FROM certificates WHERE serial = ? AND forgotten_at IS NULL').get(
        serial,
      ) as CertificateRow | undefined;
      return bySerial ? toCertificate(bySerial) : undefined;
    });
  }

  /** Current certificates (newest per name), or every certificate ever issued with `all`. */
  listCertificates(options: { all?: boolean; expiringBefore?: string } = {}): CertificateRecord[] {
    return this.run(() => {
      const where: string[] = ['forgotten_at IS NULL'];
      const params: unknown[] = [];
      if (!options.all) where.push('id IN (SELECT MAX(id) FROM certificates WHERE forgotten_at IS NULL GROUP BY name)');
      if (options.expiringBefore) {
        where.push('not_after <= ?');
        params.push(options.expiringBefore);
      }
      const sql = `SELECT * FROM certificates ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY not_after, name`;
      return (this.statement(sql).all(...params) as CertificateRow[]).map(toCertificate);
    });
  }

  /**
   * Drops certificates from the inventory: every certificate of a name, or the one with a serial. A revoked one
   * is kept hidden (CRLs must keep listing its serial); the others are deleted. Returns what was forgotten.
   */
  forgetCertificates(nameOrSerial: string): CertificateRecord[] {
    return this.run(() => {
      let rows = this.statement('SELECT * FROM certificates WHERE name = ? AND forgotten_at IS NULL ORDER BY id').all(
        nameOrSerial,
      ) as CertificateRow[];
      if (rows.length === 0)
        rows = this.statement('SELECT * FROM certificates WHERE serial = ? AND forgotten_at IS NULL').all(
          nameOrSerial.replace(/:/g, '').toUpperCase(),
        ) as CertificateRow[];
      const at = this.now().toISOString();
      for (const row of rows) {
        if (row.status === 'revoked')
          this.statement('UPDATE certificates SET forgotten_at = ? WHERE id = ?').run(at, row.id);
        else this.statement('DELETE FROM certificates WHERE id = ?').run(row.id);
      }
      return rows.map(toCertificate);
    });
  }

  setRenewalInfo(serial: string, info: RenewalInfoRecord): void {
    this.run(() =>
      this.statement(
        'UPDATE certificates SET ari_window_start = ?, ari_window_end = ?, ari_next_check = ?, ari_explanation_url = ? WHERE serial = ?',
      ).run(info.windowStart, info.windowEnd, info.nextCheck, info.explanationUrl, serial),
    );
  }

  markRevoked(serial: string, reason: string, at: string): void {
    this.run(() =>
      this.statement(
        `UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ? WHERE serial = ?`,
      ).run(at, reason, serial),
    );
  }

  /** Revoked certificates signed by the given issuing CA. */
  revokedBy(issuerSerial: string): CertificateRecord[] {
    return this.run(() =>
      (
        this.statement(
          `SELECT * FROM certificates WHERE status = 'revoked' AND issuer_serial = ? ORDER BY revoked_at, id`,
        ).all(issuerSerial) as CertificateRow[]
      ).map(toCertificate),
    );
  }

  /** Serial (hex, as stored) and name of each revoked certificate signed by the given issuing CA: what its CRL lists. */
  listRevokedBy(issuerSerial: string): { serial: string; name: string }[] {
    return this.run(
      () =>
        this.statement(`SELECT serial, name FROM certificates WHERE status = 'revoked' AND issuer_serial = ?`).all(
          issuerSerial,
        ) as { serial: string; name: string }[],
    );
  }

  // --- ACME accounts ------------------------------------------------------------------------------

  addAcmeAccount(account: NewAcmeAccount): AcmeAccountRecord {
    return this.run(() => {
      const createdAt = this.now().toISOString();
      const insert = this.statement(
        `INSERT INTO acme_accounts (name, directory_url, account_url, email, key_path, environment, eab_kid, ca_bundle, created_at)
         VALUES (@name, @directoryUrl, @accountUrl, @email, @keyPath, @environment, @eabKid, @caBundle, @createdAt) RETURNING id`,
      );
      const record = {
        ...account,
        email: account.email ?? null,
        eabKid: account.eabKid ?? null,
        caBundle: account.caBundle ?? null,
      };
      const info = insert.get({ ...record, createdAt }) as { id: number };
      return { ...record, id: Number(info.id), status: 'valid', createdAt };
    });
  }

  findAcmeAccount(name: string): AcmeAccountRecord | undefined {
    return this.run(() => {
      const row = this.statement('SELECT * FROM acme_accounts WHERE name = ?').get(name) as AcmeAccountRow | undefined;
      return row ? toAcmeAccount(row) : undefined;
    });
  }

  listAcmeAccounts(): AcmeAccountRecord[] {
    return this.run(() =>
      (this.statement('SELECT * FROM acme_accounts ORDER BY name').all() as AcmeAccountRow[]).map(toAcmeAccount),
    );
  }

  setAcmeAccountEmail(name: string, email: string | null): void {
    this.run(() => this.statement('UPDATE acme_accounts SET email = ? WHERE name = ?').run(email, name));
  }

  setAcmeAccountStatus(name: string, status: 'valid' | 'deactivated'): void {
    this.run(() => this.statement('UPDATE acme_accounts SET status = ? WHERE name = ?').run(status, name));
  }

  // --- renewal state -------------------------------------------------------------------------------
  //
  // One row per certificate name and home (scope): on PostgreSQL several homes (hosts) declare the same
  // certificate, and what a row says is mostly about one host. Per host: `deployed` (the fingerprint of that
  // host's own target files: another host's never matches, and sharing it made every host redeploy at every
  // check), failures and the backoff they drive (a host whose target folder is broken must not hold back the
  // others), last attempt/success/failure/error, and the verdict with its next check (each host's own
  // schedule and renewBefore). About the certificate, so shared: `ari_time`, the moment chosen inside the CA's
  // ARI window, which a save sets on every host's row of that name (one moment for the certificate, not one
  // random draw per host, whose earliest would crowd the start of the window). Everything else about the
  // certificate (its serial, status, ARI window) is in `certificates`. A SQLite file is one home: scope ''.

  getRenewalState(name: string): RenewalState | undefined {
    return this.run(() => {
      const row = this.statement('SELECT * FROM renewal_state WHERE scope = ? AND name = ?').get(
        this.renewalScope,
        name,
      ) as Record<string, unknown> | undefined;
      return row ? toRenewalState(row) : undefined;
    });
  }

  /** This home's rows (on a shared PostgreSQL inventory, not the other hosts'). */
  listRenewalStates(): RenewalState[] {
    return this.run(() =>
      (
        this.statement('SELECT * FROM renewal_state WHERE scope = ? ORDER BY name').all(this.renewalScope) as Record<
          string,
          unknown
        >[]
      ).map(toRenewalState),
    );
  }

  /** The names that have renewal state on any home of this inventory: the certificates some mcpki.yaml declares. */
  renewalStateNames(): string[] {
    return this.run(() =>
      (this.statement('SELECT DISTINCT name FROM renewal_state ORDER BY name').all() as { name: string }[]).map(
        (row) => row.name,
      ),
    );
  }

  saveRenewalState(state: RenewalState): void {
    this.run(() => {
      this.statement(
        `INSERT INTO renewal_state (scope, name, code, reason, next_check, ari_time, failures, last_attempt, last_success, last_failure, last_error, deployed)
         VALUES (@scope, @name, @code, @reason, @nextCheck, @ariTime, @failures, @lastAttempt, @lastSuccess, @lastFailure, @lastError, @deployed)
         ON CONFLICT (scope, name) DO UPDATE SET code = excluded.code, reason = excluded.reason, next_check = excluded.next_check, ari_time = excluded.ari_time,
           failures = excluded.failures, last_attempt = excluded.last_attempt, last_success = excluded.last_success,
           last_failure = excluded.last_failure, last_error = excluded.last_error, deployed = excluded.deployed`,
      ).run({ ...state, scope: this.renewalScope });
      // the chosen ARI time is the certificate's: the other hosts' rows of the name follow (one home in SQLite)
      if (state.ariTime !== null && this.db.dialect === 'postgres') {
        this.statement(
          `UPDATE renewal_state SET ari_time = ? WHERE name = ? AND scope <> ? AND COALESCE(ari_time, '') <> ?`,
        ).run(state.ariTime, state.name, this.renewalScope, state.ariTime);
      }
    });
  }

  // --- locks ----------------------------------------------------------------------------------------

  /**
   * Takes the named lock if it is free, or held by a process of this host that no longer exists.
   * Returns the holder when someone else has it. Atomic: runs under SQLite's write lock.
   */
  tryLock(lockName: string, me: LockHolder, isAlive: (pid: number) => boolean): LockHolder | undefined {
    const name = this.lockScope + lockName;
    return this.transaction(() => {
      const row = this.statement('SELECT pid, host, acquired_at FROM locks WHERE name = ?').get(name) as
        { pid: number; host: string; acquired_at: string } | undefined;
      if (row && !(row.pid === me.pid && row.host === me.host) && !(row.host === me.host && !isAlive(row.pid))) {
        return { pid: row.pid, host: row.host, acquiredAt: row.acquired_at };
      }
      this.statement(
        'INSERT INTO locks (name, pid, host, acquired_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET pid = excluded.pid, host = excluded.host, acquired_at = excluded.acquired_at',
      ).run(name, me.pid, me.host, me.acquiredAt);
      return undefined;
    });
  }

  unlock(lockName: string, me: LockHolder): void {
    this.run(() =>
      this.statement('DELETE FROM locks WHERE name = ? AND pid = ? AND host = ?').run(
        this.lockScope + lockName,
        me.pid,
        me.host,
      ),
    );
  }

  /**
   * The right to renew one shared certificate now, against every other process on any host that uses this
   * inventory: PostgreSQL's session advisory lock (released when this process or its connection dies), or on
   * SQLite, where one home is one machine, always granted (the home's apply lock already serializes).
   * Returns a release function, or undefined when another process holds it.
   */
  tryRenewalLock(name: string): (() => void) | undefined {
    const postgres = this.postgres;
    if (!postgres) return () => undefined;
    const key = `renew:${name}`;
    const locked = this.run(() => postgres.tryAdvisoryLock(key));
    if (!locked) return undefined;
    const session = postgres.session;
    return () => {
      // a new session means the old one, and its lock, are already gone
      if (postgres.session === session) this.run(() => postgres.advisoryUnlock(key));
    };
  }

  /**
   * Runs `fn` as the only publisher of `name` (a CRL) among every process on any host that uses this inventory:
   * on PostgreSQL a session advisory lock per inventory (schema), waited for at most `waitMs`, released when
   * `fn` ends (or when the session drops); on SQLite, where one home is one machine, `fn` runs at once.
   */
  withPublishLock<T>(name: string, fn: () => T, waitMs = PUBLISH_LOCK_WAIT_MS): T {
    const postgres = this.postgres;
    if (!postgres) return fn();
    const key = `publish:${name}`;
    try {
      postgres.advisoryLock(key, waitMs);
    } catch (error) {
      if ((error as { code?: string }).code === '55P03')
        throw new McpkiError(
          'STORE_BUSY',
          `another mcpki process kept publishing the ${name.toUpperCase()} of the inventory ${this.path} for ${Math.round(waitMs / 1000)} s`,
          'try again; if it persists, look for a hung mcpki crl, serve or acme-server on any host that uses this inventory',
          { cause: error },
        );
      throw storeError(error, this.path, 'postgres');
    }
    const session = postgres.session;
    try {
      return fn();
    } finally {
      // a new session means the old one, and its lock, are already gone
      if (postgres.session === session) {
        try {
          postgres.advisoryUnlock(key);
        } catch {
          // the session is going away: the server releases the lock with it
        }
      }
    }
  }

  private crlTables: CrlTables | undefined;

  /** The published CRLs of an inventory several homes share (src/store/crls.ts). */
  crls(): CrlTables {
    this.crlTables ??= new CrlTables(
      (sql) => this.statement(sql),
      (fn) => this.run(fn),
      this.now,
    );
    return this.crlTables;
  }

  // --- the ACME server -------------------------------------------------------------------------------

  private acmeServerTables: AcmeServerTables | undefined;

  /** The ACME server's accounts, orders, issued certificates and EAB keys (src/store/acme-server.ts). */
  acmeServer(): AcmeServerTables {
    this.acmeServerTables ??= new AcmeServerTables(
      (sql) => this.statement(sql),
      (fn) => this.run(fn),
      (fn) => this.transaction(fn),
      this.now,
    );
    return this.acmeServerTables;
  }

  private sharedKeyTables: SharedKeyTables | undefined;

  /** Sealed private keys of certificates several hosts share (src/store/shared-keys.ts). */
  sharedKeys(): SharedKeyTables {
    this.sharedKeyTables ??= new SharedKeyTables(
      (sql) => this.statement(sql),
      (fn) => this.run(fn),
      this.now,
    );
    return this.sharedKeyTables;
  }

  private acmeServerSharedTables: AcmeServerShared | undefined;

  /** What several ACME-server instances on this inventory share: nonces, rate counters (acme-server-shared.ts). */
  acmeServerShared(): AcmeServerShared {
    this.acmeServerSharedTables ??= new AcmeServerShared(
      (sql) => this.statement(sql),
      (fn) => this.run(fn),
      (fn) => this.transaction(fn),
      this.now,
    );
    return this.acmeServerSharedTables;
  }

  // --- events ---------------------------------------------------------------------------------------

  addEvent(event: NewEvent): void {
    this.run(() =>
      this.statement('INSERT INTO events (at, type, name, serial, detail) VALUES (?, ?, ?, ?, ?)').run(
        this.now().toISOString(),
        event.type,
        event.name ?? null,
        event.serial ?? null,
        JSON.stringify(event.detail ?? {}),
      ),
    );
    if (BACKUP_AFTER.test(event.type)) {
      if (this.db.inTransaction) this.backupDue = true;
      else this.backupAfterChange();
    }
  }

  listEvents(options: { limit?: number; type?: string; name?: string } = {}): EventRecord[] {
    return this.run(() => {
      const where: string[] = [];
      const params: unknown[] = [];
      if (options.type) {
        where.push('type = ?');
        params.push(options.type);
      }
      if (options.name) {
        where.push('name = ?');
        params.push(options.name);
      }
      params.push(options.limit ?? 100);
      const rows = this.statement(
        `SELECT * FROM (SELECT * FROM events ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?) AS recent ORDER BY id`,
      ).all(...params) as {
        id: number;
        at: string;
        type: string;
        name: string | null;
        serial: string | null;
        detail: string;
      }[];
      return rows.map((row) => ({ ...row, detail: JSON.parse(row.detail) as Record<string, unknown> }));
    });
  }

  // --- batch reads ----------------------------------------------------------------------------------

  /**
   * For each name, in order: its newest certificate (by name only) and its renewal state, as findCertificate and
   * getRenewalState give them one at a time. On SQLite they are read in one read transaction (deferred: no
   * write lock, one snapshot): one WAL lock instead of two per name, which was most of a plan over 10,000
   * certificates. With `withoutPem` the record's `pem` is '' (about 1.3 KB of string less per certificate to
   * read and collect); with `summary`, only a CertificateSummary of each certificate and a state without
   * `deployed` (null).
   */
  currentByNames(
    names: readonly string[],
    options: { summary: true },
  ): { record: CertificateSummary | undefined; state: RenewalState | undefined }[];
  currentByNames(
    names: readonly string[],
    options?: { withoutPem?: boolean },
  ): { record: CertificateRecord | undefined; state: RenewalState | undefined }[];
  currentByNames(
    names: readonly string[],
    options: { summary?: boolean; withoutPem?: boolean } = {},
  ): { record: CertificateSummary | undefined; state: RenewalState | undefined }[] {
    return this.run(() => {
      const columns = options.summary ? SUMMARY_COLUMNS : certificateColumns(true, !options.withoutPem);
      const certificateSql = `SELECT ${columns} FROM certificates WHERE name = ? AND forgotten_at IS NULL ORDER BY id DESC LIMIT 1`;
      const stateSql = `SELECT ${stateColumns(!options.summary)} FROM renewal_state WHERE scope = ? AND name = ?`;
      const sqlite = this.sqlite;
      let read: () => { record: CertificateSummary | undefined; state: RenewalState | undefined }[];
      if (sqlite) {
        // SQLite: rows as arrays (better-sqlite3's raw mode), made into records here without an object per row
        // in between: about half what better-sqlite3's named-column objects cost over 10,000 names
        const byName = this.rawStatement(sqlite, certificateSql);
        const stateOf = this.rawStatement(sqlite, stateSql);
        const convert = options.summary ? summaryOf : (values: unknown[]) => toCertificate(rowFromValues(values));
        read = () =>
          names.map((name) => {
            const row = byName.get(name) as unknown[] | undefined;
            const state = stateOf.get(this.renewalScope, name) as unknown[] | undefined;
            return { record: row && convert(row), state: state && renewalStateOf(state) };
          });
      } else {
        const byName = this.statement(certificateSql);
        const stateOf = this.statement(stateSql);
        const convert = options.summary ? toSummary : toCertificate;
        read = () =>
          names.map((name) => {
            const row = byName.get(name) as CertificateRow | undefined;
            const state = stateOf.get(this.renewalScope, name) as Record<string, unknown> | undefined;
            return { record: row ? convert(row) : undefined, state: state ? toRenewalState(state) : undefined };
          });
      }
      if (!sqlite || sqlite.db.inTransaction || names.length < 2) return read();
      // a large read goes through a read-only memory map of mcpki.db: no pread (a copy) per page, 30% less CPU
      // over 10,000 names; unmapped again after, so that the service's resident memory does not keep the file
      const mapped = names.length >= MMAP_READ_FROM;
      if (mapped) sqlite.db.pragma(`mmap_size = ${MMAP_READ_BYTES}`);
      sqlite.db.exec('BEGIN');
      try {
        return read();
      } finally {
        sqlite.db.exec('COMMIT');
        if (mapped) sqlite.db.pragma('mmap_size = 0');
      }
    });
  }
}

/**
 * The scope of a home's rows in a PostgreSQL inventory that several homes share: its host name and folder.
 * Its locks are named after it, and its renewal state (`renewal_state.scope`) is kept under it.
 */
export function homeScope(home: string): string {
  return `${hostname()}:${home}`;
}

/** A 0700 folder (one level: the home exists). */
function makePrivateDir(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  if (!lstatSync(dir).isDirectory()) throw Object.assign(new Error(`${dir} is not a folder`), { code: 'ENOTDIR' });
}

/** A renewal state from stateColumns' values, in that order (a raw SQLite row). */
function renewalStateOf(values: readonly unknown[]): RenewalState {
  const [name, code, reason, nextCheck, ariTime, failures, lastAttempt, lastSuccess, lastFailure, lastError, deployed] =
    values as (string | null)[];
  return {
    name: name as string,
    code: code ?? null,
    reason: reason ?? null,
    nextCheck: nextCheck ?? null,
    ariTime: ariTime ?? null,
    failures: Number(failures ?? 0),
    lastAttempt: lastAttempt ?? null,
    lastSuccess: lastSuccess ?? null,
    lastFailure: lastFailure ?? null,
    lastError: lastError ?? null,
    deployed: deployed ?? null,
  };
}

function toRenewalState(row: Record<string, unknown>): RenewalState {
  return renewalStateOf([
    row.name,
    row.code,
    row.reason,
    row.next_check,
    row.ari_time,
    row.failures,
    row.last_attempt,
    row.last_success,
    row.last_failure,
    row.last_error,
    row.deployed,
  ]);
}
