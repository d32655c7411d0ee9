// `mcpki sign CSR_FILE`: a certificate for a key mcpki never sees, from a PKCS#10 request (RFC 2986). The
// request is hostile input: read with a size cap, its signature verified, its key held to the same rules as
// issuance, its names checked against the name constraints before anything is signed. Only the names are
// taken from it; every other subject attribute and requested extension is ignored (and reported), the
// certificate gets the server or client profile exactly as `issue` makes it.
import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { lstatSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Context } from '../context.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { McpkiError } from '../errors.js';
import { INPUT_LIMITS, readInputFile } from '../fs/read.js';
import { assertSafeDir } from '../fs/safe-path.js';
import type { CertificateKind, CertificateRecord } from '../store/store.js';
import { loadIssuingCa } from './ca.js';
import { assertPermitted } from './constraints.js';
import { children, decodeOid, fromPem, parse, TAG, toPem, type DerNode } from './der.js';
import { fingerprintOf, signLeaf, DEFAULT_DAYS, MAX_DAYS } from './issue.js';
import { keyTypeOf, KEY_TYPES, type KeyType } from './keys.js';
import { classifySan, validateCertName, type San } from './names.js';
import { OIDS } from './x509.js';

export interface SignRequest {
  /** the PKCS#10 request, PEM or DER */
  csrPath: string;
  /** server (serverAuth) or client (clientAuth); default server */
  profile?: CertificateKind | string;
  days?: number;
  /** write the certificate and the intermediate (a full chain) here; default: only returned */
  out?: string;
  /** the inventory name; default the request's CN, else its first DNS name */
  name?: string;
}

export interface SignedCertificate {
  certificate: CertificateRecord;
  /** the certificate followed by the intermediate, as servers take it */
  fullchain: string;
  /** where it was written, when --out was given */
  path: string | null;
  /** what the request asked for and the certificate does not carry */
  ignored: string[];
}

const CSR_HINT = 'give a PKCS#10 request (PEM "BEGIN CERTIFICATE REQUEST" or DER), e.g. from: openssl req -new -key KEY -subj /CN=NAME -addext subjectAltName=DNS:NAME';
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
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

const ATTRIBUTE_NAMES: Record<string, string> = { '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O', '2.5.4.11': 'OU', '1.2.840.113549.1.9.1': 'emailAddress' };
const EXTENSION_NAMES: Record<string, string> = { '2.5.29.15': 'keyUsage', '2.5.29.19': 'basicConstraints', '2.5.29.37': 'extKeyUsage', '2.5.29.14': 'subjectKeyIdentifier', '2.5.29.30': 'nameConstraints', '2.5.29.32': 'certificatePolicies' };

function invalid(path: string, why: string, hint = CSR_HINT, cause?: unknown): McpkiError {
  return new McpkiError('INVALID_INPUT', `the certificate request ${path} ${why}`, hint, cause === undefined ? undefined : { cause });
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
  throw invalid(path, `has an IP address name of ${bytes.length} bytes`);
}

/** The names of a subjectAltName request, classified and checked as `issue` checks names given to it. */
function readSans(value: Buffer, path: string): San[] {
  const sans: San[] = [];
  for (const name of children(parse(value))) {
    let raw: string;
    switch (name.tag) {
      case 0x82: // dNSName
      case 0x86: // uniformResourceIdentifier
      case 0x81: // rfc822Name
        raw = name.content.toString('latin1');
        if (!/^[\x21-\x7e]+$/.test(raw)) throw invalid(path, `asks for the name ${JSON.stringify(raw)}, which holds characters a name cannot have`, 'write IDNs in their xn-- form; one name per entry');
        break;
      case 0x87:
        raw = ipText(name.content, path);
        break;
      default:
        throw invalid(path, `asks for a subjectAltName of a type mcpki does not sign (tag 0x${name.tag.toString(16)})`, 'ask only for DNS names, IP addresses, URIs and e-mail addresses');
    }
    const san = classifySan(raw);
    const expected = { 0x82: 'dns', 0x86: 'uri', 0x81: 'email', 0x87: 'ip' }[name.tag];
    if (san.type !== expected) throw invalid(path, `asks for ${JSON.stringify(raw)} as a ${expected} name, but it is a ${san.type} name`, 'put each name in the subjectAltName field of its type');
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
    if (fields.length < 3 || fields[0]!.tag !== TAG.INTEGER || fields[0]!.content.length !== 1 || fields[0]!.content[0] !== 0) throw new Error('not a version 1 request');
  } catch (error) {
    if (error instanceof McpkiError) throw error;
    throw invalid(path, `is not a PKCS#10 request (${(error as Error).message})`, CSR_HINT, error);
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: fields[2]!.raw, format: 'der', type: 'spki' });
  } catch (error) {
    throw invalid(path, 'holds a public key that cannot be read', CSR_HINT, error);
  }
  const keyType = (() => {
    try {
      return keyTypeOf(publicKey);
    } catch {
      const details = publicKey.asymmetricKeyDetails ?? {};
      const size = details.modulusLength ? `${details.modulusLength}-bit ` : details.namedCurve ? `${details.namedCurve} ` : '';
      throw new McpkiError('INVALID_KEY_TYPE', `the certificate request ${path} has a ${size}${publicKey.asymmetricKeyType ?? 'unknown'} key, which mcpki does not sign`, `make the request with one of these keys: ${KEY_TYPES.join(', ')}`);
    }
  })();
  if (!Object.hasOwn(SIGNATURE_HASHES, algorithm)) {
    throw invalid(path, `is signed with the algorithm ${algorithm}, which mcpki does not accept`, 'sign the request with SHA-256 or better (ECDSA, RSA PKCS#1 v1.5 or Ed25519)');
  }
  let verified = false;
  try {
    verified = verifySignature(SIGNATURE_HASHES[algorithm] ?? null, info.raw, publicKey, signature);
  } catch {
    verified = false;
  }
  if (!verified) throw invalid(path, 'has a signature that does not verify with its own key (damaged or altered)', 'make the request again with the private key it names');

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
    throw invalid(path, `cannot be read (${(error as Error).message})`, CSR_HINT, error);
  }
  for (const attribute of subject) {
    if (/[\u0000-\u001f\u007f]/.test(attribute.value)) throw invalid(path, `has a subject ${attribute.type} with control characters`, 'make the request with a plain subject');
    if (attribute.type !== 'CN') ignored.push(`subject ${attribute.type}`);
  }
  return { publicKey, keyType, subject, sans, ignored };
}

/** --out: a regular file (or nothing yet) in an existing folder that is safe to write in. */
function checkOut(out: string): string {
  const path = resolve(out);
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    stat = undefined;
  }
  if (stat && !stat.isFile()) throw new McpkiError('INVALID_INPUT', `--out ${out} is ${stat.isDirectory() ? 'a folder' : 'not a regular file'}`, 'give the path of the certificate file to write (it is replaced)');
  const dir = dirname(path);
  try {
    if (!statSync(dir).isDirectory()) throw new Error('ENOTDIR');
  } catch (error) {
    throw new McpkiError('WRITE_FAILED', `cannot write --out ${out}: its folder ${dir} does not exist`, `create the folder first (mkdir -p ${dir}), or give another path`, { cause: error });
  }
  assertSafeDir(dir, 'the --out folder');
  return path;
}

/** Signs the request with the intermediate, records the certificate and, with `out`, writes the full chain. */
export function signCsr(context: Context, request: SignRequest): SignedCertificate {
  const kind = request.profile ?? 'server';
  if (kind !== 'server' && kind !== 'client') throw new McpkiError('INVALID_INPUT', `unknown profile "${kind}"`, 'use --profile server or --profile client');
  const days = request.days ?? DEFAULT_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) {
    throw new McpkiError('INVALID_DAYS', `--days must be a whole number from 1 to ${MAX_DAYS}, got ${String(request.days)}`, `give 1 to ${MAX_DAYS} days (default ${DEFAULT_DAYS})`);
  }
  const ca = loadIssuingCa(context);
  const input = readInputFile(request.csrPath, { what: 'certificate request', maxBytes: INPUT_LIMITS.pem, hint: CSR_HINT });
  const pem = input.toString('latin1');
  let der: Buffer = input;
  if (pem.includes('-----BEGIN')) {
    const blocks = [...fromPem(pem, 'CERTIFICATE REQUEST'), ...fromPem(pem, 'NEW CERTIFICATE REQUEST')];
    if (blocks.length !== 1) throw invalid(request.csrPath, blocks.length === 0 ? 'holds no "CERTIFICATE REQUEST" PEM block' : `holds ${blocks.length} requests`, CSR_HINT);
    der = blocks[0]!;
  }
  const csr = parseCsr(der, request.csrPath);
  const cn = csr.subject.find((a) => a.type === 'CN')?.value;
  let sans = csr.sans;
  if (sans.length === 0 && cn !== undefined && kind === 'server') {
    // like `issue server localhost`: a request with only a CN that is a host name gets that name
    try {
      const san = classifySan(cn);
      if (san.type === 'dns' || san.type === 'ip') sans = [san];
    } catch {
      // not a host name: refused below
    }
  }
  if (kind === 'server' && sans.length === 0) {
    throw new McpkiError('INVALID_NAME', `the certificate request ${request.csrPath} asks for no names`, 'make the request with the names clients connect to, e.g. openssl req … -addext "subjectAltName=DNS:localhost,IP:127.0.0.1"');
  }
  assertPermitted(sans, ca.permitted);
  const candidates = [request.name, cn, sans.find((s) => s.type === 'dns')?.value].filter((n): n is string => n !== undefined);
  const name = request.name !== undefined ? validateCertName(request.name) : candidates.find((n) => /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(n) && !n.includes('..'));
  if (!name) throw new McpkiError('INVALID_NAME', `the certificate request ${request.csrPath} has no CN or DNS name usable as a certificate name`, 'give one with --name NAME (letters, digits, ".", "_" and "-")');
  if (cn !== undefined && cn !== name) csr.ignored.push('subject CN');
  const path = request.out === undefined ? null : checkOut(request.out);

  const store = context.store();
  const signed = signLeaf(ca, { kind, name, sans, keyType: csr.keyType, days }, { spki: csr.publicKey.export({ type: 'spki', format: 'der' }) }, context.now());
  const certPem = toPem('CERTIFICATE', signed.der);
  const fullchain = certPem + ca.pem;
  const certificate = store.transaction(() => {
    const saved = store.addCertificate({
      name,
      kind,
      serial: signed.serial.toString('hex').toUpperCase(),
      subject: signed.subject.map((a) => `${a.type}=${a.value}`).join(', '),
      sans,
      issuer: 'local',
      issuerSerial: ca.cert.serialNumber.toUpperCase(),
      profile: null,
      keyType: csr.keyType,
      notBefore: signed.notBefore.toISOString(),
      notAfter: signed.notAfter.toISOString(),
      fingerprint: fingerprintOf(signed.der),
      pem: certPem,
      paths: path ? { fullchain: path } : {},
    });
    store.addEvent({
      type: 'certificate.signed',
      name,
      serial: saved.serial,
      detail: { csr: resolve(request.csrPath), kind, sans: sans.map((s) => s.value), keyType: csr.keyType, notAfter: saved.notAfter, ignored: csr.ignored, ...(path ? { path } : {}) },
    });
    if (path) writeFileAtomic(path, fullchain, 0o644);
    return saved;
  });
  return { certificate, fullchain, path, ignored: csr.ignored };
}
