import { McpkiError } from '../errors.js';
import { ctx, ia5, seq } from './der.js';
import { ipToBytes, isIP, normalizeDnsName, type San } from './names.js';

/** What the development CA may sign for unless told otherwise. */
export const DEFAULT_PERMITTED = ['localhost', '.localhost', '.test', '.internal', '.home.arpa', '127.0.0.0/8', '::1/128'];

export interface Permitted {
  /** DNS subtrees; a leading dot means "subdomains only", as OpenSSL reads it */
  dns: string[];
  /** CIDRs, e.g. 127.0.0.0/8 */
  ip: string[];
}

/** Parses --permit values (DNS names, optionally with a leading dot, or IPs/CIDRs). */
export function parsePermitted(values: readonly string[]): Permitted {
  const out: Permitted = { dns: [], ip: [] };
  for (const raw of values) {
    const value = raw.trim().toLowerCase();
    const [address, prefix] = value.split('/');
    if (isIP(address!) !== 0) {
      const family = isIP(address!);
      const max = family === 4 ? 32 : 128;
      const bitsText = prefix ?? String(max);
      const bits = Number(bitsText);
      if (!/^\d+$/.test(bitsText) || bits > max) {
        throw new McpkiError('INVALID_NAME', `invalid network "${raw}": prefix must be 0-${max}`, 'write a CIDR such as 10.0.0.0/8 or fd00::/8');
      }
      const bytes = ipToBytes(address!);
      if (!bytes.equals(applyMask(bytes, bits))) {
        throw new McpkiError('INVALID_NAME', `invalid network "${raw}": host bits are set`, `write the network address, e.g. ${formatNetwork(applyMask(bytes, bits), bits)}`);
      }
      pushUnique(out.ip, `${address}/${bits}`);
      continue;
    }
    if (value.includes('/')) {
      throw new McpkiError('INVALID_NAME', `invalid network "${raw}"`, 'write a CIDR such as 10.0.0.0/8 or a DNS name such as .corp.example');
    }
    const leadingDot = value.startsWith('.');
    const name = normalizeDnsName(leadingDot ? value.slice(1) : value, raw);
    if (name.startsWith('*')) {
      throw new McpkiError('INVALID_NAME', `invalid permitted name "${raw}": no wildcards in name constraints`, 'write .example.test to permit every name below example.test');
    }
    pushUnique(out.dns, (leadingDot ? '.' : '') + name);
  }
  return out;
}

function pushUnique(list: string[], value: string): void {
  if (!list.includes(value)) list.push(value);
}

function maskBytes(length: number, bits: number): Buffer {
  const mask = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    const remaining = bits - i * 8;
    mask[i] = remaining >= 8 ? 0xff : remaining <= 0 ? 0 : (0xff << (8 - remaining)) & 0xff;
  }
  return mask;
}

function applyMask(bytes: Buffer, bits: number): Buffer {
  const mask = maskBytes(bytes.length, bits);
  return Buffer.from(bytes.map((b, i) => b & mask[i]!));
}

export function formatNetwork(bytes: Buffer, bits: number): string {
  if (bytes.length === 4) return `${[...bytes].join('.')}/${bits}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return `${new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1)}/${bits}`;
}

/** The nameConstraints extension value (permittedSubtrees only). */
export function encodeNameConstraints(permitted: Permitted): Buffer {
  const subtrees: Buffer[] = [];
  for (const dns of permitted.dns) subtrees.push(seq(ctx(2, ia5(dns).subarray(2), false)));
  for (const cidr of permitted.ip) {
    const [address, bits] = cidr.split('/');
    const bytes = ipToBytes(address!);
    subtrees.push(seq(ctx(7, Buffer.concat([bytes, maskBytes(bytes.length, Number(bits))]), false)));
  }
  return seq(ctx(0, Buffer.concat(subtrees), true));
}

export function dnsPermitted(name: string, constraint: string): boolean {
  const host = name.toLowerCase();
  const base = constraint.toLowerCase();
  if (base.startsWith('.')) return host.endsWith(base) && host.length > base.length;
  return host === base || host.endsWith('.' + base);
}

export function ipPermitted(address: string, cidr: string): boolean {
  const [network, bits] = cidr.split('/');
  const a = ipToBytes(address);
  const n = ipToBytes(network!);
  if (a.length !== n.length) return false;
  return applyMask(a, Number(bits)).equals(n);
}

/**
 * Whether a name is inside the CA's constraints, with RFC 5280 semantics: a name type with no subtree is
 * unconstrained. Returns the reason when it is not.
 */
export function checkPermitted(san: San, permitted: Permitted | null): string | null {
  if (!permitted) return null;
  if (san.type === 'dns' && permitted.dns.length > 0) {
    if (permitted.dns.some((c) => dnsPermitted(san.value, c))) return null;
    return `the CA may only sign DNS names under ${permitted.dns.join(', ')}`;
  }
  if (san.type === 'ip' && permitted.ip.length > 0) {
    if (permitted.ip.some((c) => ipPermitted(san.value, c))) return null;
    return `the CA may only sign IP addresses in ${permitted.ip.join(', ')}`;
  }
  return null;
}

export function assertPermitted(sans: readonly San[], permitted: Permitted | null): void {
  for (const san of sans) {
    const reason = checkPermitted(san, permitted);
    if (reason) {
      throw new McpkiError(
        'NAME_NOT_PERMITTED',
        `"${san.value}" is outside the CA's name constraints: ${reason}`,
        'use a permitted name, or create the CA with "mcpki init --force --permit NAME" to allow more',
      );
    }
  }
}
