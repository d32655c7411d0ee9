// PKCS#12 (RFC 7292) export, and a reader for what it writes. The modern form matches OpenSSL 3's defaults: certificates in a PBES2
// (PBKDF2-HMAC-SHA256, AES-256-CBC) encrypted-data ContentInfo, the key in a pkcs8ShroudedKeyBag, and an
// HMAC-SHA256 MAC. The legacy form uses pbeWithSHAAnd3-KeyTripleDES-CBC and an HMAC-SHA1 MAC.
import { McpkiError, fix } from '../errors.js';
import { createCipheriv, createHash, createHmac, createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { bmp, children, decodeOid, explicit, implicit, int, nul, octets, oid, parse, seq, set } from './der.js';
import { decryptPbes2, encryptPbes2, type Encrypted } from './pbes2.js';

export interface Pkcs12Options {
  key: KeyObject;
  /** DER certificates, leaf first */
  certificates: readonly Buffer[];
  password: string;
  friendlyName?: string;
  /** 3DES + SHA-1 MAC, for old Java and Windows */
  legacy?: boolean;
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.2', // pkcs8ShroudedKeyBag
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  pbeSha3DesCbc: '1.2.840.113549.1.12.1.3',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

const PKCS12_ITERATIONS = 2048;
const SALT_BYTES = 16;

interface Hash {
  name: 'sha1' | 'sha256';
  oid: string;
  /** output length u in bytes */
  size: number;
}

const SHA1: Hash = { name: 'sha1', oid: OID.sha1, size: 20 };
const SHA256: Hash = { name: 'sha256', oid: OID.sha256, size: 32 };
/** Block size v of SHA-1 and SHA-256, in bytes. */
const BLOCK = 64;

/** RFC 7292 B.1: the password as a big-endian BMPString with a two-byte NUL terminator. */
function bmpPassword(password: string): Buffer {
  return Buffer.concat([Buffer.from(password, 'utf16le').swap16(), Buffer.alloc(2)]);
}

/** Repeats `input` to fill a multiple of BLOCK bytes (empty stays empty). */
function fillBlocks(input: Buffer): Buffer {
  const length = BLOCK * Math.ceil(input.length / BLOCK);
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = input[i % input.length]!;
  return out;
}

/** RFC 7292 Appendix B.2: id 1 = key, 2 = IV, 3 = MAC key. */
function pkcs12Kdf(
  hash: Hash,
  password: string,
  salt: Buffer,
  id: 1 | 2 | 3,
  iterations: number,
  length: number,
): Buffer {
  const diversifier = Buffer.alloc(BLOCK, id);
  const input = Buffer.concat([fillBlocks(salt), fillBlocks(bmpPassword(password))]);
  const output: Buffer[] = [];
  for (let produced = 0; produced < length; produced += hash.size) {
    let a = createHash(hash.name).update(diversifier).update(input).digest();
    for (let r = 1; r < iterations; r++) a = createHash(hash.name).update(a).digest();
    output.push(a);
    addBlockPlusOne(input, fillBlocks(a));
  }
  return Buffer.concat(output).subarray(0, length);
}

/** Step 6C: every BLOCK-byte block I_j of `input` becomes (I_j + B + 1) mod 2^(8·BLOCK), in place. */
function addBlockPlusOne(input: Buffer, b: Buffer): void {
  for (let offset = 0; offset < input.length; offset += BLOCK) {
    let carry = 1;
    for (let i = BLOCK - 1; i >= 0; i--) {
      const sum = input[offset + i]! + b[i]! + carry;
      input[offset + i] = sum & 0xff;
      carry = sum >> 8;
    }
  }
}

function encrypt3Des(password: string, plaintext: Buffer): Encrypted {
  const salt = randomBytes(SALT_BYTES);
  const key = pkcs12Kdf(SHA1, password, salt, 1, PKCS12_ITERATIONS, 24);
  const iv = pkcs12Kdf(SHA1, password, salt, 2, PKCS12_ITERATIONS, 8);
  const cipher = createCipheriv('des-ede3-cbc', key, iv);
  const algorithm = seq(oid(OID.pbeSha3DesCbc), seq(octets(salt), int(PKCS12_ITERATIONS)));
  return { algorithm, ciphertext: Buffer.concat([cipher.update(plaintext), cipher.final()]) };
}

/** EncryptedPrivateKeyInfo DER. */
function shroudKey(options: Pkcs12Options): Buffer {
  const { key, password } = options;
  if (!options.legacy) {
    return key.export({ type: 'pkcs8', format: 'der', cipher: 'aes-256-cbc', passphrase: password });
  }
  const { algorithm, ciphertext } = encrypt3Des(password, key.export({ type: 'pkcs8', format: 'der' }));
  return seq(algorithm, octets(ciphertext));
}

function attribute(type: string, value: Buffer): Buffer {
  return seq(oid(type), set(value));
}

function safeBag(bagId: string, value: Buffer, attributes: Buffer[]): Buffer {
  const items = [oid(bagId), explicit(0, value)];
  if (attributes.length > 0) items.push(set(...attributes));
  return seq(...items);
}

function certBag(der: Buffer, attributes: Buffer[]): Buffer {
  return safeBag(OID.certBag, seq(oid(OID.x509Certificate), explicit(0, octets(der))), attributes);
}

function dataContentInfo(content: Buffer): Buffer {
  return seq(oid(OID.data), explicit(0, octets(content)));
}

function encryptedContentInfo(options: Pkcs12Options, content: Buffer): Buffer {
  const { algorithm, ciphertext } = options.legacy
    ? encrypt3Des(options.password, content)
    : encryptPbes2(options.password, content, PKCS12_ITERATIONS);
  const encryptedData = seq(int(0), seq(oid(OID.data), algorithm, implicit(0, octets(ciphertext))));
  return seq(oid(OID.encryptedData), explicit(0, encryptedData));
}

function macData(options: Pkcs12Options, authSafe: Buffer): Buffer {
  const hash = options.legacy ? SHA1 : SHA256;
  const salt = randomBytes(SALT_BYTES);
  const key = pkcs12Kdf(hash, options.password, salt, 3, PKCS12_ITERATIONS, hash.size);
  const digest = createHmac(hash.name, key).update(authSafe).digest();
  return seq(seq(seq(oid(hash.oid), nul()), octets(digest)), octets(salt), int(PKCS12_ITERATIONS));
}

/** An empty password leaves the key readable by anyone who gets the file: refused, never written. */
export function emptyPkcs12Password(): McpkiError {
  return new McpkiError(
    'PASSPHRASE_MISSING',
    'the PKCS#12 password is empty (the first line of its password file is empty)',
    fix(
      "put the password on the first line of the password file ({--p12-password-file FILE|the p12 target's passwordFile:})",
    ),
  );
}

export function encodePkcs12(options: Pkcs12Options): Buffer {
  if (options.password === '') throw emptyPkcs12Password();
  const [leaf, ...chain] = options.certificates;
  if (!leaf) throw new RangeError('PKCS#12 needs at least the leaf certificate');
  // localKeyID pairs the key with its certificate (keytool needs it to see a PrivateKeyEntry)
  const leafAttributes = [attribute(OID.localKeyId, octets(createHash('sha1').update(leaf).digest()))];
  if (options.friendlyName !== undefined) leafAttributes.push(attribute(OID.friendlyName, bmp(options.friendlyName)));

  const certs = seq(certBag(leaf, leafAttributes), ...chain.map((der) => certBag(der, [])));
  const keys = seq(safeBag(OID.keyBag, shroudKey(options), leafAttributes));
  const authSafe = seq(encryptedContentInfo(options, certs), dataContentInfo(keys));
  return seq(int(3), dataContentInfo(authSafe), macData(options, authSafe));
}

/**
 * Opens a PKCS#12 file of the modern form mcpki writes (PBES2/AES-256-CBC): its certificates in order and
 * its private keys. Throws on anything else (legacy encryption, wrong password, malformed input).
 */
export function openPkcs12(pfx: Buffer, password: string): { certificates: Buffer[]; keys: KeyObject[] } {
  const top = children(parse(pfx));
  const authSafeInfo = children(top[1]!);
  if (decodeOid(authSafeInfo[0]!) !== OID.data) throw new RangeError('authSafe is not data');
  const authSafe = parse(parse(children(authSafeInfo[1]!)[0]!.raw).content);
  const certs: Buffer[] = [];
  const keys: KeyObject[] = [];
  for (const info of children(authSafe)) {
    const [type, wrapped] = children(info);
    const kind = decodeOid(type!);
    let safeContents: Buffer;
    if (kind === OID.data) {
      safeContents = parse(children(wrapped!)[0]!.raw).content;
    } else if (kind === OID.encryptedData) {
      const encryptedData = children(wrapped!)[0]!;
      const [, eci] = children(encryptedData);
      const [, algorithm, ciphertext] = children(eci!);
      safeContents = decryptPbes2(algorithm!, ciphertext!.content, password);
    } else {
      throw new RangeError('unsupported content type');
    }
    for (const bag of children(parse(safeContents))) {
      const [bagId, value] = children(bag);
      const id = decodeOid(bagId!);
      const inner = children(value!)[0]!;
      if (id === OID.certBag) {
        certs.push(parse(children(children(inner)[1]!)[0]!.raw).content);
      } else if (id === OID.keyBag) {
        keys.push(createPrivateKey({ key: inner.raw, format: 'der', type: 'pkcs8', passphrase: password }));
      }
    }
  }
  return { certificates: certs, keys };
}
