import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { McpkiError, fix, type Hint } from './errors.js';
import {
  assertPrivateFile,
  assertSafeDir,
  assertSafeFolder,
  isTrustedOwner,
  lstatOrNull,
  modeText,
  runningUid,
  unsafe,
  type SafeDirs,
} from './fs/safe-path.js';

/** --home, else MCPKI_HOME, else $XDG_DATA_HOME/mcpki, else ~/.local/share/mcpki. An empty --home is a mistake. */
export function resolveHome(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit !== undefined && explicit.trim() === '') {
    throw new McpkiError(
      'USAGE',
      '--home is empty',
      fix(
        'give the folder of the mcpki home, e.g. {--home /var/lib/mcpki}, or leave {--home} out to use MCPKI_HOME or the default',
      ),
    );
  }
  if (explicit) return resolve(explicit);
  if (env.MCPKI_HOME) return resolve(env.MCPKI_HOME);
  if (env.XDG_DATA_HOME) return resolve(env.XDG_DATA_HOME, 'mcpki');
  return join(homedir(), '.local', 'share', 'mcpki');
}

export interface HomeLayout {
  root: string;
  database: string;
  caDir: string;
  rootCert: string;
  rootKey: string;
  intermediateCert: string;
  intermediateKey: string;
  /** the root's CRL (signed at init; see pki/root-crl.ts) */
  rootCrl: string;
  /** the CRLs of the whole chain, written by `mcpki crl` */
  crl: string;
  /** retired intermediates, kept with their keys to sign CRLs for what they issued */
  retiredDir: string;
  certsDir: string;
}

export function layoutOf(home: string): HomeLayout {
  const caDir = join(home, 'ca');
  return {
    root: home,
    database: join(home, 'mcpki.db'),
    caDir,
    rootCert: join(caDir, 'root.crt'),
    rootKey: join(caDir, 'root.key'),
    intermediateCert: join(caDir, 'intermediate.crt'),
    intermediateKey: join(caDir, 'intermediate.key'),
    rootCrl: join(caDir, 'root-crl.pem'),
    crl: join(caDir, 'crl.pem'),
    retiredDir: join(caDir, 'retired'),
    certsDir: join(home, 'certs'),
  };
}

/**
 * Creates a private (0700) folder and any missing parents, or checks that an existing one is a usable
 * folder. Every folder on the way must be safe (see fs/safe-path.ts: owned by this user or root, not
 * writable by others), else UNSAFE_PATH and nothing is created. `hint` names the option that chose the
 * folder. Returns the folders it created, outermost first (for removing them again when a command fails).
 */
export function ensurePrivateDir(
  path: string,
  hint: Hint = fix('pass a writable folder with {--home DIR} or MCPKI_HOME'),
  checked?: SafeDirs,
): string[] {
  const real = assertUsableDir(path, hint, undefined, checked);
  const created: string[] = [];
  try {
    makeDirs(real, created);
    if (!statSync(real).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    accessSync(real, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new McpkiError('HOME_UNUSABLE', `cannot use folder ${path} (${code})`, hint, { cause: error });
  }
  return created;
}

/**
 * assertSafeDir (UNSAFE_PATH for a folder on the way that another user owns or can write), with a file where
 * a folder should be reported as HOME_UNUSABLE naming `path` and the option that chose it (`hint`).
 */
export function assertUsableDir(path: string, hint: Hint, what?: string, checked?: SafeDirs): string {
  try {
    return assertSafeDir(path, what, checked);
  } catch (error) {
    if (error instanceof McpkiError && error.code === 'WRITE_FAILED') {
      throw new McpkiError(
        'HOME_UNUSABLE',
        `cannot use folder ${path}: ${error.message.replace(/^cannot use (.*): it is not a folder$/, '$1 is not a folder')}`,
        hint,
        { cause: error },
      );
    }
    throw error;
  }
}

// One level at a time: Node 20's mkdirSync(…, { recursive: true }) never returns for a path under /proc.
function makeDirs(path: string, created: string[]): void {
  const missing: string[] = [];
  for (let dir = path; !existsSync(dir); dir = dirname(dir)) {
    missing.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of missing) {
    try {
      mkdirSync(dir, { mode: 0o700 });
      created.push(dir);
    } catch (error) {
      // another mcpki process made it first; the caller checks it is a folder
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/**
 * StrictModes for the home, before anything in it is read or written: every folder on the way to it is safe
 * (fs/safe-path.ts); the home itself, ca/ and ca/retired/ belong to this user or root and are not writable by
 * group or others (not even sticky); the CA keys are private files (0600, not symlinks); the inventory is
 * not writable by others. A home that does not exist yet passes (it will be created 0700). Throws UNSAFE_PATH
 * naming the path, its owner or mode, and the fix.
 */
export function assertSafeHome(layout: HomeLayout): void {
  const root = assertUsableDir(
    layout.root,
    'pass a writable folder with --home or MCPKI_HOME',
    'a folder on the way to the mcpki home',
  );
  const rootStat = lstatOrNull(root);
  if (!rootStat) return;
  if (!rootStat.isDirectory()) {
    throw new McpkiError(
      'HOME_UNUSABLE',
      `cannot use folder ${layout.root}: it is not a folder`,
      fix('pass a writable folder with {--home DIR} or MCPKI_HOME'),
    );
  }
  assertSafeFolder(root, rootStat, 'the mcpki home', true);
  for (const [dir, what] of [
    [layout.caDir, 'the CA folder'],
    [layout.retiredDir, 'the folder of retired intermediates'],
  ] as const) {
    const stat = lstatOrNull(dir);
    if (!stat) continue;
    if (stat.isSymbolicLink() && !isTrustedOwner(stat.uid))
      throw unsafe(
        dir,
        `${what} is a symlink owned by uid ${stat.uid}`,
        `remove ${dir} and restore the CA from a backup`,
      );
    const real = assertSafeDir(dir, what);
    const realStat = lstatOrNull(real);
    if (realStat?.isDirectory()) assertSafeFolder(dir, realStat, what, true);
  }
  assertPrivateFile(layout.rootKey, 'the root CA key', true);
  assertPrivateFile(layout.intermediateKey, 'the intermediate CA key', true);
  const db = lstatOrNull(layout.database);
  if (db) {
    if (db.isSymbolicLink())
      throw unsafe(layout.database, 'the inventory is a symlink', `replace ${layout.database} with the file itself`);
    if (!isTrustedOwner(db.uid)) {
      throw unsafe(
        layout.database,
        `the inventory is owned by uid ${db.uid}, not by this user (uid ${runningUid()}) or root`,
        `chown ${runningUid()} ${layout.database} after checking it was not replaced`,
      );
    }
    if ((db.mode & 0o022) !== 0) {
      throw unsafe(
        layout.database,
        `the inventory is writable by ${db.mode & 0o002 ? 'everyone' : 'its group'} (mode ${modeText(db.mode)})`,
        `chmod go-w ${layout.database}, and check its revocations (mcpki list --all)`,
      );
    }
  }
}
