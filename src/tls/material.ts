// Reading a certificate, its key, and optionally a CA bundle and CRL from disk, and checking that together they
// make a usable server context. Nothing here is cached: each call reads the files as they are now.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { McpkiError } from '../errors.js';
import { pemBlocks } from '../pki/der.js';

export interface TlsPaths {
  /** the certificate, preferably the full chain (leaf first) */
  cert: string;
  key: string;
  /** trust anchors for client certificates */
  ca?: string;
  /** CRLs (PEM, one or several) checked against client certificates */
  crl?: string;
}

/** The by-name form: an mcpki certificate's files, looked up in the inventory of a home (resolve.ts). */
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

/** What a loaded certificate is, reported by `current()` and `onReload`. */
export interface TlsCertificateInfo {
  /** upper-case hex, as `mcpki list` shows it */
  serial: string;
  /** ISO 8601 */
  notAfter: string;
  /** SHA-256 of the leaf, colon-separated upper-case hex */
  fingerprint: string;
  subject: string;
  /** when this context was built, ISO 8601 */
  loadedAt: string;
}

export interface TlsMaterial {
  /** options for tls.createSecureContext / server.setSecureContext */
  context: tls.SecureContextOptions;
  info: TlsCertificateInfo;
  /** SHA-256 over every file's content: the same files touched (chmod, rewritten as they were) need no swap */
  digest: string;
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOENT')
      throw new McpkiError(
        'NOT_FOUND',
        `${what} file ${path} does not exist`,
        'check the path, or issue the certificate with mcpki first',
        { cause: error },
      );
    throw new McpkiError(
      'INVALID_INPUT',
      `cannot read ${what} file ${path} (${code})`,
      'check the file permissions for the user running the server',
      { cause: error },
    );
  }
}

/** The PEM blocks with this label; a block cut short (a torn or truncated file) counts as unparseable. */
function countBegins(text: string, label: string): number {
  return text.split(`-----BEGIN ${label}-----`).length - 1;
}

/** OpenSSL skips what it cannot read in a CA bundle and reads an empty CRL file as "no CRL": refuse both. */
function checkBundles(paths: TlsPaths, certPem: string, caPem: string | undefined, crlPem: string | undefined): void {
  const files: [string, string, string][] = [[paths.cert, certPem, 'CERTIFICATE']];
  if (caPem !== undefined) files.push([paths.ca!, caPem, 'CERTIFICATE']);
  for (const [path, text, label] of files) {
    const blocks = pemBlocks(text, label);
    if (blocks.length === 0 || blocks.length !== countBegins(text, label)) {
      throw new McpkiError(
        'INVALID_INPUT',
        `${path} holds no complete PEM certificate`,
        'the file is truncated or of another kind; write it again',
      );
    }
    for (const block of blocks) {
      try {
        new X509Certificate(block);
      } catch (error) {
        throw new McpkiError(
          'INVALID_INPUT',
          `${path} holds a certificate that does not parse (${reasonOf(error)})`,
          'the file is corrupt; write it again',
        );
      }
    }
  }
  if (crlPem !== undefined) {
    const blocks = pemBlocks(crlPem, 'X509 CRL');
    if (blocks.length === 0 || blocks.length !== countBegins(crlPem, 'X509 CRL')) {
      throw new McpkiError(
        'INVALID_INPUT',
        `CRL file ${paths.crl} holds no complete PEM CRL`,
        'regenerate it with "mcpki crl"',
      );
    }
  }
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message.split('\n')[0]! : String(error);
}

/**
 * Reads the files and checks them: the certificate parses, the key parses and belongs to the certificate, and
 * OpenSSL accepts the whole set (CA and CRL included). Throws McpkiError naming the file at fault.
 */
export function readTlsMaterial(paths: TlsPaths, extra: tls.SecureContextOptions = {}, now = new Date()): TlsMaterial {
  const certPem = readPem(paths.cert, 'certificate');
  const keyPem = readPem(paths.key, 'key');
  const caPem = paths.ca === undefined ? undefined : readPem(paths.ca, 'CA');
  const crlPem = paths.crl === undefined ? undefined : readPem(paths.crl, 'CRL');
  checkBundles(paths, certPem, caPem, crlPem);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certPem);
  } catch (error) {
    throw new McpkiError(
      'INVALID_INPUT',
      `certificate file ${paths.cert} does not hold a PEM certificate (${reasonOf(error)})`,
      'point cert at the PEM certificate or full chain mcpki wrote',
    );
  }
  let matches: boolean;
  try {
    const passphrase = typeof extra.passphrase === 'string' ? extra.passphrase : undefined;
    matches = leaf.checkPrivateKey(createPrivateKey(passphrase === undefined ? keyPem : { key: keyPem, passphrase }));
  } catch (error) {
    throw new McpkiError(
      'INVALID_INPUT',
      `key file ${paths.key} does not hold a usable private key (${reasonOf(error)})`,
      'point key at the PEM private key mcpki wrote (unencrypted, or give passphrase)',
    );
  }
  if (!matches) {
    throw new McpkiError(
      'INVALID_INPUT',
      `key file ${paths.key} does not belong to certificate ${paths.cert} (serial ${leaf.serialNumber.toUpperCase()})`,
      'the pair is being replaced or is from two different certificates; deploy both files of one certificate',
    );
  }
  const context: tls.SecureContextOptions = { ...extra, cert: certPem, key: keyPem };
  if (caPem !== undefined) context.ca = caPem;
  // Node reads only the first CRL of a PEM buffer; mcpki's crl.pem holds the intermediate's and the root's
  if (crlPem !== undefined) context.crl = pemBlocks(crlPem, 'X509 CRL');
  try {
    tls.createSecureContext(context);
  } catch (error) {
    throw new McpkiError(
      'INVALID_INPUT',
      `OpenSSL refused ${Object.values(paths).join(', ')} (${reasonOf(error)})`,
      'check that each file holds PEM blocks of the right kind',
    );
  }
  const digest = createHash('sha256');
  for (const text of [certPem, keyPem, caPem ?? '', crlPem ?? '']) digest.update(text).update('\0');
  return {
    context,
    digest: digest.digest('hex'),
    info: {
      serial: leaf.serialNumber.toUpperCase(),
      notAfter: new Date(leaf.validTo).toISOString(),
      fingerprint: leaf.fingerprint256,
      subject: leaf.subject.replace(/\n/g, ', '),
      loadedAt: now.toISOString(),
    },
  };
}
