import { domainToASCII } from 'node:url';
import { McpkiError } from '../errors.js';
import { isIP } from '../net/ip.js';

export { expandIpv6, ipToBytes, isIP } from '../net/ip.js';

export type SanType = 'dns' | 'ip' | 'uri' | 'email';

export interface San {
  type: SanType;
  /** normalised value: punycode lower-case DNS names, canonical IPs */
  value: string;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

function invalid(value: string, why: string, hint: string): McpkiError {
  return new McpkiError('INVALID_NAME', `invalid name "${value}": ${why}`, hint);
}

/**
 * Whether a name ends in a number (WHATWG URL's "ends in a number": its last label is decimal or 0x-hex), so
 * URL parsers, browsers and inet_aton read it as an IPv4 address (127.1, 0x7f.1, 2130706433, 017.0.0.1).
 * Returns the dotted-quad such parsers make of it, '' when they reject it, null when it is not IP-like.
 */
export function ipv4Form(name: string): string | null {
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  const last = bare.slice(bare.lastIndexOf('.') + 1);
  if (!/^(?:\d+|0x[0-9a-f]*)$/i.test(last)) return null;
  try {
    const host = new URL(`http://${bare}/`).hostname;
    return isIP(host) === 4 ? host : '';
  } catch {
    return '';
  }
}

/** DNS name → punycode, lower case, validated label by label. A wildcard may only be the whole leftmost label. */
export function normalizeDnsName(input: string, original = input): string {
  let name = input.endsWith('.') ? input.slice(0, -1) : input;
  if (name.length === 0) throw invalid(original, 'empty name', 'give a host name such as my-mcp.localhost');
  const wildcard = name.startsWith('*.');
  const rest = wildcard ? name.slice(2) : name;
  if (rest.includes('*')) {
    throw invalid(original, 'a wildcard may only be the whole leftmost label', 'write it as *.example.test');
  }
  const ipForm = ipv4Form(rest);
  if (ipForm !== null) {
    if (ipForm === '')
      throw invalid(
        original,
        'looks like an IP address but is not a valid one',
        'write a dotted-quad such as 127.0.0.1',
      );
    if (ipForm === rest)
      throw invalid(original, 'is an IP address, not a host name', 'give a host name such as my-mcp.localhost');
    throw new McpkiError(
      'INVALID_NAME',
      `ambiguous name "${original}": an IP address in a shortened, octal, hexadecimal or decimal form that some programs read as ${ipForm} and others as a host name`,
      `write the address as ${ipForm}`,
    );
  }
  const ascii = domainToASCII(rest);
  if (!ascii) throw invalid(original, 'not a valid host name', 'use letters, digits and hyphens between dots');
  const labels = ascii.split('.');
  for (const label of labels) {
    if (!LABEL.test(label)) {
      throw invalid(
        original,
        `label "${label}" is not a valid host name label`,
        'labels are 1-63 letters, digits or hyphens, not starting or ending with a hyphen',
      );
    }
  }
  if (ascii.length > 253) throw invalid(original, 'longer than 253 characters', 'use a shorter host name');
  if (wildcard && labels.length < 2) {
    throw invalid(original, 'a wildcard must cover a name with at least two labels', 'use *.example.test, not *.test');
  }
  if (!wildcard && isIP(ascii) === 0 && /^[0-9.]+$/.test(ascii)) {
    throw invalid(original, 'looks like an IP address but is not a valid one', 'write a dotted-quad such as 127.0.0.1');
  }
  name = (wildcard ? '*.' : '') + ascii;
  return name;
}

function normalizeIp(value: string): string {
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  if (isIP(bare) === 4) return bare;
  return new URL(`http://[${bare}]/`).hostname.slice(1, -1); // WHATWG's canonical, compressed IPv6 text
}

/** The longest SPIFFE ID the SPIFFE standard allows (bytes), and the longest trust domain. */
const SPIFFE_MAX = 2048;
const TRUST_DOMAIN_MAX = 255;
const SPIFFE_HINT =
  'write spiffe://trust.domain/path/segments (lower-case trust domain; segments of letters, digits, ".", "-", "_")';

/**
 * A SPIFFE ID as the SPIFFE ID standard (section 2) defines it, checked on the text as given (a URL parser
 * would silently resolve "..", add a trailing "/" or lower-case the scheme): scheme "spiffe" in lower case,
 * a lower-case trust domain of [a-z0-9._-], a path of non-empty segments of [A-Za-z0-9._-] other than "." and
 * "..", no trailing "/", no port, user, query or fragment, no percent-encoding; at most 2048 bytes.
 */
export function validateSpiffeId(value: string): string {
  if (!value.startsWith('spiffe://'))
    throw invalid(value, 'a SPIFFE ID starts with "spiffe://" in lower case', SPIFFE_HINT);
  if (Buffer.byteLength(value) > SPIFFE_MAX)
    throw invalid(value.slice(0, 40) + '…', `a SPIFFE ID is at most ${SPIFFE_MAX} bytes`, 'use a shorter path');
  const rest = value.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  if (/[?#]/.test(value)) throw invalid(value, 'a SPIFFE ID has no query or fragment', SPIFFE_HINT);
  if (/[@:]/.test(trustDomain)) throw invalid(value, 'a SPIFFE ID has no port or user part', SPIFFE_HINT);
  if (trustDomain === '') throw invalid(value, 'a SPIFFE ID needs a trust domain', SPIFFE_HINT);
  if (trustDomain !== trustDomain.toLowerCase() || !/^[a-z0-9._-]+$/.test(trustDomain)) {
    throw invalid(
      value,
      'a SPIFFE ID needs a lower-case trust domain of letters, digits, ".", "-" and "_"',
      SPIFFE_HINT,
    );
  }
  if (trustDomain.length > TRUST_DOMAIN_MAX)
    throw invalid(value, `a SPIFFE trust domain is at most ${TRUST_DOMAIN_MAX} characters`, SPIFFE_HINT);
  if (path !== '') {
    const segments = path.slice(1).split('/');
    if (segments.some((segment) => segment === ''))
      throw invalid(value, 'a SPIFFE ID path has no empty segment and no trailing "/"', SPIFFE_HINT);
    if (segments.some((segment) => segment === '.' || segment === '..'))
      throw invalid(value, 'a SPIFFE ID path has no "." or ".." segment', SPIFFE_HINT);
    if (segments.some((segment) => !/^[A-Za-z0-9._-]+$/.test(segment))) {
      throw invalid(
        value,
        'a SPIFFE ID path segment is letters, digits, ".", "-" and "_" only (no percent-encoding)',
        SPIFFE_HINT,
      );
    }
  }
  return value;
}

function normalizeUri(value: string): string {
  if (/^spiffe:/i.test(value)) return validateSpiffeId(value);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(value, 'not a valid URI', 'write a full URI such as spiffe://example.test/mcp/server');
  }
  return url.href === value + '/' && !value.endsWith('/') ? value : url.href;
}

/**
 * An X.509 SVID (SPIFFE's X509-SVID standard, section 2) carries exactly one URI SAN, its SPIFFE ID: a
 * certificate with a SPIFFE ID may not carry a second URI; and a leaf's SPIFFE ID has a path.
 */
export function assertOneSpiffeId(sans: readonly San[]): void {
  const uris = sans.filter((s) => s.type === 'uri');
  const spiffe = uris.filter((s) => s.value.startsWith('spiffe://'));
  const bare = spiffe.find((s) => !s.value.slice('spiffe://'.length).includes('/'));
  if (bare) {
    throw invalid(
      bare.value,
      "a leaf certificate's SPIFFE ID needs a path (the trust domain alone names no workload)",
      'write spiffe://trust.domain/workload, e.g. spiffe://example.test/agent',
    );
  }
  if (spiffe.length > 0 && uris.length > 1) {
    throw new McpkiError(
      'INVALID_NAME',
      `a certificate with a SPIFFE ID carries exactly one URI name, got ${uris.map((s) => s.value).join(', ')}`,
      'give one SPIFFE ID per certificate (X509-SVID); issue another certificate for the other identity',
    );
  }
}

function normalizeEmail(value: string): string {
  const at = value.lastIndexOf('@');
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (
    !local ||
    !/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$/.test(local) ||
    local.startsWith('.') ||
    local.endsWith('.') ||
    local.includes('..')
  ) {
    throw invalid(value, 'not a valid e-mail address', 'write user@example.test');
  }
  if (domain.includes('*')) throw invalid(value, 'an e-mail domain cannot be a wildcard', 'write user@example.test');
  return `${local}@${normalizeDnsName(domain, value)}`;
}

/** Classifies a name given on the command line: IP, URI (has a scheme), e-mail (has an @), else DNS. */
export function classifySan(raw: string): San {
  const value = raw.trim();
  if (value.length === 0) throw invalid(raw, 'empty name', 'give a host name, IP address, URI or e-mail address');
  if (/\s/.test(value)) throw invalid(raw, 'contains white space', 'give one name per argument');
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  if (isIP(bare) !== 0) return { type: 'ip', value: normalizeIp(value) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return { type: 'uri', value: normalizeUri(value) };
  if (value.includes('@')) return { type: 'email', value: normalizeEmail(value) };
  if (value.includes('/'))
    throw invalid(
      raw,
      'a "/" is only allowed in URIs',
      'for a network, use --permit with mcpki init; for a URI, add its scheme',
    );
  return { type: 'dns', value: normalizeDnsName(value) };
}

/** The most names one certificate may carry: Let's Encrypt's limit; TLS peers choke on much larger certificates. */
export const MAX_SANS = 100;

export function classifySans(raw: readonly string[]): San[] {
  if (raw.length > MAX_SANS) {
    throw new McpkiError(
      'INVALID_INPUT',
      `${raw.length} names for one certificate: at most ${MAX_SANS}`,
      `split the names over several certificates (at most ${MAX_SANS} each), or use a wildcard`,
    );
  }
  const seen = new Set<string>();
  const out: San[] = [];
  for (const item of raw) {
    const san = classifySan(item);
    const key = `${san.type}:${san.value}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(san);
  }
  return out;
}

/** Certificate names are used for file names and look-ups: keep them simple. */
export function validateCertName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name) || name.includes('..')) {
    throw new McpkiError(
      'INVALID_NAME',
      `invalid certificate name "${name}"`,
      'use letters, digits, ".", "_" and "-" (it becomes a file name), e.g. my-mcp',
    );
  }
  return name;
}
