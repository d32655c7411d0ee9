// A certificate signing request made elsewhere (`mcpki acme issue --csr FILE`): its key never reaches mcpki.
// The file is not mcpki's: read as a bounded regular file, one PKCS#10 request and nothing that looks like a
// key, its self-signature verified, its key a type mcpki issues for, and its names (subjectAltName, with the
// CN among them) checked like -d names before any order is placed.
import type { KeyObject } from 'node:crypto';
import { McpkiError } from '../errors.js';
import { INPUT_LIMITS, readInputFile } from '../fs/read.js';
import { parseCsr } from '../pki/csr.js';
import { fromPem, toPem } from '../pki/der.js';
import { KEY_TYPES, type KeyType } from '../pki/keys.js';
import type { San } from '../pki/names.js';

export interface ExternalCsr {
  /** the request re-encoded from its DER (whatever surrounded the PEM block is dropped) */
  pem: string;
  publicKey: KeyObject;
  keyType: KeyType;
  /** the names of its subjectAltName, checked and normalised as -d names are */
  sans: San[];
}

const HINT =
  'give a PEM file made by e.g. "openssl req -new -key KEY -subj /CN=NAME -addext subjectAltName=DNS:NAME -out NAME.csr"';

export function readExternalCsr(path: string): ExternalCsr {
  const bytes = readInputFile(path, { what: '--csr', maxBytes: INPUT_LIMITS.pem, hint: HINT });
  const bad = (why: string, hint = HINT): McpkiError => new McpkiError('INVALID_INPUT', `--csr ${path}: ${why}`, hint);
  const text = bytes.toString('latin1');
  for (const match of text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)) {
    if (match[1] !== 'CERTIFICATE REQUEST' && match[1] !== 'NEW CERTIFICATE REQUEST') {
      throw bad(
        `holds a ${match[1]} block, not only a certificate request`,
        `${HINT}; the key stays where it is, mcpki never needs it`,
      );
    }
  }
  let ders = [...fromPem(text, 'CERTIFICATE REQUEST'), ...fromPem(text, 'NEW CERTIFICATE REQUEST')];
  if (ders.length === 0 && bytes[0] === 0x30) ders = [bytes];
  if (ders.length === 0) throw bad('holds no certificate request (no -----BEGIN CERTIFICATE REQUEST----- block)');
  if (ders.length > 1) throw bad(`holds ${ders.length} certificate requests; give one`);
  const der = ders[0]!;

  let parsed;
  try {
    parsed = parseCsr(der, path);
  } catch (error) {
    if (error instanceof McpkiError && error.code === 'INVALID_KEY_TYPE')
      throw bad(
        `its key is not one mcpki issues for (${error.message.replace(/^.*has an? /, '').replace(/, which mcpki does not sign$/, '')})`,
        `make the key with one of: ${KEY_TYPES.join(', ')}`,
      );
    throw error;
  }
  const { publicKey, keyType, sans } = parsed;
  if (sans.length === 0) throw bad('has no subjectAltName: ACME CAs certify only the names listed there', HINT);
  for (const san of sans) {
    if (san.type !== 'dns' && san.type !== 'ip') {
      throw new McpkiError(
        'INVALID_NAME',
        `--csr ${path}: "${san.value}" is not a DNS name or IP address; ACME certificates carry DNS names and IP addresses only`,
        'leave e-mail addresses and URIs out of the request (or use the local CA: mcpki sign)',
      );
    }
  }
  const cn = parsed.subject.find((a) => a.type === 'CN')?.value;
  if (cn !== undefined && !sans.some((s) => s.value.toLowerCase() === cn.toLowerCase().replace(/\.$/, ''))) {
    throw bad(
      `its subject CN ${JSON.stringify(cn)} is not among its subjectAltName names (${sans.map((s) => s.value).join(', ')})`,
      'add the CN to subjectAltName, or leave the CN out of the request',
    );
  }
  return { pem: toPem('CERTIFICATE REQUEST', der), publicKey, keyType, sans };
}
