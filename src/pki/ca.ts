// The development CA: a name-constrained root that signs only intermediates, and an issuing intermediate
// that signs leaves. Day-to-day issuance needs only the intermediate's key, so the root key may be kept
// encrypted at rest.
import { randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, openSync, writeSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Context } from '../context.js';
import type { Store } from '../store/store.js';
import { fsyncPath, tryUnlink, writeFilesAtomic, type FileToWrite } from '../fs/atomic.js';
import { McpkiError } from '../errors.js';
import { ensurePrivateDir } from '../home.js';
import { INPUT_LIMITS, readInputFile } from '../fs/read.js';
import { removeRootFromTrustStores, type TrustStoreResult } from '../trust/index.js';
import { DEFAULT_PERMITTED, encodeNameConstraints, formatNetwork, parsePermitted, type Permitted } from './constraints.js';
import { children, fromPem, parse, toPem } from './der.js';
import { signRootCrl } from './root-crl.js';
import { generateKey, isEncryptedPem, keyIdentifier, keyTypeOf, privateKeyPem, readPrivateKey, signatureAlgorithmFor, spkiOf, type KeyType } from './keys.js';
import {
  authorityKeyIdentifier,
  basicConstraints,
  encodeName,
  keyUsage,
  nameConstraints,
  OIDS,
  randomSerial,
  readCertificate,
  signCertificate,
  subjectKeyIdentifier,
  type Extension,
} from './x509.js';

const DAY = 86_400_000;
export const ROOT_DAYS = 3650;
export const INTERMEDIATE_DAYS = 1095;
/** Certificates are backdated a little so that a peer with a slightly slow clock accepts them at once. */
export const BACKDATE_MS = 5 * 60_000;

export interface AuthorityInfo {
  subject: string;
  serial: string;
  fingerprint: string;
  keyType: KeyType;
  notBefore: string;
  notAfter: string;
  certPath: string;
  keyPath: string;
}

export interface CaInfo {
  home: string;
  root: AuthorityInfo & { keyEncrypted: boolean };
  intermediate: AuthorityInfo;
  /** null when the CA was created with --no-name-constraints */
  permitted: Permitted | null;
}

export interface InitCaOptions {
  keyType?: KeyType;
  /** names/CIDRs added to the default permitted list */
  permit?: readonly string[];
  /** accept --permit values that cover a whole TLD, every name or most of the IP space */
  allowBroadPermit?: boolean;
  /** false: no name constraints at all (the CA can sign for any name) */
  nameConstraints?: boolean;
  /** encrypts the root key at rest with this passphrase */
  rootPassphrase?: string;
  force?: boolean;
}

export function authorityInfo(cert: X509Certificate, certPath: string, keyPath: string): AuthorityInfo {
  return {
    subject: cert.subject.replace(/\n/g, ', '),
    serial: cert.serialNumber.toUpperCase(),
    fingerprint: cert.fingerprint256,
    keyType: keyTypeOf(cert.publicKey),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    certPath,
    keyPath,
  };
}

/** A short random tag that tells apart CAs made on the same machine (trust stores list them by name). */
function randomTag(): string {
  return randomBytes(3).toString('hex');
}

function recordAuthority(store: Store, role: 'root' | 'intermediate', cert: X509Certificate): void {
  store.addAuthority({
    role,
    serial: cert.serialNumber.toUpperCase(),
    subject: cert.subject.replace(/\n/g, ', '),
    keyType: keyTypeOf(cert.publicKey),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    fingerprint: cert.fingerprint256,
    pem: cert.toString(),
  });
}

function caIdentity(): string {
  let user = 'user';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): keep the default
  }
  return `${user}@${hostname()}`;
}

function intermediateExtensions(spki: Buffer, rootKeyId: Buffer, permitted: Permitted | null): Extension[] {
  const extensions = [
    basicConstraints(true, 0),
    keyUsage(['digitalSignature', 'keyCertSign', 'cRLSign']),
    subjectKeyIdentifier(keyIdentifier(spki)),
    authorityKeyIdentifier(rootKeyId),
  ];
  // repeated on the intermediate: some verifiers ignore constraints on trust anchors
  if (permitted) extensions.push(nameConstraints(encodeNameConstraints(permitted)));
  return extensions;
}

function signIntermediate(ctxNow: Date, rootCert: Buffer, rootKey: KeyObject, keyType: KeyType, permitted: Permitted | null, id: string) {
  const root = readCertificate(rootCert);
  const rootKeyId = keyIdentifier(root.spki);
  const pair = generateKey(keyType);
  const spki = spkiOf(pair.publicKey);
  const notBefore = new Date(ctxNow.getTime() - BACKDATE_MS);
  const rootNotAfter = new X509Certificate(rootCert).validTo;
  const notAfter = new Date(Math.min(notBefore.getTime() + INTERMEDIATE_DAYS * DAY, new Date(rootNotAfter).getTime()));
  const der = signCertificate(
    {
      serial: randomSerial(),
      issuer: root.subject,
      subject: encodeName([
        { type: 'O', value: 'mcpki development CA' },
        { type: 'OU', value: caIdentity() },
        { type: 'CN', value: `mcpki intermediate ${id}` },
      ]),
      notBefore,
      notAfter,
      spki,
      extensions: intermediateExtensions(spki, rootKeyId, permitted),
    },
    signatureAlgorithmFor(rootKey),
  );
  return { der, privateKey: pair.privateKey };
}

export interface InitCaResult extends CaInfo {
  /** init --force: the trust stores the replaced root was removed from */
  oldRootRemovedFrom?: TrustStoreResult[];
}

export function initCa(context: Context, options: InitCaOptions = {}): InitCaResult {
  const keyType = options.keyType ?? 'ec-p256';
  const { layout } = context;
  const permitted = options.nameConstraints === false ? null : parsePermitted([...DEFAULT_PERMITTED, ...(options.permit ?? [])], { allowBroad: options.allowBroadPermit });
  if (options.nameConstraints === false && options.permit?.length) {
    throw new McpkiError('USAGE', '--permit and --no-name-constraints contradict each other', 'drop one of them');
  }
  if (options.rootPassphrase !== undefined && options.rootPassphrase.length < 8) {
    throw new McpkiError('PASSPHRASE_MISSING', 'the root key passphrase is shorter than 8 characters', 'use a longer passphrase');
  }
  // before the inventory is opened: a refused init creates nothing
  if (!options.force) assertNoCa(layout);
  const store = context.store();
  ensurePrivateDir(layout.caDir);
  const now = context.now();
  const id = randomTag();
  const identity = caIdentity();

  const rootPair = generateKey(keyType);
  const rootSpki = spkiOf(rootPair.publicKey);
  const rootKeyId = keyIdentifier(rootSpki);
  const rootName = encodeName([
    { type: 'O', value: 'mcpki development CA' },
    { type: 'OU', value: identity },
    { type: 'CN', value: `mcpki development root ${id}` },
  ]);
  const rootExtensions: Extension[] = [
    // pathLen 1: the root signs intermediates, intermediates sign leaves, nothing deeper
    basicConstraints(true, 1),
    keyUsage(['keyCertSign', 'cRLSign']),
    subjectKeyIdentifier(rootKeyId),
  ];
  if (permitted) rootExtensions.push(nameConstraints(encodeNameConstraints(permitted)));
  const rootNotBefore = new Date(now.getTime() - BACKDATE_MS);
  const rootDer = signCertificate(
    {
      serial: randomSerial(),
      issuer: rootName,
      subject: rootName,
      notBefore: rootNotBefore,
      notAfter: new Date(rootNotBefore.getTime() + ROOT_DAYS * DAY),
      spki: rootSpki,
      extensions: rootExtensions,
    },
    signatureAlgorithmFor(rootPair.privateKey),
  );
  const intermediate = signIntermediate(now, rootDer, rootPair.privateKey, keyType, permitted, id);


  // a replaced root must not stay trusted: take it out of every store mcpki put it in (or stop here)
  const untrusted = options.force ? removeRootFromTrustStores(context) : [];

  const rootX509 = new X509Certificate(rootDer);
  const intermediateX509 = new X509Certificate(intermediate.der);
  store.transaction(() => {
    store.retireAuthorities('root');
    store.retireAuthorities('intermediate');
    recordAuthority(store, 'root', rootX509);
    recordAuthority(store, 'intermediate', intermediateX509);
    store.addEvent({
      type: 'ca.created',
      serial: rootX509.serialNumber.toUpperCase(),
      detail: {
        keyType,
        root: rootX509.fingerprint256,
        intermediate: intermediateX509.fingerprint256,
        nameConstraints: permitted,
        rootKeyEncrypted: options.rootPassphrase !== undefined,
        replaced: options.force === true,
        ...(untrusted.length > 0 ? { untrustedOldRoot: untrusted.map((row) => `${row.store} ${row.location}`) } : {}),
      },
    });
    // written while the inventory's write lock is held, so a failed write records nothing; without --force
    // a CA another `init` created meanwhile is never replaced (checked under the lock, then O_EXCL links)
    if (!options.force) assertNoCa(layout);
    (options.force ? writeFilesAtomic : writeNewFiles)([
      { path: layout.rootKey, data: privateKeyPem(rootPair.privateKey, options.rootPassphrase), mode: 0o600 },
      { path: layout.intermediateKey, data: privateKeyPem(intermediate.privateKey), mode: 0o600 },
      { path: layout.rootCert, data: toPem('CERTIFICATE', rootDer), mode: 0o644 },
      { path: layout.intermediateCert, data: toPem('CERTIFICATE', intermediate.der), mode: 0o644 },
      { path: layout.rootCrl, data: signRootCrl(rootDer, rootPair.privateKey, store.nextCounter('root_crl_number'), now), mode: 0o644 },
    ]);
  });
  const info: InitCaResult = showCa(context);
  if (options.force) info.oldRootRemovedFrom = untrusted;
  return info;
}

function caExistsError(caDir: string): McpkiError {
  return new McpkiError('CA_EXISTS', `a CA already exists in ${caDir}`, 'use it as it is (mcpki ca show), or pass --force to replace it: certificates it issued stop being trusted');
}

function assertNoCa(layout: Context['layout']): void {
  if ([layout.rootCert, layout.intermediateCert, layout.rootKey, layout.intermediateKey].some((path) => existsSync(path))) throw caExistsError(layout.caDir);
}

/**
 * Writes files that must not exist yet: each goes to a synced O_EXCL temp file, then link(2) gives it its
 * name, which fails instead of replacing a file that appeared meanwhile. On any failure the names this call
 * created are removed again, so a concurrent `init` either wins whole or leaves nothing.
 */
function writeNewFiles(files: readonly FileToWrite[]): void {
  const temps: string[] = [];
  const linked: string[] = [];
  try {
    for (const file of files) {
      const temp = join(dirname(file.path), `.${basename(file.path)}.mcpki-tmp-${randomBytes(6).toString('hex')}`);
      const fd = openSync(temp, 'wx', file.mode);
      temps.push(temp);
      try {
        writeSync(fd, typeof file.data === 'string' ? Buffer.from(file.data) : file.data);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    files.forEach((file, i) => {
      linkSync(temps[i]!, file.path);
      linked.push(file.path);
    });
  } catch (error) {
    for (const path of linked) tryUnlink(path);
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'EEXIST' && linked.length < files.length && temps.length === files.length) throw caExistsError(dirname(files[0]!.path));
    throw new McpkiError('WRITE_FAILED', `cannot write ${files[Math.max(temps.length - 1, linked.length)]?.path ?? ''} (${code})`, 'check that the folder exists and is writable, and that the disk is not full', { cause: error });
  } finally {
    for (const temp of temps) tryUnlink(temp);
  }
  for (const dir of new Set(files.map((file) => dirname(file.path)))) fsyncPath(dir);
}

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

const RESTORE_HINT = 'restore the CA files from a backup, or run "mcpki init --force" to start over (certificates it issued stop being trusted)';

function corrupt(message: string, hint = RESTORE_HINT, cause?: unknown): McpkiError {
  return new McpkiError('CA_CORRUPT', message, hint, cause === undefined ? undefined : { cause });
}

/**
 * Reads one file of the CA: a regular file of bounded size (never a FIFO or a device, which would hang or
 * exhaust memory). A missing file is CA_MISSING; anything else that keeps it from being read is CA_CORRUPT.
 */
function readCaFile(path: string, what = 'CA file'): string {
  let data: Buffer;
  try {
    data = readInputFile(path, { what, maxBytes: INPUT_LIMITS.pem, code: 'CA_CORRUPT', hint: RESTORE_HINT });
  } catch (error) {
    const code = ((error as McpkiError).cause as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT') {
      throw new McpkiError('CA_MISSING', `no CA found (${path} does not exist)`, 'run "mcpki init" first, or point --home / MCPKI_HOME at an existing mcpki home');
    }
    if (code === 'ENOTDIR') {
      throw new McpkiError('HOME_UNUSABLE', `cannot read ${path} (${code}): part of the mcpki home path is a file`, 'pass a folder with --home or MCPKI_HOME', { cause: error });
    }
    if (error instanceof McpkiError) throw corrupt(error.message, error.code === 'CA_CORRUPT' ? (error.hint ?? RESTORE_HINT) : RESTORE_HINT, error);
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
    throw new McpkiError('PASSPHRASE_MISSING', `${what} ${path} is encrypted and no passphrase was given`, 'set MCPKI_ROOT_PASSPHRASE or pass --passphrase-file FILE');
  }
  try {
    return { key: readPrivateKey(pem, isEncryptedPem(pem) ? passphrase : undefined), pem };
  } catch (error) {
    if (error instanceof McpkiError) throw error;
    throw corrupt(`${what} ${path} is unreadable: not a valid private key (${(error as Error).message})`, RESTORE_HINT, error);
  }
}

/** The key belongs to the certificate: their public keys are equal. */
function checkKeyPair(certificate: CaCertificate, key: KeyObject, keyPath: string, what: string, hint = RESTORE_HINT): void {
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
    const why = intermediate.issuer.equals(root.subject) ? 'its signature does not verify with the root\'s key' : `it names "${intermediate.cert.issuer.replace(/\n/g, ', ')}" as issuer, not the root "${root.cert.subject.replace(/\n/g, ', ')}"`;
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
    throw corrupt(`the intermediate ${intermediate.path} is not a valid certificate (${(error as Error).message})`, RESTORE_HINT, error);
  }
  let permitted: Permitted | null = null;
  try {
    permitted = constraints ? decodeNameConstraints(constraints.value) : null;
  } catch (error) {
    throw corrupt(`the name constraints of ${intermediate.path} cannot be read (${(error as Error).message})`, RESTORE_HINT, error);
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
export function loadCaCertificates(context: Context): { root: X509Certificate; rootDer: Buffer; intermediate: X509Certificate } {
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
export function loadRootKey(context: Context, passphrase?: string): { key: KeyObject; der: Buffer; cert: X509Certificate } {
  const { layout } = context;
  const root = readCaCertificate(layout.rootCert, 'the root certificate');
  const { key } = readCaKey(layout.rootKey, 'the root key', passphrase);
  checkKeyPair(root, key, layout.rootKey, 'the root key', `put back the root key that belongs to ${layout.rootCert} (from a backup); nothing was changed`);
  return { key, der: root.der, cert: root.cert };
}

export function showCa(context: Context): CaInfo {
  const { layout } = context;
  const ca = loadIssuingCa(context);
  const rootKeyPem = readCaFile(layout.rootKey, 'the root key');
  const keyEncrypted = isEncryptedPem(rootKeyPem);
  // an encrypted root key is checked when it is opened (rotate-intermediate); a plain one is checked now
  if (!keyEncrypted) loadRootKey(context);
  return {
    home: context.home,
    root: { ...authorityInfo(ca.root, layout.rootCert, layout.rootKey), keyEncrypted },
    intermediate: authorityInfo(ca.cert, layout.intermediateCert, layout.intermediateKey),
    permitted: ca.permitted,
  };
}

export interface RotateOptions {
  rootPassphrase?: string;
}

/**
 * A new intermediate under the same root; the old one is archived (for CRLs) and retired. Nothing is retired
 * or replaced before the root key is known to belong to root.crt and the new intermediate is known to chain
 * to it (name and signature) and to match its own key.
 */
export function rotateIntermediate(context: Context, options: RotateOptions = {}): CaInfo {
  const { layout } = context;
  const old = loadIssuingCa(context);
  const root = loadRootKey(context, options.rootPassphrase);
  const store = context.store();
  const rootPermitted = readCertificate(root.der).extensions.get(OIDS.nameConstraints);
  const permitted = rootPermitted ? decodeNameConstraints(rootPermitted.value) : null;
  const next = signIntermediate(context.now(), root.der, root.key, keyTypeOf(old.key), permitted, randomTag());
  const cert = new X509Certificate(next.der);
  const nextParts = readCertificate(next.der);
  const rootParts = readCertificate(root.der);
  if (!nextParts.issuer.equals(rootParts.subject) || !cert.verify(root.cert.publicKey) || !cert.checkPrivateKey(next.privateKey) || !cert.ca) {
    throw corrupt(`the new intermediate does not verify under the root ${layout.rootCert}; the current intermediate was kept`, `check that ${layout.rootKey} and ${layout.rootCert} belong together`);
  }

  const archive = layout.retiredDir;
  ensurePrivateDir(archive);
  const oldSerial = old.cert.serialNumber.toUpperCase();
  writeFilesAtomic([
    { path: join(archive, `intermediate-${oldSerial}.key`), data: privateKeyPem(old.key), mode: 0o600 },
    { path: join(archive, `intermediate-${oldSerial}.crt`), data: old.pem, mode: 0o644 },
  ]);
  store.transaction(() => {
    const serial = cert.serialNumber.toUpperCase();
    recordAuthority(store, 'intermediate', cert);
    store.retireAuthorities('intermediate', serial);
    store.addEvent({ type: 'ca.intermediate-rotated', serial, detail: { previous: oldSerial, fingerprint: cert.fingerprint256 } });
    writeFilesAtomic([
      { path: layout.intermediateKey, data: privateKeyPem(next.privateKey), mode: 0o600 },
      { path: layout.intermediateCert, data: toPem('CERTIFICATE', next.der), mode: 0o644 },
      // homes made before the root signed its own CRL get one now, while the root key is at hand
      ...(existsSync(layout.rootCrl) ? [] : [{ path: layout.rootCrl, data: signRootCrl(root.der, root.key, store.nextCounter('root_crl_number'), context.now()), mode: 0o644 }]),
    ]);
  });
  return showCa(context);
}
