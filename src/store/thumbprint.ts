import { createHash } from 'node:crypto';

/** RFC 8705 x5t#S256: base64url SHA-256 of the certificate's DER. */
export function x5tS256(pem: string): string {
  const body = /-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/.exec(pem)?.[1] ?? '';
  return createHash('sha256')
    .update(Buffer.from(body.replace(/\s+/g, ''), 'base64'))
    .digest('base64url');
}
