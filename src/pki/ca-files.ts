// Reading the CA from the home: root.crt, intermediate.crt and their keys, each checked (bounded regular
// files, one CA certificate each, the intermediate issued by the root, keys matching their certificates).
// Apart from pki/ca.ts, which makes and rotates the CA, so that what only reads it (trust stores, checks,
// templates, backups) does not load what makes it.
import { X509Certificate, type KeyObject } from 'node:crypto';
import type { Context } from '../context.js';
import { McpkiError, fix, type Hint } from '../errors.js';
import { INPUT_LIMITS, readInputFile } from '../fs/read.js';
import { formatNetwork, type Permitted } from './constraints.js';
import { children, fromPem, parse, toPem } from './der.js';
import { isEncryptedPem, keyIdentifier, readPrivateKey } from './keys.js';
import { OIDS, readCertificate } from './x509.js';

/** Reads permittedSubtrees back from a nameConstraints extension value. */
export function decodeNameConstraints(value: Buffer): Permitted {
  const permitted: Permitted = { dns: [], ip: [], uri: [], email: [] };
  for (const part of children(parse(value))) {
    if (part.tag !== 0xa0) continue;
    for (const subtree of children(part)) {
      const base = children(subtree)[0]!;
      if (base.tag === 0x81) permitted.email.push(base.content.toString('latin1'));
      if (base.tag === 0x82) permitted.dns.push(base.content.toString('latin1'));
      if (base.tag === 0x86) permitted.uri.push(base.content.toString('latin1'));
      if (base.tag === 0x87) permitted.ip.push(cidrOf(base.content));
    }
  }
  return permitted;
}

function cidrOf(bytes: Buffer): string {
  const half = bytes.length / 2;
  let prefix = 0;
  for (const byte of bytes.subarray(half)) prefix += byte.toString(2).replace(/0/g, '').length;
  return formatNetwork(bytes.subarray(0, half), prefix);
}

export interface IssuingCa {
  cert: X509Certificate;
  der: Buffer;
  pem: string;
  key: KeyObject;
  rootPem: string;
  /** the root certificate the intermediate was checked against */
  root: X509Certificate;
  rootDer: Buffer;
  subject: Buffer;
  keyId: Buffer;
  permitted: Permitted | null;
}

const RESTORE_HINT =
  'restore the CA files from a backup, or run "mcpki init --force" to start over (certificates it issued stop being trusted)';

export function corrupt(message: string, hint: Hint = RESTORE_HINT, cause?: unknown): McpkiError {
  return new McpkiError('CA_CORRUPT', message, hint, cause === undefined ? undefined : { cause });
}

/**
 * Reads one file of the CA: a regular file of bounded size (never a FIFO or a device, which would hang or
 * exhaust memory). A missing file is CA_MISSING; anything else that keeps it from being read is CA_CORRUPT.
 */
export function readCaFile(path: string, what = 'CA file'): string {
  let data: Buffer;
  try {
    data = readInputFile(path, { what, maxBytes: INPUT_LIMITS.pem, code: 'CA_CORRUPT', hint: RESTORE_HINT });
  } catch (error) {
    const code = ((error as McpkiError).cause as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT') {
      throw new McpkiError(
        'CA_MISSING',
        `no CA found (${path} does not exist)`,
        fix('run "mcpki init" first, or point {--home DIR} or MCPKI_HOME at an existing mcpki home'),
      );
    }
    if (code === 'ENOTDIR') {
      throw new McpkiError(
        'HOME_UNUSABLE',
        `cannot read ${path} (${code}): part of the mcpki home path is a file`,
        fix('pass a folder with {--home DIR} or MCPKI_HOME'),
        { cause: error },
      );
    }
    if (error instanceof McpkiError)
      throw corrupt(
        error.message,
        error.code === 'CA_CORRUPT' ? (error.fix ?? error.hint ?? RESTORE_HINT) : RESTORE_HINT,
        error,
      );
    throw error;
  }
  if (data.length === 0 || data.toString('latin1').trim() === '') throw corrupt(`${what} ${path} is empty`);
  return data.toString('utf8');
}

interface CaCertificate {
  path: string;
  der: Buffer;
  cert: X509Certificate;
  /** DER of the issuer and subject Names, compared byte for byte */
  issuer: Buffer;
  subject: Buffer;
}

/** One CA certificate from a PEM file: exactly one parseable certificate, with basicConstraints cA=true. */
function readCaCertificate(path: string, what: string): CaCertificate {
  const pem = readCaFile(path, what);
  const blocks = fromPem(pem, 'CERTIFICATE');
  if (blocks.length === 0) throw corrupt(`${what} ${path} holds no PEM certificate`);
  if (blocks.length > 1) throw corrupt(`${what} ${path} holds ${blocks.length} certificates, expected one`);
  const der = blocks[0]!;
  let cert: X509Certificate;
  let parts: ReturnType<typeof readCertificate>;
  try {
    cert = new X509Certificate(der);
    parts = readCertificate(der);
  } catch (error) {
    throw corrupt(`${what} ${path} is not a valid certificate (${(error as Error).message})`, RESTORE_HINT, error);
  }
  if (!cert.ca) throw corrupt(`${what} ${path} is not a CA certificate (basicConstraints cA is not set)`);
  return { path, der, cert, issuer: parts.issuer, subject: parts.subject };
}

/** A private key of the CA; an encrypted one needs the passphrase (PASSPHRASE_WRONG when it does not open it). */
function readCaKey(path: string, what: string, passphrase?: string): { key: KeyObject; pem: string } {
  const pem = readCaFile(path, what);
  if (isEncryptedPem(pem) && passphrase === undefined) {
    throw new McpkiError(
      'PASSPHRASE_MISSING',
      `${what} ${path} is encrypted and no passphrase was given`,
      fix('set MCPKI_ROOT_PASSPHRASE or pass {--passphrase-file FILE}'),
    );
  }
  try {
    return { key: readPrivateKey(pem, isEncryptedPem(pem) ? passphrase : undefined), pem };
  } catch (error) {
    if (error instanceof McpkiError) throw error;
    throw corrupt(
      `${what} ${path} is unreadable: not a valid private key (${(error as Error).message})`,
      RESTORE_HINT,
      error,
    );
  }
}

/** The key belongs to the certificate: their public keys are equal. */
function checkKeyPair(
  certificate: CaCertificate,
  key: KeyObject,
  keyPath: string,
  what: string,
  hint = RESTORE_HINT,
): void {
  let matches = false;
  try {
    matches = certificate.cert.checkPrivateKey(key);
  } catch {
    matches = false; // a key of another type
  }
  if (!matches) throw corrupt(`${what} ${keyPath} does not match ${certificate.path} (their public keys differ)`, hint);
}

/** `child` names `parent` as its issuer and its signature verifies with the parent's key. */
function issuedBy(child: CaCertificate, parent: CaCertificate): boolean {
  if (!child.issuer.equals(parent.subject)) return false;
  try {
    return child.cert.verify(parent.cert.publicKey);
  } catch {
    return false;
  }
}

/** root.crt is a self-signed CA certificate, intermediate.crt a CA certificate it signed. */
function readChain(layout: Context['layout']): { root: CaCertificate; intermediate: CaCertificate } {
  const intermediate = readCaCertificate(layout.intermediateCert, 'the intermediate certificate');
  const root = readCaCertificate(layout.rootCert, 'the root certificate');
  if (!issuedBy(root, root)) throw corrupt(`the root certificate ${root.path} is not self-signed`);
  if (!issuedBy(intermediate, root)) {
    const why = intermediate.issuer.equals(root.subject)
      ? "its signature does not verify with the root's key"
      : `it names "${intermediate.cert.issuer.replace(/\n/g, ', ')}" as issuer, not the root "${root.cert.subject.replace(/\n/g, ', ')}"`;
    throw corrupt(`the intermediate ${intermediate.path} was not issued by the root ${root.path}: ${why}`);
  }
  return { root, intermediate };
}

/**
 * The intermediate that signs leaves, with its key, and the constraints it carries. Every load checks the
 * whole of the CA: the intermediate's key matches its certificate, the intermediate was issued (name and
 * signature) by the root, and both are CA certificates.
 */
export function loadIssuingCa(context: Context): IssuingCa {
  const { layout } = context;
  const { root, intermediate } = readChain(layout);
  const { key } = readCaKey(layout.intermediateKey, 'the intermediate key');
  checkKeyPair(intermediate, key, layout.intermediateKey, 'the intermediate key');
  let constraints;
  try {
    constraints = readCertificate(intermediate.der).extensions.get(OIDS.nameConstraints);
  } catch (error) {
    throw corrupt(
      `the intermediate ${intermediate.path} is not a valid certificate (${(error as Error).message})`,
      RESTORE_HINT,
      error,
    );
  }
  let permitted: Permitted | null = null;
  try {
    permitted = constraints ? decodeNameConstraints(constraints.value) : null;
  } catch (error) {
    throw corrupt(
      `the name constraints of ${intermediate.path} cannot be read (${(error as Error).message})`,
      RESTORE_HINT,
      error,
    );
  }
  return {
    cert: intermediate.cert,
    der: intermediate.der,
    pem: toPem('CERTIFICATE', intermediate.der),
    key,
    rootPem: toPem('CERTIFICATE', root.der),
    root: root.cert,
    rootDer: root.der,
    subject: intermediate.subject,
    keyId: keyIdentifier(readCertificate(intermediate.der).spki),
    permitted,
  };
}

/**
 * root.crt and intermediate.crt with the certificate checks of loadIssuingCa (a self-signed root, an
 * intermediate it issued, both CA certificates), for the commands that only show, trust or verify against the
 * root (trust, check, templates): a garbage, empty or foreign root.crt is CA_CORRUPT there as it is for
 * issuance. No key is read: another user may trust or check against a CA whose keys it cannot read.
 */
export function loadCaCertificates(context: Context): {
  root: X509Certificate;
  rootDer: Buffer;
  intermediate: X509Certificate;
} {
  const { root, intermediate } = readChain(context.layout);
  return { root: root.cert, rootDer: root.der, intermediate: intermediate.cert };
}

/**
 * root.crt alone: one self-signed CA certificate (CA_CORRUPT otherwise, CA_MISSING when absent). For taking an
 * old root out of trust stores, which must work even when the rest of the CA is damaged.
 */
export function loadRootCertificate(context: Context): { root: X509Certificate; rootDer: Buffer } {
  const root = readCaCertificate(context.layout.rootCert, 'the root certificate');
  if (!issuedBy(root, root)) throw corrupt(`the root certificate ${root.path} is not self-signed`);
  return { root: root.cert, rootDer: root.der };
}

/**
 * The root's private key, checked against root.crt. Throws PASSPHRASE_MISSING / PASSPHRASE_WRONG for an
 * encrypted key without (the right) passphrase, CA_CORRUPT when it is not the key of root.crt.
 */
export function loadRootKey(
  context: Context,
  passphrase?: string,
): { key: KeyObject; der: Buffer; cert: X509Certificate } {
  const { layout } = context;
  const root = readCaCertificate(layout.rootCert, 'the root certificate');
  const { key } = readCaKey(layout.rootKey, 'the root key', passphrase);
  checkKeyPair(
    root,
    key,
    layout.rootKey,
    'the root key',
    `put back the root key that belongs to ${layout.rootCert} (from a backup); nothing was changed`,
  );
  return { key, der: root.der, cert: root.cert };
}
