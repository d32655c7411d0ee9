// Read-side of the inventory: what `list`, `show` and `events` report.
import type { Context } from './context.js';
import { McpkiError } from './errors.js';
import type { CertificateRecord, EventRecord } from './store/store.js';

export type CertificateState = 'valid' | 'expired' | 'not-yet-valid' | 'superseded' | 'revoked';

export interface CertificateView extends CertificateRecord {
  state: CertificateState;
  /** seconds until notAfter (negative when expired) */
  secondsLeft: number;
  /** fraction of the lifetime left, 0..1 */
  fractionLeft: number;
  /** what the renewal service last decided (certificates declared in mcpki.yaml), else null */
  renewal: { nextCheck: string | null; reason: string | null; failures: number; lastError: string | null } | null;
}

export function viewOf(record: CertificateRecord, now: Date): CertificateView {
  const notBefore = Date.parse(record.notBefore);
  const notAfter = Date.parse(record.notAfter);
  const t = now.getTime();
  let state: CertificateState = record.status;
  if (record.status === 'valid' && t > notAfter) state = 'expired';
  else if (record.status === 'valid' && t < notBefore) state = 'not-yet-valid';
  const lifetime = Math.max(1, notAfter - notBefore);
  return {
    ...record,
    state,
    secondsLeft: Math.floor((notAfter - t) / 1000),
    fractionLeft: Math.min(1, Math.max(0, (notAfter - t) / lifetime)),
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
  const expiringBefore = options.expiringWithinMs === undefined ? undefined : new Date(now.getTime() + options.expiringWithinMs).toISOString();
  const store = context.existingStore();
  const states = new Map((store?.listRenewalStates() ?? []).map((state) => [state.name, state]));
  return (store?.listCertificates({ all: options.all, expiringBefore }) ?? []).map((record) => {
    const view = viewOf(record, now);
    const state = states.get(record.name);
    return state && record.status === 'valid' ? { ...view, renewal: { nextCheck: state.nextCheck, reason: state.reason, failures: state.failures, lastError: state.lastError } } : view;
  });
}

export function findCertificate(context: Context, nameOrSerial: string): CertificateView {
  const record = context.existingStore()?.findCertificate(nameOrSerial);
  if (!record) {
    throw new McpkiError('NOT_FOUND', `no certificate named or with serial "${nameOrSerial}"`, 'see "mcpki list --all" for names and serials');
  }
  return viewOf(record, context.now());
}

export function listEvents(context: Context, options: { limit?: number; type?: string; name?: string } = {}): EventRecord[] {
  return context.existingStore()?.listEvents(options) ?? [];
}
