// `mcpki renew NAME` and `renew --all-issued`: certificates made by `issue` (not declared in mcpki.yaml)
// renewed from what the inventory recorded about them: the same names, kind, key type, lifetime and output
// folder (a new key, as `issue` makes one). --all-issued renews the ones the renewal policy says are due.
import { dirname, join } from 'node:path';
import type { Context } from '../context.js';
import { McpkiError, fix } from '../errors.js';
import { INPUT_LIMITS, readInputFile } from '../fs/read.js';
import { assertSafeDir } from '../fs/safe-path.js';
import {
  DEFAULT_P12_PASSWORD,
  issueCertificate,
  MAX_DAYS,
  type IssuedCertificate,
  type IssueRequest,
} from '../pki/issue.js';
import { openPkcs12 } from '../pki/pkcs12.js';
import type { CertificateRecord, Store } from '../store/store.js';
import { needsRenewal } from './policy.js';

const DAY = 86_400_000;

export interface RenewIssuedOptions {
  /** one certificate, renewed whatever the policy says */
  name?: string;
  /** every issued certificate the policy says is due */
  all?: boolean;
  dryRun?: boolean;
  /** the password of recorded PKCS#12 files (mcpki does not keep it); default: the one the file opens with, "changeit" */
  p12Password?: string;
}

export interface RenewIssuedItem {
  name: string;
  action: 'renewed' | 'due' | 'not-due' | 'skipped' | 'failed';
  reason: string;
  /** the certificate renewed (or, when not renewed, the current one) */
  serial: string;
  notAfter: string;
  renewed?: IssuedCertificate;
  error?: { code: string; message: string; hint?: string };
}

export interface RenewIssuedResult {
  items: RenewIssuedItem[];
  renewed: number;
  failed: number;
}

/** Made by `issue` (or `issue batch`): the local CA, with the four files `issue` writes recorded. */
function madeByIssue(record: CertificateRecord): boolean {
  const p = record.paths;
  return (
    record.issuer === 'local' &&
    !!p.cert &&
    !!p.key &&
    !!p.fullchain &&
    !!p.ca &&
    dirname(p.cert) === dirname(p.key) &&
    p.cert === join(dirname(p.cert), `${record.name}.crt`)
  );
}

/** The lifetime it was issued with, in whole days (the CA's own expiry may have cut it short). */
function daysOf(record: CertificateRecord): number {
  const days = Math.round((Date.parse(record.notAfter) - Date.parse(record.notBefore)) / DAY);
  return Math.min(MAX_DAYS, Math.max(1, days));
}

/**
 * Whether a PKCS#12 file mcpki wrote opens with this password (false for the legacy form, which it cannot read,
 * and for a missing file). Its folder is checked first (nothing is read through a folder or symlink another user
 * controls), and a file that is not a regular file of bounded size is refused, not taken for a wrong password.
 */
function opensWith(path: string, password: string): boolean {
  assertSafeDir(dirname(path), `a folder on the way to ${dirname(path)}`);
  let data: Buffer;
  try {
    data = readInputFile(path, { what: 'PKCS#12 file', maxBytes: INPUT_LIMITS.pem });
  } catch (error) {
    if (((error as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return false;
    throw error;
  }
  try {
    openPkcs12(data, password);
    return true;
  } catch {
    return false;
  }
}

function requestOf(store: Store, record: CertificateRecord, options: RenewIssuedOptions): IssueRequest {
  const request: IssueRequest = {
    kind: record.kind,
    name: record.name,
    sans: record.sans.map((s) => s.value),
    keyType: record.keyType,
    days: daysOf(record),
    outDir: dirname(record.paths.cert!),
    // the key goes where `issue` put it before: a git work tree there was accepted then
    allowGit: true,
  };
  const p12 = record.paths.p12;
  if (p12) {
    const exported = store
      .listEvents({ type: 'certificate.exported', name: record.name, limit: 1000 })
      .filter((e) => e.serial === record.serial)
      .pop();
    const legacy = exported?.detail.format === 'pkcs12-legacy';
    let password = options.p12Password;
    if (password === undefined && !legacy && opensWith(p12, DEFAULT_P12_PASSWORD)) password = DEFAULT_P12_PASSWORD;
    if (password === undefined) {
      throw new McpkiError(
        'PASSPHRASE_MISSING',
        `${record.name} has a PKCS#12 file ${p12} whose password mcpki does not keep`,
        fix('give the password with {--p12-password-file} FILE or MCPKI_P12_PASSWORD'),
      );
    }
    Object.assign(request, { p12: true, p12Password: password, p12Legacy: legacy });
  }
  return request;
}

function failure(error: unknown): RenewIssuedItem['error'] {
  if (error instanceof McpkiError) return { code: error.code, message: error.message, hint: error.hint };
  return { code: 'INTERNAL', message: (error as Error).message ?? String(error) };
}

/**
 * Renews NAME now (whatever the policy says), or with `all` every issued certificate the renewal policy says
 * is due. Certificates declared in mcpki.yaml (renewed by apply), revoked ones (with `all`; renew each by name
 * if wanted) and those not made by `issue` are left alone and reported.
 */
export function renewIssued(context: Context, options: RenewIssuedOptions): RenewIssuedResult {
  if ((options.name === undefined) === !options.all)
    throw new McpkiError(
      'USAGE',
      'give either a certificate NAME or --all-issued',
      'e.g. mcpki renew my-mcp, or mcpki renew --all-issued',
    );
  const store = context.existingStore();
  const declared = new Set(store?.renewalStateNames() ?? []);
  const items: RenewIssuedItem[] = [];
  const renew = (record: CertificateRecord, reason: string): void => {
    const base = { name: record.name, serial: record.serial, notAfter: record.notAfter };
    if (options.dryRun) {
      items.push({ ...base, action: 'due', reason });
      return;
    }
    try {
      const renewed = issueCertificate(context, requestOf(context.store(), record, options));
      context.store().addEvent({
        type: 'certificate.renewed',
        name: record.name,
        serial: renewed.certificate.serial,
        detail: { previous: record.serial, reason },
      });
      items.push({
        name: record.name,
        action: 'renewed',
        reason,
        serial: renewed.certificate.serial,
        notAfter: renewed.certificate.notAfter,
        renewed,
      });
    } catch (error) {
      if (options.name !== undefined) throw error;
      items.push({ ...base, action: 'failed', reason, error: failure(error) });
    }
  };

  if (options.name !== undefined) {
    const record = store?.findCertificate(options.name);
    if (!record || record.name !== options.name) {
      throw new McpkiError(
        'NOT_FOUND',
        `no certificate named "${options.name}"`,
        'see "mcpki list" for names; certificates declared in mcpki.yaml are renewed with "mcpki renew" (no NAME)',
      );
    }
    if (declared.has(record.name)) {
      throw new McpkiError(
        'INVALID_INPUT',
        `${record.name} is declared in mcpki.yaml: apply renews and deploys it`,
        `run: mcpki renew --force ${record.name}`,
      );
    }
    if (!madeByIssue(record)) {
      const how =
        record.issuer !== 'local'
          ? `was issued by ${record.issuer}`
          : 'was not made by "mcpki issue" (its key is not mcpki\'s)';
      throw new McpkiError(
        'INVALID_INPUT',
        `${record.name} ${how}, so "renew NAME" cannot make it again`,
        record.issuer.startsWith('acme:')
          ? 'declare it in mcpki.yaml and run mcpki renew, or run mcpki acme issue again'
          : 'sign a new request with mcpki sign, or issue it again with mcpki issue',
      );
    }
    renew(record, 'asked for by name');
  } else {
    const now = context.now();
    for (const record of store?.listCertificates() ?? []) {
      const base = { name: record.name, serial: record.serial, notAfter: record.notAfter };
      if (!madeByIssue(record)) continue;
      if (declared.has(record.name)) {
        items.push({ ...base, action: 'skipped', reason: 'declared in mcpki.yaml: renewed by apply' });
        continue;
      }
      if (record.status === 'revoked') {
        items.push({
          ...base,
          action: 'skipped',
          reason: `revoked: renew it by name (mcpki renew ${record.name}) if it should have a new certificate`,
        });
        continue;
      }
      const decision = needsRenewal({
        certificate: { notBefore: record.notBefore, notAfter: record.notAfter, status: record.status },
        requestedDays: daysOf(record),
        now,
      });
      if (decision.due) renew(record, decision.reason);
      else items.push({ ...base, action: 'not-due', reason: decision.reason });
    }
  }
  return {
    items,
    renewed: items.filter((i) => i.action === 'renewed').length,
    failed: items.filter((i) => i.action === 'failed').length,
  };
}
