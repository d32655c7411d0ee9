// `mcpki acme-server`: the settings as written (flags or mcpki.yaml's acmeServer: section, both strings and
// numbers) checked once and turned into the server's options, on the inventory's state and EAB keys.
import type { Context } from '../context.js';
import { DAY_MS, parseDuration } from '../duration.js';
import { McpkiError, fix } from '../errors.js';
import { parseHostPort, portNumber } from '../net/address.js';
import { MAX_DAYS } from '../pki/limits.js';
import { classifySan } from '../pki/names.js';
import { eabKeyLookup } from './eab.js';
import { parsePublicUrl } from './public-url.js';
import { createStoreState } from './model.js';
import { DEFAULT_PROFILES, startAcmeServer, type RunningAcmeServer } from './server.js';
import { sharedServerOptions } from './shared.js';
import type { ProfileSettings } from './wfe.js';

/** What `mcpki acme-server` and the acmeServer: section say; every field optional. */
export interface AcmeServerSettings {
  /** host:port, repeatable; default 127.0.0.1:8443 */
  listen?: string[];
  /** where http-01 is fetched (default 80) */
  httpPort?: number | string;
  /** where tls-alpn-01 connects (default 443) */
  tlsPort?: number | string;
  /** HOST:PORT of the DNS server for dns-01 (default: the system's resolver) */
  dnsResolver?: string;
  requireEab?: boolean;
  /** NAME=server|client:DAYS (DAYS a number, or "7d", "2w"); replaces or adds to default, shortlived, client */
  profile?: string[];
  /** orders per account per hour (default 300) */
  ordersPerHour?: number | string;
  /** https://HOST[:PORT][/PREFIX]: the address clients use (a load balancer); every URL handed out uses it */
  publicUrl?: string;
  /** extra DNS names and IP addresses on the server's own certificate, repeatable */
  serverName?: string[];
}

export const DEFAULT_ACME_LISTEN = '127.0.0.1:8443';

function port(value: number | string | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  const parsed = portNumber(String(value));
  if (parsed === undefined)
    throw new McpkiError(
      'USAGE',
      `${what} ${JSON.stringify(String(value).slice(0, 40))} is not a port number from 1 to 65535`,
      `give ${what} 80 or another port`,
    );
  return parsed;
}

/** "NAME=server:90" → [NAME, settings]; the lifetime never above the CA maximum (MAX_DAYS). */
export function parseProfile(text: string): [string, ProfileSettings] {
  const match = /^([A-Za-z0-9][A-Za-z0-9._-]{0,31})=(server|client):(.+)$/.exec(text);
  if (!match)
    throw new McpkiError(
      'USAGE',
      `--profile ${JSON.stringify(text.slice(0, 80))} is not NAME=server|client:DAYS`,
      'write it as e.g. shortlived=server:7 or agents=client:30d',
    );
  const [, name, kind, days] = match as unknown as [string, string, 'server' | 'client', string];
  const ms = parseDuration(days, {
    what: `the lifetime of profile ${name}`,
    units: ['d', 'w'],
    bareUnit: 'd',
    maxMs: MAX_DAYS * DAY_MS,
    example: '90',
    code: 'USAGE',
  });
  if (ms % DAY_MS !== 0)
    throw new McpkiError('USAGE', `the lifetime of profile ${name} must be whole days`, 'give e.g. 7 or 2w');
  const count = ms / DAY_MS;
  const usage = kind === 'server' ? 'TLS server certificate (serverAuth)' : 'TLS client certificate (clientAuth)';
  return [name, { kind, days: count, description: `${usage}, ${count} day${count === 1 ? '' : 's'}` }];
}

export interface ResolvedAcmeServerSettings {
  listen: { host: string; port: number }[];
  httpPort: number;
  tlsPort: number;
  dnsResolver?: { host: string; port: number };
  requireEab: boolean;
  profiles: Record<string, ProfileSettings>;
  ordersPerHour: number;
  publicUrl?: string;
  serverNames: string[];
}

/** A --server-name: a DNS name (a wildcard too) or an IP address, no control character; USAGE (exit 2) else. */
export function parseServerName(text: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(text))
    throw new McpkiError(
      'USAGE',
      `--server-name ${JSON.stringify(text.slice(0, 100))} contains a control character`,
      fix(
        'give a host name or IP address, e.g. {--server-name acme.example.internal|serverName: acme.example.internal}',
      ),
    );
  let san;
  try {
    san = classifySan(text);
  } catch (error) {
    if (!(error instanceof McpkiError)) throw error;
    throw new McpkiError('USAGE', `--server-name: ${error.message}`, error.hint, { cause: error });
  }
  if (san.type !== 'dns' && san.type !== 'ip')
    throw new McpkiError(
      'USAGE',
      `--server-name ${JSON.stringify(text.slice(0, 100))} is not a host name or IP address`,
      fix(
        'give a host name or IP address, e.g. {--server-name acme.example.internal|serverName: acme.example.internal}',
      ),
    );
  return san.value;
}

/** A --public-url, checked; its text as written (the server parses it again). */
export function checkPublicUrl(text: string): string {
  return parsePublicUrl(text).base;
}

/** A --listen or --dns-resolver address; malformed is a usage error (exit 2), like every other option here. */
function address(text: string, options: Parameters<typeof parseHostPort>[1]): { host: string; port: number } {
  try {
    return parseHostPort(text, options);
  } catch (error) {
    if (!(error instanceof McpkiError) || error.code !== 'INVALID_INPUT') throw error;
    throw new McpkiError('USAGE', error.message, error.hint, { cause: error });
  }
}

export function resolveAcmeServerSettings(settings: AcmeServerSettings): ResolvedAcmeServerSettings {
  const listenText = settings.listen && settings.listen.length > 0 ? settings.listen : [DEFAULT_ACME_LISTEN];
  const listen = listenText.map((text) =>
    address(text, { what: '--listen', listen: true, example: DEFAULT_ACME_LISTEN }),
  );
  const profiles: Record<string, ProfileSettings> = { ...DEFAULT_PROFILES };
  for (const text of settings.profile ?? []) {
    const [name, profile] = parseProfile(text);
    profiles[name] = profile;
  }
  const ordersPerHour = settings.ordersPerHour === undefined ? 300 : Number(settings.ordersPerHour);
  if (!Number.isInteger(ordersPerHour) || ordersPerHour < 1 || ordersPerHour > 1_000_000)
    throw new McpkiError(
      'USAGE',
      `ordersPerHour ${JSON.stringify(String(settings.ordersPerHour))} is not a whole number from 1 to 1000000`,
      'give e.g. 300',
    );
  return {
    listen,
    httpPort: port(settings.httpPort, 80, '--http-port'),
    tlsPort: port(settings.tlsPort, 443, '--tls-port'),
    ...(settings.dnsResolver !== undefined
      ? {
          dnsResolver: address(settings.dnsResolver, {
            what: '--dns-resolver',
            defaultPort: 53,
            example: '127.0.0.1:8053',
          }),
        }
      : {}),
    requireEab: settings.requireEab === true,
    profiles,
    ordersPerHour,
    ...(settings.publicUrl !== undefined ? { publicUrl: checkPublicUrl(settings.publicUrl) } : {}),
    serverNames: (settings.serverName ?? []).map(parseServerName),
  };
}

/** Starts the ACME server on the home's CA, with its state and EAB keys in the inventory. */
export async function runAcmeServer(
  context: Context,
  settings: AcmeServerSettings,
): Promise<RunningAcmeServer & { settings: ResolvedAcmeServerSettings }> {
  const resolved = resolveAcmeServerSettings(settings);
  const server = await startAcmeServer(context, {
    listen: resolved.listen,
    validation: {
      httpPort: resolved.httpPort,
      tlsPort: resolved.tlsPort,
      ...(resolved.dnsResolver ? { dnsResolver: resolved.dnsResolver } : {}),
    },
    profiles: resolved.profiles,
    requireEab: resolved.requireEab,
    findEabKey: eabKeyLookup(context),
    ordersPerHour: resolved.ordersPerHour,
    ...(resolved.publicUrl !== undefined ? { publicUrl: resolved.publicUrl } : {}),
    names: resolved.serverNames,
    state: createStoreState(context.store().acmeServer()),
    ...sharedServerOptions(context, resolved.ordersPerHour),
  });
  context.store().addEvent({
    type: 'acme-server.started',
    detail: {
      directories: server.directories,
      addresses: server.addresses,
      requireEab: resolved.requireEab,
      profiles: Object.keys(resolved.profiles),
    },
  });
  return Object.assign(server, { settings: resolved });
}
