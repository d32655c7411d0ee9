// ACME Renewal Information (ARI, RFC 9773): the certificate identifier and fetching a certificate's suggested
// renewal window, with node:https (Node 20's fetch cannot trust a private CA such as Pebble's). Choosing when to
// renew inside the window, and when to ask again, is the pure ari-window.ts (re-exported here).
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import { McpkiError, type ErrorCode } from '../errors.js';
import { children, fromPem, parse } from '../pki/der.js';
import { OIDS, readCertificate } from '../pki/x509.js';
import { type RenewalWindow } from './ari-window.js';
import { headerOf, networkErrorCode, parseRetryAfter, TLS_TRUST_CODES } from './http.js';

export { chooseRenewalTime, nextRenewalInfoCheck, type RecheckOptions, type RenewalWindow } from './ari-window.js';

// ---------------------------------------------------------------------------------------------------
// Certificate identifier (RFC 9773 section 4.1)

const ARI_ID = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** True for `base64url(keyIdentifier) "." base64url(serial)`, both unpadded and non-empty. */
export function isAriCertificateId(id: string): boolean {
  return typeof id === 'string' && ARI_ID.test(id);
}

function certificateDer(certificate: string | Buffer): Buffer {
  // DER starts with a SEQUENCE tag; anything else is taken as PEM text (possibly with headers before it)
  if (Buffer.isBuffer(certificate) && certificate[0] === 0x30) return certificate;
  const text = typeof certificate === 'string' ? certificate : certificate.toString('latin1');
  // the first CERTIFICATE block: the leaf of a full chain
  const [der] = fromPem(text, 'CERTIFICATE');
  if (!der)
    throw new McpkiError(
      'INVALID_INPUT',
      'no PEM CERTIFICATE block found',
      'give the certificate as PEM ("-----BEGIN CERTIFICATE-----") or DER',
    );
  return der;
}

/**
 * The ARI certificate identifier (RFC 9773 section 4.1): base64url of the keyIdentifier in the certificate's
 * Authority Key Identifier extension, ".", base64url of the serial number's DER content octets (with the
 * leading 0x00 a positive serial with its high bit set carries). Accepts PEM (text or Buffer; the first
 * certificate of a chain is used) or DER.
 */
export function ariCertificateId(certificate: string | Buffer): string {
  const der = certificateDer(certificate);
  let parts: ReturnType<typeof readCertificate>;
  try {
    parts = readCertificate(der);
  } catch (error) {
    throw new McpkiError(
      'INVALID_INPUT',
      `not an X.509 certificate (${(error as Error).message})`,
      'give the certificate as PEM or DER',
      { cause: error },
    );
  }
  const aki = parts.extensions.get(OIDS.authorityKeyIdentifier);
  let keyIdentifier: Buffer | undefined;
  if (aki) {
    try {
      // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... }
      keyIdentifier = children(parse(aki.value)).find((field) => field.tag === 0x80)?.content;
    } catch (error) {
      throw new McpkiError(
        'INVALID_INPUT',
        `the certificate's Authority Key Identifier extension is malformed (${(error as Error).message})`,
        'ARI needs a certificate issued by an ACME CA',
        { cause: error },
      );
    }
  }
  if (!keyIdentifier || keyIdentifier.length === 0) {
    throw new McpkiError(
      'INVALID_INPUT',
      aki
        ? "the certificate's Authority Key Identifier has no keyIdentifier, so it has no ARI certificate identifier"
        : 'the certificate has no Authority Key Identifier extension, so it has no ARI certificate identifier (RFC 9773 4.1)',
      'ARI (renewal information, "replaces") only applies to certificates from an ACME CA; renew this one without it',
    );
  }
  if (parts.serial.length === 0)
    throw new McpkiError('INVALID_INPUT', 'the certificate has an empty serial number', 'give a valid certificate');
  return `${keyIdentifier.toString('base64url')}.${Buffer.from(parts.serial).toString('base64url')}`;
}

/** `${renewalInfoUrl}/${certId}` (RFC 9773 section 4.1), tolerating a trailing slash on the base URL. */
export function renewalInfoResourceUrl(renewalInfoUrl: string, certId: string): string {
  return `${renewalInfoUrl.replace(/\/+$/, '')}/${certId}`;
}

/** The directory's `renewalInfo` URL, or undefined when the server does not offer ARI. */
export function renewalInfoEndpoint(directory: unknown): string | undefined {
  const url = (directory as { renewalInfo?: unknown } | null | undefined)?.renewalInfo;
  return typeof url === 'string' && url.length > 0 ? url : undefined;
}

// ---------------------------------------------------------------------------------------------------
// Fetching

export interface FetchOptions {
  /** extra trust anchors (PEM) for the server's TLS certificate, e.g. a Pebble or step-ca root; added to Node's bundled roots */
  ca?: string | Buffer | Array<string | Buffer>;
  /** whole-request timeout; default 10 s */
  timeoutMs?: number;
}

export type RenewalInfoFailure = 'network' | 'timeout' | 'tls' | 'http' | 'malformed';

/**
 * Fetching renewal information (or the directory) failed. `temporary` follows RFC 9773 section 4.3.3:
 * timeouts, connection errors and 5xx are temporary (retry with backoff); everything else is long-term
 * (check again in about 6 hours, or renew on the fallback schedule).
 */
export class RenewalInfoError extends McpkiError {
  readonly reason: RenewalInfoFailure;
  readonly status: number | undefined;
  readonly temporary: boolean;
  readonly retryAfterSeconds: number | undefined;
  readonly url: string;

  constructor(
    code: ErrorCode,
    message: string,
    hint: string,
    details: {
      reason: RenewalInfoFailure;
      url: string;
      status?: number;
      temporary: boolean;
      retryAfterSeconds?: number;
      cause?: unknown;
    },
  ) {
    super(code, message, hint, { cause: details.cause });
    this.name = 'RenewalInfoError';
    this.reason = details.reason;
    this.url = details.url;
    this.status = details.status;
    this.temporary = details.temporary;
    this.retryAfterSeconds = details.retryAfterSeconds;
  }
}

interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const MAX_BODY = 256 * 1024;

function get(url: string, options: FetchOptions, what: string): Promise<HttpResult> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new McpkiError('INVALID_INPUT', `not a URL: ${url}`, `give the ${what} as an https:// URL`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new McpkiError(
      'INVALID_INPUT',
      `unsupported URL scheme ${parsed.protocol} in ${url}`,
      `give the ${what} as an https:// URL`,
    );
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  const requestFn = parsed.protocol === 'https:' ? httpsRequest : httpRequest;
  const ca = options.ca === undefined ? undefined : Array.isArray(options.ca) ? options.ca : [options.ca];
  return new Promise<HttpResult>((resolvePromise, reject) => {
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(error);
    };
    const req = requestFn(
      parsed,
      {
        method: 'GET',
        // one connection per request: nothing keeps the process (or a test server) alive afterwards
        agent: false,
        headers: { accept: 'application/json', 'user-agent': 'mcpki' },
        ...(ca && parsed.protocol === 'https:'
          ? { ca: [...rootCertificates, ...ca.map((c) => (Buffer.isBuffer(c) ? c.toString('latin1') : c))] }
          : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY) {
            fail(
              new RenewalInfoError(
                'NETWORK',
                `the ${what} response from ${url} is larger than ${MAX_BODY} bytes`,
                'check the URL',
                { reason: 'malformed', url, temporary: false },
              ),
            );
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', fail);
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
      },
    );
    const timer = setTimeout(() => {
      fail(
        new RenewalInfoError(
          'NETWORK',
          `no answer from ${url} within ${timeoutMs} ms`,
          'the server is slow or unreachable; try again later',
          {
            reason: 'timeout',
            url,
            temporary: true,
          },
        ),
      );
    }, timeoutMs);
    req.on('error', (error) => fail(transportError(error, url, what)));
    req.end();
  });
}

function transportError(error: unknown, url: string, what: string): RenewalInfoError {
  const code = networkErrorCode(error);
  if (code && TLS_TRUST_CODES.has(code)) {
    return new RenewalInfoError(
      'NETWORK',
      `the server at ${url} presented a TLS certificate this machine does not trust (${code})`,
      'for a private ACME CA (Pebble, step-ca) pass its root with --ca-bundle FILE',
      {
        reason: 'tls',
        url,
        temporary: false,
        cause: error,
      },
    );
  }
  const detail = code ?? (error instanceof Error ? error.message : String(error));
  return new RenewalInfoError(
    'NETWORK',
    `cannot fetch the ${what} from ${url} (${detail})`,
    'check the URL and the network; try again later',
    {
      reason: 'network',
      url,
      // RFC 9773 4.3.3: connection failures are temporary errors, retried with backoff
      temporary: true,
      cause: error,
    },
  );
}

function parseJson(result: HttpResult, url: string, what: string, retryAfterSeconds: number | undefined): unknown {
  try {
    return JSON.parse(result.body.toString('utf8'));
  } catch (error) {
    throw new RenewalInfoError(
      'ACME_PROBLEM',
      `the ${what} at ${url} is not JSON`,
      "check the URL: it must be the ACME server's",
      {
        reason: 'malformed',
        url,
        status: result.status,
        temporary: false,
        retryAfterSeconds,
        cause: error,
      },
    );
  }
}

function httpFailure(
  result: HttpResult,
  url: string,
  what: string,
  retryAfterSeconds: number | undefined,
  notFoundMessage?: string,
): RenewalInfoError {
  let detail = '';
  try {
    const problem = JSON.parse(result.body.toString('utf8')) as { detail?: unknown };
    if (typeof problem?.detail === 'string') detail = `: ${problem.detail.replace(/\s+/g, ' ').slice(0, 300)}`;
  } catch {
    // not a problem document
  }
  const temporary = result.status >= 500 || result.status === 429;
  const message =
    result.status === 404 && notFoundMessage
      ? `${notFoundMessage}${detail}`
      : `the ${what} request to ${url} failed with HTTP ${result.status}${detail}`;
  return new RenewalInfoError(
    result.status === 429 ? 'RATE_LIMITED' : 'ACME_PROBLEM',
    message,
    temporary ? 'temporary: try again later' : 'check the URL and the certificate',
    {
      reason: 'http',
      url,
      status: result.status,
      temporary,
      retryAfterSeconds,
    },
  );
}

/** GET an ACME directory document (RFC 8555 section 7.1.1) with node:https. */
export async function fetchDirectory(
  directoryUrl: string,
  options: FetchOptions = {},
): Promise<Record<string, unknown>> {
  const result = await get(directoryUrl, options, 'ACME directory');
  const retryAfterSeconds = parseRetryAfter(headerOf(result.headers, 'retry-after'));
  if (result.status !== 200) throw httpFailure(result, directoryUrl, 'ACME directory', retryAfterSeconds);
  const json = parseJson(result, directoryUrl, 'ACME directory', retryAfterSeconds);
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    throw new RenewalInfoError(
      'ACME_PROBLEM',
      `the document at ${directoryUrl} is not an ACME directory`,
      'check the directory URL',
      { reason: 'malformed', url: directoryUrl, temporary: false },
    );
  }
  return json as Record<string, unknown>;
}

export interface RenewalInfo {
  window: RenewalWindow;
  /** the server's `explanationURL`, when given: why the window moved (e.g. a mass revocation) */
  explanationUrl?: string;
  /** the Retry-After header in seconds from fetchedAt, as sent (unclamped); see nextRenewalInfoCheck */
  retryAfterSeconds: number | undefined;
  fetchedAt: Date;
}

// RFC 3339 date-time (section 5.6), as RFC 9773 requires for start/end
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function parseTimestamp(value: unknown): Date | undefined {
  if (typeof value !== 'string' || !RFC3339.test(value)) return undefined;
  const ms = Date.parse(value.replace(' ', 'T'));
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/**
 * Validates a RenewalInfo object (RFC 9773 section 4.2): `suggestedWindow.start` and `.end` as RFC 3339
 * timestamps with end strictly after start (clients MUST treat anything else as no response at all).
 */
export function parseRenewalInfo(
  json: unknown,
  url = 'renewalInfo',
): { window: RenewalWindow; explanationUrl?: string } {
  const fail = (why: string): never => {
    throw new RenewalInfoError(
      'ACME_PROBLEM',
      `invalid renewal information from ${url}: ${why}`,
      'the ACME server sent a malformed RenewalInfo object, which counts as no answer (RFC 9773): check again later',
      {
        reason: 'malformed',
        url,
        temporary: false,
      },
    );
  };
  if (!json || typeof json !== 'object' || Array.isArray(json)) return fail('not a JSON object');
  const window = (json as { suggestedWindow?: unknown }).suggestedWindow as
    { start?: unknown; end?: unknown } | undefined;
  if (!window || typeof window !== 'object') return fail('no suggestedWindow');
  const start = parseTimestamp(window.start);
  const end = parseTimestamp(window.end);
  if (!start) return fail(`suggestedWindow.start is not an RFC 3339 timestamp (${JSON.stringify(window.start)})`);
  if (!end) return fail(`suggestedWindow.end is not an RFC 3339 timestamp (${JSON.stringify(window.end)})`);
  if (end.getTime() <= start.getTime())
    return fail(`suggestedWindow.end (${end.toISOString()}) is not after its start (${start.toISOString()})`);
  const explanation = (json as { explanationURL?: unknown }).explanationURL;
  return {
    window: { start, end },
    ...(typeof explanation === 'string' && explanation ? { explanationUrl: explanation } : {}),
  };
}

/**
 * GET `${renewalInfoUrl}/${certId}` (RFC 9773 section 4.1, an unauthenticated GET) and validate it.
 * Throws RenewalInfoError (with `temporary`, `status` and any `retryAfterSeconds`) on transport errors,
 * non-200 answers and malformed objects.
 */
export async function fetchRenewalInfo(
  renewalInfoUrl: string,
  certId: string,
  options: FetchOptions = {},
): Promise<RenewalInfo> {
  if (!isAriCertificateId(certId)) {
    throw new McpkiError(
      'INVALID_INPUT',
      `not an ARI certificate identifier: ${JSON.stringify(certId)}`,
      'compute it with ariCertificateId(certificate)',
    );
  }
  const url = renewalInfoResourceUrl(renewalInfoUrl, certId);
  const result = await get(url, options, 'renewal information');
  const fetchedAt = new Date();
  const retryAfterSeconds = parseRetryAfter(headerOf(result.headers, 'retry-after'), fetchedAt);
  if (result.status !== 200) {
    throw httpFailure(
      result,
      url,
      'renewal information',
      retryAfterSeconds,
      `the ACME server has no renewal information for certificate ${certId}`,
    );
  }
  const parsed = parseRenewalInfo(parseJson(result, url, 'renewal information', retryAfterSeconds), url);
  return { ...parsed, retryAfterSeconds, fetchedAt };
}
