// TARGET of `mcpki check`: host:port, [v6]:port, https://host[:port][/path], a certificate file, or the name
// of a certificate in the inventory.
import { McpkiError } from '../errors.js';
import { portNumber, splitHostPort as splitAddress } from '../net/address.js';
import { isIP } from '../pki/names.js';

export interface RemoteTarget {
  kind: 'remote';
  host: string;
  port: number;
}

export type ParsedTarget = RemoteTarget | { kind: 'local'; text: string };

const FORMS =
  'give host:port, [v6]:port, https://host[:port], a certificate file, or a certificate name from "mcpki list"';

function portOf(text: string, input: string): number {
  const port = portNumber(text);
  if (port === undefined) {
    throw new McpkiError(
      'INVALID_INPUT',
      `port "${text}" in ${JSON.stringify(input)} is not a port number`,
      'a port is 1 to 65535, e.g. localhost:8443',
    );
  }
  return port;
}

/** Splits "host:port" / "[v6]:port" with src/net/address.ts (host may be empty only when `port` is absent). */
function splitHostPort(text: string): { host: string; port?: string } | undefined {
  const parts = splitAddress(text);
  if (!parts) return undefined;
  if (parts.bracketed ? !/^[0-9a-fA-F:.]+$/.test(parts.host) : parts.host === '' || /[\s/]/.test(parts.host))
    return undefined;
  return { host: parts.host, port: parts.port };
}

function parseUrl(input: string): RemoteTarget {
  const rest = input.slice(input.indexOf('://') + 3);
  const authority = rest.split(/[/?#]/, 1)[0]!.replace(/^[^@]*@/, '');
  const parts = splitHostPort(authority);
  if (!parts || !parts.host)
    throw new McpkiError('USAGE', `cannot read a host in ${JSON.stringify(input)}`, 'e.g. https://localhost:8443');
  return {
    kind: 'remote',
    host: parts.host.toLowerCase(),
    port: parts.port === undefined || parts.port === '' ? 443 : portOf(parts.port, input),
  };
}

/**
 * Reads TARGET without touching the file system: a URL or a bracketed address is always remote, anything
 * else that looks like host:port is remote unless a file of that name exists (decided by `isFile`).
 */
export function parseTarget(input: string, isFile: (path: string) => boolean): ParsedTarget {
  const text = input.trim();
  if (!text) throw new McpkiError('USAGE', 'TARGET is empty', FORMS);
  if (/^https:\/\//i.test(text)) return parseUrl(text);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new McpkiError(
      'USAGE',
      `${JSON.stringify(input)} is not an https:// address`,
      'mcpki check speaks TLS only: give https://host[:port] or host:port',
    );
  }
  if (isFile(text)) return { kind: 'local', text };
  if (text.startsWith('[')) {
    const parts = splitHostPort(text);
    if (!parts || isIP(parts.host) !== 6)
      throw new McpkiError('USAGE', `${JSON.stringify(input)} is not [IPv6]:port`, 'e.g. [::1]:8443');
    if (parts.port === undefined)
      throw new McpkiError('USAGE', `${JSON.stringify(input)} has no port`, `add the port: ${text}:443`);
    return { kind: 'remote', host: parts.host, port: portOf(parts.port, input) };
  }
  if (isIP(text) === 6)
    throw new McpkiError(
      'USAGE',
      `${JSON.stringify(input)} is an IPv6 address without a port`,
      `write it as [${text}]:443`,
    );
  const parts = splitHostPort(text);
  if (parts?.port !== undefined)
    return { kind: 'remote', host: parts.host.toLowerCase(), port: portOf(parts.port, input) };
  return { kind: 'local', text };
}

/** The error for a TARGET that is neither a file, an address nor a known certificate name. */
export function unknownTarget(input: string): McpkiError {
  const looksLikeHost = /^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(input) || isIP(input) === 4;
  return new McpkiError(
    'USAGE',
    `TARGET ${JSON.stringify(input)} is not a file, host:port or a certificate name`,
    looksLikeHost ? `add the port: ${input}:443 (or https://${input})` : FORMS,
  );
}
