// Well-known ACME directories by name, and which ones issue untrusted test certificates.
import { McpkiError, fix } from '../errors.js';

export const DIRECTORIES: Record<string, { url: string; environment: 'production' | 'staging' }> = {
  letsencrypt: { url: 'https://acme-v02.api.letsencrypt.org/directory', environment: 'production' },
  'letsencrypt-staging': { url: 'https://acme-staging-v02.api.letsencrypt.org/directory', environment: 'staging' },
  zerossl: { url: 'https://acme.zerossl.com/v2/DV90', environment: 'production' },
  google: { url: 'https://dv.acme-v02.api.pki.goog/directory', environment: 'production' },
  'google-staging': { url: 'https://dv.acme-v02.test-api.pki.goog/directory', environment: 'staging' },
  buypass: { url: 'https://api.buypass.com/acme/directory', environment: 'production' },
  'buypass-staging': { url: 'https://api.test4.buypass.no/acme/directory', environment: 'staging' },
};

export interface ResolvedDirectory {
  url: string;
  environment: 'production' | 'staging';
}

/**
 * A directory name or an https URL. A URL not in the table counts as production unless `staging` says
 * otherwise (a private CA such as step-ca issues real certificates for its users).
 */
export function resolveDirectory(nameOrUrl: string, staging?: boolean): ResolvedDirectory {
  const known = DIRECTORIES[nameOrUrl];
  if (known) return { url: known.url, environment: staging ? 'staging' : known.environment };
  let url: URL;
  try {
    url = new URL(nameOrUrl);
  } catch {
    throw new McpkiError(
      'INVALID_INPUT',
      `unknown ACME directory "${nameOrUrl}"`,
      `use one of ${Object.keys(DIRECTORIES).join(', ')}, or the directory's https:// URL`,
    );
  }
  if (url.protocol !== 'https:') {
    throw new McpkiError(
      'INVALID_INPUT',
      `ACME directory ${nameOrUrl} is not an https:// URL`,
      fix('RFC 8555 requires HTTPS; for a private CA pass its certificate with {--ca-bundle FILE}'),
    );
  }
  if (url.username || url.password) {
    // it would be stored in the inventory and printed in every message and log line
    throw new McpkiError(
      'INVALID_INPUT',
      `ACME directory URL ${url.protocol}//${url.host}${url.pathname} carries a user name or password`,
      fix(
        'ACME authenticates with the account key (and {--eab-kid ID} and {--eab-hmac-file FILE} where the CA asks for it), never with credentials in the URL: remove "user:password@"',
      ),
    );
  }
  const byUrl = Object.values(DIRECTORIES).find((d) => d.url === url.href);
  return { url: url.href, environment: staging ? 'staging' : (byUrl?.environment ?? 'production') };
}
