// Leaf issuance: validate everything first (names, constraints, key type, days, output paths, the git guard),
// then generate, sign, write atomically and record. Nothing is signed or written when any check fails.
import { lstatSync, rmdirSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { Context } from '../context.js';
import { removeStaleTemps, writeFilesAtomic, type FileToWrite } from '../fs/atomic.js';
import { assertKeyPathOutsideGit, findWorkTree } from '../fs/git.js';
import { McpkiError, fix } from '../errors.js';
import { assertUsableDir, ensurePrivateDir } from '../home.js';
import type { CertificateKind, CertificatePaths, CertificateRecord, NewCertificate, NewEvent } from '../store/store.js';
import type { ChunkCa, ChunkPlan, MadeLeaf } from './batch-leaf.js';
import { BatchThreads, issueChunks, type BatchEntry } from './batch-issue.js';
import { loadIssuingCa, type IssuingCa } from './ca.js';
import { assertPermitted } from './constraints.js';
import { toPem } from './der.js';
import {
  DEFAULT_KEY_TYPE,
  generateEncodedKey,
  parseKeyType,
  readPrivateKey,
  type EncodedKey,
  type KeyType,
} from './keys.js';
import { fingerprintOf, signLeaf, type SignedLeaf } from './leaf.js';
import { assertOneSpiffeId, classifySan, classifySans, validateCertName, validateSpiffeId, type San } from './names.js';
import { emptyPkcs12Password, encodePkcs12 } from './pkcs12.js';
import { DEFAULT_DAYS, MAX_DAYS } from './limits.js';

export { DEFAULT_DAYS, MAX_DAYS } from './limits.js';
export { fingerprintOf, signLeaf, type LeafPlan, type SignedLeaf } from './leaf.js';
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

/**
 * What a batch has already checked about its output folders: each folder is walked once (assertUsableDir),
 * and whether its real path lies in a git work tree is found once; a key is then checked with git only there
 * (or when the key's own path is a symlink, which may lead anywhere).
 */
interface FolderChecks {
  usable: Set<string>;
  inWorkTree: Map<string, boolean>;
}

function assertKeyOutsideGit(plan: Pick<Plan, 'outDir' | 'paths'>, checks: FolderChecks | undefined): void {
  if (!checks) return assertKeyPathOutsideGit(plan.paths.key);
  if (lstatSync(plan.paths.key, { throwIfNoEntry: false })?.isSymbolicLink())
    return assertKeyPathOutsideGit(plan.paths.key);
  let inWorkTree = checks.inWorkTree.get(plan.outDir);
  if (inWorkTree === undefined) {
    inWorkTree = findWorkTree(plan.paths.key) !== undefined;
    checks.inWorkTree.set(plan.outDir, inWorkTree);
  }
  if (inWorkTree) assertKeyPathOutsideGit(plan.paths.key);
}

function planIssue(context: Context, ca: IssuingCa, request: IssueRequest, checks?: FolderChecks): Plan {
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
  // what join(outDir, FILE) gives, without normalizing four times a certificate (a batch plans thousands):
  // outDir is resolved, and a valid name has no separator and no ".."
  const base = outDir.endsWith(sep) ? outDir : outDir + sep;
  const paths: Plan['paths'] = {
    cert: `${base}${name}.crt`,
    key: `${base}${name}.key`,
    fullchain: `${base}${name}.fullchain.pem`,
    ca: `${base}ca.crt`,
  };
  let p12: Plan['p12'];
  if (request.p12 || request.p12Password !== undefined || request.p12Legacy) {
    if (request.p12Password === '') throw emptyPkcs12Password();
    paths.p12 = `${base}${name}.p12`;
    p12 = { password: request.p12Password ?? DEFAULT_P12_PASSWORD, legacy: request.p12Legacy === true };
  }
  // every folder on the way must be ours or root's and writable by no one else (UNSAFE_PATH); the git guard
  // looks at the real folder the files land in, whatever symlinks lead there
  if (!checks?.usable.has(outDir)) {
    assertUsableDir(outDir, OUT_DIR_HINT, `a folder on the way to ${outDir}`);
    checks?.usable.add(outDir);
  }
  if (!request.allowGit) assertKeyOutsideGit({ outDir, paths }, checks);
  return { kind: request.kind, name, sans, keyType, days, outDir, paths, p12 };
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

/** What the inventory records of a signed certificate (no need to parse it back). */
type LeafFacts = Pick<MadeLeaf, 'serial' | 'subject' | 'notBefore' | 'notAfter' | 'fingerprint' | 'pem'>;

function factsOf(signed: SignedLeaf): LeafFacts {
  return {
    serial: signed.serial.toString('hex').toUpperCase(),
    subject: signed.subject.map((a) => `${a.type}=${a.value}`).join(', '),
    notBefore: signed.notBefore.toISOString(),
    notAfter: signed.notAfter.toISOString(),
    fingerprint: fingerprintOf(signed.der),
    pem: toPem('CERTIFICATE', signed.der),
  };
}

/** The inventory record, from what was signed. */
function recordOf(ca: IssuingCa, plan: Plan, leaf: LeafFacts): NewCertificate {
  return {
    name: plan.name,
    kind: plan.kind,
    serial: leaf.serial,
    subject: leaf.subject,
    sans: plan.sans,
    issuer: 'local',
    issuerSerial: ca.cert.serialNumber.toUpperCase(),
    profile: null,
    keyType: plan.keyType,
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    fingerprint: leaf.fingerprint,
    pem: leaf.pem,
    paths: plan.paths,
  };
}

/** The events that go with a new certificate's record. */
function eventsOf(plan: Plan, record: NewCertificate): NewEvent[] {
  const events: NewEvent[] = [
    {
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
    },
  ];
  if (plan.paths.p12)
    events.push({
      type: 'certificate.exported',
      name: plan.name,
      serial: record.serial,
      detail: { format: plan.p12?.legacy ? 'pkcs12-legacy' : 'pkcs12', path: plan.paths.p12 },
    });
  return events;
}

function recordIssued(context: Context, plan: Plan, record: NewCertificate): CertificateRecord {
  const store = context.store();
  const saved = store.addCertificate(record);
  for (const event of eventsOf(plan, record)) store.addEvent(event);
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
    removeCreated(created);
    throw error;
  }
}

/** withOutDirs for an asynchronous `write`. */
async function withOutDirsAsync<T>(dirs: readonly string[], write: () => Promise<T>): Promise<T> {
  const created: string[] = [];
  try {
    for (const dir of dirs) created.push(...ensurePrivateDir(dir, OUT_DIR_HINT));
    return await write();
  } catch (error) {
    removeCreated(created);
    throw error;
  }
}

function removeCreated(created: string[]): void {
  for (const dir of created.reverse()) {
    try {
      rmdirSync(dir);
    } catch {
      // not empty: something else lives there now
    }
  }
}

/** Issues one certificate signed by the intermediate, writes its files and records it. */
export function issueCertificate(context: Context, request: IssueRequest): IssuedCertificate {
  const ca = loadIssuingCa(context);
  const plan = planIssue(context, ca, request);
  const store = context.store(); // a broken inventory fails here, before anything is written
  // EC keys through ECDH and our own DER (keys.ts): OpenSSL 3's key encoders cost more than the key itself
  const key = generateEncodedKey(plan.keyType);
  const der = signLeaf(ca, plan, key, context.now());
  const files = filesFor(ca, plan, key, der);
  // Files are renamed into place while the inventory's write lock is held: when two processes issue the
  // same name, the files on disk belong to the record committed last, and a failed write records nothing.
  const certificate = withOutDirs([plan.outDir], () =>
    store.transaction(() => {
      const saved = recordIssued(context, plan, recordOf(ca, plan, factsOf(der)));
      // temp files of a killed process are removed (those of a live one, e.g. another home, are not)
      removeStaleTemps(plan.outDir);
      writeFilesAtomic(files);
      return saved;
    }),
  );
  return { certificate, paths: plan.paths };
}

/** A plan as a worker takes it; `withCa` when this certificate writes its folder's ca.crt. */
function chunkPlanOf(plan: Plan, withCa: boolean): ChunkPlan {
  const { kind, name, sans, keyType, days, p12 } = plan;
  const { cert, key, fullchain, p12: p12Path, ca } = plan.paths;
  return {
    kind,
    name,
    sans,
    keyType,
    days,
    paths: { cert, key, fullchain, p12: p12Path, ca: withCa ? ca : undefined },
    p12,
  };
}

/**
 * Many certificates in one process (fleets, test fixtures). Every request is validated before the first is
 * signed (the worker threads start meanwhile), then issueChunks (batch-issue.ts) signs, writes, syncs and
 * records them chunk by chunk. The CA is read once.
 */
export async function issueBatch(context: Context, requests: readonly IssueRequest[]): Promise<IssuedCertificate[]> {
  const ca = loadIssuingCa(context);
  const chunkCa: ChunkCa = {
    signer: {
      key: ca.key,
      subject: ca.subject,
      keyId: ca.keyId,
      permitted: ca.permitted,
      cert: { validTo: ca.cert.validTo },
    },
    pem: ca.pem,
    der: ca.der,
    rootPem: ca.rootPem,
  };
  const threads = BatchThreads.start(chunkCa, requests.length);
  let started = false;
  try {
    const checks: FolderChecks = { usable: new Set(), inWorkTree: new Map() };
    const plans = requests.map((request, i) => {
      try {
        return planIssue(context, ca, request, checks);
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
    const store = context.store(); // a broken inventory fails here, before anything is written
    const now = context.now().getTime();
    const outDirs = [...new Set(plans.map((p) => p.outDir))];
    // certificates sharing an --out folder share one ca.crt, written by the first of them
    const caWriters = new Set([...new Map(plans.map((plan) => [plan.paths.ca, plan] as const).reverse()).values()]);
    const entries: BatchEntry[] = plans.map((plan) => ({
      plan: chunkPlanOf(plan, caWriters.has(plan)),
      paths: plan.paths,
      record: (leaf) => {
        const certificate = recordOf(ca, plan, leaf);
        return { certificate, events: eventsOf(plan, certificate) };
      },
    }));
    return await withOutDirsAsync(outDirs, async () => {
      // temp files of a killed process are removed (those of a live one, e.g. another home, are not); before
      // the workers write ours, which carry this process's id
      for (const dir of outDirs) removeStaleTemps(dir);
      started = true;
      return issueChunks(threads, store, entries, now);
    });
  } finally {
    if (!started) await threads.close();
  }
}
