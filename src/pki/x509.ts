// X.509 certificate and CRL construction (RFC 5280). Structures are assembled with der.ts and signed with
// node:crypto through a SignatureAlgorithm.
import { randomBytes } from 'node:crypto';
import {
  bits,
  bool,
  children,
  ctx,
  decodeOid,
  enumerated,
  explicit,
  int,
  octets,
  oid,
  parse,
  seq,
  set,
  time,
  utf8,
  type DerNode,
} from './der.js';
import type { SignatureAlgorithm } from './keys.js';
import { ipToBytes, type San } from './names.js';

export const OIDS = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  cRLNumber: '2.5.29.20',
  reasonCode: '2.5.29.21',
  nameConstraints: '2.5.29.30',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

export interface NameAttribute {
  type: 'CN' | 'O' | 'OU';
  value: string;
}

const ATTRIBUTE_OIDS: Record<NameAttribute['type'], string> = {
  CN: OIDS.commonName,
  O: OIDS.organization,
  OU: OIDS.organizationalUnit,
};

/** RDNSequence with one attribute per RDN, values as UTF8String. */
export function encodeName(attributes: readonly NameAttribute[]): Buffer {
  return seq(...attributes.map((a) => set(seq(oid(ATTRIBUTE_OIDS[a.type]), utf8(a.value)))));
}

export interface Extension {
  oid: string;
  critical: boolean;
  /** the DER the extnValue OCTET STRING wraps */
  value: Buffer;
}

export function encodeExtension(extension: Extension): Buffer {
  const parts = [oid(extension.oid)];
  if (extension.critical) parts.push(bool(true));
  parts.push(octets(extension.value));
  return seq(...parts);
}

export function basicConstraints(ca: boolean, pathLength?: number): Extension {
  const parts: Buffer[] = [];
  if (ca) parts.push(bool(true));
  if (ca && pathLength !== undefined) parts.push(int(pathLength));
  return { oid: OIDS.basicConstraints, critical: true, value: seq(...parts) };
}

const KEY_USAGE_BITS = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;
export type KeyUsage = keyof typeof KEY_USAGE_BITS;

/** KeyUsage as a DER named bit string: trailing zero bits dropped, unused-bit count set. */
export function keyUsage(usages: readonly KeyUsage[]): Extension {
  let value = 0;
  for (const usage of usages) value |= 0x80 >> KEY_USAGE_BITS[usage];
  let highest = 0;
  for (const usage of usages) highest = Math.max(highest, KEY_USAGE_BITS[usage]);
  return { oid: OIDS.keyUsage, critical: true, value: bits(Buffer.from([value]), 7 - highest) };
}

export function extKeyUsage(purposes: readonly string[]): Extension {
  return { oid: OIDS.extKeyUsage, critical: false, value: seq(...purposes.map((p) => oid(p))) };
}

export function encodeGeneralName(san: San): Buffer {
  switch (san.type) {
    case 'email':
      return ctx(1, Buffer.from(san.value, 'latin1'), false);
    case 'dns':
      return ctx(2, Buffer.from(san.value, 'latin1'), false);
    case 'uri':
      return ctx(6, Buffer.from(san.value, 'latin1'), false);
    case 'ip':
      return ctx(7, ipToBytes(san.value), false);
  }
}

export function subjectAltName(sans: readonly San[], critical = false): Extension {
  return { oid: OIDS.subjectAltName, critical, value: seq(...sans.map(encodeGeneralName)) };
}

export function subjectKeyIdentifier(keyId: Buffer): Extension {
  return { oid: OIDS.subjectKeyIdentifier, critical: false, value: octets(keyId) };
}

export function authorityKeyIdentifier(keyId: Buffer): Extension {
  return { oid: OIDS.authorityKeyIdentifier, critical: false, value: seq(ctx(0, keyId, false)) };
}

/** nameConstraints is critical, as RFC 5280 4.2.1.10 requires. */
export function nameConstraints(value: Buffer): Extension {
  return { oid: OIDS.nameConstraints, critical: true, value };
}

/** 16 random bytes, positive, with a non-zero first byte so every serial is exactly 16 bytes long. */
export function randomSerial(): Buffer {
  return randomSerials(1)[0]!;
}

/** `count` serials from one call for random bytes (batch issuance). */
export function randomSerials(count: number): Buffer[] {
  const bytes = randomBytes(16 * count);
  return Array.from({ length: count }, (_, i) => {
    const serial = bytes.subarray(16 * i, 16 * i + 16);
    serial[0] = (serial[0]! & 0x7f) | 0x40;
    return serial;
  });
}

export interface CertificateTemplate {
  serial: Buffer;
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  extensions: readonly Extension[];
}

export function signCertificate(template: CertificateTemplate, signer: SignatureAlgorithm): Buffer {
  const tbs = seq(
    explicit(0, int(2)),
    int(template.serial),
    signer.identifier,
    template.issuer,
    seq(time(template.notBefore), time(template.notAfter)),
    template.subject,
    template.spki,
    explicit(3, seq(...template.extensions.map(encodeExtension))),
  );
  return seq(tbs, signer.identifier, bits(signer.sign(tbs)));
}

export interface CertificateParts {
  tbs: DerNode;
  serial: Buffer;
  issuer: Buffer;
  subject: Buffer;
  spki: Buffer;
  extensions: Map<string, { critical: boolean; value: Buffer }>;
}

/** Reads what X509Certificate does not expose: raw issuer/subject Names and extension values. */
export function readCertificate(der: Buffer): CertificateParts {
  const [tbs] = children(parse(der));
  const fields = children(tbs!);
  let i = 0;
  if (fields[0]!.tag === 0xa0) i++; // version
  const serial = fields[i]!.content;
  const issuer = fields[i + 2]!.raw;
  const subject = fields[i + 4]!.raw;
  const spki = fields[i + 5]!.raw;
  const extensions = new Map<string, { critical: boolean; value: Buffer }>();
  for (const field of fields.slice(i + 6)) {
    if (field.tag !== 0xa3) continue;
    for (const ext of children(children(field)[0]!)) {
      const parts = children(ext);
      const critical = parts.length === 3 && parts[1]!.content[0] !== 0;
      extensions.set(decodeOid(parts[0]!), { critical, value: parts[parts.length - 1]!.content });
    }
  }
  return { tbs: tbs!, serial, issuer, subject, spki, extensions };
}

// ---------------------------------------------------------------------------------------------------
// CRLs

export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

export interface RevokedEntry {
  serial: Buffer;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface CrlTemplate {
  issuer: Buffer;
  authorityKeyId: Buffer;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  revoked: readonly RevokedEntry[];
}

export function signCrl(template: CrlTemplate, signer: SignatureAlgorithm): Buffer {
  const entries = template.revoked.map((entry) => {
    const parts = [int(entry.serial), time(entry.revokedAt)];
    // RFC 5280 5.3.1: the reason code "unspecified" SHOULD be omitted
    if (entry.reason !== 'unspecified') {
      parts.push(
        seq(
          encodeExtension({
            oid: OIDS.reasonCode,
            critical: false,
            value: enumerated(REVOCATION_REASONS[entry.reason]),
          }),
        ),
      );
    }
    return seq(...parts);
  });
  const tbsParts = [int(1), signer.identifier, template.issuer, time(template.thisUpdate), time(template.nextUpdate)];
  if (entries.length > 0) tbsParts.push(seq(...entries));
  tbsParts.push(
    explicit(
      0,
      seq(
        encodeExtension(authorityKeyIdentifier(template.authorityKeyId)),
        encodeExtension({ oid: OIDS.cRLNumber, critical: false, value: int(template.number) }),
      ),
    ),
  );
  const tbs = seq(...tbsParts);
  return seq(tbs, signer.identifier, bits(signer.sign(tbs)));
}
