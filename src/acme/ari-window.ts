// When to renew inside an ACME Renewal Information window (RFC 9773 section 4.2) and when to ask for the window
// again (section 4.3). Pure: renewal/policy.ts uses it, so nothing here does I/O or imports a module that does.
import { McpkiError } from '../errors.js';

export interface RenewalWindow {
  start: Date;
  end: Date;
}

/**
 * When to renew, given a suggested window (RFC 9773 section 4.2):
 * - the window is already over (end <= now): now — renew immediately;
 * - the window has not started: a uniformly random time in [start, end];
 * - now is inside the window: a uniformly random time in [now, end]. RFC 9773 picks in the whole window and
 *   renews at once when the pick is in the past, which sends a share of (now - start) / (end - start) of all
 *   clients to the CA at the same instant; drawing from what is left of the window keeps the spread the
 *   window exists for, and is still a time inside it.
 * `random` returns [0, 1] (Math.random by default); 0 gives the lower bound, 1 the end.
 */
export function chooseRenewalTime(
  window: RenewalWindow,
  now: Date = new Date(),
  random: () => number = Math.random,
): Date {
  const start = window.start.getTime();
  const end = window.end.getTime();
  if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) {
    throw new McpkiError(
      'INVALID_INPUT',
      'a renewal window must end after it starts',
      'use the window fetchRenewalInfo returned',
    );
  }
  const nowMs = now.getTime();
  if (end <= nowMs) return new Date(nowMs);
  const low = Math.max(start, nowMs);
  const draw = Math.min(1, Math.max(0, Number(random()) || 0));
  return new Date(Math.min(end, Math.max(low, Math.round(low + draw * (end - low)))));
}

export interface RecheckOptions {
  /** lower clamp on Retry-After; RFC 9773 section 4.3 suggests one minute */
  minSeconds?: number;
  /** upper clamp on Retry-After; RFC 9773 section 4.3 suggests one day */
  maxSeconds?: number;
  /** when the server sent no usable Retry-After (a long-term error in RFC 9773 4.3.3): 6 hours */
  defaultSeconds?: number;
}

/**
 * When to fetch renewal information again: fetchedAt + Retry-After, clamped to [1 minute, 1 day]
 * (RFC 9773 section 4.3); 6 hours when there was no Retry-After.
 */
export function nextRenewalInfoCheck(
  fetchedAt: Date,
  retryAfterSeconds: number | undefined,
  options: RecheckOptions = {},
): Date {
  const min = options.minSeconds ?? 60;
  const max = options.maxSeconds ?? 86_400;
  const fallback = options.defaultSeconds ?? 21_600;
  const seconds =
    retryAfterSeconds === undefined || !Number.isFinite(retryAfterSeconds)
      ? fallback
      : Math.min(max, Math.max(min, retryAfterSeconds));
  return new Date(fetchedAt.getTime() + seconds * 1000);
}
