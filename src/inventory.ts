// Read-side of the inventory: what `list`, `show` and `events` report.
import type { Context } from './context.js';
import { McpkiError } from './errors.js';
import { X509Certificate } from 'node:crypto';
import type { AuthorityRecord, CertificateRecord, EventRecord, Store } from './store/store.js';

export type CertificateState = 'valid' | 'expired' | 'not-yet-valid' | 'superseded' | 'revoked' | 'orphaned';

export interface CertificateView extends CertificateRecord {
  state: CertificateState;
  /** seconds until notAfter (negative when expired) */
  secondsLeft: number;
  /** fraction of the lifetime left, 0..1 */
  fractionLeft: number;
  /**
   * Client certificates: the identity an mTLS server sees (the server templates' rule): the SPIFFE ID or
   * other first SAN URI, else the first SAN e-mail, else the subject's common name. Null for server certificates.
   */
  identity: string | null;
  /** what the renewal service last decided (certificates declared in mcpki.yaml), else null */
  renewal: { nextCheck: string | null; reason: string | null; failures: number; lastError: string | null } | null;
}

/** Answers whether an issuer serial is an orphaned intermediate; a Set of serials works too. */
export interface OrphanedIssuers {
  has(issuerSerial: string): boolean;
}

/**
 * Intermediates that do not chain to the active root (the CA was replaced with init --force): what they issued
 * is no longer trusted anywhere, so it is "orphaned", never "valid". Asked lazily, per serial: the active
 * intermediate is never orphaned (init makes it together with the active root, rotate-intermediate signs it
 * with the active root's key, and init --force retires both together), so the common case reads no
 * certificate and loads no crypto; a retired intermediate's certificate is checked against the active root's
 * once, when a record it issued is shown.
 */
function orphanedIssuers(store: Store | undefined): OrphanedIssuers {
  let authorities: AuthorityRecord[] | undefined;
  let rootCert: X509Certificate | undefined;
  const known = new Map<string, boolean>();
  return {
    has(serial) {
      let orphaned = known.get(serial);
      if (orphaned !== undefined) return orphaned;
      authorities ??= store?.listAuthorities() ?? [];
      const root = authorities.find((a) => a.role === 'root' && a.status === 'active');
      const authority = authorities.find((a) => a.role === 'intermediate' && a.serial === serial);
      if (!root || !authority) orphaned = false;
      else if (authority.status === 'active') orphaned = false;
      else {
        let chains = false;
        try {
          rootCert ??= new X509Certificate(root.pem);
          const cert = new X509Certificate(authority.pem);
          chains = cert.checkIssued(rootCert) && cert.verify(rootCert.publicKey);
        } catch {
          chains = false;
        }
        orphaned = !chains;
      }
      known.set(serial, orphaned);
      return orphaned;
    },
  };
}

function identityOf(record: CertificateRecord): string | null {
  if (record.kind !== 'client') return null;
  const san = record.sans.find((s) => s.type === 'uri') ?? record.sans.find((s) => s.type === 'email');
  return san?.value ?? /(?:^|, )CN=([^,]*)/.exec(record.subject)?.[1] ?? null;
}

export function viewOf(record: CertificateRecord, now: Date, orphaned?: OrphanedIssuers): CertificateView {
  const notBefore = Date.parse(record.notBefore);
  const notAfter = Date.parse(record.notAfter);
  const t = now.getTime();
  let state: CertificateState = record.status;
  if (record.status === 'valid' && record.issuerSerial !== null && orphaned?.has(record.issuerSerial))
    state = 'orphaned';
  else if (record.status === 'valid' && t > notAfter) state = 'expired';
  else if (record.status === 'valid' && t < notBefore) state = 'not-yet-valid';
  const lifetime = Math.max(1, notAfter - notBefore);
  return {
    ...record,
    state,
    secondsLeft: Math.floor((notAfter - t) / 1000),
    fractionLeft: Math.min(1, Math.max(0, (notAfter - t) / lifetime)),
    identity: identityOf(record),
    renewal: null,
  };
}

export interface ListOptions {
  /** only certificates whose notAfter is within this many milliseconds */
  expiringWithinMs?: number;
  /** every certificate ever issued, not just the newest per name */
  all?: boolean;
}

export function listCertificates(context: Context, options: ListOptions = {}): CertificateView[] {
  const now = context.now();
  const expiringBefore =
    options.expiringWithinMs === undefined
      ? undefined
      : new Date(now.getTime() + options.expiringWithinMs).toISOString();
  const store = context.existingStore();
  const states = new Map((store?.listRenewalStates() ?? []).map((state) => [state.name, state]));
  const orphaned = orphanedIssuers(store);
  return (store?.listCertificates({ all: options.all, expiringBefore }) ?? []).map((record) => {
    const view = viewOf(record, now, orphaned);
    const state = states.get(record.name);
    return state && record.status === 'valid'
      ? {
          ...view,
          renewal: {
            nextCheck: state.nextCheck,
            reason: state.reason,
            failures: state.failures,
            lastError: state.lastError,
          },
        }
      : view;
  });
}

export function findCertificate(context: Context, nameOrSerial: string): CertificateView {
  const store = context.existingStore();
  const record = store?.findCertificate(nameOrSerial);
  if (!record) {
    throw new McpkiError(
      'NOT_FOUND',
      `no certificate named or with serial "${nameOrSerial}"`,
      'see "mcpki list --all" for names and serials',
    );
  }
  return viewOf(record, context.now(), orphanedIssuers(store));
}

export function listEvents(
  context: Context,
  options: { limit?: number; type?: string; name?: string } = {},
): EventRecord[] {
  return context.existingStore()?.listEvents(options) ?? [];
}
