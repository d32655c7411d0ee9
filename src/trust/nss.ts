// NSS databases: Firefox keeps one per profile and ignores the system store; Chrome/Chromium on Linux read
// ~/.pki/nssdb. certutil (libnss3-tools / nss-tools) edits them; only the SQL format (cert9.db) is supported,
// which every NSS since 2017 uses.
import { lstatSync, readdirSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { McpkiError, isMcpkiError, fix } from '../errors.js';
import { assertSafeDir, isTrustedOwner, runningUid, unsafe } from '../fs/safe-path.js';
import {
  findTool,
  isDirectory,
  isFile,
  isWritable,
  runTool,
  shellWord,
  type Availability,
  type RootCertificate,
  type TrustStore,
  type TrustStoreResult,
} from './common.js';

export const CERTUTIL_HINT =
  'install certutil: apt-get install libnss3-tools (Debian/Ubuntu) or dnf install nss-tools (Fedora)';

/** Unique per CA, so several mcpki CAs can sit in one database and uninstall removes exactly ours. */
export function nicknameFor(root: RootCertificate): string {
  return `mcpki development CA ${root.id}`;
}

/** Folders that hold an NSS SQL database: ~/.pki/nssdb, Chromium's snap, Firefox profiles (also the snap's). */
export function discoverNssDbs(home: string = homedir()): string[] {
  const found: string[] = [];
  for (const dir of [join(home, '.pki', 'nssdb'), join(home, 'snap', 'chromium', 'current', '.pki', 'nssdb')]) {
    if (isFile(join(dir, 'cert9.db'))) found.push(dir);
  }
  for (const profiles of [
    join(home, '.mozilla', 'firefox'),
    join(home, 'snap', 'firefox', 'common', '.mozilla', 'firefox'),
  ]) {
    let names: string[];
    try {
      names = readdirSync(profiles).sort();
    } catch {
      continue;
    }
    for (const name of names) {
      const dir = join(profiles, name);
      if (isFile(join(dir, 'cert9.db'))) found.push(dir);
    }
  }
  // snap's "current" is a symlink: the same database must not be listed (and changed) twice
  const seen = new Set<string>();
  return found.filter((dir) => {
    const real = realpathOr(dir);
    if (seen.has(real)) return false;
    seen.add(real);
    return true;
  });
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** An explicit --nss-db folder: must exist and hold cert9.db (certutil would silently create a new database). */
export function checkNssDb(dir: string): string {
  const path = resolve(dir);
  if (!isDirectory(path)) {
    throw new McpkiError(
      'INVALID_INPUT',
      `NSS database folder ${path} does not exist`,
      fix('pass the folder that contains cert9.db, e.g. {--nss-db ~/.pki/nssdb}'),
    );
  }
  if (!isFile(join(path, 'cert9.db'))) {
    throw new McpkiError(
      'INVALID_INPUT',
      `${path} holds no NSS database (no cert9.db)`,
      `pass the folder that contains cert9.db, or create one: certutil -N -d sql:${shellWord(path)} --empty-password`,
    );
  }
  assertSafeNssDb(path);
  return path;
}

/**
 * certutil (and SQLite under it) creates and rewrites files in the database folder: cert9.db, key4.db, journals.
 * A folder another user owns or may write, or a database file that is a symlink or not ours, would let that user
 * point those writes at our files (running as root: at any file). Throws UNSAFE_PATH before certutil runs.
 */
export function assertSafeNssDb(dir: string): void {
  assertSafeDir(dir, 'the NSS database folder');
  for (const name of ['cert9.db', 'key4.db', 'pkcs11.txt']) {
    const file = join(dir, name);
    let stat;
    try {
      stat = lstatSync(file);
    } catch {
      continue; // certutil creates key4.db and pkcs11.txt when missing
    }
    if (stat.isSymbolicLink() && !isTrustedOwner(stat.uid)) {
      throw unsafe(
        file,
        `it is a symlink owned by uid ${stat.uid}`,
        `use an NSS database that only this user (uid ${runningUid()}) owns`,
      );
    }
    if (!stat.isSymbolicLink() && !stat.isFile())
      throw unsafe(file, 'it is not a regular file', `check ${dir}: it does not look like an NSS database`);
    if (!isTrustedOwner(stat.uid)) {
      throw unsafe(
        file,
        `it is owned by uid ${stat.uid}, not by this user (uid ${runningUid()}) or root`,
        `run mcpki as the user who owns this NSS database, or pass --nss-db DIR for one you own`,
      );
    }
  }
}

/** Discovered databases: the reason one may not be used, or null. */
export function nssDbProblem(dir: string): string | null {
  try {
    assertSafeNssDb(dir);
    return null;
  } catch (error) {
    if (!isMcpkiError(error)) throw error;
    return `${error.message}; ${error.hint ?? ''}`.replace(/; $/, '');
  }
}

interface NssEntry {
  nickname: string;
  /** "SSL,S/MIME,JAR/XPI" trust attributes, e.g. "C,," */
  flags: string;
}

export class NssStore implements TrustStore {
  readonly name = 'nss';
  readonly location: string;

  constructor(
    private readonly dir: string,
    private readonly certutil: string | null = findTool('certutil'),
  ) {
    this.location = dir;
  }

  isAvailable(): Availability {
    return this.certutil ? { ok: true } : { ok: false, reason: 'certutil not found', hint: CERTUTIL_HINT };
  }

  private tool(): string {
    if (!this.certutil) throw new McpkiError('TRUST_TOOL_MISSING', 'certutil not found', CERTUTIL_HINT);
    return this.certutil;
  }

  private db(): string {
    return `sql:${this.dir}`;
  }

  private manual(args: readonly string[]): string {
    return `run it by hand to see why: ${['certutil', ...args].map(shellWord).join(' ')}`;
  }

  private list(): NssEntry[] {
    const args = ['-L', '-d', this.db()];
    const { stdout } = runTool(this.tool(), args, this.manual(args));
    const entries: NssEntry[] = [];
    for (const line of stdout.split('\n')) {
      // "<nickname padded to 60>  C,,  "; the header line has no commas in its last column
      const match = /^(.*\S)\s+([A-Za-z]*,[A-Za-z]*,[A-Za-z]*)\s*$/.exec(line);
      if (match) entries.push({ nickname: match[1]!, flags: match[2]! });
    }
    return entries;
  }

  private find(root: RootCertificate): NssEntry | undefined {
    const nickname = nicknameFor(root);
    return this.list().find((entry) => entry.nickname === nickname);
  }

  private requireWritable(): void {
    const file = join(this.dir, 'cert9.db');
    const blocked = [file, this.dir].find((path) => !isWritable(path));
    if (blocked) {
      throw new McpkiError(
        'TRUST_PERMISSION',
        `cannot write ${blocked}`,
        fix(
          'run mcpki as the user who owns this NSS database (not with sudo), or pass {--nss-db DIR} for one you can write',
        ),
      );
    }
  }

  private result(state: TrustStoreResult['state'], detail?: string): TrustStoreResult {
    return { store: this.name, location: this.location, state, ...(detail ? { detail } : {}) };
  }

  install(root: RootCertificate): TrustStoreResult {
    const existing = this.find(root);
    if (existing && trustsServers(existing.flags)) return this.result('already-installed');
    this.requireWritable();
    // -A on an existing nickname updates its trust, so this also repairs a cleared "C"
    const args = ['-A', '-d', this.db(), '-t', 'C,,', '-n', nicknameFor(root), '-i', root.path];
    runTool(this.tool(), args, this.manual(args));
    const after = this.find(root);
    if (!after || !trustsServers(after.flags)) {
      throw new McpkiError(
        'TRUST_FAILED',
        `certutil added the root to ${this.dir} but it is not listed as a trusted CA`,
        `the certificate may already be there under another nickname: check with certutil -L -d sql:${shellWord(this.dir)}`,
      );
    }
    return this.result('installed', existing ? `trust flags were "${existing.flags}"` : undefined);
  }

  uninstall(root: RootCertificate): TrustStoreResult {
    if (!this.find(root)) return this.result('not-installed');
    this.requireWritable();
    const args = ['-D', '-d', this.db(), '-n', nicknameFor(root)];
    runTool(this.tool(), args, this.manual(args));
    if (this.find(root)) {
      throw new McpkiError(
        'TRUST_FAILED',
        `certutil deleted ${nicknameFor(root)} from ${this.dir} but it is still listed`,
        this.manual(['-L', '-d', this.db()]),
      );
    }
    return this.result('removed');
  }

  status(root: RootCertificate): TrustStoreResult {
    const entry = this.find(root);
    if (!entry) return this.result('not-installed');
    if (trustsServers(entry.flags)) return this.result('trusted', `nickname "${entry.nickname}"`);
    return this.result(
      'untrusted',
      `present with trust flags "${entry.flags}" (no C: not trusted to issue server certificates)`,
    );
  }
}

/** "C" in the SSL column: a CA trusted to issue server certificates. */
function trustsServers(flags: string): boolean {
  return (flags.split(',')[0] ?? '').includes('C');
}
