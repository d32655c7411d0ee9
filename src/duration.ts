// The one duration parser: "30d", "12h", "2w", "90m", "45s" (and "500ms" where allowed) → milliseconds, each
// use with an explicit maximum. Node's timers take at most 2^31 - 1 ms and silently turn anything longer into
// 1 ms, and a Date cannot be more than 8.64e15 ms from 1970, so an unbounded duration is a bug waiting to
// fire: every caller says how long is too long, and the message names the limit.
import { McpkiError, type ErrorCode } from './errors.js';

export const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
export type DurationUnit = keyof typeof UNIT_MS;

export const SECOND_MS = UNIT_MS.s;
export const MINUTE_MS = UNIT_MS.m;
export const HOUR_MS = UNIT_MS.h;
export const DAY_MS = UNIT_MS.d;

/** The longest delay a Node timer (setTimeout) honours; longer ones fire after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The bounds mcpki uses, in one place. */
export const DURATION_LIMITS = {
  /** hooks.timeout, defaults.hooks.timeout, dns-01 timeout: a hook may run at most a day */
  hook: DAY_MS,
  /** renewBefore / refreshBefore as a duration: longer than any certificate mcpki issues (398 days) is meaningless */
  renewBefore: 400 * DAY_MS,
  /** `list --expiring`: a century */
  expiring: 36_500 * DAY_MS,
  /** `check --timeout`, per probe */
  probe: 10 * MINUTE_MS,
  /** anything handed to a timer */
  timer: MAX_TIMER_MS,
} as const;

/**
 * `renewBefore` (and the CRL's `refreshBefore`), parsed once by whoever reads the text (mcpki.yaml's checker,
 * `parseRenewBefore`): a fixed time before not-after, or the fraction of the lifetime that must remain.
 */
export type RenewBefore = { type: 'duration'; ms: number } | { type: 'fraction'; fraction: number };

export interface DurationOptions {
  /** the largest value accepted, in ms (default: a century, DURATION_LIMITS.expiring; pass MAX_TIMER_MS or less for timers) */
  maxMs?: number;
  /** the smallest value accepted, in ms (default 1: zero is refused) */
  minMs?: number;
  /** what is being parsed, for messages: "--timeout", "hooks.timeout" (default "duration") */
  what?: string;
  /** the units accepted (default s, m, h, d, w) */
  units?: readonly DurationUnit[];
  /** the unit of a bare number; without it a number needs a unit */
  bareUnit?: DurationUnit;
  /** an example for the hint, e.g. "30d" */
  example?: string;
  /** the error code (default INVALID_INPUT) */
  code?: ErrorCode;
}

const DEFAULT_UNITS: readonly DurationUnit[] = ['s', 'm', 'h', 'd', 'w'];

/** "86400000 ms" → "1d", the largest whole unit that fits, for messages. */
export function formatDuration(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const)
    if (ms >= UNIT_MS[unit] && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  return `${ms}ms`;
}

export type DurationResult =
  { ok: true; ms: number } | { ok: false; problem: 'syntax' | 'zero' | 'too-long' | 'too-short'; message: string };

/** The checks without the throw: for the config validator, which collects every problem. */
export function checkDuration(text: string, options: DurationOptions = {}): DurationResult {
  const units = options.units ?? DEFAULT_UNITS;
  const maxMs = Math.min(options.maxMs ?? DURATION_LIMITS.expiring, Number.MAX_SAFE_INTEGER);
  const minMs = options.minMs ?? 1;
  const trimmed = text.trim();
  const match = /^(\d{1,20})\s*([a-z]*)$/.exec(trimmed);
  const unit = match ? (match[2] === '' ? options.bareUnit : (match[2] as DurationUnit)) : undefined;
  if (!match || unit === undefined || !units.includes(unit)) {
    const written = units.map((u) => `${u === 'ms' ? 500 : 30}${u}`).join(', ');
    return {
      ok: false,
      problem: 'syntax',
      message: `expected a number and a unit (${written}), got ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)}`,
    };
  }
  const ms = Number(match[1]) * UNIT_MS[unit];
  if (ms === 0 && minMs > 0) return { ok: false, problem: 'zero', message: 'expected a duration longer than 0' };
  if (!(ms <= maxMs))
    return { ok: false, problem: 'too-long', message: `longer than the limit of ${formatDuration(maxMs)}` };
  if (ms < minMs)
    return { ok: false, problem: 'too-short', message: `shorter than the minimum of ${formatDuration(minMs)}` };
  return { ok: true, ms };
}

export type RenewBeforeResult = { ok: true; value: RenewBefore } | { ok: false; message: string };

/**
 * The one reader of renewBefore / refreshBefore text: "30d", "12h" → a duration (at most
 * DURATION_LIMITS.renewBefore); "1/3", "25%", "0.25" → a fraction of the lifetime strictly between 0 and 1. A
 * number without a unit ("30") is refused rather than guessed. mcpki.yaml's checker and `parseRenewBefore` use it.
 */
export function checkRenewBefore(text: string): RenewBeforeResult {
  const value = text.trim();
  const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  const expected = `expected a duration like "30d" or a fraction of the lifetime like "1/3", "25%" or "0.25", got ${shown}`;
  const fraction = (n: number): RenewBeforeResult =>
    n > 0 && n < 1
      ? { ok: true, value: { type: 'fraction', fraction: n } }
      : { ok: false, message: `a fraction of the lifetime must be between 0 and 1 (both excluded), got ${shown}` };
  let match: RegExpExecArray | null;
  if ((match = /^(\d+)\s*\/\s*(\d+)$/.exec(value)))
    return Number(match[2]) === 0 ? { ok: false, message: expected } : fraction(Number(match[1]) / Number(match[2]));
  if ((match = /^(\d+(?:\.\d+)?)\s*%$/.exec(value))) return fraction(Number(match[1]) / 100);
  if (/^\d*\.\d+$/.test(value)) return fraction(Number(value));
  const result = checkDuration(value, { maxMs: DURATION_LIMITS.renewBefore });
  if (result.ok) return { ok: true, value: { type: 'duration', ms: result.ms } };
  if (result.problem === 'zero') return { ok: false, message: result.message };
  if (result.problem === 'too-long')
    return {
      ok: false,
      message: `${shown} is longer than the limit of ${formatDuration(DURATION_LIMITS.renewBefore)}`,
    };
  return { ok: false, message: expected };
}

/** Parses a duration or throws McpkiError (INVALID_INPUT) naming the value and, when too long, the limit. */
export function parseDuration(text: string, options: DurationOptions = {}): number {
  const result = checkDuration(text, options);
  if (result.ok) return result.ms;
  const what = options.what ?? 'duration';
  const units = options.units ?? DEFAULT_UNITS;
  const maxMs = options.maxMs ?? DURATION_LIMITS.expiring;
  const hint =
    result.problem === 'too-long'
      ? `give at most ${formatDuration(maxMs)}${options.example ? `, e.g. ${options.example}` : ''}`
      : `write a number and a unit (${units.join(', ')}), e.g. ${options.example ?? '30d'}; at most ${formatDuration(maxMs)}`;
  throw new McpkiError(
    options.code ?? 'INVALID_INPUT',
    `invalid ${what} ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)}: ${result.message}`,
    hint,
  );
}
