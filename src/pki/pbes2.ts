// PBES2 (RFC 8018): PBKDF2-HMAC-SHA256 and AES-256-CBC, for PKCS#12 bags and the encrypted root key.
import { createCipheriv, createDecipheriv, pbkdf2Sync, randomBytes, type KeyObject } from 'node:crypto';
import { children, decodeOid, int, nul, octets, oid, seq, toPem, type DerNode } from './der.js';

const OID = {
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSha256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
} as const;

/** Iterations for keys kept at rest behind a passphrase a person chose (OWASP's figure for PBKDF2-SHA256). */
export const AT_REST_ITERATIONS = 600_000;

export interface Encrypted {
  /** AlgorithmIdentifier DER */
  algorithm: Buffer;
  ciphertext: Buffer;
}

export function encryptPbes2(password: string, plaintext: Buffer, iterations: number): Encrypted {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  // PBES2 takes the password as its UTF-8 bytes, not as a BMPString (as OpenSSL and Java do)
  const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const algorithm = seq(
    oid(OID.pbes2),
    seq(
      seq(oid(OID.pbkdf2), seq(octets(salt), int(iterations), seq(oid(OID.hmacWithSha256), nul()))),
      seq(oid(OID.aes256Cbc), octets(iv)),
    ),
  );
  return { algorithm, ciphertext: Buffer.concat([cipher.update(plaintext), cipher.final()]) };
}

/**
 * Decrypts what encryptPbes2 made (PBKDF2 with HMAC-SHA256, AES-256-CBC), given its AlgorithmIdentifier.
 * Throws RangeError for any other scheme; a wrong password fails in the decipher.
 */
export function decryptPbes2(algorithm: DerNode, ciphertext: Buffer, password: string): Buffer {
  const [algOid, params] = children(algorithm);
  if (!algOid || decodeOid(algOid) !== OID.pbes2 || !params) throw new RangeError('not PBES2');
  const [kdf, scheme] = children(params);
  const [, kdfParams] = children(kdf!);
  const [salt, iterations, ...rest] = children(kdfParams!);
  const prf = rest.find((node) => node.tag === 0x30);
  if (prf && decodeOid(children(prf)[0]!) !== OID.hmacWithSha256) throw new RangeError('unsupported PRF');
  const [schemeOid, iv] = children(scheme!);
  if (decodeOid(schemeOid!) !== OID.aes256Cbc) throw new RangeError('unsupported cipher');
  const key = pbkdf2Sync(
    Buffer.from(password, 'utf8'),
    salt!.content,
    Number(BigInt('0x' + iterations!.content.toString('hex'))),
    32,
    'sha256',
  );
  const decipher = createDecipheriv('aes-256-cbc', key, iv!.content);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

/** PKCS#8 EncryptedPrivateKeyInfo, PEM; readable by OpenSSL and node:crypto's createPrivateKey. */
export function encryptedPrivateKeyPem(key: KeyObject, passphrase: string, iterations = AT_REST_ITERATIONS): string {
  const { algorithm, ciphertext } = encryptPbes2(passphrase, key.export({ type: 'pkcs8', format: 'der' }), iterations);
  return toPem('ENCRYPTED PRIVATE KEY', seq(algorithm, octets(ciphertext)));
}
