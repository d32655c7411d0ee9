// ACME certificate profiles (draft-aaron-acme-profiles, now draft-ietf-acme-profiles): the directory lists the
// profiles it offers in `meta.profiles` (name → human-readable description or URL) and a newOrder request names
// one in its `profile` field. Let's Encrypt offers classic, tlsserver and shortlived. Pure functions.
import { isIP } from '../pki/names.js';
import { McpkiError, fix } from '../errors.js';
import { isAriCertificateId } from './ari.js';

/** The profiles a directory offers, name → description (or URL); {} when it offers none. */
export function directoryProfiles(directory: unknown): Record<string, string> {
  const meta = (directory as { meta?: unknown } | null | undefined)?.meta;
  const profiles = (meta as { profiles?: unknown } | null | undefined)?.profiles;
  if (!profiles || typeof profiles !== 'object' || Array.isArray(profiles)) return {};
  const out: Record<string, string> = {};
  for (const [name, description] of Object.entries(profiles as Record<string, unknown>)) {
    out[name] = typeof description === 'string' ? description : JSON.stringify(description);
  }
  return out;
}

/**
 * Checks a requested profile against the directory: undefined when none was requested; the name when the
 * directory offers it; an McpkiError when it does not, or when the server does not support profiles at all
 * (the request is never silently dropped: the certificate would not be what was asked for).
 */
export function checkProfile(requested: string | undefined, directory: unknown): string | undefined {
  if (requested === undefined) return undefined;
  if (typeof requested !== 'string' || requested.trim() === '') {
    throw new McpkiError(
      'INVALID_INPUT',
      '--profile needs a profile name',
      fix('give a name the ACME directory lists in meta.profiles, or drop {--profile|profile:}'),
    );
  }
  const offered = directoryProfiles(directory);
  const names = Object.keys(offered);
  if (names.length === 0) {
    throw new McpkiError(
      'INVALID_INPUT',
      `this ACME server does not support profiles (asked for "${requested}")`,
      fix('drop {--profile|profile:}: this server issues its one default kind of certificate'),
    );
  }
  if (Object.hasOwn(offered, requested)) return requested;
  const caseless = names.find((name) => name.toLowerCase() === requested.toLowerCase());
  const list = names.map((name) => (offered[name] ? `${name} (${offered[name]})` : name)).join(', ');
  throw new McpkiError(
    'INVALID_INPUT',
    `unknown ACME profile "${requested}"; this server offers: ${names.join(', ')}`,
    fix(
      caseless
        ? `profile names are case-sensitive: did you mean {--profile ${caseless}|profile: ${caseless}}?`
        : `choose one with {--profile NAME|profile: NAME}: ${list}`,
    ),
  );
}

export interface AcmeOrderIdentifier {
  type: string;
  value: string;
}

export interface NewOrderInput {
  /** names as strings (IP addresses become type "ip", RFC 8738; the rest "dns") or { type, value } */
  identifiers: ReadonlyArray<string | AcmeOrderIdentifier>;
  /** a profile name, normally the result of checkProfile */
  profile?: string | undefined;
  /** the ARI certificate identifier of the certificate this order renews (RFC 9773 section 5) */
  replaces?: string | undefined;
}

export interface NewOrderPayload {
  identifiers: AcmeOrderIdentifier[];
  profile?: string;
  replaces?: string;
}

/** The JSON body of a newOrder request: identifiers, plus `profile` and `replaces` only when set. */
export function newOrderPayload(input: NewOrderInput): NewOrderPayload {
  if (!input.identifiers || input.identifiers.length === 0) {
    throw new McpkiError(
      'INVALID_INPUT',
      'an ACME order needs at least one identifier',
      'give the names with -d DOMAIN',
    );
  }
  const identifiers = input.identifiers.map((identifier): AcmeOrderIdentifier => {
    if (typeof identifier === 'string') {
      const value = identifier.trim();
      if (!value)
        throw new McpkiError('INVALID_INPUT', 'an empty name cannot be ordered', 'give the names with -d DOMAIN');
      return isIP(value.replace(/^\[|\]$/g, ''))
        ? { type: 'ip', value: value.replace(/^\[|\]$/g, '') }
        : { type: 'dns', value };
    }
    return { type: identifier.type, value: identifier.value };
  });
  const payload: NewOrderPayload = { identifiers };
  if (input.profile !== undefined && input.profile !== '') payload.profile = input.profile;
  if (input.replaces !== undefined && input.replaces !== '') {
    if (!isAriCertificateId(input.replaces)) {
      throw new McpkiError(
        'INVALID_INPUT',
        `"replaces" must be an ARI certificate identifier, not ${JSON.stringify(input.replaces)}`,
        'compute it with ariCertificateId(previous certificate)',
      );
    }
    payload.replaces = input.replaces;
  }
  return payload;
}
