// The scheduler of `mcpki serve`: runs an async tick() on a cron schedule (npm `cron` computes the times) and also at
// the wake-up time the last tick asked for (the earliest next check of any certificate, so a 6-day certificate is
// not renewed up to an hour late). Never two ticks at once: a tick due while one runs is skipped and counted.
// stop() waits for the tick in flight (SIGTERM: finish the work, then exit 0).
//
// One timer at a time, set for min(next cron time, wake-up). Times come from the injected clock and the timer from
// the injected setTimeout, so tests need no real hours. Timers are at most maxTimerMs long (default 5 min) and a
// timer that fires before its time per the clock just re-arms: after a suspend/resume or a clock step (where the
// monotonic timer and the wall clock part ways) a check is late by at most maxTimerMs, never by hours.
import { CronTime } from 'cron';
import { McpkiError, fix } from '../errors.js';

export type TickReason = 'start' | 'cron' | 'wake-up' | 'manual';

export interface TickContext {
  reason: TickReason;
  /** the time this tick was due (the cron time or wake-up time; now for start/manual) */
  scheduledFor: Date;
}

export interface TickResult {
  /** when to run again at the latest, besides the cron schedule (e.g. the earliest next check of any certificate) */
  nextWakeUp?: Date | string | number | null;
}

export type Tick = (context: TickContext) => Promise<TickResult | void> | TickResult | void;

export interface TimerFunctions {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface SchedulerOptions {
  tick: Tick;
  /** cron expression, 5 fields (minute first) or 6 (second first); default: hourly at a random minute */
  schedule?: string;
  /** IANA time zone for the cron expression (default: the system's) */
  timeZone?: string;
  /** run one tick right after start() (default true: a restarted service checks at once) */
  runOnStart?: boolean;
  /** a nextWakeUp closer than this is moved to now + this (default 1000 ms): no busy loop on a past time */
  minWakeUpDelayMs?: number;
  /** longest single timer (default 300000 ms), see the top of this file */
  maxTimerMs?: number;
  now?: () => Date;
  /** for the default schedule's minute (default Math.random) */
  random?: () => number;
  timers?: TimerFunctions;
  /** a tick threw; the scheduler carries on */
  onError?: (error: unknown, context: TickContext) => void;
  /** a tick was due while another ran */
  onSkip?: (context: TickContext) => void;
}

export interface SchedulerStats {
  schedule: string;
  /** ticks finished (successfully or not) */
  ticks: number;
  failed: number;
  skipped: number;
  running: boolean;
  lastStartedAt: Date | null;
  lastFinishedAt: Date | null;
  lastError: string | null;
  /** the next timer: when and why (null when stopped) */
  nextRunAt: Date | null;
  nextReason: 'cron' | 'wake-up' | null;
  wakeUpAt: Date | null;
}

const MAX_TIMEOUT_MS = 2_147_483_647; // setTimeout's limit (a longer delay fires at once)

/** `M * * * *` with M drawn once: hourly, and a fleet of hosts does not hit its ACME CA at the same minute. */
export function defaultSchedule(random: () => number = Math.random): string {
  const minute = Math.min(59, Math.max(0, Math.floor(random() * 60)));
  return `${minute} * * * *`;
}

/** Checks a cron expression (and that it ever fires); throws McpkiError INVALID_INPUT with an example in the hint. */
export function validateSchedule(schedule: string, timeZone?: string): void {
  parseSchedule(schedule, timeZone);
}

function parseSchedule(schedule: string, timeZone?: string): CronTime {
  const hint = fix(
    'use 5 cron fields "minute hour day-of-month month day-of-week" (or 6 with seconds first), e.g. {--schedule "17 * * * *"} (hourly at :17) or "*/15 * * * *"',
  );
  if (typeof schedule !== 'string' || !schedule.trim())
    throw new McpkiError('INVALID_INPUT', 'empty cron schedule', hint);
  let cron: CronTime;
  try {
    cron = timeZone ? new CronTime(schedule, timeZone) : new CronTime(schedule);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    const tz = /timezone/i.test(why);
    throw new McpkiError(
      'INVALID_INPUT',
      tz ? `invalid time zone "${timeZone}" for the schedule` : `invalid cron schedule "${schedule}": ${why}`,
      tz ? 'use an IANA time zone such as UTC or Europe/Paris' : hint,
      { cause: error },
    );
  }
  try {
    nextCronTime(cron, Date.now());
  } catch (error) {
    throw new McpkiError('INVALID_INPUT', `cron schedule "${schedule}" never fires`, hint, { cause: error });
  }
  return cron;
}

/** The first cron time strictly after `afterMs`. */
function nextCronTime(cron: CronTime, afterMs: number): number {
  const next = cron.getNextDateFrom(new Date(afterMs), cron.timeZone).toMillis();
  if (!Number.isFinite(next)) throw new Error('no next date');
  return next;
}

export class Scheduler {
  /** the effective cron expression (the default one shows its chosen minute) */
  readonly schedule: string;
  private readonly cron: CronTime;
  private readonly tickFn: Tick;
  private readonly now: () => Date;
  private readonly timers: TimerFunctions;
  private readonly minWakeUpDelayMs: number;
  private readonly maxTimerMs: number;
  private readonly runOnStart: boolean;
  private readonly onError: SchedulerOptions['onError'];
  private readonly onSkip: SchedulerOptions['onSkip'];

  private started = false;
  private stopped = false;
  private timer: unknown;
  private timerTarget: { at: number; reason: 'cron' | 'wake-up' } | null = null;
  private nextCronAt = 0;
  private wakeUpAt: number | null = null;
  private inFlight: Promise<void> | null = null;
  private counts = { ticks: 0, failed: 0, skipped: 0 };
  private lastStartedAt: Date | null = null;
  private lastFinishedAt: Date | null = null;
  private lastError: string | null = null;

  constructor(options: SchedulerOptions) {
    if (typeof options.tick !== 'function')
      throw new McpkiError('INVALID_INPUT', 'the scheduler needs a tick function');
    this.schedule = (options.schedule ?? defaultSchedule(options.random)).trim();
    this.cron = parseSchedule(this.schedule, options.timeZone);
    this.tickFn = options.tick;
    this.now = options.now ?? (() => new Date());
    this.timers = options.timers ?? {
      setTimeout: (cb, ms) => setTimeout(cb, ms),
      clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
    };
    this.minWakeUpDelayMs = options.minWakeUpDelayMs ?? 1000;
    this.maxTimerMs = Math.min(options.maxTimerMs ?? 300_000, MAX_TIMEOUT_MS);
    this.runOnStart = options.runOnStart ?? true;
    this.onError = options.onError;
    this.onSkip = options.onSkip;
  }

  /** Arms the schedule (and, with runOnStart, runs a first tick right away). Calling it twice does nothing. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.nextCronAt = nextCronTime(this.cron, this.now().getTime());
    if (this.runOnStart) {
      const at = this.now();
      this.startTick({ reason: 'start', scheduledFor: at });
    }
    this.arm();
  }

  /**
   * Runs a tick now (e.g. after SIGHUP reloaded the configuration) unless one is running or the scheduler is
   * stopped; resolves true when it ran, false when skipped.
   */
  async runNow(reason: TickReason = 'manual'): Promise<boolean> {
    const context = { reason, scheduledFor: this.now() };
    if (this.stopped) return false;
    if (this.inFlight) {
      this.skip(context);
      return false;
    }
    await this.startTick(context);
    return true;
  }

  /** No more ticks; resolves when the tick in flight (if any) has finished. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.disarm();
    while (this.inFlight) await this.inFlight;
  }

  get running(): boolean {
    return this.inFlight !== null;
  }

  stats(): SchedulerStats {
    return {
      schedule: this.schedule,
      ...this.counts,
      running: this.inFlight !== null,
      lastStartedAt: this.lastStartedAt,
      lastFinishedAt: this.lastFinishedAt,
      lastError: this.lastError,
      nextRunAt: this.timerTarget && !this.stopped ? new Date(this.timerTarget.at) : null,
      nextReason: this.timerTarget && !this.stopped ? this.timerTarget.reason : null,
      wakeUpAt: this.wakeUpAt === null ? null : new Date(this.wakeUpAt),
    };
  }

  // --- internals --------------------------------------------------------------------------------------------

  private arm(): void {
    this.disarm();
    if (this.stopped || !this.started) return;
    let target: { at: number; reason: 'cron' | 'wake-up' } = { at: this.nextCronAt, reason: 'cron' };
    if (this.wakeUpAt !== null && this.wakeUpAt < target.at) target = { at: this.wakeUpAt, reason: 'wake-up' };
    this.timerTarget = target;
    const delay = Math.min(Math.max(0, target.at - this.now().getTime()), this.maxTimerMs);
    this.timer = this.timers.setTimeout(() => this.onTimer(), delay);
  }

  private disarm(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerTarget = null;
  }

  private onTimer(): void {
    this.timer = undefined;
    const target = this.timerTarget;
    if (this.stopped || !target) return;
    const now = this.now().getTime();
    if (now < target.at) return this.arm(); // a capped timer, or the clock is behind the timer: not yet
    // everything due now is served by this one tick
    const reason = target.reason;
    if (this.nextCronAt <= now) this.nextCronAt = nextCronTime(this.cron, Math.max(now, this.nextCronAt));
    if (this.wakeUpAt !== null && this.wakeUpAt <= now) this.wakeUpAt = null;
    const context = { reason, scheduledFor: new Date(target.at) };
    if (this.inFlight) this.skip(context);
    else this.startTick(context);
    this.arm(); // stays armed while a tick runs, so an overlapping cron time is seen (and skipped)
  }

  private skip(context: TickContext): void {
    this.counts.skipped++;
    try {
      this.onSkip?.(context);
    } catch {
      // a listener's failure is not the scheduler's
    }
  }

  private startTick(context: TickContext): Promise<void> {
    this.lastStartedAt = this.now();
    const run = (async () => {
      let result: TickResult | void = undefined;
      let ok = false;
      try {
        result = await this.tickFn(context);
        ok = true;
        this.lastError = null;
      } catch (error) {
        this.counts.failed++;
        this.lastError = error instanceof Error ? error.message : String(error);
        try {
          this.onError?.(error, context);
        } catch {
          // ignore
        }
      }
      this.counts.ticks++;
      this.lastFinishedAt = this.now();
      // a successful tick's answer replaces the previous wake-up; after a failure, the cron schedule retries
      this.wakeUpAt = ok ? this.wakeUpFrom(result) : null;
    })();
    const tracked = run.finally(() => {
      if (this.inFlight === tracked) this.inFlight = null;
      if (!this.stopped) this.arm();
    });
    this.inFlight = tracked;
    return tracked;
  }

  private wakeUpFrom(result: TickResult | void): number | null {
    const value = result?.nextWakeUp;
    if (value === null || value === undefined) return null;
    const ms = value instanceof Date ? value.getTime() : typeof value === 'number' ? value : Date.parse(value);
    if (!Number.isFinite(ms)) return null;
    return Math.max(ms, this.now().getTime() + this.minWakeUpDelayMs);
  }
}
