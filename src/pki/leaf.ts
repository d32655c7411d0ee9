// Signing one leaf certificate with the intermediate: the profile (key usage, extended key usage, names) and
// the DER. No files, no inventory: batch issuance loads this in its worker threads, so it stays small.
import { createHash } from 'node:crypto';
import type { CertificateKind } from '../store/store.js';
import type { IssuingCa } from './ca-files.js';
import { checkPermitted } from './constraints.js';
import { keyIdentifier, signatureAlgorithmFor, type EncodedKey, type KeyType } from './keys.js';
import { BACKDATE_MS } from './limits.js';
import type { San } from './names.js';
import {
  authorityKeyIdentifier,
  basicConstraints,
  encodeName,
  extKeyUsage,
  keyUsage,
  OIDS,
  randomSerial,
  signCertificate,
  subjectAltName,
  subjectKeyIdentifier,
  type KeyUsage,
  type NameAttribute,
} from './x509.js';

const DAY = 86_400_000;

/** What signing needs of the CA: its key, name, key identifier, end of validity and name constraints. */
export type LeafSigner = Pick<IssuingCa, 'key' | 'subject' | 'keyId' | 'permitted'> & { cert: { validTo: string } };

/** What signing a leaf needs to know (`mcpki sign` builds one from a CSR). */
export interface LeafPlan {
  kind: CertificateKind;
  name: string;
  sans: San[];
  keyType: KeyType;
  days: number;
}

export interface SignedLeaf {
  der: Buffer;
  serial: Buffer;
  subject: NameAttribute[];
  notBefore: Date;
  notAfter: Date;
}

function leafKeyUsage(keyType: KeyType, kind: CertificateKind): KeyUsage[] {
  // RSA key exchange (TLS 1.2 RSA suites) needs keyEncipherment on RSA server keys
  return keyType.startsWith('rsa') && kind === 'server'
    ? ['digitalSignature', 'keyEncipherment']
    : ['digitalSignature'];
}

/**
 * CN=NAME, except where OpenSSL would read a dotted CN as a host name and reject it against the name
 * constraints (it does so when the certificate has no DNS SAN): then the name goes into OU instead.
 */
function leafNameAttribute(ca: LeafSigner, plan: LeafPlan): NameAttribute {
  const hasDnsSan = plan.sans.some((s) => s.type === 'dns');
  const dnsLike = plan.name.includes('.');
  if (hasDnsSan || !dnsLike || checkPermitted({ type: 'dns', value: plan.name.toLowerCase() }, ca.permitted) === null) {
    return { type: 'CN', value: plan.name };
  }
  return { type: 'OU', value: plan.name };
}

/** Whole seconds: certificate times carry no fractions. */
function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

export function signLeaf(
  ca: LeafSigner,
  plan: LeafPlan,
  key: Pick<EncodedKey, 'spki'>,
  now: Date,
  serial: Buffer = randomSerial(),
): SignedLeaf {
  const { spki } = key;
  const notBefore = wholeSeconds(now.getTime() - BACKDATE_MS);
  const notAfter = wholeSeconds(Math.min(notBefore.getTime() + plan.days * DAY, new Date(ca.cert.validTo).getTime()));
  const extensions = [
    basicConstraints(false),
    keyUsage(leafKeyUsage(plan.keyType, plan.kind)),
    extKeyUsage([plan.kind === 'server' ? OIDS.serverAuth : OIDS.clientAuth]),
    subjectKeyIdentifier(keyIdentifier(spki)),
    authorityKeyIdentifier(ca.keyId),
  ];
  if (plan.sans.length > 0) extensions.push(subjectAltName(plan.sans));
  const subject: NameAttribute[] = [{ type: 'O', value: 'mcpki development certificate' }, leafNameAttribute(ca, plan)];
  const der = signCertificate(
    { serial, issuer: ca.subject, subject: encodeName(subject), notBefore, notAfter, spki, extensions },
    signatureAlgorithmFor(ca.key),
  );
  return { der, serial, subject, notBefore, notAfter };
}

const HEX_BYTES = Array.from({ length: 256 }, (_, byte) => byte.toString(16).toUpperCase().padStart(2, '0'));

/** Bytes as upper-case hex with a colon between each (a table, not a regular expression: batch signs thousands). */
export function colonHex(bytes: Uint8Array): string {
  let text = bytes.length > 0 ? HEX_BYTES[bytes[0]!]! : '';
  for (let i = 1; i < bytes.length; i++) text += `:${HEX_BYTES[bytes[i]!]!}`;
  return text;
}

/** SHA-256, upper-case hex with colons, as X509Certificate.fingerprint256 and openssl print it. */
export function fingerprintOf(der: Buffer): string {
  return colonHex(createHash('sha256').update(der).digest());
}
