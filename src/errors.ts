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
  EXPIRING: 24,
} as const;

/**
 * What each exit code means: `brief` for `mcpki --help`, `detail` for the table in docs/cli.md. Both are
 * generated from here (test/errors-one-source.test.js checks docs/cli.md; UPDATE_DOCS=1 rewrites it).
 */
export const EXIT_CODE_MEANINGS: Record<keyof typeof EXIT_CODES, { brief: string; detail: string }> = {
  OK: { brief: 'ok', detail: 'success' },
  INTERNAL: { brief: 'internal error', detail: 'internal error (a bug: please report it)' },
  USAGE: {
    brief: 'usage',
    detail:
      'usage: unknown command or option, missing argument, an option given an empty value (`--out ""`) or given twice (`--days 30 --days 40`; repeatable options say so in `--help`)',
  },
  INVALID_INPUT: { brief: 'invalid input', detail: 'invalid input' },
  CA_MISSING: { brief: 'no CA', detail: 'no CA, or the CA files are unreadable' },
  EXISTS: { brief: 'already exists', detail: 'already exists / already done / would replace production with staging' },
  NOT_PERMITTED: { brief: 'name not permitted', detail: "a name outside the CA's name constraints" },
  STORE: {
    brief: 'inventory error',
    detail: 'inventory (SQLite) error, or the inventory of a home that holds a CA is missing',
  },
  FILESYSTEM: { brief: 'file system', detail: 'file system: home unusable, a write failed' },
  GIT_GUARD: { brief: 'git guard', detail: 'refusing to write a key inside a git work tree' },
  NOT_FOUND: { brief: 'not found', detail: 'no such certificate or ACME account' },
  TRUST: { brief: 'trust store', detail: 'trust store: tool missing, not permitted, failed' },
  PASSPHRASE: { brief: 'passphrase', detail: 'root key passphrase missing or wrong, an unreadable secret file' },
  ACME: {
    brief: 'ACME (the CA refused, a challenge failed)',
    detail: 'ACME: the CA refused, a challenge failed, EAB required',
  },
  RATE_LIMITED: { brief: 'rate limited', detail: 'rate limited by the CA (the message says until when)' },
  NETWORK: { brief: 'network', detail: 'the ACME server is unreachable or its TLS certificate is not trusted' },
  DEPLOY: {
    brief: 'deploy hook or verify failed (rolled back)',
    detail: 'deploy: a reload hook or the verify probe failed; the previous files were restored',
  },
  SOME_FAILED: {
    brief: 'some certificates failed (apply/renew; the others were done)',
    detail:
      "`apply`/`renew`: some certificates (or the CRL's publication) failed, or are due but backing off after an earlier failure (`backingOff`); the others were done (details per item, and in `crl`)",
  },
  SERVICE: {
    brief: 'service could not start (a port is taken, or another serve holds the home)',
    detail:
      "a port mcpki must listen on cannot be used (the metrics port, or an ACME challenge responder's port: checked before any order is placed), or another `mcpki serve` holds this home",
  },
  CHECK_WARNING: {
    brief: 'check: warnings',
    detail: '`check`: the worst finding is a warning (e.g. TLS 1.0 accepted, expiring within 7 days)',
  },
  CHECK_FAILURE: {
    brief: 'check: failures',
    detail:
      '`check`: the worst finding is a failure (expired, wrong name, no TLS, chain broken, client certificate refused)',
  },
  CHECK_ALARM: {
    brief: 'check: unexpected certificate',
    detail: '`check`: alarm — a certificate mcpki never issued or recorded is served for a name it manages',
  },
  UNSAFE_PATH: {
    brief: 'unsafe path (owned or writable by another user)',
    detail:
      'unsafe path: a folder or file mcpki would read or write is owned or writable by another user, or reached through their symlink; nothing was written',
  },
  INSTALL: {
    brief: 'installation incomplete',
    detail:
      'installation incomplete: a native module (better-sqlite3) was not built or was built for another Node (`npm rebuild better-sqlite3`), or a dependency is missing',
  },
  EXPIRING: {
    brief: 'list --expiring: something expires within the window',
    detail:
      '`list --expiring DURATION`: at least one certificate expires within the window (an alert for scripts, not an error; the list is printed as usual)',
  },
};

/** A command stopped by a signal exits 128 + its number (error code INTERRUPTED), after its cleanup ran. */
export const SIGNAL_EXITS = {
  exit: '130, 143',
  brief: 'interrupted by SIGINT/SIGTERM',
  detail:
    "`acme issue`, `apply` or `renew` interrupted by SIGINT / SIGTERM during an ACME order: the running dns-01 hook was killed, every cleanup hook ran and the order's pending authorizations were deactivated (not counted as a failure of the certificate)",
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
  | 'STORE_UNAVAILABLE'
  | 'STORE_NOT_EMPTY'
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
  STORE_UNAVAILABLE: EXIT_CODES.STORE,
  STORE_NOT_EMPTY: EXIT_CODES.EXISTS,
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

/**
 * A setting a hint names, in the words of each surface: `flag` as the command line writes it ("--days N"), `key`
 * as mcpki.yaml does ("days: N"), null when mcpki.yaml has no such setting (then both surfaces show the flag).
 */
export interface FixSetting {
  flag: string;
  key: string | null;
}

/** A hint that names settings: `text` with {0}, {1}, … where `settings` go. Made by `fix()`. */
export interface Fix {
  text: string;
  settings: FixSetting[];
}

/** Where an error is shown: the command line (options), or mcpki.yaml (`apply`, `renew`, `serve`: keys). */
export type Surface = 'cli' | 'config';

/** A hint: plain text when it names no setting, else a `Fix`. */
export type Hint = string | Fix;

const SETTING = /\{(--[^{}|]+?)(?:\|([^{}]+))?\}/g;

/**
 * A hint that names settings: `fix('give {--days N|days: N} from 1 to 825')`. Each {FLAG|KEY} is one setting,
 * FLAG as the command line writes it and KEY as mcpki.yaml does; {FLAG} alone when mcpki.yaml has none. The
 * command line shows "give --days N from 1 to 825", mcpki.yaml "give days: N in mcpki.yaml from 1 to 825".
 */
export function fix(template: string): Fix {
  const settings: FixSetting[] = [];
  const text = template.replace(
    SETTING,
    (_whole, flag: string, key: string | undefined) => `{${settings.push({ flag, key: key ?? null }) - 1}}`,
  );
  return { text, settings };
}

/** The fix in the words of one surface. */
export function renderFix(fix: Fix, surface: Surface): string {
  return fix.text.replace(/\{(\d+)\}/g, (whole, index: string) => {
    const setting = fix.settings[Number(index)];
    if (!setting) return whole;
    return surface === 'config' && setting.key !== null ? `${setting.key} in mcpki.yaml` : setting.flag;
  });
}

export class McpkiError extends Error {
  readonly code: ErrorCode;
  /** the fix, as the command line words it */
  readonly hint: string | undefined;
  /** the fix with the settings it names, when it names any: `hintFor` words it for each surface */
  readonly fix: Fix | undefined;

  constructor(code: ErrorCode, message: string, hint?: Hint, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'McpkiError';
    this.code = code;
    this.fix = typeof hint === 'object' && hint !== null ? hint : undefined;
    this.hint = this.fix ? renderFix(this.fix, 'cli') : (hint as string | undefined);
  }

  /** The hint in the words of `surface`: "give --days N" on the command line, "give days: N in mcpki.yaml" for mcpki.yaml. */
  hintFor(surface: Surface): string | undefined {
    return this.fix ? renderFix(this.fix, surface) : this.hint;
  }

  get exitCode(): number {
    return exitCodeFor(this.code);
  }
}

export interface ExitCodeRow {
  /** "3", or "130, 143" for the signals */
  exit: string;
  brief: string;
  detail: string;
  /** the error codes that exit with it; none for a report (`check`) or success */
  codes: ErrorCode[];
}

/** Every exit code, in order, with its meaning and error codes: the one source of `--help`'s list and docs/cli.md's table. */
export function exitCodeTable(): ExitCodeRow[] {
  const rows: ExitCodeRow[] = (Object.keys(EXIT_CODES) as (keyof typeof EXIT_CODES)[]).map((name) => ({
    exit: String(EXIT_CODES[name]),
    ...EXIT_CODE_MEANINGS[name],
    codes: (Object.keys(EXIT_BY_CODE) as ErrorCode[]).filter(
      (code) => code !== 'INTERRUPTED' && EXIT_BY_CODE[code] === EXIT_CODES[name],
    ),
  }));
  rows.push({
    exit: SIGNAL_EXITS.exit,
    brief: SIGNAL_EXITS.brief,
    detail: SIGNAL_EXITS.detail,
    codes: ['INTERRUPTED'],
  });
  return rows.sort((a, b) => Number.parseInt(a.exit, 10) - Number.parseInt(b.exit, 10));
}

export function exitCodeFor(code: ErrorCode): number {
  return EXIT_BY_CODE[code] ?? EXIT_CODES.INTERNAL;
}

export function isMcpkiError(error: unknown): error is McpkiError {
  return error instanceof McpkiError;
}
