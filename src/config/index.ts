// mcpki.yaml: the declaration of the certificates a host needs. loadConfig/parseConfig validate the whole file
// and either return the normalised Config or throw one ConfigError listing every problem.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../fs/atomic.js';
import { DURATION_LIMITS } from '../duration.js';
import { readInputPieces } from '../fs/read.js';
import { assertPrivateFile, isTrustedOwner } from '../fs/safe-path.js';
import { ensurePrivateDir } from '../home.js';
import { VERSION } from '../version.js';
import { McpkiError } from '../errors.js';
import { ConfigError } from './errors.js';
import { KEY_BEARING_TARGETS } from './targets.js';
import { validateConfig } from './validate.js';
import type { Config } from './types.js';
import { shareCommonParts } from './share.js';
import type { Context } from '../context.js';

export { ConfigError, isConfigError } from './errors.js';
export { CONFIG_KEYS, validateConfig, type ValidationResult } from './validate.js';
export { DEFAULT_DAYS, DEFAULT_KEY, MAX_DAYS } from './certificates.js';
export { DEFAULT_CRL_DAYS, DEFAULT_CRL_REFRESH, MAX_CRL_DAYS } from './crl.js';
export { DEFAULT_HOOK_TIMEOUT_MS } from './hooks.js';
export * from './types.js';

export const DEFAULT_CONFIG_FILE = 'mcpki.yaml';

/**
 * The largest mcpki.yaml read: 10,000 certificates with two targets each take about 1.5 MiB, and a YAML
 * document takes about 100 times its size in memory while it is checked.
 */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** At most this many errors are listed; the count says how many there are in all. */
const MAX_LISTED_ERRORS = 50;

/** Validates `text` (the contents of `fileName`, which names it in messages and anchors relative paths). */
export function parseConfig(text: string, fileName: string = DEFAULT_CONFIG_FILE): Config {
  const { config, errors } = validateConfig(text, fileName);
  if (config) return config;
  const count = `${errors.length} error${errors.length === 1 ? '' : 's'}`;
  const listed =
    errors.length > MAX_LISTED_ERRORS
      ? [...errors.slice(0, MAX_LISTED_ERRORS), `… and ${errors.length - MAX_LISTED_ERRORS} more`]
      : errors;
  throw new ConfigError(
    `${fileName} has ${count}`,
    listed,
    errors.length === 1 ? errors[0] : `fix all ${count} (listed in details), then run again; the first: ${errors[0]}`,
  );
}

/** Reads and validates a declaration file (default ./mcpki.yaml). */
export interface LoadOptions {
  /**
   * A folder for the parsed form of the file (e.g. HOME/cache). Parsing and validating YAML is most of the
   * time of a plan over thousands of certificates; the parsed form is reused while the file's bytes, its
   * path and the mcpki version are the same.
   */
  cacheDir?: string;
  /**
   * The home whose ACME accounts an `acme:ACCOUNT` issuer must name: each certificate whose account is not
   * registered there is a validation error (with its line) naming the `mcpki acme account register` command.
   */
  context?: Context;
}

/** The ACME directory names `acme account register --directory` knows: an account of that name is registered from it. */
const KNOWN_DIRECTORIES = [
  'letsencrypt',
  'letsencrypt-staging',
  'zerossl',
  'google',
  'google-staging',
  'buypass',
  'buypass-staging',
];

/**
 * Every acme:ACCOUNT issuer of `config` names an account registered in the home (`mcpki acme account list`);
 * each one that does not is an error with its line, all of them in one ConfigError.
 */
export function checkAcmeAccounts(
  config: Config,
  registered: readonly string[],
  fileName: string = DEFAULT_CONFIG_FILE,
): void {
  const have = new Set(registered);
  const missing = config.certificates.filter((c) => c.issuer.type === 'acme' && !have.has(c.issuer.account));
  if (missing.length === 0) return;
  const register = (account: string) =>
    `mcpki acme account register --name ${account} --directory ${KNOWN_DIRECTORIES.includes(account) ? account : 'DIRECTORY'} --email EMAIL --agree-tos`;
  const errors = missing.map((c) => {
    const account = (c.issuer as { account: string }).account;
    return `${fileName}:${c.line} certificates[${config.certificates.indexOf(c)}].issuer (${c.name}): ACME account "${account}" is not registered in this home; register it first: ${register(account)}`;
  });
  const accounts = [...new Set(missing.map((c) => (c.issuer as { account: string }).account))];
  const count = `${errors.length} error${errors.length === 1 ? '' : 's'}`;
  throw new ConfigError(
    `${fileName} has ${count}: ${accounts.map((a) => `acme:${a}`).join(', ')} ${accounts.length === 1 ? 'is not a registered ACME account' : 'are not registered ACME accounts'}`,
    errors.slice(0, MAX_LISTED_ERRORS),
    `register ${accounts.length === 1 ? 'it' : 'each'} first: ${accounts.map(register).join('; ')} (registered: ${registered.length ? registered.join(', ') : 'none'}; see "mcpki acme account list")`,
  );
}

function readError(path: string, error: unknown): McpkiError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT')
    return new McpkiError(
      'NOT_FOUND',
      `no declaration file at ${path}`,
      'create mcpki.yaml (see templates/mcpki.example.yaml), or point to one with -c FILE',
    );
  return new McpkiError(
    'INVALID_INPUT',
    `cannot read ${path} (${code ?? String(error)})`,
    'check the path and its permissions',
  );
}

/**
 * Reads mcpki.yaml as any file mcpki did not create: a regular file (not a FIFO or a device), at most
 * MAX_CONFIG_BYTES, owned by this user or root and not writable by others (its hooks run as us).
 */
function readDeclaration(path: string, visit: (piece: Buffer) => void): void {
  try {
    readInputPieces(
      path,
      {
        what: 'declaration file',
        maxBytes: MAX_CONFIG_BYTES,
        trusted: true,
        hint: 'check the path (-c FILE) and its permissions',
      },
      visit,
    );
  } catch (error) {
    const cause = (error as { cause?: NodeJS.ErrnoException }).cause;
    if (cause?.code === 'ENOENT') throw readError(path, cause);
    throw error;
  }
}

// ---- the cache ----------------------------------------------------------------------------------------
// HOME/cache/config-<id>.json holds the parsed form of one mcpki.yaml: its first line is an HMAC-SHA256,
// keyed by HOME/cache/config.key (32 random bytes, 0600), over the id (the sha256 of the mcpki version, the
// file's path and its exact bytes) and the JSON that follows. A cache entry that was edited, copied from
// another file or another home, truncated or garbled fails the MAC and is ignored: the YAML is parsed again.
// What passes the MAC is still checked for the shape a validated Config has. A cache folder or key that is
// not ours alone is not used at all. The cache can only save time; it can never add to what the YAML says.

const CACHE_KEY_FILE = 'config.key';
const CACHE_ENTRY = /^config-[0-9a-f]{32}\.json$/;

/** The cache folder's key, made on first use; undefined when the folder or the key is not private to us. */
function cacheKey(cacheDir: string, create: boolean): Buffer | undefined {
  try {
    const dir = lstatSync(cacheDir);
    if (!dir.isDirectory() || !isTrustedOwner(dir.uid) || (dir.mode & 0o077) !== 0) return undefined;
    const path = join(cacheDir, CACHE_KEY_FILE);
    if (!assertPrivateFile(path, 'config cache key', true)) {
      if (!create) return undefined;
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, randomBytes(32));
      } finally {
        closeSync(fd);
      }
    }
    const key = readFileSync(path);
    return key.length === 32 ? key : undefined;
  } catch {
    return undefined;
  }
}

function macOf(key: Buffer, id: string, json: string): string {
  return createHmac('sha256', key).update(`${id}\n`).update(json).digest('hex');
}

/** The shape a Config produced by validateConfig has; a cache entry that differs is not used. */
function plausibleConfig(value: unknown, file: string): value is Config {
  const config = value as Config;
  const isArgv = (argv: unknown) =>
    Array.isArray(argv) && argv.length > 0 && argv.every((word) => typeof word === 'string' && !word.includes('\0'));
  const isPath = (path: unknown) => typeof path === 'string' && path.startsWith('/') && !path.includes('\0');
  const isMode = (mode: unknown) => typeof mode === 'number' && Number.isInteger(mode) && mode >= 0 && mode <= 0o777;
  const isTimeout = (ms: unknown) =>
    typeof ms === 'number' && Number.isInteger(ms) && ms > 0 && ms <= DURATION_LIMITS.hook;
  const hooksOk = (hooks: { reload?: unknown; timeoutMs?: unknown } | undefined) =>
    !!hooks && Array.isArray(hooks.reload) && hooks.reload.every(isArgv) && isTimeout(hooks.timeoutMs);
  try {
    if (
      !config ||
      typeof config !== 'object' ||
      config.version !== 1 ||
      config.file !== file ||
      !Array.isArray(config.certificates)
    )
      return false;
    if (!isTimeout(config.defaults?.hookTimeoutMs)) return false;
    for (const certificate of config.certificates) {
      if (typeof certificate.name !== 'string' || !hooksOk(certificate.hooks) || !Array.isArray(certificate.targets))
        return false;
      for (const target of certificate.targets)
        if (
          !isPath(target.path) ||
          !isMode(target.mode) ||
          (target.passwordFile !== undefined && !isPath(target.passwordFile))
        )
          return false;
      const key = KEY_BEARING_TARGETS as readonly string[];
      for (const target of certificate.targets)
        if (key.includes(target.type) && (target.mode & 0o007) !== 0) return false;
      if (certificate.challenge?.type === 'dns-01' && !isArgv(certificate.challenge.hook)) return false;
    }
    if (config.crl !== undefined) {
      if (!hooksOk(config.crl.hooks) || !Array.isArray(config.crl.targets)) return false;
      for (const target of config.crl.targets) if (!isPath(target.path) || !isMode(target.mode)) return false;
    }
    if (config.store !== undefined && (typeof config.store !== 'string' || /[\x00-\x1f\x7f]/.test(config.store)))
      return false;
    return true;
  } catch {
    return false;
  }
}

/** The cached Config for this id, if there is one that passes the MAC and the shape check. */
function readCache(cacheDir: string, id: string, file: string): Config | undefined {
  const key = cacheKey(cacheDir, false);
  if (!key) return undefined;
  const path = join(cacheDir, `config-${id}.json`);
  try {
    if (!assertPrivateFile(path, 'config cache', true)) return undefined;
    // in pieces, never a buffer of the file's size (see readInputPieces): the MAC over the bytes as read, the
    // text decoded piece by piece
    let mac: Buffer | undefined;
    const hmac = createHmac('sha256', key).update(`${id}\n`);
    const decoder = new StringDecoder('utf8');
    let json = '';
    readInputPieces(path, { what: 'config cache', maxBytes: MAX_CONFIG_BYTES * 4 }, (piece) => {
      let body = piece;
      if (!mac) {
        // the first piece holds the MAC line (a short first read only makes this a miss)
        mac =
          piece.length >= 65 && piece[64] === 0x0a
            ? Buffer.from(piece.toString('latin1', 0, 64), 'hex')
            : Buffer.alloc(0);
        body = piece.subarray(65);
      }
      hmac.update(body);
      json += decoder.write(body);
    });
    json += decoder.end();
    if (!mac) return undefined;
    const expected = hmac.digest();
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return undefined;
    const config: unknown = JSON.parse(json);
    return plausibleConfig(config, file) ? config : undefined;
  } catch {
    return undefined;
  }
}

function writeCache(cacheDir: string, id: string, config: Config): void {
  try {
    ensurePrivateDir(cacheDir);
    const key = cacheKey(cacheDir, true);
    if (!key) return;
    for (const old of readdirSync(cacheDir)) if (CACHE_ENTRY.test(old)) rmSync(join(cacheDir, old), { force: true });
    const json = JSON.stringify(config);
    writeFileAtomic(join(cacheDir, `config-${id}.json`), `${macOf(key, id, json)}\n${json}`, 0o600);
  } catch {
    // a cache that cannot be written only costs time
  }
}

export function loadConfig(path: string = DEFAULT_CONFIG_FILE, options: LoadOptions = {}): Config {
  const config = loadDeclaration(path, options);
  // before the inventory is first opened: the accounts below are read from the store the file names
  options.context?.useConfiguredStore(config.store);
  if (options.context)
    checkAcmeAccounts(
      config,
      (options.context.existingStore()?.listAcmeAccounts() ?? []).map((a) => a.name),
      path,
    );
  return config;
}

/**
 * The declaration's bytes read once: the cache id (sha256 of the mcpki version, the file's path and its exact
 * bytes) and, with `withText`, the text decoded piece by piece.
 */
function readDeclarationText(path: string, withText: boolean): { id: string; text: string } {
  const hash = createHash('sha256').update(`mcpki ${VERSION}\0${resolve(path)}\0`);
  const decoder = new StringDecoder('utf8');
  let text = '';
  readDeclaration(path, (piece) => {
    hash.update(piece);
    if (withText) text += decoder.write(piece);
  });
  if (withText) text += decoder.end();
  return { id: hash.digest('hex').slice(0, 32), text };
}

function loadDeclaration(path: string, options: LoadOptions): Config {
  if (!options.cacheDir) return shareCommonParts(parseConfig(readDeclarationText(path, true).text, path));
  // a cache hit needs only the file's hash: its text (1.5 MB at 10,000 certificates) is decoded on a miss
  const cached = readCache(options.cacheDir, readDeclarationText(path, false).id, resolve(path));
  if (cached) return shareCommonParts(cached);
  // read again for the text; the cache entry is named after the bytes that were parsed
  const { id, text } = readDeclarationText(path, true);
  const config = parseConfig(text, path);
  writeCache(options.cacheDir, id, config);
  return shareCommonParts(config);
}
