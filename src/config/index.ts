// mcpki.yaml: the declaration of the certificates a host needs. loadConfig/parseConfig validate the whole file
// and either return the normalised Config or throw one ConfigError listing every problem.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readFileSync, readSync, rmSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../deploy/atomic.js';
import { ensurePrivateDir } from '../home.js';
import { VERSION } from '../version.js';
import { McpkiError } from '../errors.js';
import { ConfigError } from './errors.js';
import { validateConfig } from './validate.js';
import type { Config } from './types.js';

export { ConfigError, isConfigError } from './errors.js';
export { CONFIG_KEYS, DEFAULT_CRL_DAYS, DEFAULT_CRL_REFRESH, DEFAULT_DAYS, DEFAULT_HOOK_TIMEOUT_MS, DEFAULT_KEY, MAX_CRL_DAYS, MAX_DAYS, validateConfig, type ValidationResult } from './validate.js';
export * from './types.js';

export const DEFAULT_CONFIG_FILE = 'mcpki.yaml';

/** Validates `text` (the contents of `fileName`, which names it in messages and anchors relative paths). */
export function parseConfig(text: string, fileName: string = DEFAULT_CONFIG_FILE): Config {
  const { config, errors } = validateConfig(text, fileName);
  if (config) return config;
  const count = `${errors.length} error${errors.length === 1 ? '' : 's'}`;
  throw new ConfigError(`${fileName} has ${count}`, errors, errors.length === 1 ? errors[0] : `fix all ${count} (listed in details), then run again; the first: ${errors[0]}`);
}

/** Reads and validates a declaration file (default ./mcpki.yaml). */
export interface LoadOptions {
  /**
   * A folder for the parsed form of the file (e.g. HOME/cache). Parsing and validating YAML is most of the
   * time of a plan over thousands of certificates; the parsed form is reused while the file's bytes, its
   * path and the mcpki version are the same.
   */
  cacheDir?: string;
}

function readError(path: string, error: unknown): McpkiError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new McpkiError('NOT_FOUND', `no declaration file at ${path}`, 'create mcpki.yaml (see templates/mcpki.example.yaml), or point to one with -c FILE');
  return new McpkiError('INVALID_INPUT', `cannot read ${path} (${code ?? String(error)})`, 'check the path and its permissions');
}

/**
 * Reads a file 64 KiB at a time, never into one big buffer: glibc serves a buffer of 128 KiB or more with
 * mmap, and freeing it raises its thresholds to that size, after which the process keeps up to twice as much
 * freed memory for good (8 MB for the cache of 10,000 certificates, in a service that runs for months).
 */
function readInPieces(path: string, onPiece: (piece: Buffer) => void): string {
  const decoder = new StringDecoder('utf8');
  const parts: string[] = [];
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.allocUnsafeSlow(64 * 1024);
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) {
      const piece = buffer.subarray(0, n);
      onPiece(piece);
      parts.push(decoder.write(piece));
    }
  } finally {
    closeSync(fd);
  }
  parts.push(decoder.end());
  return parts.join('');
}

export function loadConfig(path: string = DEFAULT_CONFIG_FILE, options: LoadOptions = {}): Config {
  if (!options.cacheDir) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw readError(path, error);
    }
    return parseConfig(text, path);
  }
  const hash = createHash('sha256').update(`mcpki ${VERSION}\0${resolve(path)}\0`);
  let text: string;
  try {
    text = readInPieces(path, (piece) => hash.update(piece));
  } catch (error) {
    throw readError(path, error);
  }
  const cached = join(options.cacheDir, `config-${hash.digest('hex').slice(0, 32)}.json`);
  try {
    return JSON.parse(readInPieces(cached, () => {})) as Config;
  } catch {
    // not cached yet (or unreadable): parse and remember
  }
  const config = parseConfig(text, path);
  try {
    ensurePrivateDir(options.cacheDir);
    for (const old of readdirSync(options.cacheDir)) if (/^config-[0-9a-f]{32}\.json$/.test(old)) rmSync(join(options.cacheDir, old), { force: true });
    writeFileAtomic(cached, JSON.stringify(config), 0o600);
  } catch {
    // a cache that cannot be written only costs time
  }
  return config;
}
