// Everything specific to acme-client 5.4.0's error handling, beside client.ts so that an acme-client upgrade
// touches only these two files. acme-client throws away most of a problem document: every failed request
// becomes `new Error(detail)` (util.formatResponseError) without the type, status or subproblems; an invalid
// authorization becomes `new Error(JSON.stringify(authorization))`; a challenge error without `detail` becomes
// a TypeError ("(result || "").replace is not a function"); and every network error (ECONNREFUSED, ENOTFOUND,
// TLS trust, timeouts) becomes a TypeError "Cannot read properties of undefined (reading 'config')" from its
// axios interceptor (publishlab/node-acme-client#101). `attachProblemRecorder(acme.axios)` keeps the original
// responses and network errors so fromAcmeClientError can restore them; without it the type is inferred from
// the detail text (`inferred: true`). This module does not import acme-client itself.
import { McpkiError } from '../errors.js';
import { headerOf, networkErrorCode } from './http.js';
import {
  asIdentifier,
  buildProblem,
  networkProblem,
  oneLine,
  problemFromDocument,
  problemFromInvalidObject,
  type AcmeErrorName,
  type AcmeIdentifier,
  type AcmeProblem,
  type ProblemContext,
  type ResponseExtras,
} from './problems.js';
import { AcmeProblemError } from './problem-text.js';

/** A ProblemContext with the recorder attached to acme-client's axios instance, to recover what acme-client dropped. */
export interface AcmeClientErrorContext extends ProblemContext {
  recorder?: ProblemRecorder;
}

// acme-client's own messages (src/client.js, http.js, api.js, verify.js, util.js of 5.4.0)
const LOCAL_MESSAGES: Array<[RegExp, (m: RegExpExecArray) => Partial<AcmeProblem> & Pick<AcmeProblem, 'name'>]> = [
  [
    /^Authorization not found in HTTP response from (.+)$/,
    (m) => ({ name: 'incorrectResponse', challengeType: 'http-01', identifier: { type: 'dns', value: m[1]! } }),
  ],
  [
    /^No TXT records found for name: (?:_acme-challenge\.)?(.+)$/,
    (m) => ({ name: 'dns', challengeType: 'dns-01', identifier: { type: 'dns', value: m[1]! } }),
  ],
  [
    /^Authorization not found in DNS TXT record: (?:_acme-challenge\.)?(.+)$/,
    (m) => ({ name: 'incorrectResponse', challengeType: 'dns-01', identifier: { type: 'dns', value: m[1]! } }),
  ],
  [
    /^Authorization not found in certificate from (.+)$/,
    (m) => ({ name: 'incorrectResponse', challengeType: 'tls-alpn-01', identifier: { type: 'dns', value: m[1]! } }),
  ],
  [
    /^TLS ALPN (?:certificate lookup request timed out|lookup failed to retrieve certificate)$/,
    () => ({ name: 'tls', challengeType: 'tls-alpn-01' }),
  ],
  [/^Operation is pending or processing$/, () => ({ name: 'timeout' })],
  [/^No account URL found, register account first$/, () => ({ name: 'accountDoesNotExist' })],
  [
    /^Attempting to read ACME directory returned error (\d+): /,
    (m) => ({ name: 'badDirectory', status: Number(m[1]) }),
  ],
  [
    /^(?:Attempting to read ACME directory returned no data|Unable to locate API resource URL in ACME directory: .*)$/,
    () => ({ name: 'badDirectory' }),
  ],
  [/^Failed to get nonce from ACME provider$/, () => ({ name: 'badNonce' })],
  [
    /^Unable to select challenge for (.+), no challenge found$/,
    (m) => ({ name: 'unknown', identifier: { type: 'dns', value: m[1]! } }),
  ],
  [
    /^(?:Creating a new order did not return an order link|Unable to download certificate, URL not found|Unexpected item status: .*|Unable to .*, URL not found|Unable to verify ACME challenge, unknown type: .*|Unable to produce key authorization, unknown challenge type: .*)$/,
    () => ({ name: 'unknown' }),
  ],
];

// Problem types inferred from detail texts of Boulder (Let's Encrypt), Pebble, step-ca and others, for when
// acme-client has dropped the type. First match wins.
const DETAIL_PATTERNS: Array<[RegExp, AcmeErrorName]> = [
  [
    /rate.?limit|too many (?:certificates|requests|new orders|failed authori[sz]ations|registrations|accounts|new registrations)|\bretry after \d{4}-/i,
    'rateLimited',
  ],
  [/\bnonce\b/i, 'badNonce'],
  [/external account/i, 'externalAccountRequired'],
  [/already revoked/i, 'alreadyRevoked'],
  [/revocation reason|reason code/i, 'badRevocationReason'],
  [/\bCAA\b/, 'caa'],
  [
    /account (?:does not exist|not found|is not valid)|unable to find (?:the )?account|no account exists/i,
    'accountDoesNotExist',
  ],
  [
    /DNS problem|NXDOMAIN|SERVFAIL|no valid A records|no valid AAAA records|DNS lookup|could not resolve|looking up (?:A|AAAA|TXT|CAA)|Error retrieving TXT records/i,
    'dns',
  ],
  [
    /Correct value not found for DNS challenge|Incorrect TXT record|No TXT record found|TXT record/i,
    'incorrectResponse',
  ],
  [
    /connection refused|timeout during connect|connection reset|i\/o timeout|no route to host|network is unreachable|Timeout after connect|Fetching https?:\/\/\S+: (?:Connection|Timeout|Error getting)/i,
    'connection',
  ],
  [/key authorization|did not match|Invalid response from|The key authorization file/i, 'incorrectResponse'],
  [/\bTLS\b|handshake|\bALPN\b|acme-tls\/1/i, 'tls'],
  [/terms of service have changed|user action required|must (?:visit|accept)/i, 'userActionRequired'],
  [
    /policy forbids|cannot issue for|public suffix|blocklist|blocked|not allowed|forbidden by policy|rejected identifier/i,
    'rejectedIdentifier',
  ],
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

function looksLikeAxiosError(error: unknown): error is {
  isAxiosError: true;
  response?: { status?: number; data?: unknown; headers?: unknown };
  config?: { url?: string };
  message: string;
} {
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
export function fromAcmeClientError(error: unknown, context: AcmeClientErrorContext = {}): AcmeProblem {
  if (error instanceof AcmeProblemError) return error.problem;
  if (error instanceof McpkiError)
    return buildProblem(context, { name: 'unknown', detail: error.message, origin: 'local' });
  const message =
    error instanceof Error ? error.message : typeof error === 'string' ? error : oneLine(JSON.stringify(error));
  const recorder = context.recorder;

  // 1. the network error acme-client's axios interceptor loses (publishlab/node-acme-client#101)
  if (error instanceof TypeError && /reading 'config'/.test(message)) {
    const seen = recorder?.lastNetworkError();
    if (seen) return networkProblem(seen.code, seen.url, seen.message, context);
    return networkProblem(
      undefined,
      undefined,
      'the connection to the ACME server failed (acme-client 5.4.0 loses the network error: attach a problem recorder to see it)',
      context,
    );
  }

  // 2. axios errors that reach us directly (acme-client's own challenge self-checks use axios too)
  if (looksLikeAxiosError(error)) {
    const url = error.config?.url;
    if (error.response) {
      const { data, status, headers } = error.response;
      const extras: ResponseExtras = { ...(status !== undefined ? { status } : {}), headers, ...(url ? { url } : {}) };
      if (data && typeof data === 'object') return problemFromDocument(data, context, extras);
      return buildProblem(context, {
        name: status === 429 ? 'rateLimited' : (status ?? 0) >= 500 ? 'serverInternal' : 'unknown',
        detail: `${message}${url ? ` (${url})` : ''}`,
        origin: 'server',
        ...(status !== undefined ? { status } : {}),
        ...(url ? { url } : {}),
      });
    }
    return networkProblem(networkErrorCode(error), url, message, context);
  }

  // 3. a response the recorder kept, with its type, status, subproblems and headers
  const recorded = recorder?.find(
    error instanceof TypeError && /replace is not a function/.test(message) ? REPLACE_CRASH : message,
  );
  if (recorded) {
    const extras: ResponseExtras = {
      status: recorded.status,
      headers: recorded.headers,
      ...(recorded.url ? { url: recorded.url } : {}),
    };
    const fromObject =
      recorded.status < 400 && recorded.data && typeof recorded.data === 'object'
        ? problemFromInvalidObject(recorded.data as Record<string, unknown>, context, extras)
        : undefined;
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
    if (match) return buildProblem(context, { ...build(match), detail: message, origin: 'local' });
  }
  if (error instanceof TypeError && /replace is not a function/.test(message)) {
    return buildProblem(context, {
      name: 'unknown',
      detail: 'the CA reported an error without a detail (acme-client could not format it)',
      origin: 'server',
    });
  }

  // 7. Error(detail) of a problem document: infer the type from the text
  const inferred = DETAIL_PATTERNS.find(([pattern]) => pattern.test(message))?.[1];
  const identifier = asIdentifier(context.identifier) ?? identifierFromDetail(message);
  return buildProblem(context, {
    name: inferred ?? 'unknown',
    detail: message || (error instanceof Error ? error.name : 'unknown error'),
    origin:
      error instanceof Error &&
      !(error instanceof TypeError) &&
      !(error instanceof RangeError) &&
      !(error instanceof ReferenceError)
        ? 'server'
        : 'local',
    inferred: inferred !== undefined,
    ...(identifier ? { identifier } : {}),
  });
}

/** fromAcmeClientError + AcmeProblemError in one step (McpkiErrors pass through unchanged). */
export function toAcmeProblemError(error: unknown, context: AcmeClientErrorContext = {}): McpkiError {
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
      headers: {
        ...(retryAfter !== undefined ? { 'retry-after': retryAfter } : {}),
        ...(link !== undefined ? { link } : {}),
      },
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
        network = {
          code: networkErrorCode(error),
          message: oneLine(e.message ?? String(error)),
          ...(e.config?.url ? { url: e.config.url } : {}),
          at: new Date(),
        };
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
