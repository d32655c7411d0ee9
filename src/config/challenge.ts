// The challenge: of an ACME certificate: http-01 (the built-in responder or a webroot), dns-01 (a hook that
// adds and removes TXT records) or tls-alpn-01; each type takes its own keys.
import { isMap, isScalar, type Node } from 'yaml';
import { CHALLENGE_TYPES, type ChallengeType } from '../acme/challenges/provider.js';
import { describe, join, Section, type Checker } from './checker.js';
import type { DeclaredChallenge } from './types.js';

export const HTTP01_KEYS = ['type', 'port', 'host', 'webroot'] as const;
export const DNS01_KEYS = ['type', 'hook', 'timeout', 'propagationSeconds'] as const;
export const TLS_ALPN01_KEYS = ['type', 'port', 'host'] as const;

const CHALLENGE_KEYS: Record<ChallengeType, readonly string[]> = {
  'http-01': HTTP01_KEYS,
  'dns-01': DNS01_KEYS,
  'tls-alpn-01': TLS_ALPN01_KEYS,
};

export function checkChallenge(check: Checker, node: Node | null, path: string, base: string): DeclaredChallenge | undefined {
  if (!isMap(node)) return check.error(node, path, `expected a challenge (a map with type: http-01, dns-01 or tls-alpn-01), got ${describe(node)}`);
  const typePair = node.items.find((pair) => isScalar(pair.key) && pair.key.value === 'type');
  if (!typePair) return check.error(node, join(path, 'type'), 'missing; write type: http-01, dns-01 or tls-alpn-01');
  const type = check.oneOf(check.node(typePair.value) ?? (typePair.key as Node), join(path, 'type'), CHALLENGE_TYPES);
  const allowed = type ? CHALLENGE_KEYS[type] : [...new Set(Object.values(CHALLENGE_KEYS).flat())];
  const misplaced = (key: string): string | undefined => {
    const owners = CHALLENGE_TYPES.filter((t) => CHALLENGE_KEYS[t].includes(key));
    return owners.length > 0 ? `${key} is only for ${owners.join(' and ')} challenges, not ${type}` : undefined;
  };
  const e = check.map(node, path, allowed, `a ${type ?? ''} challenge`.replace('  ', ' '), misplaced);
  if (!e || !type) return undefined;
  const section = new Section(check, e);
  const at = section.at.bind(section);
  const need = section.need.bind(section);
  const port = e.has('port') ? need(check.integer(at('port'), join(path, 'port'), 1, 65535, 'a port from 1 to 65535')) : undefined;
  const host = e.has('host') ? need(check.string(at('host'), join(path, 'host'), 'a host name or IP address to listen on')) : undefined;
  if (type === 'http-01') {
    const webroot = e.has('webroot') ? need(check.path(at('webroot'), join(path, 'webroot'), base, 'a folder path')) : undefined;
    if (webroot && (e.has('port') || e.has('host'))) {
      need(check.error(e.get(e.has('port') ? 'port' : 'host')!.key, join(path, e.has('port') ? 'port' : 'host'), 'port and host are for the built-in responder; with webroot, your web server answers the challenge'));
    }
    if (!section.ok) return undefined;
    const challenge: DeclaredChallenge = { type };
    if (webroot) challenge.webroot = webroot.absolute;
    else challenge.port = port ?? 80;
    if (host !== undefined) challenge.host = host;
    return challenge;
  }
  if (type === 'tls-alpn-01') {
    if (!section.ok) return undefined;
    return host === undefined ? { type, port: port ?? 443 } : { type, port: port ?? 443, host };
  }
  // dns-01
  let hook: string[] | undefined;
  if (!e.has('hook')) need(check.error(node, join(path, 'hook'), 'missing; dns-01 needs the hook that adds and removes TXT records, e.g. hook: ["/usr/local/bin/my-dns-hook"]'));
  else hook = need(check.argv(at('hook'), join(path, 'hook')));
  const timeoutMs = e.has('timeout') ? need(check.duration(at('timeout'), join(path, 'timeout'), '60s')) : undefined;
  const propagationSeconds = e.has('propagationSeconds') ? need(check.integer(at('propagationSeconds'), join(path, 'propagationSeconds'), 0, 86_400, 'a number of seconds from 0 to 86400')) : undefined;
  if (!section.ok || !hook) return undefined;
  const challenge: DeclaredChallenge = { type, hook };
  if (timeoutMs !== undefined) challenge.timeoutMs = timeoutMs;
  if (propagationSeconds !== undefined) challenge.propagationSeconds = propagationSeconds;
  return challenge;
}
