// Shared pieces of the trust-store integration: the root certificate as the stores see it, the TrustStore
// contract every platform file implements, and running the platform tools (argv arrays, never a shell).
import { spawnSync } from 'node:child_process';
import { fromPem, toPem } from '../pki/der.js';
import { X509Certificate } from 'node:crypto';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { childEnv } from '../process/env.js';
import type { Context } from '../context.js';
import { INPUT_LIMITS, readInputText } from '../fs/read.js';
import { McpkiError } from '../errors.js';
import { loadCaCertificates, loadRootCertificate } from '../pki/ca-files.js';

/** The root CA certificate that gets installed into (or removed from) the trust stores. */
export interface RootCertificate {
  /** HOME/ca/root.crt */
  path: string;
  /** canonical PEM (one certificate, trailing newline) */
  pem: string;
  der: Buffer;
  subject: string;
  /** SHA-256, colon-separated upper-case hex, as in `mcpki ca show` */
  fingerprint: string;
  /** the first 16 hex digits of the SHA-256 fingerprint, lower case: tells CAs apart in file names and nicknames */
  id: string;
}

export type TrustState =
  'installed' | 'already-installed' | 'removed' | 'not-installed' | 'trusted' | 'untrusted' | 'skipped';

export interface TrustStoreResult {
  /** 'system:debian' | 'system:fedora' | 'nss' */
  store: string;
  location: string;
  state: TrustState;
  detail?: string;
}

export type Availability = { ok: true } | { ok: false; reason: string; hint: string };

/**
 * One trust store (one file per platform, like mkcert's truststore_<platform>.go). install/uninstall throw
 * TRUST_PERMISSION when the caller may not write the store and TRUST_FAILED when a tool fails; they never
 * print. Each method returns one result row.
 */
export interface TrustStore {
  readonly name: string;
  readonly location: string;
  /** Whether the tools this store needs are present. */
  isAvailable(): Availability;
  install(root: RootCertificate): TrustStoreResult;
  uninstall(root: RootCertificate): TrustStoreResult;
  status(root: RootCertificate): TrustStoreResult;
  /** How hints name this program (the system store's "run: sudo … trust install" hint). */
  invocation?: readonly string[];
  /** The command that runs install/uninstall on this store as root, when that needs root. */
  sudoCommand?(verb: 'install' | 'uninstall'): string;
}

/**
 * HOME/ca/root.crt, through the CA loader (pki/ca.ts): CA_MISSING when there is no CA yet, CA_CORRUPT for a
 * garbage, empty or foreign root.crt. `rootOnly`: only root.crt itself is checked (a self-signed CA
 * certificate), so that an old root can still be taken out of trust stores when the rest of the CA is damaged.
 */
export function loadRoot(context: Context, rootOnly = false): RootCertificate {
  const der = rootOnly ? loadRootCertificate(context).rootDer : loadCaCertificates(context).rootDer;
  const cert = new X509Certificate(der);
  return {
    path: context.layout.rootCert,
    pem: pemOf(der),
    der,
    subject: cert.subject.replace(/\n/g, ', '),
    fingerprint: cert.fingerprint256,
    id: cert.fingerprint256.replace(/:/g, '').slice(0, 16).toLowerCase(),
  };
}

export function pemOf(der: Buffer): string {
  return toPem('CERTIFICATE', der);
}

/** Whether a PEM text (a single file or a whole bundle) holds this certificate. */
export function pemContains(text: string, der: Buffer): boolean {
  return fromPem(text, 'CERTIFICATE').some((block) => block.equals(der));
}

/** A store's file (an anchor, a bundle): null when missing; a FIFO, a device or a runaway size is refused, not read. */
export function readTextIfExists(path: string): string | null {
  try {
    return readInputText(path, { what: 'trust store file', maxBytes: INPUT_LIMITS.config, hint: `check ${path}` });
  } catch (error) {
    if ((error as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT') return null;
    throw error;
  }
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export function isWritable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

// System tools live in sbin, which a normal user's PATH often lacks; look there too.
const EXTRA_TOOL_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** The absolute path of an executable on PATH (or in the sbin folders), or null. */
export function findTool(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const dirs = [...(env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_TOOL_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

export interface ToolResult {
  stdout: string;
  stderr: string;
}

const TOOL_TIMEOUT_MS = 120_000;

/** Runs a tool with an argv array; a failure (cannot start, timeout, non-zero exit) becomes TRUST_FAILED. */
export function runTool(tool: string, args: readonly string[], hint: string): ToolResult {
  // trust tools get the environment minus mcpki's secrets (SECRET_ENV_VARS), like every child process
  const result = spawnSync(tool, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: TOOL_TIMEOUT_MS,
    env: childEnv(),
  });
  const name = tool.split('/').pop() ?? tool;
  if (result.error) {
    const code = (result.error as NodeJS.ErrnoException).code ?? result.error.message;
    throw new McpkiError('TRUST_FAILED', `${name} could not run (${code})`, hint, { cause: result.error });
  }
  if (result.status !== 0) {
    const why =
      firstLine(result.stderr) ||
      firstLine(result.stdout) ||
      (result.signal ? `killed by ${result.signal}` : 'no output');
    throw new McpkiError('TRUST_FAILED', `${name} failed (exit ${result.status ?? result.signal}): ${why}`, hint);
  }
  return { stdout: result.stdout, stderr: result.stderr };
}

function firstLine(text: string | undefined): string {
  return (
    (text ?? '')
      .split('\n')
      .map((line) => line.trim())
      .find(Boolean) ?? ''
  );
}

/** Quotes a word for a POSIX shell only when it needs it (for hints that show a command to run). */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function isRootUser(): boolean {
  return typeof process.geteuid === 'function' && process.geteuid() === 0;
}
