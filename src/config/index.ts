// mcpki.yaml: the declaration of the certificates a host needs. loadConfig/parseConfig validate the whole file
// and either return the normalised Config or throw one ConfigError listing every problem.
import { readFileSync } from 'node:fs';
import { McpkiError } from '../errors.js';
import { ConfigError } from './errors.js';
import { validateConfig } from './validate.js';
import type { Config } from './types.js';

export { ConfigError, isConfigError } from './errors.js';
export { CONFIG_KEYS, DEFAULT_DAYS, DEFAULT_HOOK_TIMEOUT_MS, DEFAULT_KEY, MAX_DAYS, validateConfig, type ValidationResult } from './validate.js';
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
export function loadConfig(path: string = DEFAULT_CONFIG_FILE): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new McpkiError('NOT_FOUND', `no declaration file at ${path}`, 'create mcpki.yaml (see templates/mcpki.example.yaml), or point to one with -c FILE');
    throw new McpkiError('INVALID_INPUT', `cannot read ${path} (${code ?? String(error)})`, 'check the path and its permissions');
  }
  return parseConfig(text, path);
}
