// The challenge: of an ACME certificate: http-01 (the built-in responder or a webroot), dns-01 (a hook that
// adds and removes TXT records) or tls-alpn-01; each type takes its own keys.
import { isMap, isScalar, type Node } from 'yaml';
import { checkHostPort } from '../net/address.js';
import { isIP } from '../net/ip.js';
import { CHALLENGE_TYPES, type ChallengeType } from '../acme/challenges/provider.js';
import { describe, join, Section, type Checker } from './checker.js';
import type { DeclaredChallenge } from './types.js';

export const HTTP01_KEYS = ['type', 'port', 'host', 'webroot'] as const;
export const DNS01_KEYS = ['type', 'hook', 'timeout', 'propagationSeconds', 'resolver', 'propagationTimeout'] as const;
export const TLS_ALPN01_KEYS = ['type', 'port', 'host'] as const;

const CHALLENGE_KEYS: Record<ChallengeType, readonly string[]> = {
  'http-01': HTTP01_KEYS,
  'dns-01': DNS01_KEYS,
  'tls-alpn-01': TLS_ALPN01_KEYS,
};

export function checkChallenge(
  check: Checker,
  node: Node | null,
  path: string,
  base: string,
): DeclaredChallenge | undefined {
  if (!isMap(node))
    return check.error(
      node,
      path,
      `expected a challenge (a map with type: http-01, dns-01 or tls-alpn-01), got ${describe(node)}`,
    );
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
  const port = e.has('port')
    ? need(check.integer(at('port'), join(path, 'port'), 1, 65535, 'a port from 1 to 65535'))
    : undefined;
  const host = e.has('host')
    ? need(check.string(at('host'), join(path, 'host'), 'a host name or IP address to listen on'))
    : undefined;
  if (type === 'http-01') {
    const webroot = e.has('webroot')
      ? need(check.path(at('webroot'), join(path, 'webroot'), base, 'a folder path'))
      : undefined;
    if (webroot && (e.has('port') || e.has('host'))) {
      need(
        check.error(
          e.get(e.has('port') ? 'port' : 'host')!.key,
          join(path, e.has('port') ? 'port' : 'host'),
          'port and host are for the built-in responder; with webroot, your web server answers the challenge',
        ),
      );
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
  if (!e.has('hook'))
    need(
      check.error(
        node,
        join(path, 'hook'),
        'missing; dns-01 needs the hook that adds and removes TXT records, e.g. hook: ["/usr/local/bin/my-dns-hook"]',
      ),
    );
  else hook = need(check.argv(at('hook'), join(path, 'hook')));
  const timeoutMs = e.has('timeout') ? need(check.duration(at('timeout'), join(path, 'timeout'), '60s')) : undefined;
  const propagationSeconds = e.has('propagationSeconds')
    ? need(
        check.integer(
          at('propagationSeconds'),
          join(path, 'propagationSeconds'),
          0,
          86_400,
          'a number of seconds from 0 to 86400',
        ),
      )
    : undefined;
  const resolver = e.has('resolver') ? need(checkResolver(check, at('resolver'), join(path, 'resolver'))) : undefined;
  let propagationTimeoutMs: number | undefined;
  if (e.has('propagationTimeout')) {
    propagationTimeoutMs = need(check.duration(at('propagationTimeout'), join(path, 'propagationTimeout'), '120s'));
    if (!e.has('resolver'))
      need(
        check.error(
          e.get('propagationTimeout')!.key,
          join(path, 'propagationTimeout'),
          'propagationTimeout is how long to poll the resolver: add resolver: IP[:PORT]',
        ),
      );
  }
  if (!section.ok || !hook) return undefined;
  const challenge: DeclaredChallenge = { type, hook };
  if (timeoutMs !== undefined) challenge.timeoutMs = timeoutMs;
  if (propagationSeconds !== undefined) challenge.propagationSeconds = propagationSeconds;
  if (resolver !== undefined) challenge.resolver = resolver;
  if (propagationTimeoutMs !== undefined) challenge.propagationTimeoutMs = propagationTimeoutMs;
  return challenge;
}

/** dns-01 resolver: a DNS server's IP address, with a port (default 53); "[IPv6]:PORT" or a bare IPv6 address. */
function checkResolver(check: Checker, node: Node | null, path: string): string | undefined {
  const text = check.string(node, path, 'a DNS server address, IP[:PORT]');
  if (text === undefined) return undefined;
  const hint = 'a DNS server as IP or IP:PORT, e.g. 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53';
  if (isIP(text.trim()) === 6) return `[${text.trim().toLowerCase()}]:53`;
  const parsed = checkHostPort(text, { defaultPort: 53, what: 'resolver', example: '"192.0.2.53:53"' });
  if (!parsed.ok) return check.error(node, path, `${parsed.message}; expected ${hint}`);
  const version = isIP(parsed.value.host);
  if (version === 0)
    return check.error(
      node,
      path,
      `${JSON.stringify(text)} is a host name; expected ${hint} (the resolver is asked directly, not looked up)`,
    );
  return version === 6 ? `[${parsed.value.host}]:${parsed.value.port}` : `${parsed.value.host}:${parsed.value.port}`;
}
