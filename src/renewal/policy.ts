// The renewal policy (issue 4): one pure function that says whether a certificate is due, why, when it becomes
// due and when to look again. No I/O and no clock of its own: `now` and `random` are injected.
//
// Rules, in the order they are applied:
//  1. No certificate (never issued)                 → due now                       ('missing')
//  2. status 'superseded'                           → never due: a newer certificate of the same name exists and
//                                                     the policy applies to that one; renewAt = nextCheck = notAfter
//                                                     ('not-yet')
//  2b. a changed declaration (names, issuer, kind or key type differ from the certificate on record; the caller
//     says what changed in `changed`)                → due now                       ('changed')
//  3. status 'revoked'                              → due now                       ('revoked')
//  4. now ≥ notAfter                                → due now                       ('expired')
//  5. otherwise the schedule:
//     a. ARI: when the CA gave a window, a random time inside it (kept stable through `chosenAriTime`, which is
//        reused while it still lies in the window; a moved window gets a new draw). The window is clipped at
//        notAfter; a window that starts at or after notAfter is ignored.          ('ari-window' / 'ari-wait')
//     b. a configured renewBefore: a duration before notAfter, or a fraction of the lifetime
//                                                                     ('renew-before' / 'fraction' / 'not-yet')
//     c. the default: renew when less than 1/3 of the lifetime remains, 1/2 when the lifetime is under 10 days
//                                                                                  ('fraction' / 'not-yet')
//     ARI versus renewBefore: the EARLIER of the two wins (the CA may pull renewal forward, e.g. in a mass
//     revocation; the user's configured margin is never shortened by the CA). Without renewBefore, ARI replaces
//     the default fraction outright (even when later). A tie goes to ARI.
//     Lifetimes are always the ACTUAL lifetime (notAfter − notBefore), never the requested one, so a CA that
//     caps lifetimes (asked 90 days, got 7) does not make every check due. A renewBefore DURATION that is not
//     shorter than the actual lifetime would renew in a loop: it is ignored and the default fraction is used
//     instead, with code 'shortened-lifetime' (whether due or not); with an ARI window, ARI then decides alone.
//     Due means now ≥ renewAt (the boundary instant is due).
//  6. Failures: when the decision above is due and failures.count ≥ 1, it stays not due ('backoff') until
//     failures.lastAt + backoffDelay(count). Backoff applies to every due decision (missing, revoked, expired
//     too, and a changed declaration) and never gives up: an expired certificate keeps being retried, at most 6 h × 1.2 apart. A failure
//     before notAfter never pushes the retry past notAfter (one retry at the moment of expiry), so renewAt ≤
//     notAfter holds for every unexpired certificate. The jitter draw is derived from (lastAt, count) rather
//     than from `random`, so that repeated checks (and `renew --dry-run`) agree on the same retry time.
//  7. nextCheck = now when due; otherwise renewAt (the backoff end for 'backoff'). Periodic re-checks (ARI
//     refreshes, hourly checks) are the scheduler's business.
import { McpkiError } from '../errors.js';
import { chooseRenewalTime } from '../acme/ari-window.js';
import { checkRenewBefore, formatDuration, type RenewBefore } from '../duration.js';

export type { RenewBefore };

export interface RenewalPolicyInput {
  /** null: never issued → due now */
  certificate: {
    notBefore: string;
    notAfter: string;
    status: 'valid' | 'superseded' | 'revoked';
    renewalInfo?: { windowStart: string; windowEnd: string } | null;
  } | null;
  /** configured renewBefore, parsed (mcpki.yaml's checker or `parseRenewBefore` read the text "30d", "1/3", "33%") */
  renewBefore?: RenewBefore;
  /** the lifetime asked for, in days (local certificates: days; ACME: unknown → undefined) */
  requestedDays?: number;
  /** failures so far for this certificate and when the last one happened */
  failures?: { count: number; lastAt: string; lastError?: string };
  now: Date;
  /** default Math.random — only for the ARI choice */
  random?: () => number;
  /** a previously chosen ARI renewal time, kept stable between checks (store it); if absent and ARI applies, choose one */
  chosenAriTime?: string;
  /** the declaration no longer matches the certificate on record: what changed ("names changed (a → b)") */
  changed?: string;
}

export type RenewalCode =
  | 'missing'
  | 'changed'
  | 'revoked'
  | 'expired'
  | 'ari-window'
  | 'ari-wait'
  | 'renew-before'
  | 'fraction'
  | 'not-yet'
  | 'backoff'
  | 'shortened-lifetime';

export interface RenewalDecision {
  due: boolean;
  /** one line, for humans */
  reason: string;
  code: RenewalCode;
  /** when it becomes (or became) due, ISO */
  renewAt: string;
  /** when to look again, ISO: now when due */
  nextCheck: string;
  /** the chosen ARI time to store (whenever an ARI window applies) */
  ariTime?: string;
}

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** lifetimes under this renew at 1/2 instead of 1/3 remaining */
const SHORT_LIFETIME = 10 * DAY;

export const BACKOFF_BASE_MS = 5 * MINUTE;
export const BACKOFF_CAP_MS = 6 * HOUR;
export const BACKOFF_JITTER = 0.2;

const RENEW_BEFORE_HINT =
  'write a duration (30d, 12h, 2w, 90m, 45s) or a fraction of the lifetime between 0 and 1 (1/3, 0.25, 33%)';

/** "30d" → {duration}; "1/3", "0.25", "33%" → {fraction} strictly between 0 and 1 (`checkRenewBefore`). McpkiError INVALID_INPUT otherwise. */
export function parseRenewBefore(text: string): RenewBefore {
  const result = typeof text === 'string' ? checkRenewBefore(text) : ({ ok: false, message: 'not text' } as const);
  if (!result.ok)
    throw new McpkiError(
      'INVALID_INPUT',
      `invalid renewBefore ${JSON.stringify(text)}: ${result.message}`,
      RENEW_BEFORE_HINT,
    );
  return result.value;
}

function clampDraw(random: () => number): number {
  const draw = Number(random());
  return Number.isFinite(draw) ? Math.min(1, Math.max(0, draw)) : 0.5;
}

/**
 * Milliseconds to wait after the `failures`-th consecutive failure: 5 min × 2^(failures−1), capped at 6 h, then
 * ±20 % jitter (random 0 → −20 %, 0.5 → exact, 1 → +20 %), so never more than 7 h 12 min. 0 for no failures.
 * Non-decreasing in `failures` for a given draw.
 */
export function backoffDelay(failures: number, random: () => number = Math.random): number {
  if (!Number.isFinite(failures) || failures < 1) return 0;
  const n = Math.floor(failures);
  // 2^(n-1) overflows to Infinity for huge n; min() keeps the cap
  const nominal = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (n - 1));
  const factor = 1 + BACKOFF_JITTER * (2 * clampDraw(random) - 1);
  return Math.round(nominal * factor);
}

/** A draw in [0, 1) fixed by the failure itself (FNV-1a of lastAt and count): stable between checks, spread between certificates. */
export function failureDraw(lastAtMs: number, count: number): number {
  let hash = 0x811c9dc5;
  for (const ch of `${lastAtMs}:${count}`) {
    hash ^= ch.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash / 2 ** 32;
}

function time(value: string, what: string): number {
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms))
    throw new McpkiError(
      'INVALID_INPUT',
      `${what} is not a timestamp: ${JSON.stringify(value)}`,
      'give an ISO 8601 time such as 2026-01-31T12:00:00Z',
    );
  return ms;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function days(ms: number): string {
  const d = ms / DAY;
  const rounded = Math.round(d * 10) / 10;
  return `${Number.isInteger(rounded) ? rounded.toFixed(0) : rounded.toFixed(1)}-day`;
}

interface Schedule {
  renewAt: number;
  dueCode: RenewalCode;
  waitCode: RenewalCode;
  /** the rule, as a phrase: "1/3 of the 90-day lifetime remains" */
  rule: string;
  ariTime?: number;
}

export function needsRenewal(input: RenewalPolicyInput): RenewalDecision {
  const nowMs = input.now instanceof Date ? input.now.getTime() : Number.NaN;
  if (Number.isNaN(nowMs))
    throw new McpkiError('INVALID_INPUT', 'now is not a valid Date', 'pass the current time as a Date');
  const random = input.random ?? Math.random;
  const certificate = input.certificate;

  let base: { code: RenewalCode; reason: string; renewAt: number; ariTime?: number };
  let notAfter: number | undefined;

  if (!certificate) {
    base = { code: 'missing', reason: 'never issued: issue now', renewAt: nowMs };
  } else {
    const notBefore = time(certificate.notBefore, 'notBefore');
    notAfter = time(certificate.notAfter, 'notAfter');
    if (notAfter <= notBefore) {
      throw new McpkiError(
        'INVALID_INPUT',
        `notAfter (${certificate.notAfter}) is not after notBefore (${certificate.notBefore})`,
        'check the certificate record',
      );
    }
    if (certificate.status === 'superseded') {
      // a newer certificate exists: nothing to do with this one, whatever its dates
      return {
        due: false,
        code: 'not-yet',
        reason: 'superseded by a newer certificate of the same name: the policy applies to that one',
        renewAt: iso(notAfter),
        nextCheck: iso(notAfter),
      };
    }
    const schedule = scheduleFor(input, notBefore, notAfter, nowMs, random);
    const ariTime = schedule.ariTime === undefined ? {} : { ariTime: schedule.ariTime };
    if (input.changed && certificate.status !== 'revoked') {
      base = { code: 'changed', reason: `${input.changed}: reissue now`, renewAt: nowMs, ...ariTime };
    } else if (certificate.status === 'revoked') {
      base = { code: 'revoked', reason: 'revoked: renew at once', renewAt: nowMs, ...ariTime };
    } else if (nowMs >= notAfter) {
      base = {
        code: 'expired',
        reason: `expired at ${iso(notAfter)}: renew now`,
        renewAt: Math.min(schedule.renewAt, notAfter),
        ...ariTime,
      };
    } else if (nowMs >= schedule.renewAt) {
      base = {
        code: schedule.dueCode,
        reason: `due since ${iso(schedule.renewAt)}: ${schedule.rule}`,
        renewAt: schedule.renewAt,
        ...ariTime,
      };
    } else {
      const renewAt = iso(schedule.renewAt);
      const decision: RenewalDecision = {
        due: false,
        code: schedule.waitCode,
        reason: `not due: renews at ${renewAt}, ${schedule.rule}`,
        renewAt,
        nextCheck: renewAt,
      };
      if (schedule.ariTime !== undefined) decision.ariTime = iso(schedule.ariTime);
      return decision;
    }
  }

  const failures = input.failures;
  if (failures && Number.isFinite(failures.count) && failures.count >= 1) {
    const lastAt = time(failures.lastAt, 'failures.lastAt');
    const retryAt = retryTime(failures.count, lastAt, notAfter);
    if (nowMs < retryAt) {
      const error = failures.lastError ? ` (${failures.lastError.replace(/\s+/g, ' ').slice(0, 200)})` : '';
      const plural = failures.count === 1 ? 'failure' : 'failures';
      const decision: RenewalDecision = {
        due: false,
        code: 'backoff',
        reason: `backing off after ${Math.floor(failures.count)} ${plural}, the last at ${iso(lastAt)}${error}: retry at ${iso(retryAt)} (${base.reason})`,
        renewAt: iso(retryAt),
        nextCheck: iso(retryAt),
      };
      if (base.ariTime !== undefined) decision.ariTime = iso(base.ariTime);
      return decision;
    }
  }
  const decision: RenewalDecision = {
    due: true,
    code: base.code,
    reason: base.reason,
    renewAt: iso(base.renewAt),
    nextCheck: iso(nowMs),
  };
  if (base.ariTime !== undefined) decision.ariTime = iso(base.ariTime);
  return decision;
}

/** When the next attempt may be made after `count` failures, the last at `lastAt` (never past an unexpired notAfter). */
export function retryTime(count: number, lastAt: number, notAfter?: number): number {
  let retryAt = lastAt + backoffDelay(count, () => failureDraw(lastAt, Math.floor(count)));
  // a failure before expiry never pushes the next attempt past the moment of expiry
  if (notAfter !== undefined && lastAt < notAfter) retryAt = Math.min(retryAt, notAfter);
  return retryAt;
}

/** What is kept of a certificate's failures between runs. */
export interface FailureRecord {
  count: number;
  /** ISO time of the last failure; null when count is 0 */
  lastAt: string | null;
  lastError: string | null;
}

/**
 * The failure record after a run. A failure counts one more. A run that did not attempt the renewal because
 * it was backing off keeps the record as it was (a skipped run is not a success: the backoff goes on and keeps
 * growing with the next failure). Any other successful run clears it.
 */
export function failuresAfterRun(
  previous: FailureRecord | undefined,
  run: { backingOff: boolean; error?: string; now: Date },
): FailureRecord {
  const before: FailureRecord = {
    count: previous?.count ?? 0,
    lastAt: previous?.lastAt ?? null,
    lastError: previous?.lastError ?? null,
  };
  if (run.error !== undefined) return { count: before.count + 1, lastAt: run.now.toISOString(), lastError: run.error };
  if (run.backingOff) return before;
  return { count: 0, lastAt: null, lastError: null };
}

function fractionText(value: number): string {
  if (Math.abs(value - 1 / 3) < 1e-9) return '1/3';
  if (value === 0.5) return '1/2';
  return `${Math.round(value * 1000) / 10}%`;
}

/** The parsed renewBefore as given by a caller of the library: a fraction strictly between 0 and 1, or a duration over 0. */
function checkedRenewBefore(value: RenewBefore): RenewBefore {
  const ok =
    value !== null &&
    typeof value === 'object' &&
    ((value.type === 'fraction' && Number.isFinite(value.fraction) && value.fraction > 0 && value.fraction < 1) ||
      (value.type === 'duration' && Number.isFinite(value.ms) && value.ms > 0));
  if (!ok)
    throw new McpkiError(
      'INVALID_INPUT',
      `invalid renewBefore ${JSON.stringify(value)}`,
      'pass what parseRenewBefore returns, e.g. parseRenewBefore("30d")',
    );
  return value;
}

function scheduleFor(
  input: RenewalPolicyInput,
  notBefore: number,
  notAfter: number,
  nowMs: number,
  random: () => number,
): Schedule {
  const lifetime = notAfter - notBefore;
  const requested = input.requestedDays;
  if (requested !== undefined && (!Number.isFinite(requested) || requested <= 0)) {
    throw new McpkiError(
      'INVALID_INPUT',
      `requestedDays must be a positive number, not ${JSON.stringify(requested)}`,
      'give the lifetime asked for in days, or leave it out',
    );
  }
  // "shortened": the CA gave noticeably less than asked (1 % slack absorbs backdating and the inclusive notAfter second)
  const shortened = requested !== undefined && lifetime < requested * DAY * 0.99;
  const lifetimeText = shortened
    ? `${days(lifetime)} lifetime (asked ${requested} days)`
    : `${days(lifetime)} lifetime`;

  const defaultFraction = lifetime < SHORT_LIFETIME ? 1 / 2 : 1 / 3;
  const fallback: Schedule = {
    renewAt: Math.round(notAfter - defaultFraction * lifetime),
    dueCode: 'fraction',
    waitCode: 'not-yet',
    rule: `when ${fractionText(defaultFraction)} of the ${lifetimeText} remains`,
  };

  let configured: Schedule | undefined;
  if (input.renewBefore !== undefined) {
    const rule = checkedRenewBefore(input.renewBefore);
    if (rule.type === 'fraction') {
      configured = {
        renewAt: Math.round(notAfter - rule.fraction * lifetime),
        dueCode: 'fraction',
        waitCode: 'not-yet',
        rule: `when ${fractionText(rule.fraction)} of the ${lifetimeText} remains (renewBefore)`,
      };
    } else if (rule.ms < lifetime) {
      configured = {
        renewAt: notAfter - rule.ms,
        dueCode: 'renew-before',
        waitCode: 'not-yet',
        rule: `renewBefore ${formatDuration(rule.ms)} before expiry`,
      };
    } else {
      // renewBefore ≥ the lifetime: every fresh certificate would be due at once — cert-manager's renewal loop
      fallback.dueCode = 'shortened-lifetime';
      fallback.waitCode = 'shortened-lifetime';
      fallback.rule = `${fallback.rule}: renewBefore ${formatDuration(rule.ms)} is not shorter than the lifetime, so it is ignored`;
    }
  }

  const ari = ariSchedule(input, notAfter, nowMs, random);
  if (ari) {
    if (configured && configured.renewAt < ari.renewAt)
      return { ...configured, ariTime: ari.renewAt, rule: `${configured.rule}, earlier than the CA's window` };
    if (!configured && fallback.dueCode === 'shortened-lifetime')
      ari.rule = `${ari.rule}; ${fallback.rule.replace(/^.*?: /, '')}`;
    return ari;
  }
  return configured ?? fallback;
}

function ariSchedule(
  input: RenewalPolicyInput,
  notAfter: number,
  nowMs: number,
  random: () => number,
): Schedule | undefined {
  const info = input.certificate?.renewalInfo;
  if (!info) return undefined;
  const start = time(info.windowStart, 'renewalInfo.windowStart');
  const rawEnd = time(info.windowEnd, 'renewalInfo.windowEnd');
  if (rawEnd <= start) {
    throw new McpkiError(
      'INVALID_INPUT',
      `the renewal window ends (${info.windowEnd}) before it starts (${info.windowStart})`,
      'store the window fetchRenewalInfo returned',
    );
  }
  // a window reaching past expiry is clipped to it; one that starts at or after expiry is no use
  if (start >= notAfter) return undefined;
  const end = Math.min(rawEnd, notAfter);
  let chosen: number | undefined;
  if (input.chosenAriTime !== undefined) {
    const stored = Date.parse(input.chosenAriTime);
    if (!Number.isNaN(stored) && stored >= start && stored <= end) chosen = stored;
  }
  if (chosen === undefined)
    chosen = chooseRenewalTime({ start: new Date(start), end: new Date(end) }, new Date(nowMs), random).getTime();
  const window = `the CA's renewal window ${iso(start)} – ${iso(end)}`;
  return {
    renewAt: chosen,
    dueCode: 'ari-window',
    waitCode: 'ari-wait',
    rule: end <= nowMs ? `${window} has passed` : `at the time chosen inside ${window}`,
    ariTime: chosen,
  };
}
