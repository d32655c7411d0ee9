// CRLs signed by the issuing intermediate (and by retired intermediates whose keys are archived, so that
// certificates they issued can still be revoked), followed by the root's CRL (pki/root-crl.ts), so one file
// serves full-chain CRL checks. One PEM file may hold several CRLs; OpenSSL and Node read them all.
import { verify as verifySignature, X509Certificate } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { hostname } from 'node:os';
import type { Context } from '../context.js';
import type { Store } from '../store/store.js';
import type { StoredCrl } from '../store/crls.js';
import { writeFileAtomic, writeFilesAtomic } from '../fs/atomic.js';
import { McpkiError, fix } from '../errors.js';
import { INPUT_LIMITS, MIB, readInputText } from '../fs/read.js';
import { assertSafeDir } from '../fs/safe-path.js';
import { loadIssuingCa, loadRootKey } from './ca.js';
import { children, decodeOid, fromPem, parse, TAG, toPem, type DerNode } from './der.js';
import { keyIdentifier, readPrivateKey, signatureAlgorithmFor } from './keys.js';
import { readRootCrl, signRootCrl } from './root-crl.js';
import { readCertificate, signCrl, type RevocationReason } from './x509.js';
import { DEFAULT_CRL_DAYS, MAX_CRL_DAYS } from './limits.js';

const DAY = 86_400_000;
export { DEFAULT_CRL_DAYS } from './limits.js';
export interface CrlOptions {
  /** also write the PEM here (it is always written to HOME/ca/crl.pem) */
  out?: string;
  /** nextUpdate, in days from now */
  days?: number;
  /** signs the root's CRL when this home has none yet and the root key is encrypted */
  rootPassphrase?: string;
  /**
   * on an inventory several homes share (PostgreSQL): how long to wait while another process publishes, in ms
   * (default 60 s), before failing with STORE_BUSY
   */
  lockWaitMs?: number;
}

export interface CrlResult {
  pem: string;
  number: string;
  thisUpdate: string;
  nextUpdate: string;
  revoked: { serial: string; name: string; revokedAt: string; reason: string; issuerSerial: string }[];
  /** whether the root's CRL is in the file (needed by full-chain checks: nginx ssl_crl, Node's crl option) */
  includesRoot: boolean;
  paths: string[];
  warnings: string[];
  /** 'signed': a new number signed here; 'copied': the newest CRL another home of a shared inventory published */
  source: 'signed' | 'copied';
  /** the inventory is shared by several homes (PostgreSQL): the CRL is stored there for the others */
  shared: boolean;
}

interface Signer {
  der: Buffer;
  key: import('node:crypto').KeyObject;
}

/** A file of the CA or a published CRL: a regular file of bounded size (a FIFO or a device never hangs a read). */
export function readCaText(path: string, what: string, maxBytes: number = INPUT_LIMITS.pem): string {
  return readInputText(path, { what, maxBytes, code: 'CA_CORRUPT' });
}

/** The largest published CRL file read back (a million revoked serials fit). */
export const CRL_FILE_LIMIT = 64 * MIB;

/** Retired intermediates whose key is archived with them (rotate-intermediate keeps both): they still sign CRLs. */
function retiredIntermediates(retiredDir: string): { cert: string; key: string }[] {
  if (!existsSync(retiredDir)) return [];
  return readdirSync(retiredDir)
    .filter((file) => /^intermediate-[0-9A-F]+\.crt$/.test(file))
    .map((file) => ({ cert: join(retiredDir, file), key: join(retiredDir, file.replace(/\.crt$/, '.key')) }))
    .filter((files) => existsSync(files.key));
}

/** Each retired intermediate with its archived key, checked: one CA certificate, and the key that belongs to it. */
function retiredSigners(retiredDir: string): Signer[] {
  return retiredIntermediates(retiredDir).map((files) => {
    const hint = `restore ${files.cert} and ${files.key} from a backup, or move both out of ${retiredDir} (certificates of that intermediate can then no longer be revoked)`;
    try {
      const der = fromPem(readCaText(files.cert, 'the retired intermediate'), 'CERTIFICATE')[0];
      if (!der) throw new Error('no PEM certificate in it');
      const cert = new X509Certificate(der);
      const key = readPrivateKey(readCaText(files.key, 'the retired intermediate key'));
      if (!cert.ca) throw new Error('not a CA certificate');
      if (!cert.checkPrivateKey(key)) throw new Error(`${files.key} does not match it`);
      return { der, key };
    } catch (error) {
      throw new McpkiError(
        'CA_CORRUPT',
        `the retired intermediate ${files.cert} is unusable: ${(error as Error).message}`,
        hint,
        { cause: error },
      );
    }
  });
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null; // the folder check says what is wrong
    throw new McpkiError(
      'WRITE_FAILED',
      `cannot use --out ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      'give a file path in an existing folder this user can write',
    );
  }
}

/** --out must name a file (or nothing yet) in an existing, safe folder; checked before anything is signed or written. */
function checkOutPath(out: string): string {
  if (out === '')
    throw new McpkiError(
      'INVALID_INPUT',
      '--out is empty',
      fix('give the path of the CRL file to write, e.g. {--out /etc/nginx/mcpki-crl.pem}'),
    );
  const path = resolve(out);
  const stat = lstatOrNull(path);
  if (stat?.isDirectory()) {
    throw new McpkiError(
      'INVALID_INPUT',
      `--out ${out} is a folder, not a file`,
      fix(`give a file path, e.g. {--out ${join(out, 'crl.pem')}}`),
    );
  }
  if (stat && !stat.isFile() && !stat.isSymbolicLink()) {
    throw new McpkiError(
      'INVALID_INPUT',
      `--out ${out} is a special file, not a regular file`,
      'give the path of a regular file (it is replaced)',
    );
  }
  const dir = dirname(path);
  let dirStat: Stats;
  try {
    dirStat = statSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const why =
      code === 'ENOENT' ? 'does not exist' : code === 'ENOTDIR' ? 'is not a folder' : `cannot be reached (${code})`;
    throw new McpkiError(
      'WRITE_FAILED',
      `cannot write --out ${out}: its folder ${dir} ${why}`,
      `create the folder first (mkdir -p ${dir}), or give another path`,
      { cause: error },
    );
  }
  if (!dirStat.isDirectory())
    throw new McpkiError(
      'WRITE_FAILED',
      `cannot write --out ${out}: ${dir} is not a folder`,
      'give a file path in an existing folder',
    );
  assertSafeDir(dir, 'the --out folder');
  return path;
}

/** The hash each CRL signature algorithm mcpki writes (pki/keys.ts) verifies with; undefined for any other. */
const CRL_SIGNATURE_HASHES: Record<string, string | null> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384', // ecdsa-with-SHA384
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.3.101.112': null, // Ed25519
};

/**
 * Whether a DER CRL's signature verifies with this CA certificate's public key (and its two signature
 * algorithm fields agree). A CRL that does not is not this CA's: it is never published, and its number is
 * never taken into account.
 */
export function crlSignedBy(der: Buffer, issuerDer: Buffer): boolean {
  try {
    const [tbs, algorithm, signature] = children(parse(der));
    const oid = decodeOid(children(algorithm!)[0]!);
    const fields = children(tbs!);
    const inner = fields[fields[0]!.tag === TAG.INTEGER ? 1 : 0]!;
    if (!inner.raw.equals(algorithm!.raw) || !(oid in CRL_SIGNATURE_HASHES)) return false;
    if (signature!.tag !== 0x03 || signature!.content[0] !== 0) return false;
    return verifySignature(
      CRL_SIGNATURE_HASHES[oid]!,
      tbs!.raw,
      new X509Certificate(issuerDer).publicKey,
      signature!.content.subarray(1),
    );
  } catch {
    return false;
  }
}

/**
 * The highest cRLNumber in a published CRL file (HOME/ca/crl.pem, the root's CRL aside), counting only CRLs
 * that one of `issuers` (CA certificates, DER) signed: 0 when there is none.
 */
function publishedCrlNumber(path: string, rootKeyId: string, issuers: readonly Buffer[]): bigint {
  let highest = 0n;
  try {
    for (const der of fromPem(readCaText(path, 'the published CRL', CRL_FILE_LIMIT), 'X509 CRL')) {
      const crl = readCrl(der);
      if (crl.keyId === rootKeyId || crl.number === null) continue;
      if (!issuers.some((issuer) => crlSignedBy(der, issuer))) continue;
      const number = BigInt(crl.number);
      if (number > highest) highest = number;
    }
  } catch {
    // missing or damaged: the inventory's counter decides
  }
  return highest;
}

/** The CA as a CRL reader sees it: certificates only, no key opened. */
interface CaCerts {
  rootDer: Buffer;
  /** the root's key identifier, hex: which CA a stored CRL belongs to */
  caId: string;
  /** the issuing intermediate and every retired one with its key archived (they sign CRLs), DER */
  intermediates: Buffer[];
  /** the key identifiers of those that have not expired at `now`: the CRLs a complete file holds */
  issuerKeyIds: string[];
}

function caCertsOf(context: Context, rootDer: Buffer, intermediates: Buffer[], now: Date): CaCerts {
  return {
    rootDer,
    caId: crlKeyIdOf(rootDer),
    intermediates,
    issuerKeyIds: intermediates
      .filter((der) => new Date(new X509Certificate(der).validTo) >= now)
      .map((der) => crlKeyIdOf(der))
      .sort(),
  };
}

function readCaCerts(context: Context, now: Date): CaCerts {
  const { layout } = context;
  const first = (path: string, what: string) => {
    const der = fromPem(readCaText(path, what), 'CERTIFICATE')[0];
    if (!der)
      throw new McpkiError('CA_CORRUPT', `${path} holds no PEM certificate`, 'restore the CA files from a backup');
    return der;
  };
  const rootDer = first(layout.rootCert, 'the root certificate');
  const intermediates = [
    first(layout.intermediateCert, 'the intermediate certificate'),
    ...retiredIntermediates(layout.retiredDir).map((files) => first(files.cert, 'the retired intermediate')),
  ];
  return caCertsOf(context, rootDer, intermediates, now);
}

/** Whether CRLs are shared through the inventory: only PostgreSQL is shared by several homes. */
function sharesCrls(store: Store): boolean {
  return store.dialect === 'postgres';
}

/** A stored CRL whose every signature checked out: rebuilt from its DER, nothing else of the row kept. */
interface CheckedCrl {
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  pem: string;
  crls: PublishedCrl[];
  /** holds a CRL of each issuer this home signs with, and not past its nextUpdate: fit to serve as it is */
  complete: boolean;
}

function forged(row: StoredCrl, context: Context, why: string, hint?: string): McpkiError {
  return new McpkiError(
    'STORE_CORRUPT',
    `the newest CRL in the inventory (#${row.number}) is refused: ${why}; ${context.layout.crl} is kept as it is`,
    hint ??
      `it was not published by mcpki with this CA: find out who can write to the inventory, remove that row of its crls table (ca ${row.ca}, number ${row.number}), then run "mcpki crl"`,
  );
}

/**
 * Checks a stored CRL row as hostile input: every CRL in it must be signed by this home's root or one of its
 * intermediates, and the intermediates' CRLs must carry the row's number. Throws STORE_CORRUPT otherwise.
 */
function checkStoredCrl(context: Context, row: StoredCrl, ca: CaCerts, now: Date): CheckedCrl {
  if (row.pem.length > CRL_FILE_LIMIT) throw forged(row, context, `it is larger than ${CRL_FILE_LIMIT} bytes`);
  let ders: Buffer[];
  try {
    ders = fromPem(row.pem, 'X509 CRL');
  } catch (error) {
    throw forged(row, context, `it is not PEM (${(error as Error).message})`);
  }
  if (ders.length === 0) throw forged(row, context, 'it holds no CRL');
  const rootKeyId = ca.caId;
  const blocks: Buffer[] = [];
  const crls: PublishedCrl[] = [];
  let rootBlock: Buffer | undefined;
  for (const der of ders) {
    let crl: PublishedCrl;
    try {
      crl = readCrl(der);
    } catch (error) {
      throw forged(row, context, `a CRL in it cannot be read (${(error as Error).message})`);
    }
    if (crl.keyId === rootKeyId) {
      if (!crlSignedBy(der, ca.rootDer)) throw forged(row, context, "its root CRL's signature does not verify");
      rootBlock = der;
      continue;
    }
    if (!ca.intermediates.some((issuer) => crlKeyIdOf(issuer) === crl.keyId))
      throw forged(
        row,
        context,
        `a CRL in it is signed by an intermediate this home does not have (key identifier ${crl.keyId?.slice(0, 64) ?? 'none'})`,
        `if the intermediate was rotated on another host, copy its ca/intermediate.crt, ca/intermediate.key and ca/retired/ into ${context.layout.root}/ca (docs/store.md, "Provisioning a second host"); otherwise the row was not published by mcpki with this CA: find out who can write to the inventory and remove it (crls table, number ${row.number})`,
      );
    if (!ca.intermediates.some((issuer) => crlSignedBy(der, issuer)))
      throw forged(row, context, "a CRL in it is not signed by this home's intermediate (wrong signature)");
    if (crl.number !== row.number.toString())
      throw forged(row, context, `a CRL in it is numbered ${crl.number ?? '(none)'}, not ${row.number}`);
    blocks.push(der);
    crls.push(crl);
  }
  if (blocks.length === 0) throw forged(row, context, 'it holds no CRL of an intermediate');
  const root =
    rootBlock ??
    (() => {
      const stored = storedRootCrl(context.layout.rootCrl, ca.rootDer);
      return stored ? fromPem(stored.pem, 'X509 CRL')[0] : undefined;
    })();
  const first = crls.reduce((soonest, crl) =>
    (crl.nextUpdate?.getTime() ?? 0) < (soonest.nextUpdate?.getTime() ?? 0) ? crl : soonest,
  );
  const have = [...new Set(crls.map((crl) => crl.keyId ?? '?'))].sort().join(',');
  const nextUpdate = first.nextUpdate ?? first.thisUpdate;
  return {
    number: row.number,
    thisUpdate: first.thisUpdate,
    nextUpdate,
    pem: [...blocks, ...(root ? [root] : [])].map((der) => toPem('X509 CRL', der)).join(''),
    crls: [...crls, ...(root ? [readCrl(root)] : [])],
    complete: have === ca.issuerKeyIds.join(',') && nextUpdate > now,
  };
}

/** The newest stored CRL of this CA when it is newer than `than`, checked; undefined when there is none. */
function newerStoredCrl(context: Context, store: Store, ca: CaCerts, than: bigint, now: Date): CheckedCrl | undefined {
  const newest = store.crls().newestNumber(ca.caId);
  if (newest === undefined || newest <= than) return undefined;
  const row = store.crls().newest(ca.caId);
  if (!row || row.number <= than) return undefined;
  return checkStoredCrl(context, row, ca, now);
}

/** Whether a CRL file lists exactly the serials the inventory has as revoked by these issuers. */
function listsExactly(crls: PublishedCrl[], wanted: ReadonlySet<string>, rootKeyId: string): boolean {
  const listed = new Set(crls.filter((crl) => crl.keyId !== rootKeyId).flatMap((crl) => crl.revoked));
  return listed.size === wanted.size && [...wanted].every((serial) => listed.has(serial));
}

export function generateCrl(context: Context, options: CrlOptions = {}): CrlResult {
  const days = options.days ?? DEFAULT_CRL_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > MAX_CRL_DAYS) {
    throw new McpkiError(
      'INVALID_DAYS',
      `--days must be a whole number from 1 to ${MAX_CRL_DAYS}, got ${String(options.days)}`,
      `the default is ${DEFAULT_CRL_DAYS}`,
    );
  }
  const out = options.out === undefined ? undefined : checkOutPath(options.out);
  const current = loadIssuingCa(context);
  const signers: Signer[] = [{ der: current.der, key: current.key }, ...retiredSigners(context.layout.retiredDir)];
  const store = context.store();
  // a CRL another home publishes while this one waits for the lock is as good as one signed here
  const before = sharesCrls(store) ? (store.crls().newestNumber(crlKeyIdOf(current.rootDer)) ?? 0n) : 0n;
  return store.withPublishLock(
    'crl',
    () => publishLocked(context, store, current, signers, days, out, before, options),
    options.lockWaitMs,
  );
}

function publishLocked(
  context: Context,
  store: Store,
  current: ReturnType<typeof loadIssuingCa>,
  signers: Signer[],
  days: number,
  out: string | undefined,
  /** the newest stored number before waiting for the lock */
  before: bigint,
  options: CrlOptions,
): CrlResult {
  const now = context.now();
  const nextUpdate = new Date(now.getTime() + days * DAY);
  const ca = caCertsOf(
    context,
    current.rootDer,
    signers.map((signer) => signer.der),
    now,
  );
  const issuing = signers
    .map((signer) => ({ signer, cert: new X509Certificate(signer.der) }))
    .filter(({ cert }) => new Date(cert.validTo) >= now)
    .map(({ signer, cert }) => {
      const issuerSerial = cert.serialNumber.toUpperCase();
      return { signer, issuerSerial, entries: store.crls().revocations(issuerSerial) };
    });
  const revoked: CrlResult['revoked'] = issuing.flatMap(({ issuerSerial, entries }) =>
    entries.map((e) => ({
      serial: e.serial,
      name: e.name,
      revokedAt: e.revokedAt!,
      reason: e.revocationReason!,
      issuerSerial,
    })),
  );
  const paths = [context.layout.crl];
  if (out) paths.push(out);
  const published = publishedCrlNumber(context.layout.crl, ca.caId, ca.intermediates);
  const shared = sharesCrls(store);
  const newer = shared ? newerStoredCrl(context, store, ca, published, now) : undefined;
  if (
    newer?.complete &&
    newer.number > before &&
    newer.nextUpdate.getTime() - newer.thisUpdate.getTime() === days * DAY &&
    listsExactly(newer.crls, new Set(revoked.map((r) => normalizeSerial(r.serial))), ca.caId)
  ) {
    // published by another home while this one waited, with the same revocations and lifetime: served as it is
    const includesRoot = newer.crls.some((crl) => crl.keyId === ca.caId);
    writeFilesAtomic(paths.map((path) => ({ path, data: newer.pem, mode: 0o644 })));
    store.addEvent({
      type: 'crl.copied',
      detail: { number: newer.number.toString(), revoked: revoked.length, includesRoot, paths },
    });
    return {
      pem: newer.pem,
      number: newer.number.toString(),
      thisUpdate: newer.thisUpdate.toISOString(),
      nextUpdate: newer.nextUpdate.toISOString(),
      revoked,
      includesRoot,
      paths,
      warnings: [],
      source: 'copied',
      shared,
    };
  }
  // never below a number already published, even when the inventory was restored from an older copy
  const number = store.nextCounter('crl_number', newer && newer.number > published ? newer.number : published);
  let pem = '';
  for (const { signer, entries } of issuing) {
    const parts = readCertificate(signer.der);
    const der = signCrl(
      {
        issuer: parts.subject,
        authorityKeyId: keyIdentifier(parts.spki),
        number,
        thisUpdate: now,
        nextUpdate,
        revoked: entries.map((e) => ({
          serial: Buffer.from(e.serial, 'hex'),
          revokedAt: new Date(e.revokedAt!),
          reason: e.revocationReason as RevocationReason,
        })),
      },
      signatureAlgorithmFor(signer.key),
    );
    pem += toPem('X509 CRL', der);
  }
  const warnings: string[] = [];
  const rootCrl = ensureRootCrl(context, current.rootDer, options.rootPassphrase);
  if (rootCrl) pem += rootCrl;
  else
    warnings.push(
      'the root key is encrypted and this home has no root CRL (or a damaged one), so the file holds only the intermediate\'s CRL: full-chain checks (nginx ssl_crl, Node\'s crl option) reject every client; run "mcpki crl" once with MCPKI_ROOT_PASSPHRASE set',
    );
  // both or neither
  writeFilesAtomic(paths.map((path) => ({ path, data: pem, mode: 0o644 })));
  if (shared) {
    store.crls().put({
      ca: ca.caId,
      number,
      issuer: issuing[0]?.issuerSerial ?? current.cert.serialNumber.toUpperCase(),
      thisUpdate: now.toISOString(),
      nextUpdate: nextUpdate.toISOString(),
      pem,
      publishedBy: `${hostname()}:${context.layout.root}`,
    });
  }
  store.addEvent({
    type: 'crl.generated',
    detail: { number: number.toString(), revoked: revoked.length, includesRoot: rootCrl !== null, paths },
  });
  return {
    pem,
    number: number.toString(),
    thisUpdate: now.toISOString(),
    nextUpdate: nextUpdate.toISOString(),
    revoked,
    includesRoot: rootCrl !== null,
    paths,
    warnings,
    source: 'signed',
    shared,
  };
}

export interface AdoptedCrl {
  /** the number now in HOME/ca/crl.pem */
  number: string;
  /** the number it held before */
  previous: string;
  pem: string;
}

/**
 * On an inventory several homes share: when the newest stored CRL of this CA is newer than HOME/ca/crl.pem,
 * holds a CRL of every intermediate this home signs with and has not passed its nextUpdate, HOME/ca/crl.pem
 * becomes that CRL (its signatures checked first: a row that fails is refused with STORE_CORRUPT and the file
 * is kept). No number is signed. Returns what was written, or undefined when nothing was.
 * `known`: the number the caller last saw in the file; with it, the check is one indexed query when nothing is newer.
 */
export function adoptNewestCrl(context: Context, known?: bigint): AdoptedCrl | undefined {
  const store = context.store();
  if (!sharesCrls(store)) return undefined;
  const now = context.now();
  const ca = readCaCerts(context, now);
  if (known !== undefined) {
    const newest = store.crls().newestNumber(ca.caId);
    if (newest === undefined || newest <= known) return undefined;
  }
  return store.withPublishLock('crl', () => {
    const published = publishedCrlNumber(context.layout.crl, ca.caId, ca.intermediates);
    const newer = newerStoredCrl(context, store, ca, published, now);
    if (!newer?.complete) return undefined;
    writeFileAtomic(context.layout.crl, newer.pem, 0o644);
    store.addEvent({
      type: 'crl.copied',
      detail: { number: newer.number.toString(), previous: published.toString(), paths: [context.layout.crl] },
    });
    return { number: newer.number.toString(), previous: published.toString(), pem: newer.pem };
  });
}

/**
 * Read-only: the newest CRL number stored for this CA when it is higher than HOME/ca/crl.pem's (a check would
 * make it this home's, signatures permitting); undefined otherwise, or when the inventory is not shared.
 */
export function newerStoredCrlNumber(context: Context, store: Store): { newest: bigint; own: bigint } | undefined {
  if (!sharesCrls(store)) return undefined;
  const ca = readCaCerts(context, context.now());
  const newest = store.crls().newestNumber(ca.caId);
  if (newest === undefined) return undefined;
  const own = publishedCrlNumber(context.layout.crl, ca.caId, ca.intermediates);
  return newest > own ? { newest, own } : undefined;
}

/** Whether this home's inventory is shared by several homes, which then serve the newest CRL stored there. */
export function crlsShared(context: Context): boolean {
  return sharesCrls(context.store());
}

/** The highest intermediate cRLNumber in HOME/ca/crl.pem that this CA signed (0 when none). */
export function homeCrlNumber(context: Context): bigint {
  const ca = readCaCerts(context, context.now());
  return publishedCrlNumber(context.layout.crl, ca.caId, ca.intermediates);
}

/** The stored root CRL when it is one CRL of this root (issuer, key identifier and signature); null otherwise. */
function storedRootCrl(path: string, rootDer: Buffer): { pem: string; number: bigint } | null {
  let pem: string | null;
  try {
    pem = readRootCrl(path);
    if (pem === null) return null;
    const crls = readCrlFile(pem);
    const root = readCertificate(rootDer);
    if (
      crls.length !== 1 ||
      !crls[0]!.issuer.equals(root.subject) ||
      crls[0]!.keyId !== keyIdentifier(root.spki).toString('hex')
    )
      return null;
    const der = fromPem(pem, 'X509 CRL')[0]!;
    if (!crlSignedBy(der, rootDer)) return null;
    return { pem: toPem('X509 CRL', der), number: BigInt(crls[0]!.number ?? '0') };
  } catch {
    return null;
  }
}

/**
 * The root's CRL, signed now if this home predates it (or it is damaged, or of another root) and the root key
 * can be read; null if it cannot.
 */
function ensureRootCrl(context: Context, rootDer: Buffer, passphrase: string | undefined): string | null {
  const { layout } = context;
  const stored = storedRootCrl(layout.rootCrl, rootDer);
  if (stored) return stored.pem;
  let root: ReturnType<typeof loadRootKey>;
  try {
    root = loadRootKey(context, passphrase);
  } catch (error) {
    if (error instanceof McpkiError && error.code === 'PASSPHRASE_MISSING') return null; // encrypted: the caller warns
    throw error;
  }
  const floor = existsSync(layout.rootCrl) ? publishedCrlNumber(layout.rootCrl, '', [root.der]) : 0n;
  const pem = signRootCrl(root.der, root.key, context.store().nextCounter('root_crl_number', floor), context.now());
  writeFileAtomic(layout.rootCrl, pem, 0o644);
  return pem;
}

// --- reading a published CRL file (what `mcpki apply` compares with the inventory) ------------------------

export interface PublishedCrl {
  /** the issuer Name, DER */
  issuer: Buffer;
  thisUpdate: Date;
  /** null when the CRL has none (mcpki always writes one) */
  nextUpdate: Date | null;
  /** the cRLNumber extension, decimal; null when absent */
  number: string | null;
  /** serials of the revoked certificates, upper-case hex without leading zero bytes */
  revoked: string[];
  /** the authorityKeyIdentifier's keyIdentifier, hex; null when absent */
  keyId: string | null;
}

const CRL_NUMBER_OID = '2.5.29.20';
const AUTHORITY_KEY_ID_OID = '2.5.29.35';

/** A serial in the one form used for comparisons: upper-case hex, no leading zeros ("0" for zero). */
export function normalizeSerial(hex: string): string {
  const trimmed = hex.replace(/^0+/, '').toUpperCase();
  return trimmed === '' ? '0' : trimmed;
}

function decodeTime(node: DerNode): Date {
  const text = node.content.toString('latin1');
  let digits: string;
  if (node.tag === TAG.UTC_TIME) {
    const year = Number(text.slice(0, 2));
    digits = `${year >= 50 ? 19 : 20}${text}`;
  } else if (node.tag === TAG.GENERALIZED_TIME) digits = text;
  else throw new RangeError('DER: expected a time');
  const match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(digits);
  if (!match) throw new RangeError(`DER: unsupported time ${JSON.stringify(text)}`);
  const [, y, mo, d, h, mi, s] = match.map(Number) as number[];
  return new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
}

function isTime(node: DerNode | undefined): node is DerNode {
  return node !== undefined && (node.tag === TAG.UTC_TIME || node.tag === TAG.GENERALIZED_TIME);
}

/** The fields of one DER CRL that decide whether it must be published again (RFC 5280 5.1). */
export function readCrl(der: Buffer): PublishedCrl {
  const [tbs] = children(parse(der));
  const fields = children(tbs!);
  let i = fields[0]!.tag === TAG.INTEGER ? 1 : 0; // version
  i++; // signature algorithm
  const issuer = fields[i++]!.raw;
  const thisUpdate = decodeTime(fields[i++]!);
  const nextUpdate = isTime(fields[i]) ? decodeTime(fields[i++]!) : null;
  const revoked: string[] = [];
  if (fields[i]?.tag === TAG.SEQUENCE) {
    for (const entry of children(fields[i++]!))
      revoked.push(normalizeSerial(children(entry)[0]!.content.toString('hex')));
  }
  let number: string | null = null;
  let keyId: string | null = null;
  const extensions = fields[i];
  if (extensions?.tag === 0xa0) {
    for (const extension of children(children(extensions)[0]!)) {
      const parts = children(extension);
      const oid = decodeOid(parts[0]!);
      const value = parse(parts[parts.length - 1]!.content);
      if (oid === CRL_NUMBER_OID) number = BigInt(`0x${value.content.toString('hex') || '0'}`).toString();
      if (oid === AUTHORITY_KEY_ID_OID)
        keyId =
          children(value)
            .find((part) => part.tag === 0x80)
            ?.content.toString('hex') ?? null;
    }
  }
  return { issuer, thisUpdate, nextUpdate, number, revoked, keyId };
}

/** Every CRL in a PEM file (HOME/ca/crl.pem holds the intermediates' and the root's). Throws on a damaged one. */
export function readCrlFile(pem: string): PublishedCrl[] {
  return fromPem(pem, 'X509 CRL').map(readCrl);
}

export interface CrlIssuer {
  /** upper-case hex, as issuer_serial in the inventory */
  serial: string;
  /** the subject key identifier its CRLs name (authorityKeyIdentifier), hex */
  keyId: string;
}

/** The key identifier a CA's CRLs carry, hex: the one generateCrl and signRootCrl compute. */
export function crlKeyIdOf(certificateDer: Buffer): string {
  return keyIdentifier(readCertificate(certificateDer).spki).toString('hex');
}

/**
 * The CAs whose CRLs generateCrl writes at `now`: the issuing intermediate and every retired one whose key is
 * archived and that has not expired. Reads certificates only (no key is opened).
 */
export function listCrlIssuers(retiredDir: string, intermediateCert: string, now: Date): CrlIssuer[] {
  const files = [intermediateCert, ...retiredIntermediates(retiredDir).map((retired) => retired.cert)];
  const issuers: CrlIssuer[] = [];
  for (const file of files) {
    const der = fromPem(readCaText(file, 'the intermediate certificate'), 'CERTIFICATE')[0];
    if (!der) continue;
    const cert = new X509Certificate(der);
    if (new Date(cert.validTo) < now) continue;
    issuers.push({ serial: cert.serialNumber.toUpperCase(), keyId: crlKeyIdOf(der) });
  }
  return issuers;
}
