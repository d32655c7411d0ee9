// Every failure mcpki reports is an McpkiError with a stable code, a one-line message naming the problem,
// and a hint naming the fix. This table is the one place that maps codes to process exit codes
// (documented in docs/cli.md).

export const EXIT_CODES = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  INVALID_INPUT: 3,
  CA_MISSING: 4,
  EXISTS: 5,
  NOT_PERMITTED: 6,
  STORE: 7,
  FILESYSTEM: 8,
  GIT_GUARD: 9,
  NOT_FOUND: 10,
  TRUST: 11,
  PASSPHRASE: 12,
  ACME: 13,
  RATE_LIMITED: 14,
  NETWORK: 15,
  DEPLOY: 16,
  SOME_FAILED: 17,
  SERVICE: 18,
  // `mcpki check`: the worst finding decides; an alarm wins over a failure, a failure over a warning
  CHECK_WARNING: 19,
  CHECK_FAILURE: 20,
  CHECK_ALARM: 21,
  UNSAFE_PATH: 22,
  INSTALL: 23,
  EXPIRING: 24, // `list --expiring`: at least one certificate expires within the window (an alert, not an error)
} as const;

export type ErrorCode =
  | 'USAGE'
  | 'INVALID_NAME'
  | 'INVALID_KEY_TYPE'
  | 'INVALID_DAYS'
  | 'INVALID_INPUT'
  | 'CA_MISSING'
  | 'CA_EXISTS'
  | 'CA_CORRUPT'
  | 'NAME_NOT_PERMITTED'
  | 'STORE_CORRUPT'
  | 'STORE_BUSY'
  | 'STORE_VERSION'
  | 'STORE_MISSING'
  | 'HOME_UNUSABLE'
  | 'WRITE_FAILED'
  | 'GIT_TRACKED_PATH'
  | 'NOT_FOUND'
  | 'ALREADY_REVOKED'
  | 'TRUST_TOOL_MISSING'
  | 'TRUST_PERMISSION'
  | 'TRUST_FAILED'
  | 'PASSPHRASE_MISSING'
  | 'PASSPHRASE_WRONG'
  | 'ACME_ACCOUNT_MISSING'
  | 'ACME_ACCOUNT_EXISTS'
  | 'ACME_PROBLEM'
  | 'CHALLENGE_FAILED'
  | 'PORT_IN_USE'
  | 'EAB_REQUIRED'
  | 'STAGING_OVER_PRODUCTION'
  | 'RATE_LIMITED'
  | 'NETWORK'
  | 'DEPLOY_HOOK_FAILED'
  | 'DEPLOY_VERIFY_FAILED'
  | 'SOME_FAILED'
  | 'SERVICE_RUNNING'
  | 'LISTEN_FAILED'
  | 'UNSAFE_PATH'
  | 'INSTALL_INCOMPLETE'
  | 'INTERRUPTED'
  | 'INTERNAL';

const EXIT_BY_CODE: Record<ErrorCode, number> = {
  USAGE: EXIT_CODES.USAGE,
  INVALID_NAME: EXIT_CODES.INVALID_INPUT,
  INVALID_KEY_TYPE: EXIT_CODES.INVALID_INPUT,
  INVALID_DAYS: EXIT_CODES.INVALID_INPUT,
  INVALID_INPUT: EXIT_CODES.INVALID_INPUT,
  CA_MISSING: EXIT_CODES.CA_MISSING,
  CA_CORRUPT: EXIT_CODES.CA_MISSING,
  CA_EXISTS: EXIT_CODES.EXISTS,
  NAME_NOT_PERMITTED: EXIT_CODES.NOT_PERMITTED,
  STORE_CORRUPT: EXIT_CODES.STORE,
  STORE_BUSY: EXIT_CODES.STORE,
  STORE_VERSION: EXIT_CODES.STORE,
  STORE_MISSING: EXIT_CODES.STORE,
  HOME_UNUSABLE: EXIT_CODES.FILESYSTEM,
  WRITE_FAILED: EXIT_CODES.FILESYSTEM,
  GIT_TRACKED_PATH: EXIT_CODES.GIT_GUARD,
  NOT_FOUND: EXIT_CODES.NOT_FOUND,
  ALREADY_REVOKED: EXIT_CODES.EXISTS,
  TRUST_TOOL_MISSING: EXIT_CODES.TRUST,
  TRUST_PERMISSION: EXIT_CODES.TRUST,
  TRUST_FAILED: EXIT_CODES.TRUST,
  PASSPHRASE_MISSING: EXIT_CODES.PASSPHRASE,
  PASSPHRASE_WRONG: EXIT_CODES.PASSPHRASE,
  ACME_ACCOUNT_MISSING: EXIT_CODES.NOT_FOUND,
  ACME_ACCOUNT_EXISTS: EXIT_CODES.EXISTS,
  ACME_PROBLEM: EXIT_CODES.ACME,
  CHALLENGE_FAILED: EXIT_CODES.ACME,
  PORT_IN_USE: EXIT_CODES.ACME,
  EAB_REQUIRED: EXIT_CODES.ACME,
  STAGING_OVER_PRODUCTION: EXIT_CODES.EXISTS,
  RATE_LIMITED: EXIT_CODES.RATE_LIMITED,
  NETWORK: EXIT_CODES.NETWORK,
  DEPLOY_HOOK_FAILED: EXIT_CODES.DEPLOY,
  DEPLOY_VERIFY_FAILED: EXIT_CODES.DEPLOY,
  SOME_FAILED: EXIT_CODES.SOME_FAILED,
  SERVICE_RUNNING: EXIT_CODES.SERVICE,
  LISTEN_FAILED: EXIT_CODES.SERVICE,
  UNSAFE_PATH: EXIT_CODES.UNSAFE_PATH,
  INSTALL_INCOMPLETE: EXIT_CODES.INSTALL,
  // a signal stopped the command after its cleanup ran; the CLI exits 128 + the signal's number
  INTERRUPTED: EXIT_CODES.INTERNAL,
  INTERNAL: EXIT_CODES.INTERNAL,
};

export class McpkiError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'McpkiError';
    this.code = code;
    this.hint = hint;
  }

  get exitCode(): number {
    return exitCodeFor(this.code);
  }
}

export function exitCodeFor(code: ErrorCode): number {
  return EXIT_BY_CODE[code] ?? EXIT_CODES.INTERNAL;
}

export function isMcpkiError(error: unknown): error is McpkiError {
  return error instanceof McpkiError;
}
