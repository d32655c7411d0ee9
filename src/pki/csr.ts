// PKCS#10 certificate signing requests (RFC 2986) for ACME finalization: the subject's key signs its own
// names, carried in an extensionRequest attribute.
import type { KeyObject } from 'node:crypto';
import { bits, ctx, int, oid, seq, set, toPem } from './der.js';
import { signatureAlgorithmFor, spkiOf } from './keys.js';
import type { San } from './names.js';
import { encodeExtension, encodeName, subjectAltName, type NameAttribute } from './x509.js';

const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

export function createCsr(privateKey: KeyObject, publicKey: KeyObject, sans: readonly San[]): string {
  // CN is limited to 64 characters; ACME CAs take the names from the SAN extension anyway
  const first = sans.find((s) => s.value.length <= 64);
  const subject: NameAttribute[] = first ? [{ type: 'CN', value: first.value }] : [];
  const extensionRequest = seq(oid(OID_EXTENSION_REQUEST), set(seq(encodeExtension(subjectAltName(sans)))));
  const info = seq(int(0), encodeName(subject), spkiOf(publicKey), ctx(0, extensionRequest, true));
  const signer = signatureAlgorithmFor(privateKey);
  return toPem('CERTIFICATE REQUEST', seq(info, signer.identifier, bits(signer.sign(info))));
}
