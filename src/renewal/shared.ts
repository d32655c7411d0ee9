// Certificates shared by several hosts through one PostgreSQL inventory (issue 12): the same name and issuer
// declared in each host's mcpki.yaml, each with its own targets. One host at a time renews (the store's
// per-certificate advisory lock, held around the decision and the renewal, released when that host's session
// ends); after taking it the inventory is read again, and a newer certificate another host renewed meanwhile is
// deployed instead of renewed again. The private key goes to the other hosts sealed in the inventory:
// AES-256-GCM under a key derived (HKDF-SHA256) from the issuing intermediate's private key, which every host of
// the fleet holds in its home (the same CA files), with the name and serial as HKDF info and additional data.
// A stolen database therefore reveals no key, and a row moved to another name or serial does not open.
// On SQLite (one home, one machine) none of this runs: the renewal is the plain one.
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { Context } from '../context.js';
import type { Material } from '../deploy/types.js';
import { McpkiError } from '../errors.js';
import { INPUT_LIMITS, readInputText } from '../fs/read.js';
import { loadIssuingCa } from '../pki/ca-files.js';
import { fromPem, toPem } from '../pki/der.js';
import { readPrivateKey } from '../pki/keys.js';
import type { CertificateRecord } from '../store/store.js';

const SALT = Buffer.from('mcpki shared certificate key v1');

/** What is sealed: the key, and the chain it is deployed with (so nothing deployed comes unauthenticated). */
interface SealedContent {
  v: 1;
  keyPem: string;
  chainPem: string;
  /** SHA-256 of the leaf's DER, hex: the certificate the key belongs to */
  leaf: string;
}

function label(name: string, serial: string): Buffer {
  return Buffer.from(`shared-key ${name} ${serial}`);
}

function sealingKey(intermediateKey: KeyObject, name: string, serial: string): Buffer {
  const ikm = intermediateKey.export({ type: 'pkcs8', format: 'der' });
  return Buffer.from(hkdfSync('sha256', ikm, SALT, label(name, serial), 32));
}

export function sealSharedKey(
  intermediateKey: KeyObject,
  name: string,
  serial: string,
  content: SealedContent,
): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(intermediateKey, name, serial), iv);
  cipher.setAAD(label(name, serial));
  const sealed = Buffer.concat([cipher.update(JSON.stringify(content), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString('base64url');
}

export function openSharedKey(intermediateKey: KeyObject, name: string, serial: string, sealed: string): SealedContent {
  const bytes = Buffer.from(sealed, 'base64url');
  if (bytes.length < 12 + 16 + 1) throw new Error('sealed key too short');
  const decipher = createDecipheriv('aes-256-gcm', sealingKey(intermediateKey, name, serial), bytes.subarray(0, 12));
  decipher.setAAD(label(name, serial));
  decipher.setAuthTag(bytes.subarray(bytes.length - 16));
  const text = Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]).toString();
  const content = JSON.parse(text) as SealedContent;
  if (content.v !== 1 || typeof content.keyPem !== 'string' || typeof content.chainPem !== 'string')
    throw new Error('unknown sealed content');
  return content;
}

function leafHash(pem: string): string {
  const der = fromPem(pem, 'CERTIFICATE')[0];
  if (!der) throw new Error('no certificate');
  return createHash('sha256').update(der).digest('hex');
}

/** Whether certificates of this home are shared with other hosts: the inventory is PostgreSQL. */
export function sharesInventory(context: Context): boolean {
  return context.store().dialect === 'postgres';
}

/** The intermediate key with this serial: the current one, or a retired one kept in ca/retired/. */
function intermediateKeyFor(context: Context, serial: string): KeyObject | undefined {
  const ca = loadIssuingCa(context);
  if (ca.cert.serialNumber.toUpperCase() === serial) return ca.key;
  const path = join(context.layout.retiredDir, `intermediate-${serial}.key`);
  if (!existsSync(path)) return undefined;
  return readPrivateKey(readInputText(path, { what: 'the retired intermediate key', maxBytes: INPUT_LIMITS.pem }));
}

/** A path inside this home's certificate folder (never another home's, nor a file someone else put there). */
function inOwnCertsDir(context: Context, path: string | undefined): path is string {
  if (!path) return false;
  const dir = resolve(context.layout.certsDir) + sep;
  return resolve(path).startsWith(dir);
}

/**
 * Seals the key of a certificate this host just issued (its files are in this home) into the inventory, for
 * the other hosts that declare the same certificate. Superseded certificates' sealed keys are dropped.
 */
export function sealIssuedKey(context: Context, record: CertificateRecord): void {
  // a home without a CA (an ACME-only host) has nothing to seal with: it shares no key, and a host that needs
  // one is told to give every host the CA files (sharedMaterial)
  if (!hasCa(context)) return;
  const paths = record.paths as { key?: string; fullchain?: string };
  if (!inOwnCertsDir(context, paths.key) || !inOwnCertsDir(context, paths.fullchain)) {
    throw new McpkiError(
      'NOT_FOUND',
      `the files of the new certificate ${record.name} (${record.serial}) are not in ${context.layout.certsDir}`,
      `renew it again: mcpki renew --force ${record.name}`,
    );
  }
  let ca;
  try {
    ca = loadIssuingCa(context);
  } catch (error) {
    if (!(error instanceof McpkiError)) throw error;
    throw new McpkiError(
      error.code,
      `cannot share the key of ${record.name} with the other hosts of the inventory: ${error.message}`,
      `every host that shares a PostgreSQL inventory holds the same CA files (ca/ of the first home, copied 0600): the key is sealed with the intermediate's`,
      { cause: error },
    );
  }
  const keyPem = readInputText(paths.key, { what: `the key of ${record.name}`, maxBytes: INPUT_LIMITS.pem });
  const fullchain = readInputText(paths.fullchain, { what: `the chain of ${record.name}`, maxBytes: INPUT_LIMITS.pem });
  const chainPem = fromPem(fullchain, 'CERTIFICATE')
    .slice(1)
    .map((der) => toPem('CERTIFICATE', der))
    .join('');
  const sealedBy = ca.cert.serialNumber.toUpperCase();
  const sealed = sealSharedKey(ca.key, record.name, record.serial, {
    v: 1,
    keyPem,
    chainPem,
    leaf: leafHash(record.pem),
  });
  const store = context.store();
  store.transaction(() => {
    store.sharedKeys().put({ serial: record.serial, name: record.name, sealed, sealedBy });
    store.sharedKeys().prune(record.name, [record.serial]);
  });
}

/** The home holds the intermediate key (a CA), which seals and opens shared keys. */
function hasCa(context: Context): boolean {
  return existsSync(context.layout.intermediateKey);
}

/** Whether the inventory holds the sealed key of this certificate (so any host can deploy it). */
export function hasSharedKey(context: Context, record: CertificateRecord): boolean {
  return context.store().sharedKeys().get(record.serial) !== undefined;
}

/**
 * What a host deploys of a certificate in a shared inventory: the certificate from the inventory, with the key
 * and chain opened from their sealed form (checked: the key belongs to that very certificate). A certificate
 * issued by this home before it shared its inventory has no sealed key: its files in this home are used.
 * Returns undefined for that case, so the caller reads the home's files as before.
 */
export function sharedMaterial(context: Context, record: CertificateRecord): Material | undefined {
  const row = context.store().sharedKeys().get(record.serial);
  if (!row) {
    const paths = record.paths as { key?: string; fullchain?: string };
    if (inOwnCertsDir(context, paths.key) && inOwnCertsDir(context, paths.fullchain)) return undefined;
    throw new McpkiError(
      'NOT_FOUND',
      `the key of certificate ${record.name} (${record.serial}) is not in the shared inventory: the host that issued it did not seal it there`,
      hasCa(context)
        ? `renew it on this host: mcpki renew --force ${record.name}`
        : `give every host that shares the inventory the same CA files (copy ca/ of the first home to ${context.layout.caDir}, 0600): keys are shared sealed with the intermediate's key`,
    );
  }
  if (!hasCa(context)) {
    throw new McpkiError(
      'CA_MISSING',
      `the key of certificate ${record.name} is shared sealed with the intermediate CA key, which this home does not have (${context.layout.intermediateKey})`,
      `give every host that shares the inventory the same CA files (copy ca/ of the first home to ${context.layout.caDir}, 0600)`,
    );
  }
  const key = intermediateKeyFor(context, row.sealedBy);
  if (!key) {
    throw new McpkiError(
      'CA_CORRUPT',
      `the key of certificate ${record.name} was sealed by intermediate ${row.sealedBy}, which this home does not have (${context.layout.intermediateKey}, ${context.layout.retiredDir})`,
      'give every host that shares the inventory the same CA files (copy ca/ from the host that rotated the intermediate)',
    );
  }
  let content: SealedContent;
  try {
    content = openSharedKey(key, record.name, record.serial, row.sealed);
  } catch (error) {
    throw new McpkiError(
      'CA_CORRUPT',
      `the sealed key of certificate ${record.name} (${record.serial}) does not open with intermediate ${row.sealedBy}'s key`,
      `the inventory row was altered or the CA files differ between hosts; renew it: mcpki renew --force ${record.name}`,
      { cause: error },
    );
  }
  let matches = false;
  try {
    matches =
      content.leaf === leafHash(record.pem) &&
      new X509Certificate(record.pem).checkPrivateKey(readPrivateKey(content.keyPem));
  } catch {
    matches = false;
  }
  if (!matches) {
    throw new McpkiError(
      'CA_CORRUPT',
      `the sealed key of certificate ${record.name} (${record.serial}) does not belong to the certificate on record`,
      `the inventory was altered; renew it: mcpki renew --force ${record.name}`,
    );
  }
  const leafDer = fromPem(record.pem, 'CERTIFICATE')[0]!;
  return {
    name: record.name,
    serial: record.serial,
    certPem: toPem('CERTIFICATE', leafDer),
    chainPem: content.chainPem,
    keyPem: content.keyPem,
  };
}

export interface SharedRenewal {
  /** the certificate to deploy: the one this host issued, another host's newer one, or the one planned with */
  record: CertificateRecord | undefined;
  /** this host issued it */
  renewed: boolean;
  /** another host holds the lock (renewing it now): nothing to deploy yet, checked again soon (it is still due) */
  busy: boolean;
}

/** How long a host waits for the host that is sealing the key of a certificate it just recorded. */
const SEAL_WAIT_MS = 30_000;

async function waitForRenewalLock(context: Context, name: string): Promise<() => void> {
  const store = context.store();
  const deadline = Date.now() + SEAL_WAIT_MS;
  for (;;) {
    const release = store.tryRenewalLock(name);
    if (release) return release;
    if (Date.now() >= deadline)
      throw new McpkiError(
        'STORE_BUSY',
        `another host has held the renewal lock of ${name} for over ${SEAL_WAIT_MS / 1000} s while its newest certificate has no sealed key yet`,
        'it is checked again at the next run; if it persists, look for a hung mcpki serve or apply on the other hosts',
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Renews a due certificate once across every host that shares the inventory, and makes sure what a host deploys
 * has its key in the inventory. `planned` is the record the plan was made with, `due` the plan's verdict,
 * `stillDue` the policy on a newer record. On SQLite this is `issue()` when due.
 *
 * - due: the renewal lock, without waiting (a host that holds it is renewing: `busy`); under it the inventory
 *   is read again, and a newer certificate with its sealed key that is not due is taken instead of renewing.
 * - not due, but the certificate has no sealed key (and is not this home's own): its issuer is between
 *   recording it and sealing its key, or died there. Wait for the lock; then either the key is there, or this
 *   host renews (the key died with the other host).
 */
export async function renewOnce(
  context: Context,
  name: string,
  planned: CertificateRecord | undefined,
  due: boolean,
  stillDue: (fresh: CertificateRecord) => boolean,
  issue: () => Promise<CertificateRecord>,
): Promise<SharedRenewal> {
  if (!sharesInventory(context)) {
    return due
      ? { record: await issue(), renewed: true, busy: false }
      : { record: planned, renewed: false, busy: false };
  }
  // without a CA this home cannot open a sealed key, nor seal one: renewing would not help (sharedMaterial says why)
  if (!due && (!planned || deployableHere(context, planned) || !hasCa(context)))
    return { record: planned, renewed: false, busy: false };
  const store = context.store();
  let release: (() => void) | undefined;
  if (due) {
    release = store.tryRenewalLock(name);
    if (!release) return { record: planned, renewed: false, busy: true };
  } else {
    release = await waitForRenewalLock(context, name);
  }
  try {
    // under the lock: another host may have renewed it since this host planned
    const fresh = store.findCertificate(name);
    if (
      fresh &&
      fresh.status === 'valid' &&
      deployableHere(context, fresh) &&
      (!due || fresh.id !== planned?.id) &&
      !stillDue(fresh)
    )
      return { record: fresh, renewed: false, busy: false };
    const record = await issue();
    sealIssuedKey(context, record);
    return { record, renewed: true, busy: false };
  } finally {
    release();
  }
}

/** The key of this certificate is sealed in the inventory, or in this home's own files. */
function deployableHere(context: Context, record: CertificateRecord): boolean {
  if (hasSharedKey(context, record)) return true;
  const paths = record.paths as { key?: string; fullchain?: string };
  return inOwnCertsDir(context, paths.key) && inOwnCertsDir(context, paths.fullchain);
}

/** The wait before the service checks again after its inventory could not be reached: 2 s, doubling, at most 5 min. */
export function storeRetryDelayMs(attempt: number): number {
  return Math.min(300_000, 2000 * 2 ** Math.min(Math.max(attempt, 1) - 1, 20));
}

/**
 * A service check that, when the inventory cannot be reached (PostgreSQL restarted, the network cut), is tried
 * again with backoff instead of at the next scheduled time (an hour later); the connection is made anew at the
 * next attempt, so the service recovers by itself when the database returns. Other failures are rethrown.
 */
export function retryingStoreOutages<A extends unknown[], R>(
  check: (...args: A) => Promise<R>,
  options: { now: () => Date; onRetry?: (error: McpkiError, retryAt: Date, attempt: number) => void },
): (...args: A) => Promise<R | { nextWakeUp: Date }> {
  let attempt = 0;
  return async (...args: A) => {
    try {
      const result = await check(...args);
      attempt = 0;
      return result;
    } catch (error) {
      if (!(error instanceof McpkiError) || error.code !== 'STORE_UNAVAILABLE') throw error;
      attempt++;
      const retryAt = new Date(options.now().getTime() + storeRetryDelayMs(attempt));
      options.onRetry?.(error, retryAt, attempt);
      return { nextWakeUp: retryAt };
    }
  };
}
