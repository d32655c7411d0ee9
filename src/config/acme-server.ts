// The acmeServer: section: the settings of `mcpki acme-server`, with the flags' names (listen, httpPort,
// tlsPort, dnsResolver, requireEab, profile, ordersPerHour, publicUrl, serverName), checked with the same parsers
// as the flags.
import { isScalar, type Node } from 'yaml';
import { checkPublicUrl, parseProfile, parseServerName, type AcmeServerSettings } from '../acme-server/start.js';
import { McpkiError } from '../errors.js';
import { checkHostPort } from '../net/address.js';
import { describe, join, Section, type Checker } from './checker.js';

export const ACME_SERVER_KEYS = [
  'listen',
  'httpPort',
  'tlsPort',
  'dnsResolver',
  'requireEab',
  'profile',
  'ordersPerHour',
  'publicUrl',
  'serverName',
] as const;

export function checkAcmeServer(check: Checker, node: Node | null): AcmeServerSettings | undefined {
  const path = 'acmeServer';
  const e = check.map(node, path, ACME_SERVER_KEYS, 'the acmeServer section');
  if (!e) return undefined;
  const section = new Section(check, e);
  const at = section.at.bind(section);
  const need = section.need.bind(section);
  const settings: AcmeServerSettings = {};
  const strings = (key: string): { node: Node | null; path: string; text: string }[] => {
    const value = at(key);
    const items = isScalar(value)
      ? [{ node: value, path: join(path, key) }]
      : (need(check.list(value, join(path, key), 'a string or a list of strings')) ?? []);
    const out: { node: Node | null; path: string; text: string }[] = [];
    for (const item of items) {
      const text = need(check.string(item.node, item.path));
      if (text !== undefined) out.push({ ...item, text });
    }
    return out;
  };
  if (e.has('listen')) {
    settings.listen = [];
    for (const item of strings('listen')) {
      const result = checkHostPort(item.text, { listen: true });
      if (result.ok) settings.listen.push(item.text);
      else need(check.error(item.node, item.path, result.message));
    }
  }
  if (e.has('httpPort')) settings.httpPort = need(check.integer(at('httpPort'), join(path, 'httpPort'), 1, 65535));
  if (e.has('tlsPort')) settings.tlsPort = need(check.integer(at('tlsPort'), join(path, 'tlsPort'), 1, 65535));
  if (e.has('dnsResolver')) {
    const text = need(check.string(at('dnsResolver'), join(path, 'dnsResolver'), 'host:port'));
    if (text !== undefined) {
      const result = checkHostPort(text, { defaultPort: 53 });
      if (result.ok) settings.dnsResolver = text;
      else need(check.error(at('dnsResolver'), join(path, 'dnsResolver'), result.message));
    }
  }
  if (e.has('requireEab')) {
    const value = at('requireEab');
    if (isScalar(value) && typeof value.value === 'boolean') settings.requireEab = value.value;
    else need(check.error(value, join(path, 'requireEab'), `expected true or false, got ${describe(value)}`));
  }
  if (e.has('profile')) {
    settings.profile = [];
    for (const item of strings('profile')) {
      try {
        parseProfile(item.text);
        settings.profile.push(item.text);
      } catch (error) {
        if (!(error instanceof McpkiError)) throw error;
        need(check.error(item.node, item.path, error.message));
      }
    }
  }
  if (e.has('publicUrl')) {
    const text = need(check.string(at('publicUrl'), join(path, 'publicUrl'), 'https://host[:port][/prefix]'));
    if (text !== undefined) {
      try {
        checkPublicUrl(text);
        settings.publicUrl = text;
      } catch (error) {
        if (!(error instanceof McpkiError)) throw error;
        need(check.error(at('publicUrl'), join(path, 'publicUrl'), error.message.replace(/^--public-url /, '')));
      }
    }
  }
  if (e.has('serverName')) {
    settings.serverName = [];
    for (const item of strings('serverName')) {
      try {
        parseServerName(item.text);
        settings.serverName.push(item.text);
      } catch (error) {
        if (!(error instanceof McpkiError)) throw error;
        need(check.error(item.node, item.path, error.message.replace(/^--server-name:? /, '')));
      }
    }
  }
  if (e.has('ordersPerHour'))
    settings.ordersPerHour = need(check.integer(at('ordersPerHour'), join(path, 'ordersPerHour'), 1, 1_000_000));
  return section.ok ? settings : undefined;
}
