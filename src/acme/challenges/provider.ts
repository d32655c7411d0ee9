// The contract every ACME challenge responder follows (RFC 8555 section 8): present() makes the proof
// visible, cleanup() takes it away again, close() releases what is shared between tasks (a listening port).
// cleanup() and close() are always safe to call: after a present() that failed half-way, twice in a row, or
// without any present() at all.
import { McpkiError, type ErrorCode, fix } from '../../errors.js';

export type ChallengeType = 'http-01' | 'dns-01' | 'tls-alpn-01';
export const CHALLENGE_TYPES: readonly ChallengeType[] = ['http-01', 'dns-01', 'tls-alpn-01'];

export interface ChallengeTask {
  type: ChallengeType;
  /** the domain as in the authorization, without "*." */
  identifier: string;
  wildcard: boolean;
  token: string;
  /** token + "." + base64url(JWK thumbprint of the account key) */
  keyAuthorization: string;
}

export interface ChallengeProvider {
  readonly type: ChallengeType;
  /**
   * optional: checks what can be checked on this machine before an order is placed at the CA (the port can be
   * bound — and stays bound —, the webroot is a writable folder, the hook is an executable program), so a local
   * problem never leaves an order and its authorizations pending at the CA
   */
  prepare?(): Promise<void>;
  /** `signal`: an interrupt (SIGINT/SIGTERM) — stop waiting, kill a running hook, and throw */
  present(task: ChallengeTask, signal?: AbortSignal): Promise<void>;
  /**
   * Never throws for the built-in responders (http-01, webroot, tls-alpn-01). The dns-01 hook provider throws
   * a typed error when the user's cleanup hook fails: callers must not let it hide an earlier error.
   */
  cleanup(task: ChallengeTask): Promise<void>;
  /** optional: called once after all tasks, e.g. to close a shared server */
  close?(): Promise<void>;
}

/**
 * The error codes challenge failures are reported with, in one place (src/errors.ts owns the codes and their
 * exit codes).
 */
export const CHALLENGE_ERROR_CODES = {
  /** the standalone responder's port is taken by another program: a local problem, not the CA's (exit 18) */
  portInUse: 'LISTEN_FAILED',
  /** binding a port below 1024 without root / CAP_NET_BIND_SERVICE */
  portDenied: 'LISTEN_FAILED',
  /** the dns-01 hook failed, timed out, or the TXT record never became visible */
  hookFailed: 'CHALLENGE_FAILED',
  /** a challenge type that cannot validate this identifier (wildcard without dns-01) */
  unsupported: 'INVALID_INPUT',
} as const satisfies Record<string, ErrorCode>;

/** ACME tokens are base64url (RFC 8555 section 8.1); anything else could walk out of a folder or a URL path. */
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

export function assertToken(token: string): void {
  if (!TOKEN.test(token)) {
    throw new McpkiError(
      'INVALID_INPUT',
      `the ACME server sent a challenge token that is not base64url (${JSON.stringify(token.slice(0, 40))})`,
      'this is a fault of the ACME server; try again or use another CA',
    );
  }
}

/**
 * The key authorization must be "token.thumbprint" (RFC 8555 section 8.1) — not the dns-01 digest that some ACME
 * libraries hand out in its place (acme-client's getChallengeKeyAuthorization does for dns-01): hashing that
 * again would publish a value the CA can never match.
 */
export function assertKeyAuthorization(task: ChallengeTask): void {
  const { token, keyAuthorization } = task;
  if (!keyAuthorization.startsWith(`${token}.`) || keyAuthorization.length === token.length + 1) {
    throw new McpkiError(
      'INTERNAL',
      `the ${task.type} key authorization for ${task.identifier} is not "token.thumbprint"`,
      'this is a bug in mcpki; please report it',
    );
  }
}

/** Wildcard names can only be proven through DNS (RFC 8555 section 7.1.3). */
export function assertNotWildcard(task: ChallengeTask, type: ChallengeType): void {
  if (task.wildcard) {
    throw new McpkiError(
      CHALLENGE_ERROR_CODES.unsupported,
      `*.${task.identifier}: a wildcard name cannot be validated with ${type}`,
      fix(
        'use {--challenge dns-01|challenge.type: dns-01} with {--dns-hook CMD|challenge.hook: [CMD]} for wildcard names',
      ),
    );
  }
}

/** Before ordering: refuse wildcard names for any challenge type but dns-01, with the same error. */
export function assertChallengeSupports(type: ChallengeType, domains: readonly string[]): void {
  if (type === 'dns-01') return;
  for (const domain of domains) {
    if (domain.startsWith('*.'))
      assertNotWildcard({ type, identifier: domain.slice(2), wildcard: true, token: '', keyAuthorization: '' }, type);
  }
}

/** The error for a failed listen(): in use / permission denied / bad address, naming the port and the fix. */
export function listenError(
  error: unknown,
  port: number,
  host: string | undefined,
  type: 'http-01' | 'tls-alpn-01',
): McpkiError {
  const code = (error as NodeJS.ErrnoException).code;
  const where = host ? `${host}:${port}` : `port ${port}`;
  const standard = type === 'http-01' ? 80 : 443;
  const portOption = type === 'http-01' ? '--http-port' : '--alpn-port';
  const alternatives =
    type === 'http-01'
      ? `use --webroot DIR to let the running web server answer, or ${portOption} N with a port forward from ${standard}`
      : `use ${portOption} N with a port forward from ${standard}, or another challenge type`;
  if (code === 'EADDRINUSE') {
    return new McpkiError(
      CHALLENGE_ERROR_CODES.portInUse,
      `cannot start the ${type} responder: ${where} is already in use`,
      `stop the program listening on ${where} for the moment, or ${alternatives}`,
      { cause: error },
    );
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new McpkiError(
      CHALLENGE_ERROR_CODES.portDenied,
      `cannot start the ${type} responder: permission denied to listen on ${where}`,
      `ports below 1024 need root or CAP_NET_BIND_SERVICE; or ${alternatives}`,
      { cause: error },
    );
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new McpkiError(
      'INVALID_INPUT',
      `cannot start the ${type} responder: ${host ?? ''} is not an address of this machine`,
      "listen on all interfaces (leave out the host) or give one of this machine's addresses",
      { cause: error },
    );
  }
  return new McpkiError(
    'INTERNAL',
    `cannot start the ${type} responder on ${where} (${code ?? String(error)})`,
    `check that ${where} can be used, or ${alternatives}`,
    { cause: error },
  );
}
