// host:port, parsed once. mcpki.yaml's `verify:`, `serve --metrics`, `check TARGET` and the templates' listen
// address all read "host:port", "[v6]:port" (an IPv6 address always in brackets) and, where a default host
// makes sense, a bare port. The parsed { host, port } is what is passed on; formatHostPort writes it back
// (with the brackets) for messages, so no one joins and re-splits "::1:8443".
import { McpkiError } from '../errors.js';
import { isIP } from './ip.js';

export interface HostPort {
  /** a DNS name (lower case), an IPv4 address or an IPv6 address without brackets */
  host: string;
  port: number;
}

export interface HostPortOptions {
  /** accept a bare port ("9464") and use this host */
  defaultHost?: string;
  /** accept "host" without a port and use this port */
  defaultPort?: number;
  /** what is being parsed, for messages: "verify target", "--metrics" */
  what?: string;
  /** an example for the hint */
  example?: string;
  /** a listen address: port 0 asks the system for a free port */
  listen?: boolean;
}

/** A DNS label sequence (letters, digits, "-", "_", "."), no empty label; no wildcards, no spaces. */
const HOST_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;

/** Splits "host:port", "[v6]:port", "[v6]", "host" without judging either part; undefined when it cannot. */
export function splitHostPort(text: string): { host: string; port?: string; bracketed: boolean } | undefined {
  const bracketed = /^\[([^\][]*)\](?::([^:]*))?$/.exec(text);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2], bracketed: true };
  const plain = /^([^:[\]]*)(?::([^:]*))?$/.exec(text);
  if (plain) return { host: plain[1]!, port: plain[2], bracketed: false };
  return undefined;
}

/** A port number from 1 to 65535 written in decimal digits, or undefined. */
export function portNumber(text: string, lowest = 1): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= lowest && port <= 65535 ? port : undefined;
}

/** Whether `host` is an IPv4 address, an IPv6 address (no brackets) or a DNS host name. */
export function isHost(host: string): boolean {
  return isIP(host) !== 0 || HOST_NAME.test(host);
}

/** "host:port" for messages and for the places that need the text; IPv6 in brackets. */
export function formatHostPort(address: HostPort): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

export type HostPortResult = { ok: true; value: HostPort } | { ok: false; message: string };

/** The checks without the throw (the config validator collects every problem). */
export function checkHostPort(input: string, options: HostPortOptions = {}): HostPortResult {
  const text = input.trim();
  const lowest = options.listen ? 0 : 1;
  const range = `from ${lowest} to 65535`;
  const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
  const form = `host:port${options.defaultHost !== undefined ? ' or a port' : ''}, e.g. ${options.example ?? '"localhost:8443" or "[::1]:8443"'}`;
  if (options.defaultHost !== undefined && /^\d+$/.test(text)) {
    const port = portNumber(text, lowest);
    return port === undefined
      ? { ok: false, message: `the port must be ${range}, got ${shown}` }
      : { ok: true, value: { host: options.defaultHost, port } };
  }
  if (isIP(text) === 6)
    return {
      ok: false,
      message: `${shown} is an IPv6 address without brackets: write the address in brackets and the port after it, e.g. [::1]:8443`,
    };
  const parts = splitHostPort(text);
  if (!parts || parts.host === '') return { ok: false, message: `expected ${form}, got ${shown}` };
  if (parts.port === undefined && options.defaultPort === undefined)
    return { ok: false, message: `expected ${form}, got ${shown}` };
  const port = parts.port === undefined ? options.defaultPort! : portNumber(parts.port, lowest);
  if (port === undefined)
    return { ok: false, message: `the port must be ${range}, got ${JSON.stringify(parts.port)} in ${shown}` };
  if (parts.bracketed) {
    if (isIP(parts.host) !== 6) return { ok: false, message: `${shown}: only an IPv6 address goes in brackets` };
    return { ok: true, value: { host: parts.host.toLowerCase(), port } };
  }
  if (!isHost(parts.host))
    return { ok: false, message: `${shown} does not name a host (a DNS name or an IP address): expected ${form}` };
  return { ok: true, value: { host: parts.host.toLowerCase().replace(/\.$/, ''), port } };
}

/** Parses host:port or throws McpkiError INVALID_INPUT naming the value. */
export function parseHostPort(input: string | HostPort, options: HostPortOptions = {}): HostPort {
  if (typeof input !== 'string') return input;
  const result = checkHostPort(input, options);
  if (result.ok) return result.value;
  throw new McpkiError(
    'INVALID_INPUT',
    `${options.what ?? 'address'} is not host:port: ${result.message}`,
    `write it as host:port${options.defaultHost !== undefined ? ' (or a port)' : ''}, e.g. ${options.example ?? 'localhost:443 or [::1]:8443'}`,
  );
}
