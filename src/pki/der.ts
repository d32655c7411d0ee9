// A small DER encoder and reader: everything mcpki signs (certificates, CRLs, PKCS#12) is built from
// these functions, and only what node:crypto's X509Certificate cannot tell us is read back with `parse`.

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Bytes of the length octets of `length` (short form below 128, else 0x80|n and n big-endian bytes). */
function lengthSize(length: number): number {
  let size = 1;
  if (length >= 0x80) for (let n = length; n > 0; n = Math.floor(n / 256)) size++;
  return size;
}

/**
 * One allocation for a whole TLV, its parts copied in once: batch issuance builds thousands of certificates,
 * and a header and a concatenation per level cost more than the signature.
 */
function tlvOf(tag: number, parts: readonly Buffer[]): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  const size = lengthSize(length);
  const out = Buffer.allocUnsafe(1 + size + length);
  out[0] = tag;
  if (size === 1) out[1] = length;
  else {
    out[1] = 0x80 | (size - 1);
    for (let i = size, n = length; i > 1; i--, n = Math.floor(n / 256)) out[i] = n & 0xff;
  }
  let offset = 1 + size;
  for (const part of parts) offset += part.copy(out, offset);
  return out;
}

export function tlv(tag: number, content: Buffer): Buffer {
  return tlvOf(tag, [content]);
}

export function seq(...items: Buffer[]): Buffer {
  return tlvOf(TAG.SEQUENCE, items);
}

/** A DER SET OF: members sorted by their encoding, as DER requires. */
export function set(...items: Buffer[]): Buffer {
  return tlvOf(TAG.SET, [...items].sort(Buffer.compare));
}

/** INTEGER from a number, a bigint, or an unsigned big-endian magnitude. */
export function int(value: number | bigint | Buffer): Buffer {
  let bytes: Buffer;
  if (Buffer.isBuffer(value)) {
    let start = 0;
    while (start < value.length - 1 && value[start] === 0) start++;
    bytes = value.subarray(start);
    if (bytes.length === 0) bytes = Buffer.from([0]);
    if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  } else {
    const big = BigInt(value);
    if (big < 0n) throw new RangeError('negative INTEGER values are not used by mcpki');
    let hex = big.toString(16);
    if (hex.length % 2) hex = '0' + hex;
    bytes = Buffer.from(hex, 'hex');
    if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  }
  return tlv(TAG.INTEGER, bytes);
}

export function enumerated(value: number): Buffer {
  return tlv(TAG.ENUMERATED, int(value).subarray(2));
}

export function bool(value: boolean): Buffer {
  return tlv(TAG.BOOLEAN, Buffer.from([value ? 0xff : 0x00]));
}

export function nul(): Buffer {
  return Buffer.from([TAG.NULL, 0]);
}

const oidCache = new Map<string, Buffer>();

export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split('.').map((part) => BigInt(part));
  if (arcs.length < 2) throw new RangeError(`bad OID ${dotted}`);
  const bytes: number[] = [];
  const pushArc = (arc: bigint): void => {
    const chunk: number[] = [Number(arc & 0x7fn)];
    for (let rest = arc >> 7n; rest > 0n; rest >>= 7n) chunk.unshift(Number(rest & 0x7fn) | 0x80);
    bytes.push(...chunk);
  };
  pushArc(arcs[0]! * 40n + arcs[1]!);
  for (const arc of arcs.slice(2)) pushArc(arc);
  const encoded = tlv(TAG.OID, Buffer.from(bytes));
  oidCache.set(dotted, encoded);
  return encoded;
}

export function octets(content: Buffer): Buffer {
  return tlv(TAG.OCTET_STRING, content);
}

export function bits(content: Buffer, unusedBits = 0): Buffer {
  return tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), content]));
}

export function utf8(text: string): Buffer {
  return tlv(TAG.UTF8_STRING, Buffer.from(text, 'utf8'));
}

export function printable(text: string): Buffer {
  return tlv(TAG.PRINTABLE_STRING, Buffer.from(text, 'latin1'));
}

export function ia5(text: string): Buffer {
  return tlv(TAG.IA5_STRING, Buffer.from(text, 'latin1'));
}

export function bmp(text: string): Buffer {
  return tlv(TAG.BMP_STRING, Buffer.from(text, 'utf16le').swap16());
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. Seconds precision, Zulu. */
export function time(date: Date): Buffer {
  const iso = new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString(); // 2026-01-02T03:04:05.000Z
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '') + 'Z';
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(digits.slice(2), 'latin1'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(digits, 'latin1'));
}

/** Context-specific tag [n]: constructed (EXPLICIT, or IMPLICIT of a constructed type) or primitive (IMPLICIT). */
export function ctx(n: number, content: Buffer, constructed = true): Buffer {
  return tlv((constructed ? 0xa0 : 0x80) | n, content);
}

/** [n] EXPLICIT wrapping of a whole encoded value. */
export function explicit(n: number, encoded: Buffer): Buffer {
  return ctx(n, encoded, true);
}

/** [n] IMPLICIT: keeps the value's content, replaces its tag. */
export function implicit(n: number, encoded: Buffer, constructed = false): Buffer {
  return ctx(n, contentOf(encoded), constructed);
}

function contentOf(encoded: Buffer): Buffer {
  return parse(encoded).content;
}

export interface DerNode {
  tag: number;
  /** the whole TLV */
  raw: Buffer;
  /** the value bytes */
  content: Buffer;
}

/** Reads one TLV at `offset`. Throws on truncated or indefinite-length input. */
export function parse(buffer: Buffer, offset = 0): DerNode {
  if (offset + 2 > buffer.length) throw new RangeError('DER: truncated');
  const tag = buffer[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new RangeError('DER: high tag numbers are not supported');
  let length = buffer[offset + 1]!;
  let header = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new RangeError('DER: bad length');
    if (offset + 2 + count > buffer.length) throw new RangeError('DER: truncated');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buffer[offset + 2 + i]!;
    header += count;
  }
  const end = offset + header + length;
  if (end > buffer.length) throw new RangeError('DER: truncated');
  return { tag, raw: buffer.subarray(offset, end), content: buffer.subarray(offset + header, end) };
}

/** The members of a constructed value (SEQUENCE, SET, [n] constructed). */
export function children(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  for (let offset = 0; offset < node.content.length;) {
    const child = parse(node.content, offset);
    out.push(child);
    offset += child.raw.length;
  }
  return out;
}

export function decodeOid(node: DerNode): string {
  if (node.tag !== TAG.OID) throw new RangeError('DER: expected an OID');
  const arcs: bigint[] = [];
  let value = 0n;
  for (const byte of node.content) {
    value = (value << 7n) | BigInt(byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(value);
      value = 0n;
    }
  }
  const first = arcs.shift() ?? 0n;
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...arcs].join('.');
}

/** PEM armour for DER bytes. */
export function toPem(label: string, der: Buffer): string {
  const base64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += 64) lines.push(base64.slice(i, i + 64));
  const body = lines.join('\n');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** Every whole PEM block with the given label, as text (what Node's tls options take). */
export function pemBlocks(pem: string, label: string): string[] {
  return pem.match(new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`, 'g')) ?? [];
}

/** Every PEM block with the given label, as DER. */
export function fromPem(pem: string, label: string): Buffer[] {
  const begin = `-----BEGIN ${label}-----`.length;
  const end = `-----END ${label}-----`.length;
  return pemBlocks(pem, label).map((block) => Buffer.from(block.slice(begin, -end).replace(/\s+/g, ''), 'base64'));
}
