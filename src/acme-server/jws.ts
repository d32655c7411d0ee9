// RFC 8555 §6.2 request authentication: a flattened JWS whose protected header names the algorithm, the
// nonce, the URL and either the account's key (jwk: newAccount, revokeCert by certificate key) or the
// account's URL (kid: everything else). Parsing is strict: anything this module does not understand is
// refused as malformed rather than ignored, since a lenient parser is where signature bypasses live.
import { createHmac, createPublicKey, timingSafeEqual, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { jwkThumbprint } from '../pki/keys.js';
import { problem } from './problem.js';

/** Account key algorithms accepted (RFC 7518 names), each with its key type, curve and hash. */
const ALGORITHMS = {
  ES256: { kty: 'EC', crv: 'P-256', hash: 'sha256', bytes: 64 },
  ES384: { kty: 'EC', crv: 'P-384', hash: 'sha384', bytes: 96 },
  ES512: { kty: 'EC', crv: 'P-521', hash: 'sha512', bytes: 132 },
  RS256: { kty: 'RSA', crv: undefined, hash: 'sha256', bytes: 0 },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', hash: null, bytes: 64 },
} as const;

/** OpenSSL's curve names (KeyObject.asymmetricKeyDetails) to JWK's. */
const CURVE_NAMES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

export type JwsAlgorithm = keyof typeof ALGORITHMS;
export const JWS_ALGORITHMS = Object.keys(ALGORITHMS) as JwsAlgorithm[];

const MIN_RSA_BITS = 2048;
/** A bigger modulus buys no security an ACME account needs, and costs the server time on every request. */
const MAX_RSA_BITS = 8192;
const B64URL = /^[A-Za-z0-9_-]*$/;

export interface ProtectedHeader {
  alg: JwsAlgorithm;
  nonce?: string;
  url: string;
  jwk?: JsonWebKey;
  kid?: string;
}

export interface ParsedJws {
  header: ProtectedHeader;
  /** the payload's JSON value, or undefined for POST-as-GET (an empty payload) */
  payload: unknown;
  /** what the signature covers: ASCII(protected '.' payload) */
  signingInput: Buffer;
  signature: Buffer;
  /** the raw base64url parts, for the EAB binding check */
  raw: { protected: string; payload: string; signature: string };
}

/** Strict base64url (no padding, no other characters) to bytes. */
export function decodeBase64url(text: string, what: string): Buffer {
  if (typeof text !== 'string' || !B64URL.test(text) || text.length % 4 === 1)
    throw problem('malformed', `${what} is not base64url`);
  return Buffer.from(text, 'base64url');
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw problem('malformed', `${what} is not JSON`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses the request body as a flattened JWS (RFC 7515 §7.2.2) with the header rules of RFC 8555 §6.2.
 * Does not verify the signature: the key depends on `jwk`/`kid`, which the caller resolves.
 */
export function parseJws(body: Buffer | string): ParsedJws {
  const outer = parseJson(Buffer.isBuffer(body) ? body : Buffer.from(body), 'the request body');
  if (!isObject(outer)) throw problem('malformed', 'the request body is not a JWS object');
  for (const key of Object.keys(outer)) {
    if (key === 'signatures')
      throw problem(
        'malformed',
        'the JWS must use the flattened JSON serialization with one signature (RFC 8555 §6.2)',
      );
    if (key === 'header') throw problem('malformed', 'the JWS must not have an unprotected header (RFC 8555 §6.2)');
    if (key !== 'protected' && key !== 'payload' && key !== 'signature')
      throw problem('malformed', `the JWS has an unknown member "${key.slice(0, 40)}"`);
  }
  const { protected: protectedText, payload: payloadText, signature: signatureText } = outer;
  if (typeof protectedText !== 'string' || typeof payloadText !== 'string' || typeof signatureText !== 'string') {
    throw problem('malformed', 'the JWS needs "protected", "payload" and "signature" strings');
  }
  const header = parseHeader(parseJson(decodeBase64url(protectedText, 'the protected header'), 'the protected header'));
  const payloadBytes = decodeBase64url(payloadText, 'the payload');
  const payload = payloadText === '' ? undefined : parseJson(payloadBytes, 'the payload');
  return {
    header,
    payload,
    signingInput: Buffer.from(`${protectedText}.${payloadText}`, 'ascii'),
    signature: decodeBase64url(signatureText, 'the signature'),
    raw: { protected: protectedText, payload: payloadText, signature: signatureText },
  };
}

function parseHeader(value: unknown): ProtectedHeader {
  if (!isObject(value)) throw problem('malformed', 'the protected header is not a JSON object');
  const { alg, nonce, url, jwk, kid } = value;
  if (typeof alg !== 'string' || !(alg in ALGORITHMS)) {
    throw problem(
      'badSignatureAlgorithm',
      `the algorithm ${JSON.stringify(String(alg).slice(0, 20))} is not supported; use one of ${JWS_ALGORITHMS.join(', ')}`,
    );
  }
  if (typeof url !== 'string' || url === '')
    throw problem('malformed', 'the protected header has no "url" (RFC 8555 §6.4)');
  if (nonce !== undefined && typeof nonce !== 'string')
    throw problem('badNonce', 'the "nonce" in the protected header is not a string');
  if ((jwk === undefined) === (kid === undefined))
    throw problem('malformed', 'the protected header must hold exactly one of "jwk" and "kid" (RFC 8555 §6.2)');
  if (kid !== undefined && typeof kid !== 'string')
    throw problem('malformed', 'the "kid" in the protected header is not a string');
  if (jwk !== undefined && !isObject(jwk))
    throw problem('malformed', 'the "jwk" in the protected header is not a JSON object');
  if (value.crit !== undefined)
    throw problem('malformed', 'the protected header has "crit", which this server does not support');
  return {
    alg: alg as JwsAlgorithm,
    url,
    ...(nonce !== undefined ? { nonce } : {}),
    ...(jwk ? { jwk: jwk as JsonWebKey } : {}),
    ...(kid ? { kid } : {}),
  };
}

/** The public key of a JWK, refused unless it is one of the accepted types (never a private or symmetric key). */
export function importAccountKey(jwk: JsonWebKey): KeyObject {
  if (!isObject(jwk)) throw problem('badPublicKey', 'the account key is not a JWK object');
  if ('d' in jwk || jwk.kty === 'oct')
    throw problem('badPublicKey', 'the JWK holds private or symmetric key material; send the public key only');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk, format: 'jwk' });
  } catch {
    throw problem('badPublicKey', 'the account key is not a valid public JWK');
  }
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS)
      throw problem(
        'badPublicKey',
        `an RSA account key must have ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits, not ${bits}`,
      );
    const exponent = key.asymmetricKeyDetails?.publicExponent ?? 0n;
    if (exponent < 3n || exponent % 2n === 0n)
      throw problem('badPublicKey', 'the RSA account key has an unusable public exponent');
  } else if (type !== 'ec' && type !== 'ed25519') {
    throw problem(
      'badPublicKey',
      `account keys of type ${type ?? 'unknown'} are not supported; use ECDSA P-256/P-384/P-521, RSA or Ed25519`,
    );
  }
  return key;
}

/** Verifies the JWS signature with `key`, whose type must be the one `alg` names. */
export function verifyJws(jws: ParsedJws, key: KeyObject): void {
  const spec = ALGORITHMS[jws.header.alg];
  // the key's JWK type and curve from its details (exporting it as a JWK on every request costs more)
  const type = key.asymmetricKeyType;
  const kty = type === 'ec' ? 'EC' : type === 'rsa' ? 'RSA' : type === 'ed25519' ? 'OKP' : String(type);
  const crv =
    type === 'ec'
      ? (CURVE_NAMES[key.asymmetricKeyDetails?.namedCurve ?? ''] ?? key.asymmetricKeyDetails?.namedCurve)
      : type === 'ed25519'
        ? 'Ed25519'
        : undefined;
  if (kty !== spec.kty || (spec.crv !== undefined && crv !== spec.crv)) {
    throw problem(
      'badSignatureAlgorithm',
      `the algorithm ${jws.header.alg} does not match the account key (${kty}${crv ? ' ' + crv : ''})`,
    );
  }
  if (spec.bytes > 0 && jws.signature.length !== spec.bytes)
    throw problem('malformed', 'the JWS signature does not verify');
  let ok = false;
  try {
    ok = verify(
      spec.hash,
      jws.signingInput,
      spec.kty === 'EC' ? { key, dsaEncoding: 'ieee-p1363' } : key,
      jws.signature,
    );
  } catch {
    ok = false;
  }
  if (!ok) throw problem('malformed', 'the JWS signature does not verify');
}

/** The public JWK of a key in its canonical members only (what is stored and compared). */
export function publicJwk(key: KeyObject): JsonWebKey {
  const jwk = key.export({ format: 'jwk' });
  return jwk.kty === 'EC'
    ? { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }
    : jwk.kty === 'RSA'
      ? { kty: jwk.kty, n: jwk.n, e: jwk.e }
      : { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
}

const HMAC_ALGORITHMS = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' } as const;

/**
 * RFC 8555 §7.3.4 external account binding: an inner JWS over the account's public key, MAC'd with the EAB
 * key. Returns the EAB key id after checking the MAC, the url and that the payload is the outer JWS's key.
 */
export function verifyEabBinding(
  binding: unknown,
  outerJwk: JsonWebKey,
  url: string,
  lookupKey: (kid: string) => Buffer | undefined,
): string {
  if (!isObject(binding)) throw problem('malformed', 'externalAccountBinding is not a JWS object');
  const keys = Object.keys(binding).sort().join(',');
  if (keys !== 'payload,protected,signature')
    throw problem(
      'malformed',
      'externalAccountBinding must be a flattened JWS with protected, payload and signature only',
    );
  const { protected: p, payload, signature } = binding as Record<string, unknown>;
  if (typeof p !== 'string' || typeof payload !== 'string' || typeof signature !== 'string')
    throw problem('malformed', 'externalAccountBinding members must be strings');
  const header = parseJson(decodeBase64url(p, 'the EAB protected header'), 'the EAB protected header');
  if (!isObject(header)) throw problem('malformed', 'the EAB protected header is not an object');
  const alg = header.alg;
  if (typeof alg !== 'string' || !(alg in HMAC_ALGORITHMS))
    throw problem('badSignatureAlgorithm', 'the EAB must be MAC-ed with HS256, HS384 or HS512');
  if (header.nonce !== undefined)
    throw problem('malformed', 'the EAB protected header must not have a nonce (RFC 8555 §7.3.4)');
  if (header.url !== url) throw problem('unauthorized', "the EAB protected header's url is not this newAccount URL");
  if (typeof header.kid !== 'string' || header.kid === '')
    throw problem('malformed', 'the EAB protected header has no kid');
  const secret = lookupKey(header.kid);
  if (!secret)
    throw problem(
      'unauthorized',
      `the external account key ${JSON.stringify(header.kid.slice(0, 64))} is unknown or revoked`,
    );
  const expected = createHmac(HMAC_ALGORITHMS[alg as keyof typeof HMAC_ALGORITHMS], secret)
    .update(`${p}.${payload}`)
    .digest();
  const given = decodeBase64url(signature, 'the EAB signature');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    throw problem('unauthorized', 'the external account binding MAC does not verify with that key');
  const inner = parseJson(decodeBase64url(payload, 'the EAB payload'), 'the EAB payload');
  if (!isObject(inner)) throw problem('malformed', 'the EAB payload is not a JWK');
  let innerKey: KeyObject;
  try {
    innerKey = importAccountKey(inner as JsonWebKey);
  } catch {
    throw problem('malformed', 'the EAB payload is not a public JWK');
  }
  if (jwkThumbprint(innerKey) !== jwkThumbprint(importAccountKey(outerJwk)))
    throw problem('unauthorized', 'the external account binding is for another account key');
  return header.kid;
}
