// The development CA: a name-constrained root that signs only intermediates, and an issuing intermediate
// that signs leaves. Day-to-day issuance needs only the intermediate's key, so the root key may be kept
// encrypted at rest.
import { randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, openSync, writeSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import type { Context } from '../context.js';
import type { Store } from '../store/store.js';
import { fsyncPath, tempPathFor, tryUnlink, writeFilesAtomic, type FileToWrite } from '../fs/atomic.js';
import { McpkiError, fix } from '../errors.js';
import { ensurePrivateDir } from '../home.js';
import { DEFAULT_PERMITTED, encodeNameConstraints, parsePermitted, type Permitted } from './constraints.js';
import { toPem } from './der.js';
import { signRootCrl } from './root-crl.js';
import {
  DEFAULT_KEY_TYPE,
  generateKey,
  isEncryptedPem,
  keyIdentifier,
  keyTypeOf,
  privateKeyPem,
  signatureAlgorithmFor,
  spkiOf,
  type KeyType,
} from './keys.js';
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
import { corrupt, decodeNameConstraints, loadIssuingCa, loadRootKey, readCaFile } from './ca-files.js';
import { BACKDATE_MS } from './limits.js';

export {
  decodeNameConstraints,
  loadCaCertificates,
  loadIssuingCa,
  loadRootCertificate,
  loadRootKey,
  type IssuingCa,
} from './ca-files.js';

const DAY = 86_400_000;
export const ROOT_DAYS = 3650;
export const INTERMEDIATE_DAYS = 1095;
export { BACKDATE_MS } from './limits.js';

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
  /**
   * false: no IP address subtrees, so IP addresses are not constrained (RFC 5280 §4.2.1.10) while DNS names, URIs
   * and e-mail addresses still are. Some TLS stacks refuse IP subtrees outright (Claude Code's).
   */
  ipConstraints?: boolean;
  /**
   * With `force`: takes the replaced root out of every trust store it was put in, before the new CA is written,
   * and throws when it cannot. The trust layer sits above this one, so the caller passes it in (src/index.ts
   * does: the public `initCa` always untrusts).
   */
  untrustOldRoot?: (context: Context) => TrustRemoval[];
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

function signIntermediate(
  ctxNow: Date,
  rootCert: Buffer,
  rootKey: KeyObject,
  keyType: KeyType,
  permitted: Permitted | null,
  id: string,
) {
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

/** One trust store the replaced root was taken out of (or could not be): what `untrustOldRoot` reports. */
export interface TrustRemoval {
  store: string;
  location: string;
  state: string;
  detail?: string;
}

export interface InitCaResult extends CaInfo {
  /** init --force: the trust stores the replaced root was removed from */
  oldRootRemovedFrom?: TrustRemoval[];
  /** the home already had a CA made with these options: nothing was created or changed */
  existing?: boolean;
}

/** A Permitted as a CA certificate carries it: encoded and read back (so ::1 and 0::1 compare equal), each list sorted. */
function canonicalPermitted(permitted: Permitted | null): string {
  if (!permitted) return 'none';
  const read = decodeNameConstraints(encodeNameConstraints(permitted));
  return JSON.stringify([read.dns, read.ip, read.uri, read.email].map((list) => [...list].sort()));
}

/**
 * `init` on a home that already has a CA: the CA as it is when it was made with the same options (key type,
 * name constraints, root key encrypted or not), so `mcpki init && mcpki issue …` can run again; otherwise
 * CA_EXISTS naming what differs. A CA that cannot be read is never replaced without --force either.
 */
function existingCa(
  context: Context,
  keyType: KeyType,
  permitted: Permitted | null,
  passphrase: string | undefined,
): InitCaResult {
  const encrypted = passphrase !== undefined;
  let info: CaInfo;
  try {
    info = showCa(context);
  } catch (error) {
    throw new McpkiError(
      'CA_EXISTS',
      `a CA already exists in ${context.layout.caDir} and cannot be read (${error instanceof McpkiError ? error.message : (error as Error).message})`,
      fix(
        'repair it (mcpki ca show says what is wrong), or pass {--force} to replace it: certificates it issued stop being trusted',
      ),
      { cause: error },
    );
  }
  const differences: string[] = [];
  if (info.root.keyType !== keyType) differences.push(`key type ${info.root.keyType}, not ${keyType}`);
  if (canonicalPermitted(info.permitted) !== canonicalPermitted(permitted)) {
    differences.push(
      info.permitted === null
        ? 'no name constraints'
        : permitted === null
          ? 'name constraints (not --no-name-constraints)'
          : 'other permitted names (see mcpki ca show)',
    );
  }
  if (info.root.keyEncrypted !== encrypted)
    differences.push(
      info.root.keyEncrypted ? 'an encrypted root key (add --encrypt-root)' : 'a root key that is not encrypted',
    );
  if (differences.length === 0 && encrypted && passphrase !== undefined) {
    // the same options, but a passphrase that does not open the root key would fail later (rotate-intermediate)
    loadRootKey(context, passphrase);
  }
  if (differences.length > 0) {
    throw new McpkiError(
      'CA_EXISTS',
      `a CA already exists in ${context.layout.caDir} with ${differences.join(', ')}`,
      fix(
        'use it as it is (mcpki ca show), give init the options it was made with, or pass {--force} to replace it: certificates it issued stop being trusted',
      ),
    );
  }
  return { ...info, existing: true };
}

export function initCa(context: Context, options: InitCaOptions = {}): InitCaResult {
  const keyType = options.keyType ?? DEFAULT_KEY_TYPE;
  const { layout } = context;
  const permitted =
    options.nameConstraints === false
      ? null
      : parsePermitted([...DEFAULT_PERMITTED, ...(options.permit ?? [])], { allowBroad: options.allowBroadPermit });
  if (options.nameConstraints === false && options.permit?.length) {
    throw new McpkiError('USAGE', '--permit and --no-name-constraints contradict each other', 'drop one of them');
  }
  if (options.ipConstraints === false && permitted) {
    const networks = (options.permit ?? []).filter(
      (name) => parsePermitted([name], { allowBroad: true }).ip.length > 0,
    );
    if (networks.length > 0) {
      throw new McpkiError(
        'USAGE',
        `--permit ${networks[0]} and --no-ip-constraints contradict each other`,
        'drop one of them: without IP constraints every IP address is permitted',
      );
    }
    permitted.ip = [];
  }
  if (options.rootPassphrase !== undefined && options.rootPassphrase.length < 8) {
    throw new McpkiError(
      'PASSPHRASE_MISSING',
      'the root key passphrase is shorter than 8 characters',
      'use a longer passphrase',
    );
  }
  // before the inventory is opened: a refused init creates nothing, a matching CA is kept as it is
  if (!options.force && caFilesExist(layout)) return existingCa(context, keyType, permitted, options.rootPassphrase);
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
  const untrusted = options.force && options.untrustOldRoot ? options.untrustOldRoot(context) : [];

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
      {
        path: layout.rootCrl,
        data: signRootCrl(rootDer, rootPair.privateKey, store.nextCounter('root_crl_number'), now),
        mode: 0o644,
      },
    ]);
  });
  const info: InitCaResult = showCa(context);
  if (options.force) info.oldRootRemovedFrom = untrusted;
  return info;
}

function caExistsError(caDir: string): McpkiError {
  return new McpkiError(
    'CA_EXISTS',
    `a CA already exists in ${caDir}`,
    fix('use it as it is (mcpki ca show), or pass {--force} to replace it: certificates it issued stop being trusted'),
  );
}

function caFilesExist(layout: Context['layout']): boolean {
  return [layout.rootCert, layout.intermediateCert, layout.rootKey, layout.intermediateKey].some((path) =>
    existsSync(path),
  );
}

function assertNoCa(layout: Context['layout']): void {
  if (caFilesExist(layout)) throw caExistsError(layout.caDir);
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
      const temp = tempPathFor(file.path);
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
    if (code === 'EEXIST' && linked.length < files.length && temps.length === files.length)
      throw caExistsError(dirname(files[0]!.path));
    throw new McpkiError(
      'WRITE_FAILED',
      `cannot write ${files[Math.max(temps.length - 1, linked.length)]?.path ?? ''} (${code})`,
      'check that the folder exists and is writable, and that the disk is not full',
      { cause: error },
    );
  } finally {
    for (const temp of temps) tryUnlink(temp);
  }
  for (const dir of new Set(files.map((file) => dirname(file.path)))) fsyncPath(dir);
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
  if (
    !nextParts.issuer.equals(rootParts.subject) ||
    !cert.verify(root.cert.publicKey) ||
    !cert.checkPrivateKey(next.privateKey) ||
    !cert.ca
  ) {
    throw corrupt(
      `the new intermediate does not verify under the root ${layout.rootCert}; the current intermediate was kept`,
      `check that ${layout.rootKey} and ${layout.rootCert} belong together`,
    );
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
    store.addEvent({
      type: 'ca.intermediate-rotated',
      serial,
      detail: { previous: oldSerial, fingerprint: cert.fingerprint256 },
    });
    writeFilesAtomic([
      { path: layout.intermediateKey, data: privateKeyPem(next.privateKey), mode: 0o600 },
      { path: layout.intermediateCert, data: toPem('CERTIFICATE', next.der), mode: 0o644 },
      // homes made before the root signed its own CRL get one now, while the root key is at hand
      ...(existsSync(layout.rootCrl)
        ? []
        : [
            {
              path: layout.rootCrl,
              data: signRootCrl(root.der, root.key, store.nextCounter('root_crl_number'), context.now()),
              mode: 0o644,
            },
          ]),
    ]);
  });
  return showCa(context);
}
