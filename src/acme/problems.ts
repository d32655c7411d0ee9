// Typed ACME problems (RFC 8555 section 6.7, RFC 7807): what the CA (or the network) said, the identifier and
// challenge it was about, whether it is worth retrying, and one line saying what to do about it.
//
// acme-client 5.4.0 throws away most of a problem document: every failed request becomes
// `new Error(detail)` (util.formatResponseError) without the type, status or subproblems; an invalid
// authorization becomes `new Error(JSON.stringify(authorization))`; a challenge error without `detail` becomes
// a TypeError ("(result || "").replace is not a function"); and every network error (ECONNREFUSED, ENOTFOUND,
// TLS trust, timeouts) becomes a TypeError "Cannot read properties of undefined (reading 'config')" from its
// axios interceptor (publishlab/node-acme-client#101). `attachProblemRecorder(acme.axios)` keeps the original
// responses and network errors so fromAcmeClientError can restore them; without it the type is inferred from
// the detail text (`inferred: true`). This module does not import acme-client.
import { McpkiError, type ErrorCode } from '../errors.js';

export const ACME_ERROR_PREFIX = 'urn:ietf:params:acme:error:';
const MCPKI_PROBLEM_PREFIX = 'urn:mcpki:problem:';

/** Error types of RFC 8555 section 6.7, RFC 9773 (alreadyReplaced) and draft-ietf-acme-profiles (invalidProfile). */
export type AcmeErrorName =
  | 'accountDoesNotExist'
  | 'alreadyReplaced'
  | 'alreadyRevoked'
  | 'badCSR'
  | 'badNonce'
  | 'badPublicKey'
  | 'badRevocationReason'
  | 'badSignatureAlgorithm'
  | 'caa'
  | 'compound'
  | 'connection'
  | 'dns'
  | 'externalAccountRequired'
  | 'incorrectResponse'
  | 'invalidContact'
  | 'invalidProfile'
  | 'malformed'
  | 'orderNotReady'
  | 'rateLimited'
  | 'rejectedIdentifier'
  | 'serverInternal'
  | 'tls'
  | 'unauthorized'
  | 'unsupportedContact'
  | 'unsupportedIdentifier'
  | 'userActionRequired';

/**
 * Failures that are not ACME problem documents: `network` (could not talk to the CA), `untrustedServer`
 * (the CA's TLS certificate is not trusted here), `timeout` (the CA did not finish validating in time),
 * `badDirectory` (the directory document is unusable), `unknown`.
 */
export type McpkiProblemName = 'network' | 'untrustedServer' | 'timeout' | 'badDirectory' | 'unknown';

export type AcmeProblemName = AcmeErrorName | McpkiProblemName;

export interface AcmeIdentifier {
  type: string;
  value: string;
}

export interface AcmeSubproblem {
  /** full URN, e.g. urn:ietf:params:acme:error:rejectedIdentifier */
  type: string;
  /** short name, e.g. rejectedIdentifier */
  name: string;
  detail: string;
  identifier?: AcmeIdentifier;
}

export type AcmeOperation = 'directory' | 'account' | 'order' | 'authorization' | 'challenge' | 'finalize' | 'certificate' | 'revoke' | 'renewalInfo';

export interface AcmeProblem {
  /** full URN (urn:ietf:params:acme:error:NAME), the server's own type, or urn:mcpki:problem:NAME */
  type: string;
  /** short name: the part after urn:ietf:params:acme:error: (or the McpkiProblemName) */
  name: AcmeProblemName | (string & {});
  /** one line, as the CA (or the network layer) said it */
  detail: string;
  /** HTTP status of the response that carried the problem */
  status?: number;
  /** RFC 7807 `instance` (for userActionRequired: the page the user has to visit) */
  instance?: string;
  subproblems: AcmeSubproblem[];
  /** the identifier that failed (from the problem, the authorization, or the caller's context) */
  identifier?: AcmeIdentifier;
  /** the challenge type that failed (http-01, dns-01, tls-alpn-01) */
  challengeType?: string;
  orderUrl?: string;
  /** the URL of the failed request, challenge or authorization */
  url?: string;
  operation?: AcmeOperation;
  /** the port this machine's challenge responder listened on (--http-port, --alpn-port), when one ran */
  localPort?: number;
  /** seconds from the response's Retry-After header (or "retry after <time>" in a rate-limit detail) */
  retryAfterSeconds?: number;
  /** when it is worth trying again (now + Retry-After) */
  retryAfter?: Date;
  /** the network error code (ECONNRESET, ENOTFOUND, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...) */
  networkCode?: string;
  /** the terms-of-service link (Link rel="terms-of-service") sent with userActionRequired */
  termsOfService?: string;
  /** server: a problem from the CA; network: no answer from the CA; local: acme-client's own checks/bookkeeping */
  origin: 'server' | 'network' | 'local';
  /** the type was guessed from the message text because acme-client dropped it */
  inferred: boolean;
}

export interface ProblemContext {
  /** the identifier being worked on ("example.com" or { type, value }) */
  identifier?: string | AcmeIdentifier;
  challengeType?: string;
  orderUrl?: string;
  operation?: AcmeOperation;
  /** the port this machine's challenge responder listened on */
  localPort?: number;
  /** the recorder attached to acme-client's axios instance, to recover what acme-client dropped */
  recorder?: ProblemRecorder;
  now?: Date;
}

// ---------------------------------------------------------------------------------------------------
// HTTP and network helpers (shared with ari.ts)

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
export const TRANSIENT_NETWORK_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED', 'ERR_SOCKET_CONNECTION_TIMEOUT']);

/** The system/TLS error code of a network failure, looking through axios errors, causes and AggregateErrors. */
export function networkErrorCode(error: unknown): string | undefined {
  const queue: unknown[] = [error];
  for (let i = 0; i < queue.length && i < 12; i++) {
    const current = queue[i] as { code?: unknown; cause?: unknown; errors?: unknown } | null | undefined;
    if (!current || typeof current !== 'object') continue;
    const code = current.code;
    if (typeof code === 'string' && (TLS_TRUST_CODES.has(code) || /^E[A-Z0-9_]+$/.test(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code === 'ERR_SOCKET_CONNECTION_TIMEOUT')) {
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

// "retry after 2025-01-08 18:44:59 UTC" (Let's Encrypt), "Retry after 2030-01-01T00:00:00Z"
const RETRY_AFTER_IN_DETAIL = /retry after (\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z| ?UTC|[+-]\d{2}:?\d{2})?)/i;

function retryAfterFromDetail(detail: string): Date | undefined {
  const match = RETRY_AFTER_IN_DETAIL.exec(detail);
  if (!match) return undefined;
  let text = match[1]!.replace(' ', 'T').replace(/ ?UTC$/i, 'Z');
  if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(text)) text += 'Z';
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

function oneLine(text: unknown, max = 300): string {
  const line = String(text ?? '').replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function headerOf(headers: unknown, name: string): string | undefined {
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

function linkWithRel(link: string | undefined, rel: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,\s*(?=<)/)) {
    const match = /^<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (match && new RegExp(`rel\\s*=\\s*"?${rel}"?`, 'i').test(match[2]!)) return match[1];
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Building problems

function asIdentifier(value: unknown): AcmeIdentifier | undefined {
  if (typeof value === 'string' && value) return { type: 'dns', value };
  const id = value as { type?: unknown; value?: unknown } | null | undefined;
  if (id && typeof id === 'object' && typeof id.value === 'string') return { type: typeof id.type === 'string' ? id.type : 'dns', value: id.value };
  return undefined;
}

function nameOfType(type: string): string {
  if (type.startsWith(ACME_ERROR_PREFIX)) return type.slice(ACME_ERROR_PREFIX.length);
  if (type.startsWith(MCPKI_PROBLEM_PREFIX)) return type.slice(MCPKI_PROBLEM_PREFIX.length);
  // ACME v1 servers used urn:acme:error:NAME
  if (type.startsWith('urn:acme:error:')) return type.slice('urn:acme:error:'.length);
  return 'unknown';
}

function typeOfName(name: string): string {
  return (['network', 'untrustedServer', 'timeout', 'badDirectory', 'unknown'] as const).includes(name as McpkiProblemName) ? `${MCPKI_PROBLEM_PREFIX}${name}` : `${ACME_ERROR_PREFIX}${name}`;
}

function base(context: ProblemContext, fields: Partial<AcmeProblem> & Pick<AcmeProblem, 'name' | 'detail' | 'origin'>): AcmeProblem {
  const problem: AcmeProblem = {
    type: fields.type ?? typeOfName(fields.name),
    name: fields.name,
    detail: oneLine(fields.detail),
    subproblems: fields.subproblems ?? [],
    origin: fields.origin,
    inferred: fields.inferred ?? false,
  };
  const identifier = fields.identifier ?? asIdentifier(context.identifier);
  if (identifier) problem.identifier = identifier;
  const challengeType = fields.challengeType ?? context.challengeType;
  if (challengeType) problem.challengeType = challengeType;
  const orderUrl = fields.orderUrl ?? context.orderUrl;
  if (orderUrl) problem.orderUrl = orderUrl;
  const operation = fields.operation ?? context.operation;
  if (operation) problem.operation = operation;
  if (context.localPort !== undefined) problem.localPort = context.localPort;
  for (const key of ['status', 'instance', 'url', 'networkCode', 'termsOfService'] as const) {
    if (fields[key] !== undefined) (problem as unknown as Record<string, unknown>)[key] = fields[key];
  }
  const now = context.now ?? new Date();
  if (fields.retryAfterSeconds !== undefined) {
    problem.retryAfterSeconds = fields.retryAfterSeconds;
    problem.retryAfter = new Date(now.getTime() + fields.retryAfterSeconds * 1000);
  } else if (problem.name === 'rateLimited') {
    const until = retryAfterFromDetail(problem.detail);
    if (until) {
      problem.retryAfterSeconds = Math.max(0, Math.ceil((until.getTime() - now.getTime()) / 1000));
      problem.retryAfter = until;
    }
  }
  return problem;
}

export interface ResponseExtras {
  status?: number;
  /** response headers (plain object or axios' AxiosHeaders): Retry-After and Link are read */
  headers?: unknown;
  url?: string;
}

/**
 * An AcmeProblem from a problem document (`{ type, detail, status, instance, subproblems }`) as the CA sent it.
 * Works for top-level responses and for the `error` of a challenge, authorization or order.
 */
export function problemFromDocument(document: unknown, context: ProblemContext = {}, extras: ResponseExtras = {}): AcmeProblem {
  const doc = (document && typeof document === 'object' ? document : {}) as Record<string, unknown>;
  const type = typeof doc.type === 'string' && doc.type ? doc.type : undefined;
  let name = type ? nameOfType(type) : 'unknown';
  const status = typeof doc.status === 'number' ? doc.status : extras.status;
  if (name === 'unknown' && status === 429) name = 'rateLimited';
  const detail = typeof doc.detail === 'string' ? doc.detail : typeof document === 'string' ? document : type ?? (status ? `HTTP ${status}` : 'no detail');
  const subproblems: AcmeSubproblem[] = Array.isArray(doc.subproblems)
    ? doc.subproblems
        .filter((s): s is Record<string, unknown> => !!s && typeof s === 'object')
        .map((s) => {
          const subType = typeof s.type === 'string' ? s.type : `${ACME_ERROR_PREFIX}malformed`;
          const sub: AcmeSubproblem = { type: subType, name: nameOfType(subType), detail: oneLine(s.detail) };
          const identifier = asIdentifier(s.identifier);
          if (identifier) sub.identifier = identifier;
          return sub;
        })
    : [];
  const now = context.now ?? new Date();
  const retryAfterSeconds = parseRetryAfter(headerOf(extras.headers, 'retry-after'), now);
  const link = headerOf(extras.headers, 'link');
  return base(context, {
    ...(type ? { type } : {}),
    name,
    detail,
    origin: 'server',
    subproblems,
    ...(status !== undefined ? { status } : {}),
    ...(typeof doc.instance === 'string' ? { instance: doc.instance } : {}),
    ...(asIdentifier(doc.identifier) ? { identifier: asIdentifier(doc.identifier)! } : subproblems.length === 1 && subproblems[0]!.identifier ? { identifier: subproblems[0]!.identifier } : {}),
    ...(extras.url ? { url: extras.url } : {}),
    ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
    ...(linkWithRel(link, 'terms-of-service') ? { termsOfService: linkWithRel(link, 'terms-of-service')! } : {}),
  });
}

/**
 * The problem inside an ACME object whose status is invalid: a challenge or order (`error`), or an
 * authorization (the `error` of its failed challenge; the identifier comes from the authorization).
 */
function problemFromInvalidObject(object: Record<string, unknown>, context: ProblemContext, extras: ResponseExtras = {}): AcmeProblem | undefined {
  const url = typeof object.url === 'string' ? object.url : extras.url;
  if (Array.isArray(object.challenges)) {
    const authzIdentifier = asIdentifier(object.identifier);
    const identifier = authzIdentifier && object.wildcard === true ? { ...authzIdentifier, value: `*.${authzIdentifier.value}` } : authzIdentifier;
    const challenges = object.challenges.filter((c): c is Record<string, unknown> => !!c && typeof c === 'object');
    const failed = challenges.find((c) => c.error && c.status === 'invalid') ?? challenges.find((c) => c.error);
    if (failed) {
      const problem = problemFromDocument(failed.error, context, { ...extras, url: typeof failed.url === 'string' ? failed.url : url });
      if (identifier) problem.identifier = identifier;
      if (typeof failed.type === 'string') problem.challengeType = failed.type;
      return problem;
    }
    return base(context, {
      name: 'unknown',
      detail: `the authorization${identifier ? ` for ${identifier.value}` : ''} is ${String(object.status ?? 'invalid')} without an error`,
      origin: 'server',
      ...(identifier ? { identifier } : {}),
      ...(url ? { url } : {}),
    });
  }
  if (object.error && typeof object.error === 'object') {
    const problem = problemFromDocument(object.error, context, { ...extras, ...(url ? { url } : {}) });
    if (typeof object.token === 'string' && typeof object.type === 'string') problem.challengeType = object.type;
    if (Array.isArray(object.identifiers) && url && !problem.orderUrl) problem.orderUrl = url;
    return problem;
  }
  if (Array.isArray(object.identifiers)) {
    return base(context, { name: 'unknown', detail: `the order is ${String(object.status ?? 'invalid')}`, origin: 'server', ...(url ? { url, orderUrl: context.orderUrl ?? url } : {}) });
  }
  return undefined;
}

function networkProblem(code: string | undefined, url: string | undefined, detail: string, context: ProblemContext): AcmeProblem {
  const untrusted = code !== undefined && TLS_TRUST_CODES.has(code);
  return base(context, {
    name: untrusted ? 'untrustedServer' : 'network',
    detail,
    origin: 'network',
    ...(code ? { networkCode: code } : {}),
    ...(url ? { url } : {}),
  });
}

// acme-client's own messages (src/client.js, http.js, api.js, verify.js, util.js of 5.4.0)
const LOCAL_MESSAGES: Array<[RegExp, (m: RegExpExecArray) => Partial<AcmeProblem> & Pick<AcmeProblem, 'name'>]> = [
  [/^Authorization not found in HTTP response from (.+)$/, (m) => ({ name: 'incorrectResponse', challengeType: 'http-01', identifier: { type: 'dns', value: m[1]! } })],
  [/^No TXT records found for name: (?:_acme-challenge\.)?(.+)$/, (m) => ({ name: 'dns', challengeType: 'dns-01', identifier: { type: 'dns', value: m[1]! } })],
  [/^Authorization not found in DNS TXT record: (?:_acme-challenge\.)?(.+)$/, (m) => ({ name: 'incorrectResponse', challengeType: 'dns-01', identifier: { type: 'dns', value: m[1]! } })],
  [/^Authorization not found in certificate from (.+)$/, (m) => ({ name: 'incorrectResponse', challengeType: 'tls-alpn-01', identifier: { type: 'dns', value: m[1]! } })],
  [/^TLS ALPN (?:certificate lookup request timed out|lookup failed to retrieve certificate)$/, () => ({ name: 'tls', challengeType: 'tls-alpn-01' })],
  [/^Operation is pending or processing$/, () => ({ name: 'timeout' })],
  [/^No account URL found, register account first$/, () => ({ name: 'accountDoesNotExist' })],
  [/^Attempting to read ACME directory returned error (\d+): /, (m) => ({ name: 'badDirectory', status: Number(m[1]) })],
  [/^(?:Attempting to read ACME directory returned no data|Unable to locate API resource URL in ACME directory: .*)$/, () => ({ name: 'badDirectory' })],
  [/^Failed to get nonce from ACME provider$/, () => ({ name: 'badNonce' })],
  [/^Unable to select challenge for (.+), no challenge found$/, (m) => ({ name: 'unknown', identifier: { type: 'dns', value: m[1]! } })],
  [/^(?:Creating a new order did not return an order link|Unable to download certificate, URL not found|Unexpected item status: .*|Unable to .*, URL not found|Unable to verify ACME challenge, unknown type: .*|Unable to produce key authorization, unknown challenge type: .*)$/, () => ({ name: 'unknown' })],
];

// Problem types inferred from detail texts of Boulder (Let's Encrypt), Pebble, step-ca and others, for when
// acme-client has dropped the type. First match wins.
const DETAIL_PATTERNS: Array<[RegExp, AcmeErrorName]> = [
  [/rate.?limit|too many (?:certificates|requests|new orders|failed authori[sz]ations|registrations|accounts|new registrations)|\bretry after \d{4}-/i, 'rateLimited'],
  [/\bnonce\b/i, 'badNonce'],
  [/external account/i, 'externalAccountRequired'],
  [/already revoked/i, 'alreadyRevoked'],
  [/revocation reason|reason code/i, 'badRevocationReason'],
  [/\bCAA\b/, 'caa'],
  [/account (?:does not exist|not found|is not valid)|unable to find (?:the )?account|no account exists/i, 'accountDoesNotExist'],
  [/DNS problem|NXDOMAIN|SERVFAIL|no valid A records|no valid AAAA records|DNS lookup|could not resolve|looking up (?:A|AAAA|TXT|CAA)|Error retrieving TXT records/i, 'dns'],
  [/Correct value not found for DNS challenge|Incorrect TXT record|No TXT record found|TXT record/i, 'incorrectResponse'],
  [/connection refused|timeout during connect|connection reset|i\/o timeout|no route to host|network is unreachable|Timeout after connect|Fetching https?:\/\/\S+: (?:Connection|Timeout|Error getting)/i, 'connection'],
  [/key authorization|did not match|Invalid response from|The key authorization file/i, 'incorrectResponse'],
  [/\bTLS\b|handshake|\bALPN\b|acme-tls\/1/i, 'tls'],
  [/terms of service have changed|user action required|must (?:visit|accept)/i, 'userActionRequired'],
  [/policy forbids|cannot issue for|public suffix|blocklist|blocked|not allowed|forbidden by policy|rejected identifier/i, 'rejectedIdentifier'],
  [/unauthori[sz]ed|not authori[sz]ed|authorization required/i, 'unauthorized'],
  [/\bprofile\b/i, 'invalidProfile'],
  [/\bCSR\b|certificate signing request/i, 'badCSR'],
  [/\bcontact\b|e-?mail address/i, 'invalidContact'],
  [/not ready|orderNotReady/i, 'orderNotReady'],
  [/internal (?:server )?error|server error|unexpected error/i, 'serverInternal'],
  [/malformed|invalid|unable to (?:parse|decode)|parse error/i, 'malformed'],
];

function identifierFromDetail(detail: string): AcmeIdentifier | undefined {
  const match =
    /_acme-challenge\.([A-Za-z0-9.*-]+[A-Za-z0-9])/.exec(detail) ??
    /Fetching https?:\/\/([^/:\s]+)/.exec(detail) ??
    /\bfor "(\*?[A-Za-z0-9.-]+)"/.exec(detail) ??
    /\bfor (\*?\.?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)\b/.exec(detail);
  return match ? { type: 'dns', value: match[1]! } : undefined;
}

const REPLACE_CRASH = '\u0000acme-client: problem without detail';

function looksLikeAxiosError(error: unknown): error is { isAxiosError: true; response?: { status?: number; data?: unknown; headers?: unknown }; config?: { url?: string }; message: string } {
  return !!error && typeof error === 'object' && (error as { isAxiosError?: unknown }).isAxiosError === true;
}

/**
 * Turns whatever acme-client 5.4.0 (or the network under it) threw into an AcmeProblem:
 * - `AcmeProblemError` → its problem;
 * - the TypeError "Cannot read properties of undefined (reading 'config')" that replaces every network error
 *   → `network`/`untrustedServer` with the code the recorder saw (or without one);
 * - an AxiosError → the problem document in its response, or `network` with its code;
 * - any error whose message is a recorded response's formatted problem → that response's full problem;
 * - `Error(JSON.stringify(authorization|order))` (an invalid object without detail) → its challenge's error;
 * - acme-client's own messages (local challenge checks, missing account, directory errors);
 * - otherwise `Error(detail)` of a problem document → the type inferred from the detail (`inferred: true`).
 */
export function fromAcmeClientError(error: unknown, context: ProblemContext = {}): AcmeProblem {
  if (error instanceof AcmeProblemError) return error.problem;
  if (error instanceof McpkiError) return base(context, { name: 'unknown', detail: error.message, origin: 'local' });
  const message = error instanceof Error ? error.message : typeof error === 'string' ? error : oneLine(JSON.stringify(error));
  const recorder = context.recorder;

  // 1. the network error acme-client's axios interceptor loses (publishlab/node-acme-client#101)
  if (error instanceof TypeError && /reading 'config'/.test(message)) {
    const seen = recorder?.lastNetworkError();
    if (seen) return networkProblem(seen.code, seen.url, seen.message, context);
    return networkProblem(undefined, undefined, 'the connection to the ACME server failed (acme-client 5.4.0 loses the network error: attach a problem recorder to see it)', context);
  }

  // 2. axios errors that reach us directly (acme-client's own challenge self-checks use axios too)
  if (looksLikeAxiosError(error)) {
    const url = error.config?.url;
    if (error.response) {
      const { data, status, headers } = error.response;
      const extras: ResponseExtras = { ...(status !== undefined ? { status } : {}), headers, ...(url ? { url } : {}) };
      if (data && typeof data === 'object') return problemFromDocument(data, context, extras);
      return base(context, { name: status === 429 ? 'rateLimited' : (status ?? 0) >= 500 ? 'serverInternal' : 'unknown', detail: `${message}${url ? ` (${url})` : ''}`, origin: 'server', ...(status !== undefined ? { status } : {}), ...(url ? { url } : {}) });
    }
    return networkProblem(networkErrorCode(error), url, message, context);
  }

  // 3. a response the recorder kept, with its type, status, subproblems and headers
  const recorded = recorder?.find(error instanceof TypeError && /replace is not a function/.test(message) ? REPLACE_CRASH : message);
  if (recorded) {
    const extras: ResponseExtras = { status: recorded.status, headers: recorded.headers, ...(recorded.url ? { url: recorded.url } : {}) };
    const fromObject = recorded.status < 400 && recorded.data && typeof recorded.data === 'object' ? problemFromInvalidObject(recorded.data as Record<string, unknown>, context, extras) : undefined;
    return fromObject ?? problemFromDocument(recorded.data, context, extras);
  }

  // 4. plain network errors (node:net/tls/dns), e.g. from acme-client's tls-alpn-01 self-check
  const code = networkErrorCode(error);
  if (code) return networkProblem(code, undefined, message, context);

  // 5. Error(JSON.stringify(object)) for an invalid authorization/order/challenge that has no detail
  if (message.startsWith('{')) {
    try {
      const object = JSON.parse(message) as unknown;
      if (object && typeof object === 'object' && !Array.isArray(object)) {
        const problem = problemFromInvalidObject(object as Record<string, unknown>, context);
        if (problem) return problem;
        if (typeof (object as { type?: unknown }).type === 'string') return problemFromDocument(object, context);
      }
    } catch {
      // not JSON after all
    }
  }

  // 6. acme-client's own messages
  for (const [pattern, build] of LOCAL_MESSAGES) {
    const match = pattern.exec(message);
    if (match) return base(context, { ...build(match), detail: message, origin: 'local' });
  }
  if (error instanceof TypeError && /replace is not a function/.test(message)) {
    return base(context, { name: 'unknown', detail: 'the CA reported an error without a detail (acme-client could not format it)', origin: 'server' });
  }

  // 7. Error(detail) of a problem document: infer the type from the text
  const inferred = DETAIL_PATTERNS.find(([pattern]) => pattern.test(message))?.[1];
  const identifier = asIdentifier(context.identifier) ?? identifierFromDetail(message);
  return base(context, {
    name: inferred ?? 'unknown',
    detail: message || (error instanceof Error ? error.name : 'unknown error'),
    origin: error instanceof Error && !(error instanceof TypeError) && !(error instanceof RangeError) && !(error instanceof ReferenceError) ? 'server' : 'local',
    inferred: inferred !== undefined,
    ...(identifier ? { identifier } : {}),
  });
}

// ---------------------------------------------------------------------------------------------------
// Retrying and describing

/**
 * Worth retrying at once: badNonce (acme-client already retried it a few times), transient network errors
 * (ECONNRESET, ETIMEDOUT, EAI_AGAIN, EPIPE, ECONNABORTED = axios timeout) and 502/503/504 from a gateway.
 * Never a rate limit (report it with its Retry-After) and never 500 serverInternal, which usually repeats.
 */
export function isRetryable(problem: AcmeProblem): boolean {
  if (problem.name === 'badNonce') return true;
  if (problem.name === 'rateLimited') return false;
  if (problem.origin === 'network') return problem.networkCode !== undefined && TRANSIENT_NETWORK_CODES.has(problem.networkCode);
  return problem.origin === 'server' && (problem.status === 502 || problem.status === 503 || problem.status === 504);
}

const CHALLENGE_PORT: Record<string, number> = { 'http-01': 80, 'tls-alpn-01': 443 };

function txtName(domain: string): string {
  return `_acme-challenge.${domain.replace(/^\*\./, '')}`;
}

function serverOf(url: string | undefined): string {
  if (!url) return 'the ACME server';
  try {
    return `the ACME server ${new URL(url).host}`;
  } catch {
    return 'the ACME server';
  }
}

/** The port the CA connected to: the one in the URL its detail names (http://name:PORT/…), else the standard one. */
function validationPort(detail: string, challenge: string): number | undefined {
  const url = /\bhttps?:\/\/[^\s/"']+:(\d{1,5})\//.exec(detail) ?? /\bdial tcp [^\s]+:(\d{1,5})\b/.exec(detail);
  const port = url ? Number(url[1]) : undefined;
  return port !== undefined && port > 0 && port <= 65535 ? port : CHALLENGE_PORT[challenge];
}

function describeChallengeProblem(problem: AcmeProblem, domain: string, challenge: string, detail: string): { message: string; hint: string } | undefined {
  const prefix = `${challenge} challenge for ${domain} failed: `;
  const port = validationPort(detail, challenge);
  const bare = domain.replace(/^\*\./, '');
  const check = problem.origin === 'local' ? 'this machine' : 'the CA';
  // where our responder listened, when that is not where the CA connected
  const local = problem.localPort !== undefined && problem.localPort !== port ? ` (the responder here listened on port ${problem.localPort})` : '';
  const forward = problem.localPort !== undefined && problem.localPort !== port ? `forward port ${port} to port ${problem.localPort}` : `NAT forwarding to --http-port`;
  if (challenge === 'dns-01' && ['dns', 'incorrectResponse', 'unauthorized', 'connection'].includes(problem.name)) {
    return {
      message: `${prefix}TXT record ${txtName(domain)} not visible to ${check}: ${detail}`,
      hint: `make --dns-hook set the record in the zone the public name servers serve, check with "dig TXT ${txtName(domain)} @<authoritative server>", and give it time to propagate`,
    };
  }
  if (challenge === 'http-01' && (problem.name === 'connection' || problem.name === 'dns')) {
    return {
      message: `${prefix}port ${port} of ${bare} was not reachable from ${check}${local}: ${detail}`,
      hint: `${bare} must resolve to this machine (A/AAAA) and port ${port} must be open to the internet (firewall, ${forward}); or use --challenge dns-01`,
    };
  }
  if (challenge === 'http-01' && (problem.name === 'unauthorized' || problem.name === 'incorrectResponse')) {
    return {
      message: `${prefix}port ${port} of ${bare} did not serve the expected /.well-known/acme-challenge/ file to ${check}${local}: ${detail}`,
      hint: `another server may answer port ${port} of ${bare}: stop it, give its document root with --webroot, or fix redirects; or use --challenge dns-01`,
    };
  }
  if (challenge === 'http-01' && problem.name === 'tls') {
    return {
      message: `${prefix}port ${port} of ${bare} redirected to HTTPS and the TLS handshake failed: ${detail}`,
      hint: `do not redirect /.well-known/acme-challenge/ to HTTPS, or make the HTTPS server on ${bare} complete a handshake`,
    };
  }
  if (challenge === 'tls-alpn-01' && ['connection', 'dns', 'tls', 'unauthorized', 'incorrectResponse'].includes(problem.name)) {
    const what = problem.name === 'connection' || problem.name === 'dns' ? `port ${port} of ${bare} was not reachable from ${check}` : `port ${port} of ${bare} did not present the acme-tls/1 challenge certificate to ${check}`;
    return {
      message: `${prefix}${what}: ${detail}`,
      hint: `port 443 of ${bare} must reach the --alpn-port responder directly (no TLS-terminating proxy in front); or use --challenge http-01 or dns-01`,
    };
  }
  if (problem.name === 'caa') {
    return { message: `${prefix}CAA records of ${bare} do not allow this CA: ${detail}`, hint: `add a CAA record for ${bare} that names this CA (issue/issuewild), or remove the one that excludes it` };
  }
  return undefined;
}

/** One line naming the problem and one line naming the fix. */
export function describeProblem(problem: AcmeProblem): { message: string; hint: string } {
  const detail = oneLine(problem.detail, 240) || 'no detail';
  const domain = problem.identifier?.value;
  const challenge = problem.challengeType;
  const who = domain ?? 'the domain';
  if (challenge && domain) {
    const described = describeChallengeProblem(problem, domain, challenge, detail);
    if (described) return described;
  }
  if (problem.operation === 'account' && /external account|\beab\b/i.test(detail) && problem.name !== 'externalAccountRequired') {
    return {
      message: `the CA refused the External Account Binding: ${detail}`,
      hint: 'check the EAB key id (--eab-kid) and its HMAC key (--eab-hmac-file or MCPKI_EAB_HMAC, base64url, exactly as the CA shows it); some CAs accept each EAB key only once: create a new one',
    };
  }
  const prefix = challenge ? `${challenge} challenge${domain ? ` for ${domain}` : ''} failed: ` : domain ? `${domain}: ` : '';
  const until = problem.retryAfter ? problem.retryAfter.toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined;
  switch (problem.name) {
    case 'rateLimited':
      return {
        message: until ? `rate limited by the CA until ${until}: ${detail}` : `rate limited by the CA: ${detail}`,
        hint: until ? `wait until ${until} before trying again; test against a staging directory (e.g. --directory letsencrypt-staging)` : 'wait before trying again (see the detail); test against a staging directory (e.g. --directory letsencrypt-staging)',
      };
    case 'badNonce':
      return { message: `the CA kept rejecting the request's anti-replay nonce: ${detail}`, hint: 'a temporary condition: try again' };
    case 'externalAccountRequired':
      return { message: `this CA requires External Account Binding: ${detail}`, hint: 'pass --eab-kid and --eab-hmac-file with the key ID and HMAC key from your account at the CA' };
    case 'accountDoesNotExist':
      return { message: `the ACME account does not exist on this CA: ${detail}`, hint: 'register one with "mcpki acme account register" (the CA may have deleted or deactivated it)' };
    case 'alreadyRevoked':
      return { message: `the certificate is already revoked: ${detail}`, hint: 'nothing left to revoke' };
    case 'badRevocationReason':
      return { message: `the CA does not accept this revocation reason: ${detail}`, hint: 'choose another --reason: CAs commonly accept unspecified, keyCompromise, affiliationChanged, superseded and cessationOfOperation' };
    case 'alreadyReplaced':
      return { message: `the certificate this order replaces was already replaced by another order: ${detail}`, hint: 'order again without "replaces" (the renewal was already done once)' };
    case 'invalidProfile':
      return { message: `the CA rejected the certificate profile: ${detail}`, hint: 'choose one of the profiles the directory lists (meta.profiles), or drop --profile' };
    case 'caa':
      return { message: `${prefix}CAA records of ${who} do not allow this CA: ${detail}`, hint: `add a CAA record for ${who} that names this CA (issue/issuewild), or remove the one that excludes it` };
    case 'connection':
      return { message: `${prefix}the CA could not connect to ${who}: ${detail}`, hint: `${who} must be reachable from the internet on the challenge's port; or use --challenge dns-01` };
    case 'dns':
      return { message: `${prefix}the CA could not resolve ${who}: ${detail}`, hint: `${who} needs public DNS records (A/AAAA for http-01 and tls-alpn-01, a TXT record for dns-01); check the name and its name servers` };
    case 'tls':
      return { message: `${prefix}TLS error between the CA and ${who}: ${detail}`, hint: 'for http-01 do not redirect to a broken HTTPS site; for tls-alpn-01 port 443 must answer acme-tls/1' };
    case 'incorrectResponse':
      return { message: `${prefix}the CA received a wrong challenge response from ${who}: ${detail}`, hint: 'another server or an old record answers the challenge: check what port 80/443 or the TXT record serves' };
    case 'unauthorized':
      return {
        message: `${prefix}the CA refused: ${detail}`,
        hint: challenge
          ? 'the challenge response was not accepted: check that it is served to the internet'
          : problem.operation === 'revoke'
            ? 'the account may not do this: check --account (only the account that ordered a certificate, or its key, can revoke it)'
            : problem.operation === 'account'
              ? 'the CA refused to create or use this account: check --directory and, for a CA that requires it, the EAB key (--eab-kid, --eab-hmac-file)'
              : 'the account may not do this: check --account and that it is valid at this CA (mcpki acme account show NAME)',
      };
    case 'rejectedIdentifier':
    case 'compound': {
      const subs = problem.subproblems;
      if (subs.length > 0) {
        const list = subs.map((s) => `${s.identifier?.value ?? '?'} (${s.name}${s.detail ? `: ${oneLine(s.detail, 80)}` : ''})`).join('; ');
        const rejected = subs.filter((s) => s.identifier).map((s) => s.identifier!.value);
        return {
          message: `the CA refused ${subs.length === 1 ? 'one identifier' : `${subs.length} identifiers`}: ${list}`,
          hint: rejected.length ? `remove ${rejected.join(', ')} from -d, or use the local CA (mcpki issue) for internal names` : 'see the detail of each identifier',
        };
      }
      return {
        message: `the CA will not issue for ${who}: ${detail}`,
        hint: 'the CA\'s policy refuses this name (public suffix, blocked or non-public name): remove it from -d, or use the local CA (mcpki issue) for internal names',
      };
    }
    case 'unsupportedIdentifier':
      return { message: `this CA does not issue for ${who}: ${detail}`, hint: 'use DNS names; IP address certificates need a CA that supports them (RFC 8738)' };
    case 'malformed':
      return { message: `${prefix}the CA rejected the request as malformed: ${detail}`, hint: 'check the names and options given; if they are right, report it with this detail' };
    case 'serverInternal':
      return { message: `the CA had an internal error: ${detail}`, hint: 'try again later; check the CA\'s status page' };
    case 'userActionRequired': {
      const link = problem.instance ?? problem.termsOfService;
      return {
        message: `the CA requires an action from you: ${detail}`,
        hint: link ? `visit ${link} (for example to accept updated terms of service), then try again` : 'visit the CA\'s web site (for example to accept updated terms of service), then try again',
      };
    }
    case 'badCSR':
    case 'badPublicKey':
    case 'badSignatureAlgorithm':
      return { message: `the CA rejected the key or the CSR: ${detail}`, hint: 'try another --key type (ec-p256 and rsa-2048 are accepted by every CA)' };
    case 'invalidContact':
    case 'unsupportedContact':
      return { message: `the CA rejected the contact address: ${detail}`, hint: 'pass a deliverable --email (many CAs refuse example.com, .test and other reserved domains)' };
    case 'orderNotReady':
      return { message: `the order was not ready to finalize: ${detail}`, hint: 'an authorization is still pending or failed; try again' };
    case 'untrustedServer':
      return {
        message: `${serverOf(problem.url)} presented a TLS certificate this machine does not trust (${problem.networkCode ?? 'untrusted'})`,
        hint: 'for a private CA (Pebble, step-ca) pass its root with --ca-bundle FILE',
      };
    case 'network': {
      const code = problem.networkCode;
      return {
        message: `cannot reach ${serverOf(problem.url)}${code ? ` (${code})` : ''}: ${detail}`,
        hint: code && TRANSIENT_NETWORK_CODES.has(code) ? 'a temporary network error: try again' : 'check the directory URL, DNS, proxy settings and that the server is up',
      };
    }
    case 'timeout':
      return { message: `${prefix}the CA did not finish in time: ${detail}`, hint: 'try again; the CA may be slow' };
    case 'badDirectory':
      return { message: `the ACME directory is unusable: ${detail}`, hint: 'check --directory: it must be the URL of an RFC 8555 directory document' };
    default:
      return { message: `${prefix}the ACME server reported a problem${problem.name !== 'unknown' ? ` (${problem.name})` : ''}: ${detail}`, hint: 'see the detail; if the request looks right, try again later' };
  }
}

/** The McpkiError code for a problem (exit codes in src/errors.ts). */
export function errorCodeFor(problem: AcmeProblem): ErrorCode {
  switch (problem.name) {
    case 'rateLimited':
      return 'RATE_LIMITED';
    case 'network':
    case 'untrustedServer':
      return 'NETWORK';
    case 'externalAccountRequired':
      return 'EAB_REQUIRED';
    case 'accountDoesNotExist':
      return 'ACME_ACCOUNT_MISSING';
    case 'alreadyRevoked':
      return 'ALREADY_REVOKED';
    default:
      if (problem.challengeType && ['connection', 'dns', 'tls', 'incorrectResponse', 'unauthorized', 'caa', 'timeout'].includes(problem.name)) return 'CHALLENGE_FAILED';
      return 'ACME_PROBLEM';
  }
}

/** An McpkiError that carries its AcmeProblem: message and hint from describeProblem, code from errorCodeFor. */
export class AcmeProblemError extends McpkiError {
  readonly problem: AcmeProblem;
  readonly retryable: boolean;

  constructor(problem: AcmeProblem, cause?: unknown) {
    const { message, hint } = describeProblem(problem);
    super(errorCodeFor(problem), message, hint, cause === undefined ? undefined : { cause });
    this.name = 'AcmeProblemError';
    this.problem = problem;
    this.retryable = isRetryable(problem);
  }
}

/** fromAcmeClientError + AcmeProblemError in one step (McpkiErrors pass through unchanged). */
export function toAcmeProblemError(error: unknown, context: ProblemContext = {}): McpkiError {
  if (error instanceof McpkiError) return error;
  return new AcmeProblemError(fromAcmeClientError(error, context), error);
}

// ---------------------------------------------------------------------------------------------------
// Recording what acme-client drops

/** The part of an axios instance (acme-client's `acme.axios`) the recorder uses. */
export interface AxiosLike {
  interceptors: {
    response: {
      handlers?: unknown[] | null;
      use(onFulfilled?: ((value: any) => any) | null, onRejected?: ((error: any) => any) | null): number;
      eject(id: number): void;
    };
  };
}

export interface RecordedResponse {
  /** what acme-client's util.formatResponseError makes of this response: the message of the Error it throws */
  message: string;
  status: number;
  data: unknown;
  headers: { 'retry-after'?: string; link?: string };
  url?: string;
  at: Date;
}

export interface RecordedNetworkError {
  code: string | undefined;
  message: string;
  url?: string;
  at: Date;
}

export interface ProblemRecorder {
  /** the newest recorded response whose formatted message is `message` */
  find(message: string): RecordedResponse | undefined;
  /** the newest network error (no response) seen */
  lastNetworkError(): RecordedNetworkError | undefined;
  /** removes the interceptor */
  detach(): void;
}

/** acme-client 5.4.0 util.formatResponseError, without its crash on an `error` that has no detail. */
function formatLikeAcmeClient(data: unknown): string {
  let result: unknown;
  if (data) {
    const d = data as { error?: { detail?: unknown }; detail?: unknown };
    if (typeof data === 'object' && d.error) result = d.error.detail || d.error;
    else result = (typeof data === 'object' ? d.detail : undefined) || JSON.stringify(data);
  }
  if (result && typeof result !== 'string') return REPLACE_CRASH;
  return String(result || '').replace(/\n/g, '');
}

/** Error responses, and challenges/authorizations/orders whose status is invalid. */
function isWorthRecording(status: number, data: unknown): boolean {
  if (status >= 400) return true;
  return !!data && typeof data === 'object' && (data as { status?: unknown }).status === 'invalid';
}

/**
 * Watches an axios instance (acme-client's exported `axios`) and keeps the last `limit` error responses and
 * invalid objects, and the last network error, so fromAcmeClientError can restore the problem type, status,
 * subproblems, Retry-After and the network error code. The interceptor runs before acme-client's own (which
 * is where network errors are lost). Call detach() when done.
 */
export function attachProblemRecorder(axios: AxiosLike, options: { limit?: number } = {}): ProblemRecorder {
  const limit = options.limit ?? 32;
  const responses: RecordedResponse[] = [];
  const seen = new WeakSet<object>();
  let network: RecordedNetworkError | undefined;

  const onResponse = (response: unknown): void => {
    if (!response || typeof response !== 'object' || seen.has(response)) return;
    seen.add(response);
    const r = response as { status?: number; data?: unknown; headers?: unknown; config?: { url?: string } };
    const status = typeof r.status === 'number' ? r.status : 0;
    if (network && r.config?.url && network.url === r.config.url) network = undefined;
    if (!isWorthRecording(status, r.data)) return;
    const retryAfter = headerOf(r.headers, 'retry-after');
    const link = headerOf(r.headers, 'link');
    responses.push({
      message: formatLikeAcmeClient(r.data),
      status,
      data: r.data,
      headers: { ...(retryAfter !== undefined ? { 'retry-after': retryAfter } : {}), ...(link !== undefined ? { link } : {}) },
      ...(r.config?.url ? { url: r.config.url } : {}),
      at: new Date(),
    });
    if (responses.length > limit) responses.splice(0, responses.length - limit);
  };
  const handler = {
    fulfilled: (response: unknown) => {
      onResponse(response);
      return response;
    },
    rejected: (error: unknown) => {
      const e = error as { response?: unknown; config?: { url?: string }; message?: unknown } | null;
      if (e && e.response) onResponse(e.response);
      else if (e) {
        network = { code: networkErrorCode(error), message: oneLine(e.message ?? String(error)), ...(e.config?.url ? { url: e.config.url } : {}), at: new Date() };
      }
      return Promise.reject(error);
    },
    synchronous: false,
    runWhen: null,
  };
  const manager = axios.interceptors.response;
  let id: number | undefined;
  if (Array.isArray(manager.handlers)) manager.handlers.unshift(handler);
  else id = manager.use(handler.fulfilled, handler.rejected);

  return {
    find(message: string) {
      for (let i = responses.length - 1; i >= 0; i--) if (responses[i]!.message === message) return responses[i];
      return undefined;
    },
    lastNetworkError: () => network,
    detach() {
      if (id !== undefined) {
        manager.eject(id);
        return;
      }
      const handlers = manager.handlers;
      const index = Array.isArray(handlers) ? handlers.indexOf(handler) : -1;
      if (index >= 0) handlers!.splice(index, 1);
    },
  };
}
