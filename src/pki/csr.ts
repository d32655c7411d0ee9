// PKCS#10 certificate signing requests (RFC 2986): made for ACME finalization (the subject's key signs its own
// names, carried in an extensionRequest attribute), and read when they come from elsewhere (`mcpki sign`,
// `acme issue --csr`, the ACME server's finalize). A request read is hostile input: one DER structure, its
// self-signature verified, its key one mcpki issues for, its names classified as `issue` classifies them.
import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { McpkiError } from '../errors.js';
import { bits, children, ctx, decodeOid, int, oid, parse, seq, set, TAG, toPem, type DerNode } from './der.js';
import { KEY_TYPES, keyTypeOf, signatureAlgorithmFor, spkiOf, type KeyType } from './keys.js';
import { classifySan, MAX_SANS, type San } from './names.js';
import { encodeExtension, encodeName, OIDS, subjectAltName, type NameAttribute } from './x509.js';

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

export const CSR_HINT =
  'give a PKCS#10 request (PEM "BEGIN CERTIFICATE REQUEST" or DER), e.g. from: openssl req -new -key KEY -subj /CN=NAME -addext subjectAltName=DNS:NAME';
const OID_CHALLENGE_PASSWORD = '1.2.840.113549.1.9.7';

/** The signature algorithms a request may use, with the hash each verifies with (null: the key decides, Ed25519). */
const SIGNATURE_HASHES: Record<string, string | null> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null, // Ed25519
};

const ATTRIBUTE_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '1.2.840.113549.1.9.1': 'emailAddress',
};
const EXTENSION_NAMES: Record<string, string> = {
  '2.5.29.15': 'keyUsage',
  '2.5.29.19': 'basicConstraints',
  '2.5.29.37': 'extKeyUsage',
  '2.5.29.14': 'subjectKeyIdentifier',
  '2.5.29.30': 'nameConstraints',
  '2.5.29.32': 'certificatePolicies',
};

export function invalidCsr(path: string, why: string, hint = CSR_HINT, cause?: unknown): McpkiError {
  return new McpkiError(
    'INVALID_INPUT',
    `the certificate request ${path} ${why}`,
    hint,
    cause === undefined ? undefined : { cause },
  );
}

export interface ParsedCsr {
  publicKey: KeyObject;
  keyType: KeyType;
  subject: { type: string; value: string }[];
  sans: San[];
  ignored: string[];
}

function text(node: DerNode): string {
  // PrintableString, UTF8String, IA5String, T61String: bytes as UTF-8; BMPString: UTF-16BE
  if (node.tag === TAG.BMP_STRING) return Buffer.from(node.content).swap16().toString('utf16le');
  return node.content.toString('utf8');
}

function readSubject(name: DerNode): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  for (const rdn of children(name)) {
    for (const attribute of children(rdn)) {
      const [type, value] = children(attribute);
      const oid = decodeOid(type!);
      out.push({ type: ATTRIBUTE_NAMES[oid] ?? oid, value: text(value!) });
    }
  }
  return out;
}

function ipText(bytes: Buffer, path: string): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length === 16) return Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16)).join(':');
  throw invalidCsr(path, `has an IP address name of ${bytes.length} bytes`);
}

/** The names of a subjectAltName request, classified and checked as `issue` checks names given to it. */
function readSans(value: Buffer, path: string): San[] {
  const sans: San[] = [];
  const names = children(parse(value));
  if (names.length > MAX_SANS)
    throw invalidCsr(
      path,
      `asks for ${names.length} names: at most ${MAX_SANS}`,
      `split the names over several requests (at most ${MAX_SANS} each), or use a wildcard`,
    );
  for (const name of names) {
    let raw: string;
    switch (name.tag) {
      case 0x82: // dNSName
      case 0x86: // uniformResourceIdentifier
      case 0x81: // rfc822Name
        raw = name.content.toString('latin1');
        if (!/^[\x21-\x7e]+$/.test(raw))
          throw invalidCsr(
            path,
            `asks for the name ${JSON.stringify(raw)}, which holds characters a name cannot have`,
            'write IDNs in their xn-- form; one name per entry',
          );
        break;
      case 0x87:
        raw = ipText(name.content, path);
        break;
      default:
        throw invalidCsr(
          path,
          `asks for a subjectAltName of a type mcpki does not sign (tag 0x${name.tag.toString(16)})`,
          'ask only for DNS names, IP addresses, URIs and e-mail addresses',
        );
    }
    const san = classifySan(raw);
    const expected = { 0x82: 'dns', 0x86: 'uri', 0x81: 'email', 0x87: 'ip' }[name.tag];
    if (san.type !== expected)
      throw invalidCsr(
        path,
        `asks for ${JSON.stringify(raw)} as a ${expected} name, but it is a ${san.type} name`,
        'put each name in the subjectAltName field of its type',
      );
    if (!sans.some((s) => s.type === san.type && s.value === san.value)) sans.push(san);
  }
  return sans;
}

export function parseCsr(der: Buffer, path: string): ParsedCsr {
  let info: DerNode;
  let algorithm: string;
  let signature: Buffer;
  let fields: DerNode[];
  try {
    const outer = parse(der);
    if (outer.tag !== TAG.SEQUENCE || outer.raw.length !== der.length) throw new Error('not one DER SEQUENCE');
    const parts = children(outer);
    if (parts.length !== 3) throw new Error('not a CertificationRequest');
    info = parts[0]!;
    algorithm = decodeOid(children(parts[1]!)[0]!);
    if (parts[2]!.tag !== TAG.BIT_STRING || parts[2]!.content[0] !== 0) throw new Error('bad signature BIT STRING');
    signature = parts[2]!.content.subarray(1);
    fields = children(info);
    if (
      fields.length < 3 ||
      fields[0]!.tag !== TAG.INTEGER ||
      fields[0]!.content.length !== 1 ||
      fields[0]!.content[0] !== 0
    )
      throw new Error('not a version 1 request');
  } catch (error) {
    if (error instanceof McpkiError) throw error;
    throw invalidCsr(path, `is not a PKCS#10 request (${(error as Error).message})`, CSR_HINT, error);
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: fields[2]!.raw, format: 'der', type: 'spki' });
  } catch (error) {
    throw invalidCsr(path, 'holds a public key that cannot be read', CSR_HINT, error);
  }
  const keyType = (() => {
    try {
      return keyTypeOf(publicKey);
    } catch {
      const details = publicKey.asymmetricKeyDetails ?? {};
      const size = details.modulusLength
        ? `${details.modulusLength}-bit `
        : details.namedCurve
          ? `${details.namedCurve} `
          : '';
      throw new McpkiError(
        'INVALID_KEY_TYPE',
        `the certificate request ${path} has a ${size}${publicKey.asymmetricKeyType ?? 'unknown'} key, which mcpki does not sign`,
        `make the request with one of these keys: ${KEY_TYPES.join(', ')}`,
      );
    }
  })();
  if (!Object.hasOwn(SIGNATURE_HASHES, algorithm)) {
    throw invalidCsr(
      path,
      `is signed with the algorithm ${algorithm}, which mcpki does not accept`,
      'sign the request with SHA-256 or better (ECDSA, RSA PKCS#1 v1.5 or Ed25519)',
    );
  }
  let verified = false;
  try {
    verified = verifySignature(SIGNATURE_HASHES[algorithm] ?? null, info.raw, publicKey, signature);
  } catch {
    verified = false;
  }
  if (!verified)
    throw invalidCsr(
      path,
      'has a signature that does not verify with its own key (damaged or altered)',
      'make the request again with the private key it names',
    );

  const ignored: string[] = [];
  let subject: { type: string; value: string }[];
  let sans: San[] = [];
  try {
    subject = readSubject(fields[1]!);
    for (const attribute of fields[3]?.tag === 0xa0 ? children(fields[3]) : []) {
      const [type, values] = children(attribute);
      const oid = decodeOid(type!);
      if (oid === OID_CHALLENGE_PASSWORD) {
        ignored.push('challengePassword');
        continue;
      }
      if (oid !== OID_EXTENSION_REQUEST) {
        ignored.push(`attribute ${oid}`);
        continue;
      }
      for (const extension of children(children(values!)[0]!)) {
        const parts = children(extension);
        const extOid = decodeOid(parts[0]!);
        if (extOid === OIDS.subjectAltName) sans = readSans(parts[parts.length - 1]!.content, path);
        else ignored.push(`extension ${EXTENSION_NAMES[extOid] ?? extOid}`);
      }
    }
  } catch (error) {
    if (error instanceof McpkiError) throw error;
    throw invalidCsr(path, `cannot be read (${(error as Error).message})`, CSR_HINT, error);
  }
  for (const attribute of subject) {
    if (/[\u0000-\u001f\u007f]/.test(attribute.value))
      throw invalidCsr(
        path,
        `has a subject ${attribute.type} with control characters`,
        'make the request with a plain subject',
      );
    if (attribute.type !== 'CN') ignored.push(`subject ${attribute.type}`);
  }
  return { publicKey, keyType, subject, sans, ignored };
}
