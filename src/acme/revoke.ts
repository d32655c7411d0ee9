import type { Context } from '../context.js';
import { McpkiError } from '../errors.js';
import { findCertificate, type CertificateView } from '../inventory.js';
import { parseRevocationReason } from '../pki/revoke.js';
import { REVOCATION_REASONS } from '../pki/x509.js';
import { clientFor, findAccount } from './accounts.js';
import { acmeError, releaseConnections } from './client.js';

/** Revokes an ACME certificate at its CA (signed with its account key) and marks it in the inventory. */
export async function revokeAcmeCertificate(
  context: Context,
  nameOrSerial: string,
  reason = 'unspecified',
): Promise<CertificateView> {
  const parsedReason = parseRevocationReason(reason);
  const certificate = findCertificate(context, nameOrSerial);
  if (!certificate.issuer.startsWith('acme:')) {
    throw new McpkiError(
      'INVALID_INPUT',
      `certificate ${certificate.name} was issued by the local CA`,
      `revoke it with "mcpki revoke ${certificate.name}"`,
    );
  }
  if (certificate.status === 'revoked') {
    throw new McpkiError(
      'ALREADY_REVOKED',
      `certificate ${certificate.name} (${certificate.serial}) was already revoked at ${certificate.revokedAt}`,
      'nothing to do',
    );
  }
  const account = findAccount(context, certificate.issuer.slice('acme:'.length));
  const client = await clientFor(account);
  try {
    await client.revokeCertificate(certificate.pem, { reason: REVOCATION_REASONS[parsedReason] });
  } catch (error) {
    throw acmeError(error, { operation: 'revoke' });
  } finally {
    releaseConnections();
  }
  const store = context.store();
  store.transaction(() => {
    store.markRevoked(certificate.serial, parsedReason, context.now().toISOString());
    store.addEvent({
      type: 'certificate.revoked',
      name: certificate.name,
      serial: certificate.serial,
      detail: { reason: parsedReason, via: certificate.issuer },
    });
  });
  return findCertificate(context, certificate.serial);
}
