import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { McpkiError } from './errors.js';

/** --home, else MCPKI_HOME, else $XDG_DATA_HOME/mcpki, else ~/.local/share/mcpki. */
export function resolveHome(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
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
 * folder. `hint` names the option that chose the folder.
 */
export function ensurePrivateDir(path: string, hint = 'pass a writable folder with --home or MCPKI_HOME'): void {
  try {
    makeDirs(resolve(path));
    if (!statSync(path).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    accessSync(path, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new McpkiError('HOME_UNUSABLE', `cannot use folder ${path} (${code})`, hint, { cause: error });
  }
}

// One level at a time: Node 20's mkdirSync(…, { recursive: true }) never returns for a path under /proc.
function makeDirs(path: string): void {
  const missing: string[] = [];
  for (let dir = path; !existsSync(dir); dir = dirname(dir)) {
    missing.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of missing) {
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (error) {
      // another mcpki process made it first; the caller checks it is a folder
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}
