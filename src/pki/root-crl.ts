// The root's own CRL. Full-chain revocation checking — nginx `ssl_crl`, Node's `crl` option and
// `openssl verify -crl_check_all` — wants a CRL from every CA in the chain, the root included. The root
// revokes no intermediate (rotation retires them without revoking), so its CRL is empty and is given the
// root's own lifetime: it is signed when the root key is at hand (init, rotate-intermediate) and the daily
// `mcpki crl` never needs the root key, which may be encrypted at rest.
import type { KeyObject } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { INPUT_LIMITS, readInputText } from '../fs/read.js';
import { toPem } from './der.js';
import { keyIdentifier, signatureAlgorithmFor } from './keys.js';
import { readCertificate, signCrl } from './x509.js';

export function signRootCrl(rootDer: Buffer, rootKey: KeyObject, number: bigint, now: Date): string {
  const root = readCertificate(rootDer);
  const der = signCrl(
    {
      issuer: root.subject,
      authorityKeyId: keyIdentifier(root.spki),
      number,
      thisUpdate: now,
      nextUpdate: new Date(new X509Certificate(rootDer).validTo),
      revoked: [],
    },
    signatureAlgorithmFor(rootKey),
  );
  return toPem('X509 CRL', der);
}

/** The stored root CRL, or null when this home predates it. */
export function readRootCrl(path: string): string | null {
  return existsSync(path)
    ? readInputText(path, { what: 'the root CRL', maxBytes: INPUT_LIMITS.pem, code: 'CA_CORRUPT' })
    : null;
}
