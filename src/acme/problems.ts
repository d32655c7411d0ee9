// Typed ACME problems (RFC 8555 section 6.7, RFC 7807): what the CA (or the network) said, the identifier and
// challenge it was about, whether it is worth retrying, and which McpkiError code it maps to. Built from problem
// documents as the CA sent them; what acme-client makes of them is undone in client-errors.ts, and the words
// shown to the user are in problem-text.ts.
import type { ErrorCode } from '../errors.js';
import { headerOf, linkWithRel, parseRetryAfter, TLS_TRUST_CODES, TRANSIENT_NETWORK_CODES } from './http.js';

export const ACME_ERROR_PREFIX = 'urn:ietf:params:acme:error:';
export const MCPKI_PROBLEM_PREFIX = 'urn:mcpki:problem:';

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

export type AcmeOperation =
  | 'directory'
  | 'account'
  | 'order'
  | 'authorization'
  | 'challenge'
  | 'finalize'
  | 'certificate'
  | 'revoke'
  | 'renewalInfo';

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
  now?: Date;
}

// ---------------------------------------------------------------------------------------------------
// Building problems

// "retry after 2025-01-08 18:44:59 UTC" (Let's Encrypt), "Retry after 2030-01-01T00:00:00Z"
const RETRY_AFTER_IN_DETAIL =
  /retry after (\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z| ?UTC|[+-]\d{2}:?\d{2})?)/i;

function retryAfterFromDetail(detail: string): Date | undefined {
  const match = RETRY_AFTER_IN_DETAIL.exec(detail);
  if (!match) return undefined;
  let text = match[1]!.replace(' ', 'T').replace(/ ?UTC$/i, 'Z');
  if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(text)) text += 'Z';
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

export function oneLine(text: unknown, max = 300): string {
  const line = String(text ?? '')
    .replace(/\s+/g, ' ')
    .trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

export function asIdentifier(value: unknown): AcmeIdentifier | undefined {
  if (typeof value === 'string' && value) return { type: 'dns', value };
  const id = value as { type?: unknown; value?: unknown } | null | undefined;
  if (id && typeof id === 'object' && typeof id.value === 'string')
    return { type: typeof id.type === 'string' ? id.type : 'dns', value: id.value };
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
  return (['network', 'untrustedServer', 'timeout', 'badDirectory', 'unknown'] as const).includes(
    name as McpkiProblemName,
  )
    ? `${MCPKI_PROBLEM_PREFIX}${name}`
    : `${ACME_ERROR_PREFIX}${name}`;
}

export function buildProblem(
  context: ProblemContext,
  fields: Partial<AcmeProblem> & Pick<AcmeProblem, 'name' | 'detail' | 'origin'>,
): AcmeProblem {
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
export function problemFromDocument(
  document: unknown,
  context: ProblemContext = {},
  extras: ResponseExtras = {},
): AcmeProblem {
  const doc = (document && typeof document === 'object' ? document : {}) as Record<string, unknown>;
  const type = typeof doc.type === 'string' && doc.type ? doc.type : undefined;
  let name = type ? nameOfType(type) : 'unknown';
  const status = typeof doc.status === 'number' ? doc.status : extras.status;
  if (name === 'unknown' && status === 429) name = 'rateLimited';
  const detail =
    typeof doc.detail === 'string'
      ? doc.detail
      : typeof document === 'string'
        ? document
        : (type ?? (status ? `HTTP ${status}` : 'no detail'));
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
  return buildProblem(context, {
    ...(type ? { type } : {}),
    name,
    detail,
    origin: 'server',
    subproblems,
    ...(status !== undefined ? { status } : {}),
    ...(typeof doc.instance === 'string' ? { instance: doc.instance } : {}),
    ...(asIdentifier(doc.identifier)
      ? { identifier: asIdentifier(doc.identifier)! }
      : subproblems.length === 1 && subproblems[0]!.identifier
        ? { identifier: subproblems[0]!.identifier }
        : {}),
    ...(extras.url ? { url: extras.url } : {}),
    ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
    ...(linkWithRel(link, 'terms-of-service') ? { termsOfService: linkWithRel(link, 'terms-of-service')! } : {}),
  });
}

/**
 * The problem inside an ACME object whose status is invalid: a challenge or order (`error`), or an
 * authorization (the `error` of its failed challenge; the identifier comes from the authorization).
 */
export function problemFromInvalidObject(
  object: Record<string, unknown>,
  context: ProblemContext,
  extras: ResponseExtras = {},
): AcmeProblem | undefined {
  const url = typeof object.url === 'string' ? object.url : extras.url;
  if (Array.isArray(object.challenges)) {
    const authzIdentifier = asIdentifier(object.identifier);
    const identifier =
      authzIdentifier && object.wildcard === true
        ? { ...authzIdentifier, value: `*.${authzIdentifier.value}` }
        : authzIdentifier;
    const challenges = object.challenges.filter((c): c is Record<string, unknown> => !!c && typeof c === 'object');
    const failed = challenges.find((c) => c.error && c.status === 'invalid') ?? challenges.find((c) => c.error);
    if (failed) {
      const problem = problemFromDocument(failed.error, context, {
        ...extras,
        url: typeof failed.url === 'string' ? failed.url : url,
      });
      if (identifier) problem.identifier = identifier;
      if (typeof failed.type === 'string') problem.challengeType = failed.type;
      return problem;
    }
    return buildProblem(context, {
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
    return buildProblem(context, {
      name: 'unknown',
      detail: `the order is ${String(object.status ?? 'invalid')}`,
      origin: 'server',
      ...(url ? { url, orderUrl: context.orderUrl ?? url } : {}),
    });
  }
  return undefined;
}

export function networkProblem(
  code: string | undefined,
  url: string | undefined,
  detail: string,
  context: ProblemContext,
): AcmeProblem {
  const untrusted = code !== undefined && TLS_TRUST_CODES.has(code);
  return buildProblem(context, {
    name: untrusted ? 'untrustedServer' : 'network',
    detail,
    origin: 'network',
    ...(code ? { networkCode: code } : {}),
    ...(url ? { url } : {}),
  });
}

// ---------------------------------------------------------------------------------------------------
// Retrying

/**
 * Worth retrying at once: badNonce (acme-client already retried it a few times), transient network errors
 * (ECONNRESET, ETIMEDOUT, EAI_AGAIN, EPIPE, ECONNABORTED = axios timeout) and 502/503/504 from a gateway.
 * Never a rate limit (report it with its Retry-After) and never 500 serverInternal, which usually repeats.
 */
export function isRetryable(problem: AcmeProblem): boolean {
  if (problem.name === 'badNonce') return true;
  if (problem.name === 'rateLimited') return false;
  if (problem.origin === 'network')
    return problem.networkCode !== undefined && TRANSIENT_NETWORK_CODES.has(problem.networkCode);
  return problem.origin === 'server' && (problem.status === 502 || problem.status === 503 || problem.status === 504);
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
      if (
        problem.challengeType &&
        ['connection', 'dns', 'tls', 'incorrectResponse', 'unauthorized', 'caa', 'timeout'].includes(problem.name)
      )
        return 'CHALLENGE_FAILED';
      return 'ACME_PROBLEM';
  }
}
