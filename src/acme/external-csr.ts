// A certificate signing request made elsewhere (`mcpki acme issue --csr FILE`): its key never reaches mcpki.
// The file is not mcpki's: read as a bounded regular file, one PKCS#10 request and nothing that looks like a
// key, its self-signature verified, its key a type mcpki issues for, and its names (subjectAltName, with the
// CN among them) checked like -d names before any order is placed.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { McpkiError } from '../errors.js';
import { INPUT_LIMITS, readInputFile } from '../fs/read.js';
import { children, decodeOid, fromPem, parse, toPem, type DerNode } from '../pki/der.js';
import { KEY_TYPES, keyTypeOf, type KeyType } from '../pki/keys.js';
import { classifySans, type San } from '../pki/names.js';

export interface ExternalCsr {
  /** the request re-encoded from its DER (whatever surrounded the PEM block is dropped) */
  pem: string;
  publicKey: KeyObject;
  keyType: KeyType;
  /** the names of its subjectAltName, checked and normalised as -d names are */
  sans: San[];
}

const HINT = 'give a PEM file made by e.g. "openssl req -new -key KEY -subj /CN=NAME -addext subjectAltName=DNS:NAME -out NAME.csr"';
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SAN = '2.5.29.17';
const OID_CN = '2.5.4.3';

/** signature algorithm OID → the hash node:crypto verifies with (null: Ed25519 hashes itself) */
const SIGNATURE_HASHES: Record<string, string | null> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null,
};

export function readExternalCsr(path: string): ExternalCsr {
  const bytes = readInputFile(path, { what: '--csr', maxBytes: INPUT_LIMITS.pem, hint: HINT });
  const bad = (why: string, hint = HINT): McpkiError => new McpkiError('INVALID_INPUT', `--csr ${path}: ${why}`, hint);
  const text = bytes.toString('latin1');
  for (const match of text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)) {
    if (match[1] !== 'CERTIFICATE REQUEST' && match[1] !== 'NEW CERTIFICATE REQUEST') {
      throw bad(`holds a ${match[1]} block, not only a certificate request`, `${HINT}; the key stays where it is, mcpki never needs it`);
    }
  }
  let ders = [...fromPem(text, 'CERTIFICATE REQUEST'), ...fromPem(text, 'NEW CERTIFICATE REQUEST')];
  if (ders.length === 0 && bytes[0] === 0x30) ders = [bytes];
  if (ders.length === 0) throw bad('holds no certificate request (no -----BEGIN CERTIFICATE REQUEST----- block)');
  if (ders.length > 1) throw bad(`holds ${ders.length} certificate requests; give one`);
  const der = ders[0]!;

  let info: DerNode;
  let algorithm: string;
  let signature: Buffer;
  let spki: Buffer;
  let subject: DerNode;
  let attributes: DerNode | undefined;
  try {
    const outer = parse(der);
    if (outer.raw.length !== der.length) throw new RangeError('trailing bytes');
    const [infoNode, algorithmNode, signatureNode, ...rest] = children(outer);
    if (!infoNode || !algorithmNode || !signatureNode || rest.length) throw new RangeError('not three parts');
    info = infoNode;
    algorithm = decodeOid(children(algorithmNode)[0]!);
    if (signatureNode.tag !== 0x03 || signatureNode.content[0] !== 0) throw new RangeError('bad signature');
    signature = signatureNode.content.subarray(1);
    const fields = children(info);
    if (fields[0]?.tag !== 0x02 || fields[0].content.length !== 1 || fields[0].content[0] !== 0) throw new RangeError('version is not 1');
    subject = fields[1]!;
    spki = fields[2]!.raw;
    attributes = fields[3]?.tag === 0xa0 ? fields[3] : undefined;
  } catch (error) {
    throw bad(`is not a PKCS#10 certificate request (${(error as Error).message})`);
  }

  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw bad('its public key cannot be read');
  }
  let keyType: KeyType;
  try {
    keyType = keyTypeOf(publicKey);
  } catch (error) {
    throw bad(`its key is not one mcpki issues for (${(error as McpkiError).message.replace(/^unsupported key /, '')})`, `make the key with one of: ${KEY_TYPES.join(', ')}`);
  }
  if (!Object.hasOwn(SIGNATURE_HASHES, algorithm)) throw bad(`signed with an unsupported algorithm (${algorithm})`, 'sign it with ECDSA, RSA PKCS#1 v1.5 (SHA-256/384/512) or Ed25519');
  const valid = (() => {
    try {
      return verify(SIGNATURE_HASHES[algorithm]!, info.raw, { key: publicKey, dsaEncoding: 'der' }, signature);
    } catch {
      return false;
    }
  })();
  if (!valid) throw bad('its signature does not verify with its own key (changed after signing, or damaged)', 'make the request again with the key it names');

  const raw: string[] = [];
  try {
    for (const attribute of attributes ? children(attributes) : []) {
      const [type, values] = children(attribute);
      if (decodeOid(type!) !== OID_EXTENSION_REQUEST) continue;
      for (const extension of children(children(values!)[0]!)) {
        const parts = children(extension);
        if (decodeOid(parts[0]!) !== OID_SAN) continue;
        for (const name of children(parse(parts[parts.length - 1]!.content))) {
          if (name.tag === 0x82) raw.push(name.content.toString('latin1'));
          else if (name.tag === 0x87 && name.content.length === 4) raw.push([...name.content].join('.'));
          else if (name.tag === 0x87 && name.content.length === 16) raw.push(Array.from({ length: 8 }, (_, i) => name.content.readUInt16BE(i * 2).toString(16)).join(':'));
          else throw new McpkiError('INVALID_NAME', `--csr ${path}: its subjectAltName holds a name of type [${name.tag & 0x1f}]; ACME certificates carry DNS names and IP addresses only`, 'leave e-mail addresses and URIs out of the request (or use the local CA: mcpki sign)');
        }
      }
    }
  } catch (error) {
    if (error instanceof McpkiError) throw error;
    throw bad(`its extension request cannot be read (${(error as Error).message})`);
  }
  if (raw.length === 0) throw bad('has no subjectAltName: ACME CAs certify only the names listed there', HINT);
  let sans: San[];
  try {
    sans = classifySans(raw);
  } catch (error) {
    const e = error as McpkiError;
    throw new McpkiError(e.code ?? 'INVALID_NAME', `--csr ${path}: ${e.message}`, e.hint);
  }
  for (const san of sans) {
    if (san.type !== 'dns' && san.type !== 'ip') throw new McpkiError('INVALID_NAME', `--csr ${path}: "${san.value}" is not a DNS name or IP address`, 'ACME certificates carry DNS names and IP addresses only');
  }
  const cn = commonName(subject);
  if (cn !== undefined && !sans.some((s) => s.value.toLowerCase() === cn.toLowerCase().replace(/\.$/, ''))) {
    throw bad(`its subject CN ${JSON.stringify(cn)} is not among its subjectAltName names (${sans.map((s) => s.value).join(', ')})`, 'add the CN to subjectAltName, or leave the CN out of the request');
  }
  return { pem: toPem('CERTIFICATE REQUEST', der), publicKey, keyType, sans };
}

function commonName(subject: DerNode): string | undefined {
  try {
    for (const rdn of children(subject)) {
      for (const attribute of children(rdn)) {
        const [type, value] = children(attribute);
        if (decodeOid(type!) === OID_CN) return value!.content.toString('utf8');
      }
    }
  } catch {
    // an unreadable subject: the CA reads the names from subjectAltName
  }
  return undefined;
}
