// The defaults: section: the issuer, key type, lifetime, renewal margin and hook time limit that every
// certificate takes unless it sets its own.
import type { Node } from 'yaml';
import { type Checker } from './checker.js';
import { checkDays, checkIssuer, checkKeyType, DEFAULT_DAYS, DEFAULT_KEY } from './certificates.js';
import { DEFAULT_HOOK_TIMEOUT_MS } from './hooks.js';
import type { ConfigDefaults } from './types.js';

export const DEFAULTS_KEYS = ['issuer', 'key', 'days', 'renewBefore', 'hooks'] as const;
export const DEFAULT_HOOKS_KEYS = ['timeout'] as const;

/**
 * The defaults (the built-in ones where the section is absent or a value is invalid). `issuerValid` is false
 * when defaults.issuer is given but invalid: certificates that inherit it are then not built.
 */
export function checkDefaults(
  check: Checker,
  node: Node | null | undefined,
): { defaults: ConfigDefaults; issuerValid: boolean } {
  const defaults: ConfigDefaults = {
    issuer: { type: 'local' },
    key: DEFAULT_KEY,
    days: DEFAULT_DAYS,
    hookTimeoutMs: DEFAULT_HOOK_TIMEOUT_MS,
  };
  let issuerValid = true;
  if (node === undefined) return { defaults, issuerValid };
  const d = check.map(node, 'defaults', DEFAULTS_KEYS, 'defaults');
  if (d) {
    if (d.has('issuer')) {
      const issuer = checkIssuer(check, check.at(d, 'issuer'), 'defaults.issuer');
      if (issuer) defaults.issuer = issuer;
      else issuerValid = false;
    }
    if (d.has('key')) defaults.key = checkKeyType(check, check.at(d, 'key'), 'defaults.key') ?? defaults.key;
    if (d.has('days')) defaults.days = checkDays(check, check.at(d, 'days'), 'defaults.days') ?? defaults.days;
    if (d.has('renewBefore')) {
      const renewBefore = check.renewBefore(check.at(d, 'renewBefore'), 'defaults.renewBefore');
      if (renewBefore) defaults.renewBefore = renewBefore;
    }
    if (d.has('hooks')) {
      const h = check.map(check.at(d, 'hooks'), 'defaults.hooks', DEFAULT_HOOKS_KEYS, 'default hook settings');
      if (h?.has('timeout'))
        defaults.hookTimeoutMs =
          check.duration(check.at(h, 'timeout'), 'defaults.hooks.timeout', '30s') ?? defaults.hookTimeoutMs;
    }
  }
  return { defaults, issuerValid };
}
