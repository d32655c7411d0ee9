// ACME Renewal Information (RFC 9773) on the server side: the suggested window of each certificate this server
// issued, `replaces` in newOrder, and `renew-early`, which moves windows to end now so every client renews at its
// next check. A certificate that was revoked, or that was issued by an intermediate that is no longer the
// issuing one (`mcpki ca rotate-intermediate`, e.g. after a key compromise), is due at once as well.
import { X509Certificate } from 'node:crypto';
import type { Context } from '../context.js';
import { McpkiError } from '../errors.js';
import { loadIssuingCa } from '../pki/ca.js';
import type { AcmeState, IssuedCertificate } from './model.js';
import { problem } from './problem.js';

/** How long a client should wait before asking again (RFC 9773 §4.3: Retry-After). */
export const ARI_RETRY_AFTER_SECONDS = 3600;
/** The width of a window moved to now. It ends now, so it is in the past for any client that asks: RFC 9773 §4.2
 * says such a client renews at once, rather than at a random time inside a window still to come. */
export const EARLY_WINDOW_MS = 60_000;

export interface SuggestedWindow {
  start: string;
  end: string;
  /** why the window is what it is */
  reason: 'schedule' | 'renew-early' | 'revoked' | 'intermediate-replaced';
}

const CERT_ID = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/;

/** The normal window: from 2/3 to 3/4 of the certificate's lifetime (RFC 9773 §4.2 leaves it to the CA). */
export function scheduledWindow(notBefore: Date, notAfter: Date): { start: Date; end: Date } {
  const life = notAfter.getTime() - notBefore.getTime();
  return {
    start: new Date(notBefore.getTime() + Math.round((life * 2) / 3)),
    end: new Date(notBefore.getTime() + Math.round((life * 3) / 4)),
  };
}

function nowWindow(now: Date): { start: string; end: string } {
  return { start: new Date(now.getTime() - EARLY_WINDOW_MS).toISOString(), end: now.toISOString() };
}

/** The window of one issued certificate at `now`; `issuingKeyId` is the current intermediate's key identifier. */
export function suggestedWindow(certificate: IssuedCertificate, issuingKeyId: Buffer, now: Date): SuggestedWindow {
  const leaf = new X509Certificate(certificate.chainPem);
  if (certificate.status === 'revoked') return { ...nowWindow(now), reason: 'revoked' };
  const keyId = certificate.ariCertId ? Buffer.from(certificate.ariCertId.split('.')[0]!, 'base64url') : undefined;
  if (keyId && !keyId.equals(issuingKeyId)) return { ...nowWindow(now), reason: 'intermediate-replaced' };
  if (certificate.window) return { ...certificate.window, reason: 'renew-early' };
  const window = scheduledWindow(new Date(leaf.validFrom), new Date(leaf.validTo));
  return { start: window.start.toISOString(), end: window.end.toISOString(), reason: 'schedule' };
}

/** GET /acme/renewal-info/{certID}: the body and the seconds for Retry-After; a problem for unknown ids. */
export function renewalInfoFor(
  context: Context,
  state: AcmeState,
  certId: string,
): { body: { suggestedWindow: { start: string; end: string } }; retryAfter: number; window: SuggestedWindow } {
  if (!CERT_ID.test(certId))
    throw problem(
      'malformed',
      'a renewal-info request names a certificate as base64url(AKI keyIdentifier) "." base64url(serial), RFC 9773 §4.1',
      { status: 400 },
    );
  const certificate = state.findCertificateByAriId(certId);
  if (!certificate)
    throw problem('malformed', `no certificate ${certId.slice(0, 120)} was issued by this server`, { status: 404 });
  const window = suggestedWindow(certificate, loadIssuingCa(context).keyId, context.now());
  return {
    body: { suggestedWindow: { start: window.start, end: window.end } },
    retryAfter: ARI_RETRY_AFTER_SECONDS,
    window,
  };
}

/**
 * newOrder's `replaces` (RFC 9773 §5): the certificate must have been issued by this server to the same account.
 * Returns the replaced certificate's serial, which the order records.
 */
export function checkReplaces(state: AcmeState, accountId: string, certId: string): string {
  const certificate = CERT_ID.test(certId) ? state.findCertificateByAriId(certId) : undefined;
  if (!certificate)
    throw problem('malformed', `"replaces" names ${certId.slice(0, 120)}, which this server did not issue`);
  if (certificate.accountId !== accountId)
    throw problem('unauthorized', `"replaces" names a certificate that another account ordered`);
  return certificate.serial;
}

export interface RenewEarlyResult {
  /** serials of the certificates whose window moved */
  serials: string[];
  window: { start: string; end: string };
}

/**
 * Moves the renewal window of every matching ACME-issued certificate (still valid and unexpired) to now:
 * by serial, and/or issued before a time. With neither, every one.
 */
export function renewEarly(
  context: Context,
  options: { before?: string | Date; serial?: string } = {},
): RenewEarlyResult {
  let before: string | undefined;
  if (options.before !== undefined) {
    const time = options.before instanceof Date ? options.before : new Date(options.before);
    if (
      Number.isNaN(time.getTime()) ||
      (typeof options.before === 'string' && !/^\d{4}-\d{2}-\d{2}/.test(options.before))
    ) {
      throw new McpkiError(
        'USAGE',
        `--before ${JSON.stringify(String(options.before).slice(0, 40))} is not a date`,
        'give an ISO 8601 date or time, e.g. 2026-12-01 or 2026-12-01T12:00:00Z',
      );
    }
    before = time.toISOString();
  }
  let serial: string | undefined;
  if (options.serial !== undefined) {
    serial = options.serial.replace(/:/g, '').toUpperCase();
    if (!/^[0-9A-F]{1,64}$/.test(serial))
      throw new McpkiError(
        'USAGE',
        `--serial ${JSON.stringify(options.serial.slice(0, 80))} is not a hexadecimal serial`,
        'give the serial as "mcpki list --all" shows it',
      );
  }
  const window = nowWindow(context.now());
  const store = context.store();
  const serials = store.transaction(() => {
    const moved = store
      .acmeServer()
      .setRenewalWindows({ ...(serial ? { serial } : {}), ...(before ? { before } : {}) }, window.start, window.end);
    store.addEvent({
      type: 'acme-server.renew-early',
      detail: { ...(serial ? { serial } : {}), ...(before ? { before } : {}), certificates: moved.length, window },
    });
    return moved;
  });
  if (serial && serials.length === 0)
    throw new McpkiError(
      'NOT_FOUND',
      `no valid, unexpired ACME-issued certificate has serial ${serial}`,
      'see the serials with: mcpki list --all',
    );
  return { serials, window };
}
