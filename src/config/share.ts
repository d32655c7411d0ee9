// The parts of a declaration that most certificates have alike — the issuer, and hooks when there are none —
// held once. With 10,000 certificates each one's own copy of these two small objects was about half of the
// declaration's heap (10.6 MB for the whole of it after a full collection, 5.6 MB with them shared), which
// `mcpki serve` keeps for as long as it runs. The shared objects are frozen: nothing may change them.
import type { Config, DeclaredHooks, DeclaredIssuer } from './types.js';

export function shareCommonParts(config: Config): Config {
  const issuers = new Map<string, DeclaredIssuer>();
  const noHooks = new Map<number, DeclaredHooks>();
  const none = Object.freeze([]) as unknown as string[][];
  for (const certificate of config.certificates) {
    const issuer = certificate.issuer;
    const issuerKey = issuer.type === 'acme' ? `acme:${issuer.account}` : 'local';
    let sharedIssuer = issuers.get(issuerKey);
    if (!sharedIssuer) issuers.set(issuerKey, (sharedIssuer = Object.freeze({ ...issuer })));
    certificate.issuer = sharedIssuer;
    const hooks = certificate.hooks;
    if (hooks.reload.length === 0 && hooks.verify === undefined) {
      let shared = noHooks.get(hooks.timeoutMs);
      if (!shared) noHooks.set(hooks.timeoutMs, (shared = Object.freeze({ reload: none, timeoutMs: hooks.timeoutMs })));
      certificate.hooks = shared;
    }
  }
  return config;
}
