// The store: key: where the inventory lives (`sqlite`, or a postgres:// URL), used by apply, renew, serve,
// validate and acme-server -c when neither --store nor MCPKI_STORE says. Checked as a URL only; the certificate
// files it names are read when the inventory is opened. Relative sslrootcert/sslcert/sslkey paths are resolved
// against the file's folder, as every other path in the file.
import { resolve } from 'node:path';
import type { Node } from 'yaml';
import { isMcpkiError } from '../errors.js';
import { parseStoreLocation } from '../store/location.js';
import type { Checker } from './checker.js';

const FILE_PARAMETERS = ['sslrootcert', 'sslcert', 'sslkey'];

export function checkStore(check: Checker, node: Node | null, base: string): string | undefined {
  const text = check.string(node, 'store', 'sqlite or a postgres:// URL');
  if (text === undefined) return undefined;
  try {
    parseStoreLocation(text, {}, { readFiles: false });
  } catch (error) {
    if (!isMcpkiError(error)) throw error;
    return check.error(node, 'store', `${error.message}; ${error.hint}`);
  }
  if (text === 'sqlite') return text;
  const url = new URL(text);
  let changed = false;
  for (const parameter of FILE_PARAMETERS) {
    const path = url.searchParams.get(parameter);
    if (path !== null && path !== resolve(base, path)) {
      url.searchParams.set(parameter, resolve(base, path));
      changed = true;
    }
  }
  return changed ? url.toString() : text;
}
