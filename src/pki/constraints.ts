import { McpkiError, fix } from '../errors.js';
import { ctx, seq } from './der.js';
import { ipToBytes, ipv4Form, isIP, normalizeDnsName, type San } from './names.js';

/** What the development CA may sign for unless told otherwise. */
export const DEFAULT_PERMITTED = [
  'localhost',
  '.localhost',
  '.test',
  '.internal',
  '.home.arpa',
  '127.0.0.0/8',
  '::1/128',
];

export interface Permitted {
  /** DNS subtrees; a leading dot means "subdomains only", as OpenSSL reads it; '' permits every name */
  dns: string[];
  /** CIDRs, e.g. 127.0.0.0/8 */
  ip: string[];
  /** URI host subtrees (RFC 5280 4.2.1.10): "x" is the host x only, ".x" every host below x */
  uri: string[];
  /** rfc822Name subtrees: "x" is every mailbox at host x, ".x" every mailbox below x */
  email: string[];
}

export interface PermitOptions {
  /** accept a permit that covers a whole TLD, every name, or most of the IP address space */
  allowBroad?: boolean;
}

/**
 * Single-label names that are not delegated on the public internet (RFC 6761, RFC 6762, ICANN's .internal and
 * its never-delegated collision names): permitting one of them does not let the CA sign for public sites.
 */
const PRIVATE_TLDS = new Set([
  'localhost',
  'test',
  'example',
  'invalid',
  'local',
  'internal',
  'lan',
  'home',
  'corp',
  'intranet',
  'private',
]);

/** The shortest prefixes --permit takes without --allow-broad-permit (10.0.0.0/8 and fc00::/7 are fine). */
const MIN_PREFIX = { 4: 8, 6: 7 } as const;

function broad(raw: string, what: string, options: PermitOptions): boolean {
  if (options.allowBroad) return true;
  throw new McpkiError(
    'INVALID_NAME',
    `--permit ${raw} ${what}: the name constraint would no longer limit what the CA can sign`,
    fix(
      'permit a narrower name or network (e.g. .corp.example, 10.0.0.0/8); to accept it anyway, add {--allow-broad-permit}',
    ),
  );
}

/** The --permit values (after parsing) that cover a whole TLD, every name, or most of an address family. */
export function broadPermits(values: readonly string[]): string[] {
  return values.filter((value) => {
    try {
      parsePermitted([value]);
      return false;
    } catch (error) {
      return error instanceof McpkiError && /--allow-broad-permit/.test(error.hint ?? '');
    }
  });
}

/**
 * Parses --permit values: DNS names (a leading dot: subdomains only), IPs/CIDRs, or a SPIFFE trust domain
 * (spiffe://td). A DNS name also becomes a URI host and an e-mail domain subtree, so every name type the CA
 * can put in a certificate is constrained.
 */
export function parsePermitted(values: readonly string[], options: PermitOptions = {}): Permitted {
  const out: Permitted = { dns: [], ip: [], uri: [], email: [] };
  for (const raw of values) {
    const value = raw.trim().toLowerCase();
    if (/^[a-z][a-z0-9+.-]*:/.test(value) && !/^[0-9a-f:]+(\/\d+)?$/.test(value)) {
      pushUnique(out.uri, spiffeTrustDomain(raw, value));
      continue;
    }
    const [address, prefix] = value.split('/');
    if (isIP(address!) !== 0) {
      const family = isIP(address!) as 4 | 6;
      const max = family === 4 ? 32 : 128;
      const bitsText = prefix ?? String(max);
      const bits = Number(bitsText);
      if (!/^\d+$/.test(bitsText) || bits > max) {
        throw new McpkiError(
          'INVALID_NAME',
          `invalid network "${raw}": prefix must be 0-${max}`,
          'write a CIDR such as 10.0.0.0/8 or fd00::/8',
        );
      }
      const bytes = ipToBytes(address!);
      if (!bytes.equals(applyMask(bytes, bits))) {
        throw new McpkiError(
          'INVALID_NAME',
          `invalid network "${raw}": host bits are set`,
          `write the network address, e.g. ${formatNetwork(applyMask(bytes, bits), bits)}`,
        );
      }
      if (bits < MIN_PREFIX[family]) {
        broad(
          raw,
          bits === 0 ? `permits every IPv${family} address` : `permits 1/${2 ** bits} of all IPv${family} addresses`,
          options,
        );
      }
      pushUnique(out.ip, `${address}/${bits}`);
      continue;
    }
    if (value.includes('/')) {
      const form = ipv4Form(address!);
      if (form)
        throw new McpkiError(
          'INVALID_NAME',
          `ambiguous network "${raw}": ${address} is a shortened or non-decimal form of ${form}`,
          `write the network as ${form}/${prefix}`,
        );
      throw new McpkiError(
        'INVALID_NAME',
        `invalid network "${raw}"`,
        'write a CIDR such as 10.0.0.0/8 or a DNS name such as .corp.example',
      );
    }
    if (value === '.' || value === '') {
      broad(raw === '' ? '""' : raw, 'permits every DNS name', options);
      for (const list of [out.dns, out.uri, out.email]) pushUnique(list, '');
      continue;
    }
    const leadingDot = value.startsWith('.');
    const name = normalizeDnsName(leadingDot ? value.slice(1) : value, raw);
    if (name.startsWith('*')) {
      throw new McpkiError(
        'INVALID_NAME',
        `invalid permitted name "${raw}": no wildcards in name constraints`,
        'write .example.test to permit every name below example.test',
      );
    }
    if (!name.includes('.') && !PRIVATE_TLDS.has(name))
      broad(raw, `permits every name under the top-level domain .${name}`, options);
    if (leadingDot) {
      for (const list of [out.dns, out.uri, out.email]) pushUnique(list, `.${name}`);
    } else {
      // a DNS subtree "x" covers x and every name below it; URI and e-mail subtrees need both forms for that
      pushUnique(out.dns, name);
      for (const list of [out.uri, out.email]) {
        pushUnique(list, name);
        pushUnique(list, `.${name}`);
      }
    }
  }
  return out;
}

/** spiffe://td (optionally with a trailing "/") → td, the URI host subtree of a SPIFFE trust domain. */
function spiffeTrustDomain(raw: string, value: string): string {
  const hint = 'write a SPIFFE trust domain as spiffe://prod.example (no path), or a DNS name such as .corp.example';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new McpkiError('INVALID_NAME', `invalid permitted URI "${raw}"`, hint);
  }
  if (url.protocol !== 'spiffe:') {
    throw new McpkiError(
      'INVALID_NAME',
      `invalid permitted name "${raw}": only spiffe:// trust domains can be permitted as URIs`,
      fix('permit the host name instead (it covers URIs with that host), e.g. {--permit .corp.example}'),
    );
  }
  if (
    !url.host ||
    url.port ||
    url.username ||
    url.password ||
    url.search ||
    url.hash ||
    (url.pathname !== '' && url.pathname !== '/')
  ) {
    throw new McpkiError('INVALID_NAME', `invalid permitted SPIFFE trust domain "${raw}"`, hint);
  }
  const td = normalizeDnsName(url.host, raw);
  if (td.startsWith('*'))
    throw new McpkiError('INVALID_NAME', `invalid permitted SPIFFE trust domain "${raw}": no wildcards`, hint);
  return td;
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
  for (const email of permitted.email ?? []) subtrees.push(seq(ctx(1, Buffer.from(email, 'latin1'), false)));
  for (const dns of permitted.dns) subtrees.push(seq(ctx(2, Buffer.from(dns, 'latin1'), false)));
  for (const uri of permitted.uri ?? []) subtrees.push(seq(ctx(6, Buffer.from(uri, 'latin1'), false)));
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
  if (base === '') return true;
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

/** A URI host against a URI subtree: ".x" is every host below x, "x" the host x only (RFC 5280 4.2.1.10). */
export function uriHostPermitted(host: string, constraint: string): boolean {
  const h = host.toLowerCase();
  const base = constraint.toLowerCase();
  if (base === '') return true;
  if (base.startsWith('.')) return h.endsWith(base) && h.length > base.length;
  return h === base;
}

/** An e-mail address against an rfc822Name subtree: a mailbox, a host ("x") or a domain (".x"). */
export function emailPermitted(address: string, constraint: string): boolean {
  const base = constraint.toLowerCase();
  if (base === '') return true;
  const at = address.lastIndexOf('@');
  if (base.includes('@'))
    return (
      address.slice(0, at) === constraint.slice(0, constraint.lastIndexOf('@')) &&
      address.slice(at + 1).toLowerCase() === base.slice(base.lastIndexOf('@') + 1)
    );
  return uriHostPermitted(address.slice(at + 1), base);
}

/** The host of a URI SAN as name constraints see it, or why it has none they can match. */
export function uriHost(uri: string): { host: string } | { why: string } {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return { why: 'it is not a valid URI' };
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (!host)
    return { why: 'it has no host, and a name-constrained CA can only sign URIs whose host is a permitted name' };
  if (isIP(host) !== 0)
    return { why: 'its host is an IP address, which URI name constraints cannot match (verifiers reject it)' };
  return { host };
}

/**
 * Whether a name is inside the CA's constraints, with RFC 5280 semantics: a name type with no subtree is
 * unconstrained (CAs made before URI and e-mail subtrees existed). Returns the reason when it is not.
 */
export function checkPermitted(san: San, permitted: Permitted | null): string | null {
  if (!permitted) return null;
  if (san.type === 'dns' && permitted.dns.length > 0) {
    if (permitted.dns.some((c) => dnsPermitted(san.value, c))) return null;
    return `the CA may only sign DNS names under ${list(permitted.dns)}`;
  }
  if (san.type === 'ip' && permitted.ip.length > 0) {
    if (permitted.ip.some((c) => ipPermitted(san.value, c))) return null;
    return `the CA may only sign IP addresses in ${permitted.ip.join(', ')}`;
  }
  const uris = permitted.uri ?? [];
  if (san.type === 'uri' && uris.length > 0) {
    const parsed = uriHost(san.value);
    if ('why' in parsed) return parsed.why;
    if (uris.some((c) => uriHostPermitted(parsed.host, c))) return null;
    return `the CA may only sign URIs whose host is ${list(uris)}`;
  }
  const emails = permitted.email ?? [];
  if (san.type === 'email' && emails.length > 0) {
    if (emails.some((c) => emailPermitted(san.value, c))) return null;
    return `the CA may only sign e-mail addresses at ${list(emails)}`;
  }
  return null;
}

function list(subtrees: readonly string[]): string {
  return subtrees.map((s) => (s === '' ? '(any)' : s)).join(', ');
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
