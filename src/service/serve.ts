// The long-running renewal service: one per home (lock), a scheduled apply of mcpki.yaml (cron, plus a
// wake-up at the earliest next check), optional metrics on loopback, reload of the file on demand.
// Printing, signals and exiting belong to the command (src/cli/commands/serve.ts).
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Config } from '../config/types.js';
import type { Context } from '../context.js';
import { applyEach, type ApplyItem, type ApplyResult } from '../renewal/runner.js';
import { retryingStoreOutages } from '../renewal/shared.js';
import { acquireServiceLock, type ServiceLock } from './lock.js';
import {
  startMetricsServer,
  type CertificateMetrics,
  type CrlMetrics,
  type MetricsServer,
  type MetricsSnapshot,
} from './metrics.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';

/**
 * A full garbage collection after each check: a check over thousands of certificates leaves a heap several
 * times larger than what stays alive, and a service should not keep that for the hour until the next one.
 * (The gc function is obtained at run time; where that is not possible this does nothing.)
 */
let gc: (() => void) | null | undefined;
function collectGarbage(): void {
  if (gc === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    } catch {
      gc = null;
    }
  }
  gc?.();
}

/**
 * V8's optimizing compiler off, for a process that is the service's alone (`lowMemory`). Its compilations run on
 * V8's background threads, and the memory they use stays in those threads' malloc arenas once freed: about
 * 10 MB resident after a check over 10,000 certificates (measured in /proc/PID/smaps: four arenas of 1.5–4.3 MB,
 * against 0.3–1 MB holding one certificate). A check is a loop the baseline compiler runs well enough.
 * Set at run time, as --expose-gc above: V8 reads it each time it considers optimizing a function.
 */
let optimizerOff = false;
function turnOptimizerOff(): void {
  if (optimizerOff) return;
  optimizerOff = true;
  try {
    v8.setFlagsFromString('--no-opt');
  } catch {
    // an embedder that refuses flags keeps its optimizer
  }
}

/**
 * How long after a check the service collects once more. V8 gives back the young generation it grew during
 * a check (up to 32 MB) only in a collection at a low allocation rate, which it measures over the last
 * 5 seconds; a collection right after the check is too early for that.
 */
const IDLE_COLLECTION_DELAY_MS = 10_000;

/** items of the last result deflated together: about 60 KB of JSON, each piece's buffers reused for the next */
const ITEMS_PER_PIECE = 200;
const DEFLATE_OPTIONS = { windowBits: 13, memLevel: 6 };

export type ServiceLogger = (event: string, fields?: Record<string, unknown>) => void;

export interface ServiceOptions {
  /** loads (and validates) the declaration; called at start and on reload */
  loadConfig: () => Config;
  schedule?: string;
  /** HOST:PORT for /metrics and /healthz (loopback only) */
  metrics?: string;
  log?: ServiceLogger;
  version?: string;
  /**
   * The process runs only the service (`mcpki serve`): V8's optimizing compiler is turned off for the whole
   * process, which keeps about 10 MB less resident with 10,000 certificates. Leave unset in a process that
   * does other work.
   */
  lowMemory?: boolean;
  /** test hooks: timers and the scheduler's clock */
  scheduler?: Partial<Pick<SchedulerOptions, 'now' | 'timers' | 'minWakeUpDelayMs' | 'runOnStart'>>;
}

export interface RunningService {
  readonly metricsUrl: string | undefined;
  /** re-reads the file; an invalid file keeps the old one (and says why). Then checks at once. */
  reload(): Promise<{ ok: boolean; error?: string }>;
  /** runs a check now (false if one is running) */
  checkNow(): Promise<boolean>;
  /** finishes the check in flight, closes the metrics server, releases the lock */
  stop(): Promise<void>;
  /** the last check's outcome (made afresh on each read: the service keeps it as one JSON text) */
  readonly lastResult: ApplyResult | undefined;
}

interface Counters {
  renewals: { success: number; failure: number };
  deploys: { success: number; failure: number };
  lastSuccess: string | null;
}

/** the counters of a certificate this service has not renewed or deployed yet (most of them, most hours) */
const NO_COUNTS: Readonly<Counters> = Object.freeze({
  renewals: Object.freeze({ success: 0, failure: 0 }),
  deploys: Object.freeze({ success: 0, failure: 0 }),
  lastSuccess: null,
});

export async function startService(context: Context, options: ServiceOptions): Promise<RunningService> {
  const log: ServiceLogger = options.log ?? (() => {});
  if (options.lowMemory) turnOptimizerOff();
  let config = options.loadConfig();
  const lock: ServiceLock = acquireServiceLock(context.home);
  // each check reads every row once, from the system's file cache when not from this one: a small cache costs
  // some reads (pread) per check, a large one stays resident between checks
  const pageCacheKib = 512;
  let pageCacheLimited = false;
  const counters = new Map<string, Counters>();
  // the last check's outcome, its items as one deflated JSON text: with 10,000 certificates about 3.3 MB of
  // JSON, or twice that as objects (their reasons are strings built from several parts), kept as some 0.3 MB
  let lastResult: (Omit<ApplyResult, 'items'> & { items: Buffer[] }) | undefined;
  let lastCheck: string | null = null;
  const crlMetrics: CrlMetrics = { nextUpdate: null, number: null, publishes: { success: 0, failure: 0 } };
  let metrics: MetricsServer | undefined;
  let scheduler: Scheduler | undefined;
  let idleCollection: NodeJS.Timeout | undefined;
  const cancelIdleCollection = () => {
    if (idleCollection) clearTimeout(idleCollection);
    idleCollection = undefined;
  };

  const countersFor = (name: string): Counters => {
    let c = counters.get(name);
    if (!c)
      counters.set(
        name,
        (c = { renewals: { success: 0, failure: 0 }, deploys: { success: 0, failure: 0 }, lastSuccess: null }),
      );
    return c;
  };

  const tick = async () => {
    cancelIdleCollection();
    if (!pageCacheLimited) {
      context.store().limitPageCache(pageCacheKib);
      pageCacheLimited = true;
    }
    // deflated ITEMS_PER_PIECE at a time, so that no text of all the items is ever made
    const items: Buffer[] = [];
    let piece: string[] = [];
    let count = 0;
    const deflatePiece = () => {
      if (piece.length > 0) items.push(deflateRawSync(piece.join(','), DEFLATE_OPTIONS));
      piece = [];
    };
    let earliest = Infinity;
    const succeeded: Counters[] = [];
    const { changed, failed, crl } = await applyEach(context, config, {}, (item) => {
      count++;
      piece.push(JSON.stringify(item));
      if (piece.length === ITEMS_PER_PIECE) deflatePiece();
      const next = Date.parse(item.nextCheck);
      if (next < earliest) earliest = next;
      const renewed = item.action === 'issued' || item.action === 'renewed';
      const deployFailed = item.error?.code?.startsWith('DEPLOY_') === true;
      if (renewed || item.action === 'failed' || item.deployed.length > 0 || deployFailed) {
        const c = countersFor(item.name);
        if (renewed) {
          c.renewals.success++;
          succeeded.push(c);
        }
        if (item.action === 'failed') c.renewals.failure++;
        if (item.deployed.length > 0) c.deploys.success++;
        if (deployFailed) c.deploys.failure++;
      }
      if (item.action !== 'unchanged')
        log(item.action === 'failed' ? 'renewal.failed' : 'renewal.done', {
          name: item.name,
          action: item.action,
          serial: item.serial,
          reason: item.reason,
          deployed: item.deployed,
          error: item.error,
        });
    });
    deflatePiece();
    lastResult = crl ? { items, changed, failed, crl } : { items, changed, failed };
    if (crl) {
      if (crl.nextUpdate) crlMetrics.nextUpdate = crl.nextUpdate;
      if (crl.number) crlMetrics.number = crl.number;
      if (crl.action === 'published' || crl.action === 'deployed') crlMetrics.publishes.success++;
      if (crl.action === 'failed') crlMetrics.publishes.failure++;
      if (crl.action !== 'unchanged' && crl.action !== 'skipped') {
        log(crl.action === 'failed' ? 'crl.failed' : 'crl.published', {
          action: crl.action,
          reason: crl.reason,
          number: crl.number,
          nextUpdate: crl.nextUpdate,
          deployed: crl.deployed,
          hooksRun: crl.hooksRun,
          warnings: crl.warnings,
          error: crl.error,
        });
      }
      const next = crl.nextCheck ? Date.parse(crl.nextCheck) : NaN;
      if (next < earliest) earliest = next;
    }
    lastCheck = context.now().toISOString();
    for (const c of succeeded) c.lastSuccess = lastCheck;
    const nextWakeUp = Number.isFinite(earliest) ? new Date(earliest) : null;
    collectGarbage();
    idleCollection = setTimeout(() => {
      idleCollection = undefined;
      collectGarbage();
    }, IDLE_COLLECTION_DELAY_MS).unref();
    const memory = process.memoryUsage();
    log('check.done', {
      certificates: count,
      changed,
      failed,
      nextWakeUp: nextWakeUp?.toISOString() ?? null,
      memoryMb: {
        rss: Math.round(memory.rss / 1048576),
        heapUsed: Math.round(memory.heapUsed / 1048576),
        external: Math.round(memory.external / 1048576),
      },
    });
    return { nextWakeUp };
  };

  const snapshot = (): MetricsSnapshot => {
    const store = context.existingStore();
    const found = store?.currentByNames(
      config.certificates.map((declared) => declared.name),
      { summary: true },
    );
    const certificates: CertificateMetrics[] = config.certificates.map((declared, i) => {
      const record = found?.[i]!.record;
      const state = found?.[i]!.state;
      const c = counters.get(declared.name) ?? NO_COUNTS;
      return {
        name: declared.name,
        issuer: record?.issuer ?? (declared.issuer.type === 'local' ? 'local' : `acme:${declared.issuer.account}`),
        serial: record?.serial ?? '',
        notAfter: record?.notAfter ?? null,
        nextRenewal: state?.nextCheck ?? null,
        renewals: c.renewals,
        deploys: c.deploys,
        lastSuccess: c.lastSuccess ?? state?.lastSuccess ?? null,
      };
    });
    const stats = scheduler?.stats();
    return {
      version: options.version ?? '0',
      certificates,
      lastCheck,
      scheduler: stats ? { ticks: stats.ticks, failed: stats.failed, skipped: stats.skipped } : undefined,
      crl: config.crl ? crlMetrics : undefined,
    };
  };

  try {
    if (options.metrics) metrics = await startMetricsServer({ listen: options.metrics, snapshot });
    scheduler = new Scheduler({
      // an unreachable inventory (PostgreSQL restarting) is retried with backoff: src/renewal/shared.ts
      tick: retryingStoreOutages(tick, {
        now: context.now,
        onRetry: (error, retryAt, attempt) =>
          log('check.failed', { error: error.message, code: error.code, retryAt: retryAt.toISOString(), attempt }),
      }),
      schedule: options.schedule,
      onError: (error) => log('check.failed', { error: (error as Error).message }),
      onSkip: () => log('check.skipped', { reason: 'the previous check is still running' }),
      ...options.scheduler,
    });
    scheduler.start();
  } catch (error) {
    await metrics?.close();
    lock.release();
    throw error;
  }
  log('service.started', {
    home: context.home,
    config: config.file,
    certificates: config.certificates.length,
    schedule: scheduler.schedule,
    metrics: metrics?.url ?? null,
    pid: process.pid,
  });

  return {
    metricsUrl: metrics?.url,
    get lastResult() {
      if (!lastResult) return undefined;
      const text = lastResult.items.map((p) => inflateRawSync(p, DEFLATE_OPTIONS).toString('utf8')).join(',');
      return { ...lastResult, items: JSON.parse(`[${text}]`) as ApplyItem[] };
    },
    async reload() {
      try {
        config = options.loadConfig();
      } catch (error) {
        const details = (error as { details?: string[] }).details;
        log('config.invalid', { error: (error as Error).message, details: details ?? null, kept: config.file });
        return { ok: false, error: (error as Error).message };
      }
      log('config.reloaded', { config: config.file, certificates: config.certificates.length });
      await scheduler!.runNow('manual');
      return { ok: true };
    },
    checkNow: () => scheduler!.runNow('manual'),
    async stop() {
      await scheduler?.stop();
      cancelIdleCollection();
      await metrics?.close();
      lock.release();
      log('service.stopped', {});
    },
  };
}
