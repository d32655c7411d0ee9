// The by-name form: the files of an mcpki certificate, looked up in the inventory of a home.
import { existsSync } from 'node:fs';
import { createContext } from '../context.js';
import { McpkiError } from '../errors.js';
import { findCertificate } from '../inventory.js';
import type { TlsPaths } from './material.js';

export interface CertificateByName {
  /** a certificate name (or serial) from `mcpki list` */
  name: string;
  /** the mcpki home; default as the CLI resolves it (MCPKI_HOME, XDG_DATA_HOME, ~/.local/share/mcpki) */
  home?: string;
  /** trust anchors for client certificates; default with requestCert: the CA file written next to the certificate (the mcpki root) */
  ca?: string | false;
  /** default with requestCert: HOME/ca/crl.pem when it exists (`mcpki crl` writes it) */
  crl?: string | false;
}

/** Resolves once, when the reloader is created: renewals rewrite the same files, so the paths stay valid. */
export function pathsByName(options: CertificateByName, requestCert: boolean): TlsPaths {
  const context = createContext(options.home === undefined ? {} : { home: options.home });
  try {
    const record = findCertificate(context, options.name);
    const cert = record.paths.fullchain ?? record.paths.cert;
    const key = record.paths.key;
    if (!cert || !key) {
      throw new McpkiError('NOT_FOUND', `certificate ${record.name} has no certificate and key files recorded`, `issue it again with mcpki, or pass cert and key paths instead of name`);
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
