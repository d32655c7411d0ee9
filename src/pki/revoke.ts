import type { Context } from '../context.js';
import { McpkiError } from '../errors.js';
import { findCertificate, type CertificateView } from '../inventory.js';
import { REVOCATION_REASONS, type RevocationReason } from './x509.js';

export function parseRevocationReason(value: string): RevocationReason {
  if (Object.hasOwn(REVOCATION_REASONS, value)) return value as RevocationReason;
  throw new McpkiError(
    'INVALID_INPUT',
    `unknown revocation reason "${value}"`,
    `use one of: ${Object.keys(REVOCATION_REASONS).join(', ')}`,
  );
}

/** Marks a locally issued certificate revoked; the next CRL lists it. */
export function revokeCertificate(
  context: Context,
  nameOrSerial: string,
  reason: RevocationReason | string = 'unspecified',
): CertificateView {
  const parsedReason = parseRevocationReason(reason);
  const certificate = findCertificate(context, nameOrSerial);
  const store = context.store();
  if (certificate.status === 'revoked') {
    throw new McpkiError(
      'ALREADY_REVOKED',
      `certificate ${certificate.name} (${certificate.serial}) was already revoked at ${certificate.revokedAt}`,
      'nothing to do; run "mcpki crl" to publish a fresh CRL',
    );
  }
  // the local CA signed it, directly or through its ACME server (issuer acme-server:ACCOUNT)
  if (certificate.issuer !== 'local' && !certificate.issuer.startsWith('acme-server:')) {
    throw new McpkiError(
      'INVALID_INPUT',
      `certificate ${certificate.name} was issued by ${certificate.issuer}, not the local CA`,
      'revoke it through its issuer',
    );
  }
  const at = context.now().toISOString();
  store.transaction(() => {
    store.markRevoked(certificate.serial, parsedReason, at);
    store.addEvent({
      type: 'certificate.revoked',
      name: certificate.name,
      serial: certificate.serial,
      detail: { reason: parsedReason },
    });
  });
  return findCertificate(context, certificate.serial);
}
