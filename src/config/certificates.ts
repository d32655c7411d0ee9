// The certificates: list: each certificate's name, issuer, names, kind, key, lifetime, ACME profile and
// challenge, renewal margin, targets and hooks; then the checks across the list (no name declared twice, no
// file written by two targets).
import { isScalar, isSeq, type LineCounter, type Node } from 'yaml';
import { DEFAULT_KEY_TYPE, KEY_TYPES, type KeyType } from '../pki/keys.js';
import { classifySan, validateCertName, type San } from '../pki/names.js';
import { checkChallenge } from './challenge.js';
import { describe, join, type Checker } from './checker.js';
import { checkHooks } from './hooks.js';
import { checkTarget, type WrittenPaths } from './targets.js';
import type {
  CertificateKind,
  ConfigDefaults,
  DeclaredCertificate,
  DeclaredChallenge,
  DeclaredHooks,
  DeclaredIssuer,
  DeclaredTarget,
} from './types.js';
import { DEFAULT_DAYS, MAX_DAYS } from '../pki/limits.js';

export const CERTIFICATE_KEYS = [
  'name',
  'issuer',
  'names',
  'kind',
  'key',
  'days',
  'profile',
  'challenge',
  'reuseKey',
  'preferredChain',
  'renewBefore',
  'targets',
  'hooks',
] as const;

export { DEFAULT_DAYS, MAX_DAYS };
export const DEFAULT_KEY: KeyType = DEFAULT_KEY_TYPE;

/** local, or acme:<account> with a valid account name. */
export function checkIssuer(check: Checker, node: Node | null, path: string): DeclaredIssuer | undefined {
  const text = check.string(node, path, 'an issuer: local or acme:<account>');
  if (text === undefined) return undefined;
  if (text === 'local') return { type: 'local' };
  if (text.startsWith('acme:')) {
    const account = text.slice(5);
    try {
      validateCertName(account);
      return { type: 'acme', account };
    } catch {
      return check.error(
        node,
        path,
        `invalid ACME account name ${JSON.stringify(account)}: use letters, digits, ".", "_" and "-", e.g. acme:letsencrypt`,
      );
    }
  }
  if (text === 'acme')
    return check.error(node, path, 'expected acme:<account>, naming the account, e.g. acme:letsencrypt');
  return check.error(
    node,
    path,
    `unknown issuer ${JSON.stringify(text)}: write local (the mcpki CA) or acme:<account>, e.g. acme:letsencrypt`,
  );
}

export function checkKeyType(check: Checker, node: Node | null, path: string): KeyType | undefined {
  return check.oneOf(node, path, KEY_TYPES);
}

export function checkDays(check: Checker, node: Node | null, path: string): number | undefined {
  return check.integer(node, path, 1, MAX_DAYS, `a number of days from 1 to ${MAX_DAYS}`);
}

interface CertificateSeen {
  name: string;
  line: number;
}

/** The certificates: list; every target path is recorded in `targetPaths`. */
export function checkCertificates(
  check: Checker,
  node: Node | null,
  defaults: ConfigDefaults,
  defaultIssuerValid: boolean,
  base: string,
  lineCounter: LineCounter,
  targetPaths: WrittenPaths,
): DeclaredCertificate[] {
  const certificates: DeclaredCertificate[] = [];
  const items = check.list(node, 'certificates', 'a list of certificates') ?? [];
  const names = new Map<string, CertificateSeen>();
  for (const item of items) {
    const certificate = checkCertificate(check, item.node, item.path, defaults, defaultIssuerValid, base, lineCounter);
    if (!certificate) continue;
    const { declared, nameNode, targetNodes } = certificate;
    if (declared.name) {
      const seen = names.get(declared.name);
      if (seen)
        check.error(
          nameNode,
          `${item.path}.name`,
          `duplicate certificate name "${declared.name}" (first declared at line ${seen.line})`,
        );
      else names.set(declared.name, { name: declared.name, line: declared.line });
    }
    declared.targets.forEach((target, index) => {
      const node = targetNodes[index]!;
      const targetPath = `${item.path}.targets[${index}].path`;
      const seen = targetPaths.get(target.path);
      if (seen)
        check.error(
          node,
          targetPath,
          `${JSON.stringify(target.pathAsWritten)} is also written by ${seen.path} (line ${seen.line})`,
        );
      else
        targetPaths.set(target.path, {
          path: targetPath.slice(0, -'.path'.length),
          line: lineCounter.linePos(node?.range?.[0] ?? 0).line,
        });
    });
    certificates.push(declared);
  }
  return certificates;
}

function checkCertificate(
  check: Checker,
  node: Node | null,
  path: string,
  defaults: ConfigDefaults,
  defaultIssuerValid: boolean,
  base: string,
  lineCounter: LineCounter,
): { declared: DeclaredCertificate; nameNode: Node | null; targetNodes: (Node | null)[] } | undefined {
  const c = check.map(node, path, CERTIFICATE_KEYS, 'a certificate');
  if (!c) return undefined;
  const line = lineCounter.linePos(node?.range?.[0] ?? 0).line;
  const value = (key: string): Node | null => check.at(c, key);
  // errors are collected by the checker; a certificate with errors is still built (partially) so that its
  // name and target paths take part in the duplicate checks

  // name
  let name: string | undefined;
  if (!c.has('name'))
    check.error(node, join(path, 'name'), 'missing; every certificate needs a name, e.g. name: my-mcp');
  else {
    name = check.string(value('name'), join(path, 'name'), 'a certificate name');
    if (name !== undefined) {
      try {
        validateCertName(name);
      } catch {
        name = check.error(
          value('name'),
          join(path, 'name'),
          `invalid certificate name ${JSON.stringify(name)}: use letters, digits, ".", "_" and "-" (it becomes a file name), e.g. my-mcp`,
        );
      }
    }
  }

  // issuer
  let issuer: DeclaredIssuer | undefined = defaultIssuerValid ? defaults.issuer : undefined;
  if (c.has('issuer')) issuer = checkIssuer(check, value('issuer'), join(path, 'issuer'));
  const acme = issuer?.type === 'acme';
  const local = issuer?.type === 'local';

  // kind
  let kind: CertificateKind = 'server';
  if (c.has('kind')) {
    const k = check.oneOf(value('kind'), join(path, 'kind'), ['server', 'client'] as const);
    if (k) kind = k;
    if (k === 'client' && acme)
      check.error(
        value('kind'),
        join(path, 'kind'),
        'client certificates come only from the local CA (issuer: local); public ACME CAs issue server certificates',
      );
  }

  // names
  const sans: San[] = [];
  const sanNodes: (Node | null)[] = [];
  if (!c.has('names'))
    check.error(
      node,
      join(path, 'names'),
      'missing; list the DNS names, IP addresses, URIs or e-mail addresses to certify',
    );
  else {
    const items = check.list(value('names'), join(path, 'names'), 'a list of names') ?? [];
    if (c.has('names') && isSeq(value('names')) && items.length === 0)
      check.error(value('names'), join(path, 'names'), 'expected at least one name');
    const seen = new Map<string, number>();
    items.forEach((item, index) => {
      const text = check.string(item.node, item.path, 'a DNS name, IP address, URI or e-mail address');
      if (text === undefined) return;
      let san: San;
      try {
        san = classifySan(text);
      } catch (error) {
        check.error(item.node, item.path, error instanceof Error ? error.message : String(error));
        return;
      }
      const key = `${san.type}:${san.value}`;
      if (seen.has(key))
        return check.error(
          item.node,
          item.path,
          `${JSON.stringify(text)} is listed twice (also names[${seen.get(key)}])`,
        );
      seen.set(key, index);
      if (acme && san.type !== 'dns' && san.type !== 'ip') {
        return check.error(
          item.node,
          item.path,
          `an ACME certificate can only certify DNS names and IP addresses, not ${san.type === 'uri' ? 'URIs' : 'e-mail addresses'}`,
        );
      }
      sans.push(san);
      sanNodes.push(item.node);
    });
  }

  // key, days, profile, renewBefore
  let key = defaults.key;
  if (c.has('key')) key = checkKeyType(check, value('key'), join(path, 'key')) ?? key;
  let days: number | undefined = local ? defaults.days : undefined;
  if (c.has('days')) {
    if (acme)
      check.error(
        c.get('days')!.key,
        join(path, 'days'),
        'days is only for local certificates: an ACME CA decides the lifetime (choose a profile instead)',
      );
    else days = checkDays(check, value('days'), join(path, 'days'));
  }
  let profile: string | undefined;
  if (c.has('profile')) {
    if (local)
      check.error(
        c.get('profile')!.key,
        join(path, 'profile'),
        'profile is only for ACME certificates (issuer: acme:<account>); use days for a local certificate',
      );
    else profile = check.string(value('profile'), join(path, 'profile'), 'an ACME profile name');
  }
  // reuseKey, preferredChain: ACME only
  let reuseKey: boolean | undefined;
  if (c.has('reuseKey')) {
    const node = value('reuseKey');
    if (local)
      check.error(
        c.get('reuseKey')!.key,
        join(path, 'reuseKey'),
        'reuseKey is only for ACME certificates (issuer: acme:<account>)',
      );
    else if (isScalar(node) && typeof node.value === 'boolean') reuseKey = node.value;
    else check.error(node, join(path, 'reuseKey'), `expected true or false, got ${describe(node)}`);
  }
  let preferredChain: string | undefined;
  if (c.has('preferredChain')) {
    if (local)
      check.error(
        c.get('preferredChain')!.key,
        join(path, 'preferredChain'),
        'preferredChain is only for ACME certificates (issuer: acme:<account>)',
      );
    else {
      preferredChain = check.string(
        value('preferredChain'),
        join(path, 'preferredChain'),
        'the common name of an issuer in the chain, e.g. "ISRG Root X1"',
      );
      // eslint-disable-next-line no-control-regex
      if (
        preferredChain !== undefined &&
        (preferredChain.length > 64 || /[\u0000-\u001f\u007f-\u009f]/.test(preferredChain))
      ) {
        preferredChain = check.error(
          value('preferredChain'),
          join(path, 'preferredChain'),
          'expected an issuer common name: at most 64 characters, no control characters',
        );
      }
    }
  }
  let renewBefore = defaults.renewBefore;
  if (c.has('renewBefore')) renewBefore = check.renewBefore(value('renewBefore'), join(path, 'renewBefore'));
  if (local && renewBefore?.type === 'duration' && days !== undefined && renewBefore.ms >= days * 86_400_000) {
    const where = c.has('renewBefore') ? value('renewBefore') : c.has('days') ? value('days') : node;
    check.error(
      where,
      join(path, c.has('renewBefore') ? 'renewBefore' : 'days'),
      `renewBefore must be shorter than the lifetime (${days} days), or the certificate would be renewed on every check`,
    );
  }

  // challenge
  let challenge: DeclaredChallenge | undefined = acme ? { type: 'http-01', port: 80 } : undefined;
  if (c.has('challenge')) {
    if (local)
      check.error(
        c.get('challenge')!.key,
        join(path, 'challenge'),
        'challenge is only for ACME certificates (issuer: acme:<account>)',
      );
    else challenge = checkChallenge(check, value('challenge'), join(path, 'challenge'), base);
  }
  if (acme && challenge) {
    sans.forEach((san, index) => {
      if (san.value.startsWith('*.') && challenge!.type !== 'dns-01') {
        check.error(
          sanNodes[index]!,
          `${join(path, 'names')}[${index}]`,
          `a wildcard name needs a dns-01 challenge (${challenge!.type} cannot validate it)`,
        );
      }
      if (san.type === 'ip' && challenge!.type === 'dns-01') {
        check.error(
          sanNodes[index]!,
          `${join(path, 'names')}[${index}]`,
          'an IP address cannot be validated with dns-01: use http-01 or tls-alpn-01',
        );
      }
    });
  }

  // targets
  const targets: DeclaredTarget[] = [];
  const targetNodes: (Node | null)[] = [];
  if (c.has('targets')) {
    const items = check.list(value('targets'), join(path, 'targets'), 'a list of targets') ?? [];
    for (const item of items) {
      const target = checkTarget(check, item.node, item.path, base, name);
      if (target) {
        targets.push(target.target);
        targetNodes.push(target.pathNode);
      }
    }
  }

  // hooks
  let hooks: DeclaredHooks = { reload: [], timeoutMs: defaults.hookTimeoutMs };
  if (c.has('hooks')) hooks = checkHooks(check, value('hooks'), join(path, 'hooks'), defaults.hookTimeoutMs) ?? hooks;

  if (name === undefined) return undefined;
  return { declared: partial(), nameNode: value('name'), targetNodes };

  function partial(): DeclaredCertificate {
    const declared: DeclaredCertificate = {
      name: name!,
      issuer: issuer ?? { type: 'local' },
      names: sans,
      kind,
      key,
      targets,
      hooks,
      line,
    };
    if (days !== undefined) declared.days = days;
    if (profile !== undefined) declared.profile = profile;
    if (challenge !== undefined) declared.challenge = challenge;
    if (reuseKey !== undefined) declared.reuseKey = reuseKey;
    if (preferredChain !== undefined) declared.preferredChain = preferredChain;
    if (renewBefore !== undefined) declared.renewBefore = renewBefore;
    return declared;
  }
}
