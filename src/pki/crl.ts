// CRLs signed by the issuing intermediate (and by retired intermediates whose keys are archived, so that
// certificates they issued can still be revoked), followed by the root's CRL (pki/root-crl.ts), so one file
// serves full-chain CRL checks. One PEM file may hold several CRLs; OpenSSL and Node read them all.
import { verify as verifySignature, X509Certificate } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Context } from '../context.js';
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
  const now = context.now();
  const nextUpdate = new Date(now.getTime() + days * DAY);
  // never below a number already published, even when the inventory was restored from an older copy
  const number = store.nextCounter(
    'crl_number',
    publishedCrlNumber(
      context.layout.crl,
      crlKeyIdOf(current.rootDer),
      signers.map((signer) => signer.der),
    ),
  );
  const revoked: CrlResult['revoked'] = [];
  let pem = '';
  for (const signer of signers) {
    const cert = new X509Certificate(signer.der);
    if (new Date(cert.validTo) < now) continue;
    const issuerSerial = cert.serialNumber.toUpperCase();
    const parts = readCertificate(signer.der);
    const entries = store.revokedBy(issuerSerial);
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
    for (const e of entries)
      revoked.push({
        serial: e.serial,
        name: e.name,
        revokedAt: e.revokedAt!,
        reason: e.revocationReason!,
        issuerSerial,
      });
  }
  const warnings: string[] = [];
  const rootCrl = ensureRootCrl(context, current.rootDer, options.rootPassphrase);
  if (rootCrl) pem += rootCrl;
  else
    warnings.push(
      'the root key is encrypted and this home has no root CRL (or a damaged one), so the file holds only the intermediate\'s CRL: full-chain checks (nginx ssl_crl, Node\'s crl option) reject every client; run "mcpki crl" once with MCPKI_ROOT_PASSPHRASE set',
    );
  const paths = [context.layout.crl];
  if (out) paths.push(out);
  // both or neither
  writeFilesAtomic(paths.map((path) => ({ path, data: pem, mode: 0o644 })));
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
  };
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
