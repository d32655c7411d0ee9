// The by-name form: the files of an mcpki certificate, looked up in the inventory of a home. Only the main
// entry (src/index.ts) offers it: it opens the inventory, so it loads better-sqlite3, which the by-paths form
// (the `mcpki/tls` entry, tls/index.ts) never does.
import { existsSync } from 'node:fs';
import { createContext } from '../context.js';
import { McpkiError } from '../errors.js';
import { findCertificate } from '../inventory.js';
import type { CertificateByName, TlsPaths } from './material.js';
import { createReloader, type TlsReloader, type TlsReloaderOptions } from './reloader.js';

/** Resolves once, when the reloader is created: renewals rewrite the same files, so the paths stay valid. */
export function pathsByName(options: CertificateByName, requestCert: boolean): TlsPaths {
  const context = createContext(options.home === undefined ? {} : { home: options.home });
  try {
    const record = findCertificate(context, options.name);
    const cert = record.paths.fullchain ?? record.paths.cert;
    const key = record.paths.key;
    if (!cert || !key) {
      throw new McpkiError(
        'NOT_FOUND',
        `certificate ${record.name} has no certificate and key files recorded`,
        `issue it again with mcpki, or pass cert and key paths instead of name`,
      );
    }
    const paths: TlsPaths = { cert, key };
    const ca = options.ca ?? (requestCert ? (record.paths.ca ?? context.layout.rootCert) : false);
    if (ca !== false) paths.ca = ca;
    const defaultCrl = context.layout.crl;
    const crl = options.crl ?? (requestCert && existsSync(defaultCrl) ? defaultCrl : false);
    if (crl !== false) paths.crl = crl;
    return paths;
  } finally {
    context.close();
  }
}

/**
 * Reads the certificate files once (throwing McpkiError when they are unusable) and watches them from then on.
 * Takes cert and key paths, or the name of a certificate in the mcpki inventory.
 *
 *   const reloader = createTlsReloader({ name: 'my-mcp', requestCert: true });
 *   const server = reloader.attach(https.createServer({ ...reloader.serverOptions() }, handler));
 *   // on shutdown: reloader.close()
 */
export function createTlsReloader(options: TlsReloaderOptions): TlsReloader {
  return createReloader(options, pathsByName);
}
