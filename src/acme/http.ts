// HTTP details shared by the ACME modules (problems.ts, client-errors.ts, ari.ts): which network error codes
// mean an untrusted server or a transient failure, finding the code of a network failure, Retry-After, and
// response headers (Link rel=...). No I/O and no acme-client here.

/** Node/OpenSSL codes meaning "the server's TLS certificate is not trusted (or not for this name)". */
export const TLS_TRUST_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Network errors worth retrying at once: the connection broke or timed out, DNS had a hiccup. */
export const TRANSIENT_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EPIPE',
  'ECONNABORTED',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

/** The system/TLS error code of a network failure, looking through axios errors, causes and AggregateErrors. */
export function networkErrorCode(error: unknown): string | undefined {
  const queue: unknown[] = [error];
  for (let i = 0; i < queue.length && i < 12; i++) {
    const current = queue[i] as { code?: unknown; cause?: unknown; errors?: unknown } | null | undefined;
    if (!current || typeof current !== 'object') continue;
    const code = current.code;
    if (
      typeof code === 'string' &&
      (TLS_TRUST_CODES.has(code) ||
        /^E[A-Z0-9_]+$/.test(code) ||
        code.startsWith('ERR_TLS_') ||
        code.startsWith('ERR_SSL_') ||
        code === 'ERR_SOCKET_CONNECTION_TIMEOUT')
    ) {
      return code;
    }
    if (current.cause) queue.push(current.cause);
    if (Array.isArray(current.errors)) queue.push(...current.errors);
  }
  return undefined;
}

/**
 * Retry-After (RFC 9110 section 10.2.3): delay-seconds or an HTTP-date. Returns whole seconds from `now`
 * (0 for a date already past), or undefined when absent or unparseable.
 */
export function parseRetryAfter(value: string | undefined | null, now: Date = new Date()): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = String(value).trim();
  if (text === '') return undefined;
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds : undefined;
  }
  // HTTP-date: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), and the obsolete RFC 850 / asctime forms
  if (!/[A-Za-z]{3}/.test(text)) return undefined;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return undefined;
  return Math.max(0, Math.ceil((ms - now.getTime()) / 1000));
}

export function headerOf(headers: unknown, name: string): string | undefined {
  if (!headers || typeof headers !== 'object') return undefined;
  const h = headers as Record<string, unknown> & { get?: (n: string) => unknown };
  let value = h[name] ?? h[name.toLowerCase()];
  if (value === undefined && typeof h.get === 'function') {
    try {
      value = h.get(name);
    } catch {
      value = undefined;
    }
  }
  if (Array.isArray(value)) value = value.join(', ');
  return value === undefined || value === null ? undefined : String(value);
}

export function linkWithRel(link: string | undefined, rel: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,\s*(?=<)/)) {
    const match = /^<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (match && new RegExp(`rel\\s*=\\s*"?${rel}"?`, 'i').test(match[2]!)) return match[1];
  }
  return undefined;
}
