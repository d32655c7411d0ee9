// The `mcpki/tls` entry: createTlsReloader for certificate and key paths, without the rest of mcpki. Nothing
// here reaches the inventory, so importing it never loads better-sqlite3; the by-name form is in `mcpki`.
import { createReloader, type TlsReloader, type TlsReloaderCommon } from './reloader.js';
import type { TlsPaths } from './material.js';

export { McpkiError, isMcpkiError } from '../errors.js';
export type { TlsReloader, TlsReloaderCommon, TlsCertificateInfo, TlsPaths } from './reloader.js';

/** Options of the `mcpki/tls` createTlsReloader: files only (a name needs the inventory: use `mcpki`). */
export type TlsFileReloaderOptions = TlsPaths & TlsReloaderCommon;

/**
 * Reads the certificate files once (throwing McpkiError when they are unusable) and watches them from then on.
 *
 *   const reloader = createTlsReloader({ cert: 'server.fullchain.pem', key: 'server.key' });
 *   const server = reloader.attach(https.createServer({ ...reloader.serverOptions() }, handler));
 *   // on shutdown: reloader.close()
 */
export function createTlsReloader(options: TlsFileReloaderOptions): TlsReloader {
  return createReloader(options, undefined);
}
