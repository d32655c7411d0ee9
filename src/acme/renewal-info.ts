// ACME Renewal Information (RFC 9773) for certificates in the inventory: fetch the CA's suggested window
// and store it with the time to ask again. Servers without renewalInfo are simply skipped.
import type { Context } from '../context.js';
import { readCaBundle } from './client.js';
import { McpkiError } from '../errors.js';
import { findCertificate } from '../inventory.js';
import type { RenewalInfoRecord } from '../store/store.js';
import { findAccount } from './accounts.js';
import { fetchDirectory, fetchRenewalInfo, nextRenewalInfoCheck, renewalInfoEndpoint } from './ari.js';

export interface RenewalInfoOutcome {
  name: string;
  serial: string;
  /** null when the CA does not offer ARI */
  renewalInfo: RenewalInfoRecord | null;
}

/** Fetches and stores the renewal window of an ACME certificate (by name or serial). */
export async function refreshRenewalInfo(
  context: Context,
  nameOrSerial: string,
  directory?: Record<string, unknown>,
): Promise<RenewalInfoOutcome> {
  const certificate = findCertificate(context, nameOrSerial);
  if (!certificate.issuer.startsWith('acme:') || !certificate.ariCertId) {
    throw new McpkiError(
      'INVALID_INPUT',
      `certificate ${certificate.name} has no ACME renewal information`,
      'renewal information exists only for certificates from an ACME CA',
    );
  }
  const account = findAccount(context, certificate.issuer.slice('acme:'.length));
  const ca = account.caBundle ? readCaBundle(account.caBundle) : undefined; // the same checks as for every ACME request
  const endpoint = renewalInfoEndpoint(directory ?? (await fetchDirectory(account.directoryUrl, { ca })));
  if (!endpoint) return { name: certificate.name, serial: certificate.serial, renewalInfo: null };
  const info = await fetchRenewalInfo(endpoint, certificate.ariCertId, { ca });
  const record: RenewalInfoRecord = {
    windowStart: info.window.start.toISOString(),
    windowEnd: info.window.end.toISOString(),
    nextCheck: nextRenewalInfoCheck(info.fetchedAt, info.retryAfterSeconds).toISOString(),
    explanationUrl: info.explanationUrl ?? null,
  };
  const store = context.store();
  store.transaction(() => {
    store.setRenewalInfo(certificate.serial, record);
    store.addEvent({
      type: 'acme.renewal-info',
      name: certificate.name,
      serial: certificate.serial,
      detail: { ...record },
    });
  });
  return { name: certificate.name, serial: certificate.serial, renewalInfo: record };
}
