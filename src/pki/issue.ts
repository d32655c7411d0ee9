// Leaf issuance: validate everything first (names, constraints, key type, days, output paths, the git guard),
// then generate, sign, write atomically and record. Nothing is signed or written when any check fails.
import { createHash } from 'node:crypto';
import { rmdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Context } from '../context.js';
import { removeStaleTemps, writeFilesAtomic, writeManyFilesAtomic, type FileToWrite } from '../fs/atomic.js';
import { assertKeyPathOutsideGit } from '../fs/git.js';
import { McpkiError, fix } from '../errors.js';
import { assertUsableDir, ensurePrivateDir } from '../home.js';
import type { CertificateKind, CertificatePaths, CertificateRecord, NewCertificate } from '../store/store.js';
import { BACKDATE_MS, loadIssuingCa, type IssuingCa } from './ca.js';
import { assertPermitted, checkPermitted } from './constraints.js';
import { toPem } from './der.js';
import {
  DEFAULT_KEY_TYPE,
  encodeKey,
  generateEncodedKeyAsync,
  generateKey,
  keyIdentifier,
  parseKeyType,
  readPrivateKey,
  signatureAlgorithmFor,
  type EncodedKey,
  type KeyType,
} from './keys.js';
import { assertOneSpiffeId, classifySan, classifySans, validateCertName, validateSpiffeId, type San } from './names.js';
import { emptyPkcs12Password, encodePkcs12 } from './pkcs12.js';
import {
  authorityKeyIdentifier,
  basicConstraints,
  encodeName,
  extKeyUsage,
  keyUsage,
  OIDS,
  randomSerial,
  signCertificate,
  subjectAltName,
  subjectKeyIdentifier,
  type KeyUsage,
  type NameAttribute,
} from './x509.js';
import { DEFAULT_DAYS, MAX_DAYS } from './limits.js';

const DAY = 86_400_000;
export { DEFAULT_DAYS, MAX_DAYS } from './limits.js';
/** mkcert's and Java's customary PKCS#12 password, used when none is given. */
export const DEFAULT_P12_PASSWORD = 'changeit';
const OUT_DIR_HINT = fix('choose a writable folder with {--out DIR} (or leave it out to use HOME/certs/NAME)');

export interface IssueRequest {
  kind: CertificateKind;
  name: string;
  /** DNS names, IPs, URIs (spiffe://…) and e-mail addresses, classified automatically */
  sans?: readonly string[];
  /** the SPIFFE ID (spiffe://trust.domain/path), the certificate's one URI name, checked as the SPIFFE standard says */
  spiffe?: string;
  /** e-mail addresses (rfc822Name SANs), e.g. the person or mailbox an agent acts for */
  emails?: readonly string[];
  keyType?: KeyType | string;
  days?: number;
  /** folder for NAME.crt, NAME.key, NAME.fullchain.pem, ca.crt; default HOME/certs/NAME */
  outDir?: string;
  p12?: boolean;
  p12Password?: string;
  p12Legacy?: boolean;
  /** write the key even inside a git work tree that does not ignore it */
  allowGit?: boolean;
}

export interface IssuedCertificate {
  certificate: CertificateRecord;
  paths: CertificatePaths;
}

interface Plan {
  kind: CertificateKind;
  name: string;
  sans: San[];
  keyType: KeyType;
  days: number;
  outDir: string;
  paths: Required<Pick<CertificatePaths, 'cert' | 'key' | 'fullchain' | 'ca'>> & Pick<CertificatePaths, 'p12'>;
  p12?: { password: string; legacy: boolean };
}

/** --spiffe and --email as SAN texts, each checked to be what its option says before it joins the SAN list. */
function identityNames(request: IssueRequest): string[] {
  const out: string[] = [];
  if (request.spiffe !== undefined) out.push(validateSpiffeId(request.spiffe));
  for (const email of request.emails ?? []) {
    if (!email.includes('@') || /^[a-z][a-z0-9+.-]*:/i.test(email) || classifySan(email).type !== 'email') {
      throw new McpkiError(
        'INVALID_NAME',
        `invalid e-mail address "${email}"`,
        fix('write {--email} user@example.test'),
      );
    }
    out.push(email);
  }
  return out;
}

function planIssue(context: Context, ca: IssuingCa, request: IssueRequest): Plan {
  if (request.kind !== 'server' && request.kind !== 'client') {
    throw new McpkiError('INVALID_INPUT', `unknown certificate kind "${String(request.kind)}"`, 'use server or client');
  }
  const name = validateCertName(request.name);
  const sans = classifySans([...identityNames(request), ...(request.sans ?? [])]);
  assertOneSpiffeId(sans);
  if (request.kind === 'server' && sans.length === 0) {
    throw new McpkiError(
      'INVALID_NAME',
      `server certificate "${name}" has no names`,
      `list the names clients connect to, e.g. mcpki issue server ${name} localhost 127.0.0.1`,
    );
  }
  const keyType = parseKeyType(request.keyType ?? DEFAULT_KEY_TYPE);
  const days = request.days ?? DEFAULT_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) {
    throw new McpkiError(
      'INVALID_DAYS',
      `--days must be a whole number from 1 to ${MAX_DAYS}, got ${String(request.days)}`,
      fix(
        `give {--days N|days: N} from 1 to ${MAX_DAYS} (default ${DEFAULT_DAYS}); clients reject longer-lived certificates, so renew instead`,
      ),
    );
  }
  assertPermitted(sans, ca.permitted);
  const outDir = resolve(request.outDir ?? join(context.layout.certsDir, name));
  const paths: Plan['paths'] = {
    cert: join(outDir, `${name}.crt`),
    key: join(outDir, `${name}.key`),
    fullchain: join(outDir, `${name}.fullchain.pem`),
    ca: join(outDir, 'ca.crt'),
  };
  let p12: Plan['p12'];
  if (request.p12 || request.p12Password !== undefined || request.p12Legacy) {
    if (request.p12Password === '') throw emptyPkcs12Password();
    paths.p12 = join(outDir, `${name}.p12`);
    p12 = { password: request.p12Password ?? DEFAULT_P12_PASSWORD, legacy: request.p12Legacy === true };
  }
  // every folder on the way must be ours or root's and writable by no one else (UNSAFE_PATH); the git guard
  // looks at the real folder the files land in, whatever symlinks lead there
  assertUsableDir(outDir, OUT_DIR_HINT, `a folder on the way to ${outDir}`);
  if (!request.allowGit) assertKeyPathOutsideGit(paths.key);
  return { kind: request.kind, name, sans, keyType, days, outDir, paths, p12 };
}

function leafKeyUsage(keyType: KeyType, kind: CertificateKind): KeyUsage[] {
  // RSA key exchange (TLS 1.2 RSA suites) needs keyEncipherment on RSA server keys
  return keyType.startsWith('rsa') && kind === 'server'
    ? ['digitalSignature', 'keyEncipherment']
    : ['digitalSignature'];
}

/**
 * CN=NAME, except where OpenSSL would read a dotted CN as a host name and reject it against the name
 * constraints (it does so when the certificate has no DNS SAN): then the name goes into OU instead.
 */
function leafNameAttribute(ca: IssuingCa, plan: LeafPlan): NameAttribute {
  const hasDnsSan = plan.sans.some((s) => s.type === 'dns');
  const dnsLike = plan.name.includes('.');
  if (hasDnsSan || !dnsLike || checkPermitted({ type: 'dns', value: plan.name.toLowerCase() }, ca.permitted) === null) {
    return { type: 'CN', value: plan.name };
  }
  return { type: 'OU', value: plan.name };
}

/** What signing a leaf needs to know (`mcpki sign` builds one from a CSR). */
export type LeafPlan = Pick<Plan, 'kind' | 'name' | 'sans' | 'keyType' | 'days'>;

export interface SignedLeaf {
  der: Buffer;
  serial: Buffer;
  subject: NameAttribute[];
  notBefore: Date;
  notAfter: Date;
}

/** Whole seconds: certificate times carry no fractions. */
function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

export function signLeaf(ca: IssuingCa, plan: LeafPlan, key: Pick<EncodedKey, 'spki'>, now: Date): SignedLeaf {
  const { spki } = key;
  const notBefore = wholeSeconds(now.getTime() - BACKDATE_MS);
  const notAfter = wholeSeconds(Math.min(notBefore.getTime() + plan.days * DAY, new Date(ca.cert.validTo).getTime()));
  const extensions = [
    basicConstraints(false),
    keyUsage(leafKeyUsage(plan.keyType, plan.kind)),
    extKeyUsage([plan.kind === 'server' ? OIDS.serverAuth : OIDS.clientAuth]),
    subjectKeyIdentifier(keyIdentifier(spki)),
    authorityKeyIdentifier(ca.keyId),
  ];
  if (plan.sans.length > 0) extensions.push(subjectAltName(plan.sans));
  const serial = randomSerial();
  const subject: NameAttribute[] = [{ type: 'O', value: 'mcpki development certificate' }, leafNameAttribute(ca, plan)];
  const der = signCertificate(
    { serial, issuer: ca.subject, subject: encodeName(subject), notBefore, notAfter, spki, extensions },
    signatureAlgorithmFor(ca.key),
  );
  return { der, serial, subject, notBefore, notAfter };
}

function filesFor(ca: IssuingCa, plan: Plan, key: EncodedKey, { der }: SignedLeaf): FileToWrite[] {
  const certPem = toPem('CERTIFICATE', der);
  const files: FileToWrite[] = [
    { path: plan.paths.key, data: key.privatePem, mode: 0o600 },
    { path: plan.paths.cert, data: certPem, mode: 0o644 },
    { path: plan.paths.fullchain, data: certPem + ca.pem, mode: 0o644 },
    { path: plan.paths.ca, data: ca.rootPem, mode: 0o644 },
  ];
  if (plan.p12 && plan.paths.p12) {
    const p12 = encodePkcs12({
      key: readPrivateKey(key.privatePem),
      certificates: [der, ca.der],
      password: plan.p12.password,
      friendlyName: plan.name,
      legacy: plan.p12.legacy,
    });
    files.push({ path: plan.paths.p12, data: p12, mode: 0o600 });
  }
  return files;
}

/** The inventory record, from what was signed (no need to parse the certificate back). */
function recordOf(ca: IssuingCa, plan: Plan, signed: SignedLeaf): NewCertificate {
  return {
    name: plan.name,
    kind: plan.kind,
    serial: signed.serial.toString('hex').toUpperCase(),
    subject: signed.subject.map((a) => `${a.type}=${a.value}`).join(', '),
    sans: plan.sans,
    issuer: 'local',
    issuerSerial: ca.cert.serialNumber.toUpperCase(),
    profile: null,
    keyType: plan.keyType,
    notBefore: signed.notBefore.toISOString(),
    notAfter: signed.notAfter.toISOString(),
    fingerprint: fingerprintOf(signed.der),
    pem: toPem('CERTIFICATE', signed.der),
    paths: plan.paths,
  };
}

/** SHA-256, upper-case hex with colons, as X509Certificate.fingerprint256 and openssl print it. */
export function fingerprintOf(der: Buffer): string {
  return createHash('sha256')
    .update(der)
    .digest('hex')
    .toUpperCase()
    .replace(/(..)(?!$)/g, '$1:');
}

function recordIssued(context: Context, plan: Plan, record: NewCertificate): CertificateRecord {
  const store = context.store();
  const saved = store.addCertificate(record);
  store.addEvent({
    type: 'certificate.issued',
    name: plan.name,
    serial: record.serial,
    detail: {
      kind: plan.kind,
      sans: plan.sans.map((s) => s.value),
      keyType: plan.keyType,
      notAfter: record.notAfter,
      paths: plan.paths,
    },
  });
  if (plan.paths.p12)
    store.addEvent({
      type: 'certificate.exported',
      name: plan.name,
      serial: record.serial,
      detail: { format: plan.p12?.legacy ? 'pkcs12-legacy' : 'pkcs12', path: plan.paths.p12 },
    });
  return saved;
}

/**
 * Creates the output folders (0700, checked like every folder mcpki writes in), runs `write`, and removes
 * the folders it created when `write` fails: a failed issue leaves no empty HOME/certs/NAME behind.
 */
function withOutDirs<T>(dirs: readonly string[], write: () => T): T {
  const created: string[] = [];
  try {
    for (const dir of dirs) created.push(...ensurePrivateDir(dir, OUT_DIR_HINT));
    return write();
  } catch (error) {
    for (const dir of created.reverse()) {
      try {
        rmdirSync(dir);
      } catch {
        // not empty: something else lives there now
      }
    }
    throw error;
  }
}

/** Issues one certificate signed by the intermediate, writes its files and records it. */
export function issueCertificate(context: Context, request: IssueRequest): IssuedCertificate {
  const ca = loadIssuingCa(context);
  const plan = planIssue(context, ca, request);
  const store = context.store(); // a broken inventory fails here, before anything is written
  const key = encodeKey(generateKey(plan.keyType));
  const der = signLeaf(ca, plan, key, context.now());
  const files = filesFor(ca, plan, key, der);
  // Files are renamed into place while the inventory's write lock is held: when two processes issue the
  // same name, the files on disk belong to the record committed last, and a failed write records nothing.
  const certificate = withOutDirs([plan.outDir], () =>
    store.transaction(() => {
      const saved = recordIssued(context, plan, recordOf(ca, plan, der));
      // temp files of a killed process are removed (those of a live one, e.g. another home, are not)
      removeStaleTemps(plan.outDir);
      writeFilesAtomic(files);
      return saved;
    }),
  );
  return { certificate, paths: plan.paths };
}

/**
 * Many certificates in one process (fleets, test fixtures): every request is validated before the first
 * is signed; keys are generated on the thread pool; all records are written in one transaction.
 */
export async function issueBatch(context: Context, requests: readonly IssueRequest[]): Promise<IssuedCertificate[]> {
  const ca = loadIssuingCa(context);
  const plans = requests.map((request, i) => {
    try {
      return planIssue(context, ca, request);
    } catch (error) {
      if (error instanceof McpkiError)
        throw new McpkiError(
          error.code,
          `request ${i + 1} (${request.name}): ${error.message}`,
          error.fix ?? error.hint,
          { cause: error },
        );
      throw error;
    }
  });
  const seen = new Set<string>();
  for (const plan of plans) {
    if (seen.has(plan.paths.key))
      throw new McpkiError(
        'INVALID_INPUT',
        `two requests write ${plan.paths.key}`,
        fix('give each certificate its own name or {--out DIR}'),
      );
    seen.add(plan.paths.key);
  }
  const store = context.store();
  const now = context.now();
  const keys = await Promise.all(plans.map((plan) => generateEncodedKeyAsync(plan.keyType)));
  const signed = plans.map((plan, i) => signLeaf(ca, plan, keys[i]!, now));
  // certificates sharing an --out folder share one ca.crt
  const files = [
    ...new Map(
      plans.flatMap((plan, i) => filesFor(ca, plan, keys[i]!, signed[i]!)).map((file) => [file.path, file]),
    ).values(),
  ];
  const outDirs = [...new Set(plans.map((p) => p.outDir))];
  const records = withOutDirs(outDirs, () =>
    store.transaction(() => {
      const saved = plans.map((plan, i) => recordIssued(context, plan, recordOf(ca, plan, signed[i]!)));
      for (const dir of outDirs) removeStaleTemps(dir);
      writeManyFilesAtomic(files);
      return saved;
    }),
  );
  return records.map((certificate, i) => ({ certificate, paths: plans[i]!.paths }));
}
