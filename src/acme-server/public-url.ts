// `--public-url`: the address clients use when the server sits behind a load balancer on another name or port
// (https://acme.example.internal/ → 10.0.0.5:14000, 10.0.0.6:14000). Every URL the server hands out is built
// from it, and the JWS `url` of every request is compared with it; the Host header is then not used at all.
// Checked strictly, once: https (http only for a loopback host, e.g. a TLS-terminating sidecar), a host name or
// IP address, an optional port and path prefix; no user info, query or fragment.
import { McpkiError, fix, type Fix } from '../errors.js';
import { isIP } from '../net/ip.js';
import { portNumber, splitHostPort } from '../net/address.js';
import { normalizeDnsName } from '../pki/names.js';

export interface PublicUrl {
  /** https://HOST[:PORT][/PREFIX], no trailing slash: what /acme/… is appended to */
  base: string;
  /** "" or "/a/b": a request path starting with it has it removed before routing */
  prefix: string;
  /** the host as a certificate name: a DNS name in lower case or an IP address without brackets */
  host: string;
  /** the base's directory URL */
  directory: string;
}

function refuse(text: string, why: string, remedy?: Fix) {
  return new McpkiError(
    'USAGE',
    `--public-url ${JSON.stringify(text.slice(0, 200))}: ${why}`,
    remedy ??
      fix('give e.g. {--public-url https://acme.example.internal:8443|publicUrl: https://acme.example.internal:8443}'),
  );
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/** Parses and checks a public URL; a USAGE error (exit 2) naming what is wrong otherwise. */
export function parsePublicUrl(text: string): PublicUrl {
  if (typeof text !== 'string' || text.length === 0) throw refuse(String(text), 'is empty');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u009f]/.test(text)) throw refuse(text, 'contains white space or a control character');
  if (text.length > 2000) throw refuse(text, 'is longer than 2000 characters');
  if (text.includes('?')) throw refuse(text, 'has a query ("?"); a public URL has none');
  if (text.includes('#')) throw refuse(text, 'has a fragment ("#"); a public URL has none');
  if (text.includes('\\')) throw refuse(text, 'contains a backslash');
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/]*)(\/.*)?$/.exec(text);
  if (!match) throw refuse(text, 'is not an absolute URL (scheme://host[:port][/prefix])');
  const scheme = match[1]!.toLowerCase();
  const authority = match[2]!;
  if (scheme !== 'https' && scheme !== 'http') throw refuse(text, `has scheme ${scheme}; only https is served`);
  if (authority.includes('@')) throw refuse(text, 'has user info ("user@"); a public URL has none');
  const split = splitHostPort(authority);
  if (!split || split.host === '') throw refuse(text, 'has no host');
  let host: string;
  const family = isIP(split.host);
  if (split.bracketed) {
    if (family !== 6) throw refuse(text, `[${split.host}] is not an IPv6 address`);
    host = split.host.toLowerCase();
  } else if (family === 4) host = split.host;
  else {
    if (split.host.includes('*')) throw refuse(text, 'has a wildcard host');
    try {
      host = normalizeDnsName(split.host.replace(/\.$/, ''));
    } catch {
      throw refuse(text, `${JSON.stringify(split.host.slice(0, 100))} is not a host name or IP address`);
    }
  }
  let port: number | undefined;
  if (split.port !== undefined) {
    port = portNumber(split.port);
    if (port === undefined)
      throw refuse(text, `port ${JSON.stringify(split.port.slice(0, 10))} is not from 1 to 65535`);
  }
  if (scheme === 'http' && !isLoopback(host))
    throw refuse(
      text,
      'is http on a host that is not loopback; clients would send their requests unencrypted',
      fix(`use https, e.g. {--public-url https://${host}|publicUrl: https://${host}}`),
    );
  let prefix = (match[3] ?? '').replace(/\/+$/, '');
  if (prefix !== '') {
    for (const segment of prefix.slice(1).split('/')) {
      if (!/^[A-Za-z0-9._~-]+$/.test(segment) || segment === '.' || segment === '..')
        throw refuse(
          text,
          `path segment ${JSON.stringify(segment.slice(0, 60))} is not letters, digits, ".", "_", "~" or "-"`,
        );
    }
    if (/\/acme(\/directory)?$/.test(prefix)) {
      const without = prefix.replace(/\/acme(\/directory)?$/, '');
      throw refuse(
        text,
        'ends with the server\'s own "/acme" path, which the server adds',
        fix(
          `give the URL without it: {--public-url ${scheme}://${authority}${without}|publicUrl: ${scheme}://${authority}${without}}`,
        ),
      );
    }
  }
  const defaultPort = scheme === 'https' ? 443 : 80;
  const hostText = family === 6 ? `[${host}]` : host;
  const base = `${scheme}://${hostText}${port !== undefined && port !== defaultPort ? `:${port}` : ''}${prefix}`;
  return { base, prefix, host, directory: `${base}/acme/directory` };
}
