// Reconciling the declared certificates (mcpki.yaml) with the inventory: plan (what is due and why), then
// issue what is missing or due, deploy targets whose content differs, run hooks of what changed, and keep
// per-certificate state (next check, reason, failures) for the scheduler, `list` and `renew --dry-run`.
import { readFileSync, statSync } from 'node:fs';
import type { Config, DeclaredCertificate } from '../config/types.js';
import type { Context } from '../context.js';
import { deployMany, deployWithHooks, type DeployHooks, type DeployJob, type DeployOutcome } from '../deploy/deploy.js';
import { checkTargets } from '../deploy/plan.js';
import type { DirChecks, LeftoverListings, Material, Target } from '../deploy/types.js';
import { McpkiError } from '../errors.js';
import { fromPem, toPem } from '../pki/der.js';
import { issueCertificate, type IssueRequest } from '../pki/issue.js';
import { issueLocalBatch } from './issue-local.js';
import { FileSystemSyncer, SyncBatch } from '../fs/sync-batch.js';
import { removeAll } from '../fs/parallel.js';
import type { CertificateRecord, CertificateSummary, RenewalState, Store } from '../store/store.js';
import { InterruptedError, throwIfInterrupted } from '../acme/interrupt.js';
import { applyCrl, type CrlOutcome } from './crl.js';
import { withHomeLock } from './lock.js';
import { renewOnce, sharedMaterial, sharesInventory } from './shared.js';
import { failuresAfterRun, needsRenewal, type RenewalDecision } from './policy.js';

export interface PlanItem {
  name: string;
  due: boolean;
  code: RenewalDecision['code'] | 'forced';
  reason: string;
  renewAt: string;
  nextCheck: string;
  /** the certificate in the inventory now, if any */
  serial: string | null;
  notAfter: string | null;
  failures: number;
  lastError: string | null;
  /** the renewal time chosen inside the CA's ARI window (kept across checks); absent without a window */
  ariTime?: string;
}

export interface ApplyItem extends PlanItem {
  action: 'issued' | 'renewed' | 'unchanged' | 'failed';
  /** target paths whose content changed */
  deployed: string[];
  hooksRun: number;
  error?: { code: string; message: string; hint: string | null };
}

export interface ApplyResult {
  items: ApplyItem[];
  /** a certificate was issued or renewed, a target rewritten, or the CRL published or copied */
  changed: boolean;
  /** certificates that failed, plus one when the CRL's publication (or its reload hooks) failed */
  failed: number;
  /**
   * certificates due for renewal (revoked, expiring, changed, missing) but not attempted in this run because
   * they are backing off after a failure: not current, and not a success
   */
  backingOff?: number;
  /** the `crl:` section's outcome; absent when mcpki.yaml has none */
  crl?: CrlOutcome;
}

export { planCrl, type CrlOutcome, type CrlPlan } from './crl.js';

export interface PlanOptions {
  /** names to renew whatever the policy says */
  force?: readonly string[];
  /**
   * aborted (reason 'SIGINT' / 'SIGTERM') to stop: an ACME order in flight runs its cleanups and deactivates its
   * authorizations, no further certificate is started, and the run fails with INTERRUPTED (not counted as a
   * failure of the certificate: no backoff)
   */
  signal?: AbortSignal;
  /**
   * applyConfig/applyEach: each certificate's plan item (what planRenewals gives for it) as its turn comes,
   * before it is applied, read with the rest of its chunk: for a caller that reports the plan with the result
   * (`renew --json`) and need not read every certificate twice
   */
  onPlan?: (item: PlanItem) => void;
}

function issuerOf(declared: DeclaredCertificate): string {
  return declared.issuer.type === 'local' ? 'local' : `acme:${declared.issuer.account}`;
}

/** The same names in the same order (what nearly every certificate of a plan has: no sorting needed). */
function sameNamesInOrder(declared: DeclaredCertificate, record: CertificateSummary): boolean {
  if (declared.names.length !== record.sans.length) return false;
  return declared.names.every((san, i) => san.type === record.sans[i]!.type && san.value === record.sans[i]!.value);
}

/** Whether the certificate on record is the one declared (names, issuer, kind, key, ACME profile); if not, reissue. */
function declarationChanged(declared: DeclaredCertificate, record: CertificateSummary): string | undefined {
  return (
    (sameNamesInOrder(declared, record) ? undefined : namesChanged(declared, record)) ?? otherChange(declared, record)
  );
}

function namesChanged(declared: DeclaredCertificate, record: CertificateSummary): string | undefined {
  const wanted = declared.names
    .map((s) => `${s.type}:${s.value}`)
    .sort()
    .join(',');
  const have = record.sans
    .map((s) => `${s.type}:${s.value}`)
    .sort()
    .join(',');
  return wanted === have ? undefined : `names changed (${have || 'none'} → ${wanted})`;
}

function otherChange(declared: DeclaredCertificate, record: CertificateSummary): string | undefined {
  if (issuerOf(declared) !== record.issuer) return `issuer changed (${record.issuer} → ${issuerOf(declared)})`;
  if (declared.kind !== record.kind) return `kind changed (${record.kind} → ${declared.kind})`;
  if (declared.key !== record.keyType) return `key type changed (${record.keyType} → ${declared.key})`;
  if (declared.issuer.type === 'acme' && (declared.profile ?? null) !== (record.profile ?? null))
    return `profile changed (${record.profile ?? 'none'} → ${declared.profile ?? 'none'})`;
  return undefined;
}

/**
 * A plan item, built field by field (in the order of PlanItem, which is the order of the JSON output). Not
 * with `{ ...base, more }`: in a loop over thousands of certificates V8 (Node 20) moved objects made by a
 * spread into the old generation, 12 MB per 10,000 certificates that only a full collection gives back
 * and that the service kept as resident memory.
 */
function planItemOf(
  name: string,
  record: CertificateSummary | undefined,
  state: RenewalState | undefined,
  decision: Pick<PlanItem, 'due' | 'code' | 'reason' | 'renewAt' | 'nextCheck' | 'ariTime'>,
): PlanItem {
  const item: PlanItem = {
    name,
    serial: record?.serial ?? null,
    notAfter: record?.notAfter ?? null,
    failures: state?.failures ?? 0,
    lastError: state?.lastError ?? null,
    due: decision.due,
    code: decision.code,
    reason: decision.reason,
    renewAt: decision.renewAt,
    nextCheck: decision.nextCheck,
  };
  if (decision.ariTime !== undefined) item.ariTime = decision.ariTime;
  return item;
}

function decide(
  declared: DeclaredCertificate,
  record: CertificateSummary | undefined,
  state: RenewalState | undefined,
  now: Date,
  forced: boolean,
): PlanItem {
  const failures = state?.failures ?? 0;
  if (forced) {
    const nowIso = now.toISOString();
    return planItemOf(declared.name, record, state, {
      due: true,
      code: 'forced',
      reason: 'renewal forced (--force)',
      renewAt: nowIso,
      nextCheck: nowIso,
    });
  }
  const changed = record && record.status !== 'revoked' ? declarationChanged(declared, record) : undefined;
  // a changed declaration is due like any renewal, and backs off like one after a failed reissue
  const decision = needsRenewal({
    certificate: record
      ? {
          notBefore: record.notBefore,
          notAfter: record.notAfter,
          status: record.status,
          renewalInfo: record.renewalInfo,
        }
      : null,
    renewBefore: declared.renewBefore,
    requestedDays: declared.days,
    failures:
      failures > 0 && state?.lastFailure
        ? { count: failures, lastAt: state.lastFailure, lastError: state.lastError ?? undefined }
        : undefined,
    now,
    chosenAriTime: state?.ariTime ?? undefined,
    changed,
  });
  return planItemOf(declared.name, record, state, decision);
}

/** The outcome of one certificate: the state after the run (`next`) with the plan's due/code/reason. */
function applyItemOf(
  next: PlanItem,
  item: PlanItem,
  action: ApplyItem['action'],
  deployed: string[],
  hooksRun: number,
  error?: ApplyItem['error'],
): ApplyItem {
  const result: ApplyItem = {
    name: next.name,
    serial: next.serial,
    notAfter: next.notAfter,
    failures: next.failures,
    lastError: next.lastError,
    due: item.due,
    code: item.code,
    reason: item.reason,
    renewAt: next.renewAt,
    nextCheck: next.nextCheck,
    action,
    deployed,
    hooksRun,
  };
  if (next.ariTime !== undefined) result.ariTime = next.ariTime;
  if (error) result.error = error;
  return result;
}

/** The row saved for a certificate after its run: `state` with the policy's verdict on it. */
function withVerdict(state: RenewalState, next: PlanItem): RenewalState {
  return {
    name: state.name,
    code: next.code,
    reason: next.reason,
    nextCheck: next.nextCheck,
    // the time drawn inside the CA's window is kept, or each check would draw a new one (RFC 9773 §4.2)
    ariTime: next.ariTime ?? null,
    failures: state.failures,
    lastAttempt: state.lastAttempt,
    lastSuccess: state.lastSuccess,
    lastFailure: state.lastFailure,
    lastError: state.lastError,
    deployed: state.deployed,
  };
}

/** The names given to --force, once each is known to be declared. */
function forcedNames(config: Config, options: PlanOptions): ReadonlySet<string> {
  const forced = new Set(options.force ?? []);
  if (forced.size === 0) return forced;
  const declared = new Set(config.certificates.map((c) => c.name));
  const unknown = [...forced].filter((name) => !declared.has(name));
  if (unknown.length) {
    throw new McpkiError(
      'NOT_FOUND',
      `--force names "${unknown[0]}", which ${config.file} does not declare`,
      `declared: ${config.certificates.map((c) => c.name).join(', ') || 'none'}`,
    );
  }
  return forced;
}

/** What is due, and why, for every declared certificate. Reads only. */
export function planRenewals(context: Context, config: Config, options: PlanOptions = {}): PlanItem[] {
  const forced = forcedNames(config, options);
  const store = context.existingStore();
  const now = context.now();
  // one indexed lookup per certificate, a read transaction per PLAN_CHUNK: with 10,000, faster than
  // listCertificates() (its GROUP BY and sort); in chunks, so that what was read for one is garbage before
  // the next is read (all 10,000 records at once were copied by two young-generation collections)
  const items: PlanItem[] = [];
  for (let start = 0; start < config.certificates.length; start += PLAN_CHUNK) {
    const chunk = config.certificates.slice(start, start + PLAN_CHUNK);
    const found = store?.currentByNames(
      chunk.map((declared) => declared.name),
      { summary: true },
    );
    for (const [i, declared] of chunk.entries())
      items.push(decide(declared, found?.[i]!.record, found?.[i]!.state, now, forced.has(declared.name)));
  }
  return items;
}

/** Certificates a plan reads and decides at a time. */
const PLAN_CHUNK = 1_000;

function materialOf(record: CertificateRecord): Material {
  const paths = record.paths as { cert?: string; key?: string; fullchain?: string; chain?: string };
  if (!paths.key || !paths.fullchain) {
    throw new McpkiError(
      'NOT_FOUND',
      `the files of certificate ${record.name} are not on record`,
      `reissue it: mcpki renew --force ${record.name}`,
    );
  }
  let fullchain: string;
  let keyPem: string;
  try {
    fullchain = readFileSync(paths.fullchain, 'utf8');
    keyPem = readFileSync(paths.key, 'utf8');
  } catch (error) {
    throw new McpkiError(
      'NOT_FOUND',
      `cannot read the files of certificate ${record.name} (${(error as NodeJS.ErrnoException).code})`,
      `reissue it: mcpki renew --force ${record.name}`,
      { cause: error },
    );
  }
  const blocks = fromPem(fullchain, 'CERTIFICATE');
  return {
    name: record.name,
    serial: record.serial,
    certPem: toPem('CERTIFICATE', blocks[0]!),
    chainPem: blocks
      .slice(1)
      .map((der) => toPem('CERTIFICATE', der))
      .join(''),
    keyPem,
  };
}

/**
 * The declared targets as deploy takes them. A copy, not the declared objects: the deploy fingerprint kept in
 * the store is the JSON of these (without pathAsWritten, keys in this order), so its shape must not drift.
 */
function targetsOf(declared: DeclaredCertificate): Target[] {
  return declared.targets.map((t) => ({
    type: t.type,
    path: t.path,
    mode: t.mode,
    owner: t.owner,
    group: t.group,
    passwordFile: t.passwordFile,
    namespace: t.namespace,
    secretName: t.secretName,
  }));
}

async function issueDeclared(
  context: Context,
  declared: DeclaredCertificate,
  signal?: AbortSignal,
): Promise<CertificateRecord> {
  const sans = declared.names.map((s) => s.value);
  if (declared.issuer.type === 'local') {
    return issueCertificate(context, {
      kind: declared.kind,
      name: declared.name,
      sans,
      keyType: declared.key,
      days: declared.days,
      allowGit: true,
    }).certificate;
  }
  const { issueAcmeCertificate } = await import('../acme/issue.js');
  const { createChallengeProvider } = await import('../acme/challenges/index.js');
  const challenge = declared.challenge ?? { type: 'http-01' as const };
  const provider = createChallengeProvider({
    type: challenge.type,
    ...(challenge.type === 'http-01'
      ? { httpPort: challenge.port, httpHost: challenge.host, webroot: challenge.webroot }
      : {}),
    ...(challenge.type === 'dns-01'
      ? {
          dnsHook: challenge.hook,
          dnsTimeoutSeconds: challenge.timeoutMs ? challenge.timeoutMs / 1000 : undefined,
          propagationSeconds: challenge.propagationSeconds,
          dnsResolver: challenge.resolver,
          propagationTimeoutSeconds: challenge.propagationTimeoutMs ? challenge.propagationTimeoutMs / 1000 : undefined,
        }
      : {}),
    ...(challenge.type === 'tls-alpn-01' ? { alpnPort: challenge.port, alpnHost: challenge.host } : {}),
  });
  const issued = await issueAcmeCertificate(context, {
    name: declared.name,
    domains: sans,
    account: declared.issuer.account,
    keyType: declared.key,
    profile: declared.profile,
    reuseKey: declared.reuseKey,
    preferredChain: declared.preferredChain,
    challenge: provider,
    allowGit: true,
    signal,
  });
  return issued.certificate;
}

function errorBody(error: unknown): { code: string; message: string; hint: string | null } {
  if (error instanceof McpkiError)
    return { code: error.code, message: error.message, hint: error.hintFor('config') ?? null };
  return { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error), hint: null };
}

/**
 * The renewal state after a run. The failures follow failuresAfterRun: a failure counts one more, a run that
 * skipped the renewal because of a backoff keeps them (and the deploy fingerprint of what is still in place),
 * a successful run clears them.
 */
function stateAfter(
  name: string,
  previous: RenewalState | undefined,
  now: Date,
  outcome: { attempted: boolean; backingOff: boolean; error?: string; deployed?: string | null },
): RenewalState {
  const at = now.toISOString();
  const failed = outcome.error !== undefined;
  const failures = failuresAfterRun(
    previous ? { count: previous.failures, lastAt: previous.lastFailure, lastError: previous.lastError } : undefined,
    { backingOff: outcome.backingOff, error: outcome.error, now },
  );
  return {
    name,
    code: null,
    reason: null,
    nextCheck: null,
    ariTime: previous?.ariTime ?? null,
    failures: failures.count,
    lastAttempt: outcome.attempted ? at : (previous?.lastAttempt ?? null),
    lastSuccess: outcome.attempted && !failed ? at : (previous?.lastSuccess ?? null),
    lastFailure: failures.lastAt,
    lastError: failures.lastError,
    deployed: outcome.deployed === undefined ? (previous?.deployed ?? null) : outcome.deployed,
  };
}

/**
 * What a deploy left on disk: the serial, the declared targets, and each file's size, mtime and mode (and
 * a p12 password file's). When nothing of it changed since the last successful deploy, the deploy (reading
 * and rendering every target) is skipped: with thousands of certificates that was most of a check's work
 * and memory. Null when a file is missing: then the deploy runs and recreates it.
 */
function deployFingerprint(serial: string, targets: readonly Target[]): string | null {
  const files: unknown[] = [];
  for (const target of targets) {
    for (const path of [target.path, target.passwordFile].filter((p): p is string => Boolean(p))) {
      let stat;
      try {
        stat = statSync(path);
      } catch {
        return null;
      }
      files.push([path, stat.size, stat.mtimeMs, stat.mode, stat.uid, stat.gid]);
    }
  }
  return JSON.stringify({ serial, targets, files });
}

/** Inventory writes of a chunk of certificates, committed together (one transaction per chunk). */
type Pending = (() => void)[];

function sameState(a: RenewalState | undefined, b: RenewalState): boolean {
  return (
    !!a &&
    a.code === b.code &&
    a.reason === b.reason &&
    a.nextCheck === b.nextCheck &&
    a.ariTime === b.ariTime &&
    a.failures === b.failures &&
    a.lastAttempt === b.lastAttempt &&
    a.lastSuccess === b.lastSuccess &&
    a.lastFailure === b.lastFailure &&
    a.lastError === b.lastError &&
    a.deployed === b.deployed
  );
}

/** The item and inventory writes of a certificate whose run succeeded (issued or not, deployed or not). */
function succeeded(
  declared: DeclaredCertificate,
  item: PlanItem,
  found: { record: CertificateRecord | undefined; previous: RenewalState | undefined },
  now: Date,
  action: ApplyItem['action'],
  deployed: DeployOutcome | undefined,
  fingerprint: string | null,
  pending: Pending,
  store: Store,
): ApplyItem {
  const record = found.record;
  const state = stateAfter(declared.name, found.previous, now, {
    attempted: item.due,
    backingOff: item.code === 'backoff',
    deployed: fingerprint,
  });
  const next = decide(declared, record, state, now, false);
  const saved = withVerdict(state, next);
  if (!sameState(found.previous, saved)) pending.push(() => store.saveRenewalState(saved));
  if (deployed && deployed.deploy.changed.length > 0) {
    const event = {
      type: 'deploy.changed',
      name: declared.name,
      serial: record?.serial ?? null,
      detail: {
        changed: deployed.deploy.changed,
        hooks: deployed.hooks.map((h) => ({ argv: h.argv, exitCode: h.exitCode })),
      },
    };
    pending.push(() => store.addEvent(event));
  }
  return applyItemOf(next, item, action, deployed?.deploy.changed ?? [], deployed?.hooks.length ?? 0);
}

/** The item and inventory writes of a certificate whose run failed (an interrupt is not a failure: rethrown). */
function failedItem(
  declared: DeclaredCertificate,
  item: PlanItem,
  previous: RenewalState | undefined,
  now: Date,
  error: unknown,
  pending: Pending,
  store: Store,
): ApplyItem {
  // an interrupt is not a failure of the certificate: its state stays as it was
  if (error instanceof InterruptedError) throw error;
  const body = errorBody(error);
  const state = stateAfter(declared.name, previous, now, {
    attempted: true,
    backingOff: item.code === 'backoff',
    error: body.message,
    deployed: null,
  });
  const record = store.findCertificate(declared.name);
  const next = decide(declared, record, state, now, false);
  const saved = withVerdict(state, next);
  pending.push(() => {
    store.saveRenewalState(saved);
    store.addEvent({ type: 'renewal.failed', name: declared.name, detail: { ...body, failures: state.failures } });
  });
  return applyItemOf(next, item, 'failed', [], 0, body);
}

function hooksOf(declared: DeclaredCertificate): DeployHooks {
  return { reload: declared.hooks.reload, timeoutMs: declared.hooks.timeoutMs, verify: declared.hooks.verify };
}

async function applyOne(
  context: Context,
  declared: DeclaredCertificate,
  item: PlanItem,
  listings: LeftoverListings,
  found: { record: CertificateRecord | undefined; previous: RenewalState | undefined },
  pending: Pending,
  signal?: AbortSignal,
): Promise<ApplyItem> {
  const store = context.store();
  const now = context.now();
  let record = found.record;
  try {
    let action: ApplyItem['action'] = 'unchanged';
    if (item.due) {
      // a target the deploy would refuse (a folder another user owns or can write, a planted set folder)
      // fails the certificate before anything is issued or recorded
      checkTargets(targetsOf(declared), declared.name);
    }
    // once across the hosts that share a PostgreSQL inventory (src/renewal/shared.ts); on SQLite: issue if due
    const once = await renewOnce(
      context,
      declared.name,
      record,
      item.due,
      (fresh) => decide(declared, fresh, found.previous, now, false).due,
      () => issueDeclared(context, declared, signal),
    );
    record = once.record;
    if (once.renewed) action = item.serial ? 'renewed' : 'issued';
    let deployed: DeployOutcome | undefined;
    let fingerprint: string | null = null;
    if (record && declared.targets.length > 0 && !once.busy) {
      const targets = targetsOf(declared);
      fingerprint = deployFingerprint(record.serial, targets);
      if (fingerprint === null || fingerprint !== found.previous?.deployed) {
        const material = (sharesInventory(context) && sharedMaterial(context, record)) || materialOf(record);
        deployed = await deployWithHooks(targets, material, hooksOf(declared), {}, listings);
        fingerprint = deployFingerprint(record.serial, targets);
      }
    }
    return succeeded(
      declared,
      item,
      { record, previous: found.previous },
      now,
      action,
      deployed,
      fingerprint,
      pending,
      store,
    );
  } catch (error) {
    return failedItem(declared, item, found.previous, now, error, pending, store);
  }
}

/** Certificates planned, issued and deployed together: a chunk's keys, signatures, syncs and inventory writes. */
const CHUNK = 500;

interface Slot {
  declared: DeclaredCertificate;
  item: PlanItem;
  found: { record: CertificateRecord | undefined; previous: RenewalState | undefined };
  result?: ApplyItem;
}

/**
 * The due local-CA certificates of a chunk, together: their targets checked, all issued at once
 * (issueBatch: keys on both cores, one inventory transaction, one syncfs before and after the renames), then
 * all deployed at once (deployMany: the same for every file set). Any that fails on the way gets its own
 * failure; when the batch issue itself fails, each is tried alone so that only the one at fault fails.
 */
async function applyLocalBatch(
  context: Context,
  slots: Slot[],
  listings: LeftoverListings,
  pending: Pending,
  removeAtEnd: string[],
  syncer: { shell?: FileSystemSyncer | null },
  signal?: AbortSignal,
): Promise<void> {
  const store = context.store();
  const now = context.now();
  const ready: Slot[] = [];
  const checked: DirChecks = new Map();
  for (const slot of slots) {
    try {
      checkTargets(targetsOf(slot.declared), slot.declared.name, checked);
      ready.push(slot);
    } catch (error) {
      slot.result = failedItem(slot.declared, slot.item, slot.found.previous, now, error, pending, store);
    }
  }
  if (ready.length === 0) return;
  throwIfInterrupted(signal, `apply, before ${ready[0]!.declared.name}`);
  let issued: CertificateRecord[];
  // one shell for the run's syncs (FileSystemSyncer): not a `sync -f` child of this large process each time
  if (syncer.shell === undefined) syncer.shell = FileSystemSyncer.start() ?? null;
  // the issued files are made durable by the deploy's first syncfs; the files they replaced are removed at the
  // end of the run (applyEach, before it releases the lock; deployMany says why not sooner)
  const after = { sync: new SyncBatch(true, syncer.shell ?? undefined), remove: [] as string[], removeAtEnd };
  try {
    issued = await issueLocalBatch(
      context,
      ready.map((slot) => localRequest(slot.declared)),
      after,
    );
  } catch {
    for (const slot of ready) {
      throwIfInterrupted(signal, `apply, before ${slot.declared.name}`);
      slot.result = await applyOne(context, slot.declared, slot.item, listings, slot.found, pending, signal);
    }
    return;
  }
  const jobs: { slot: Slot; record: CertificateRecord; job: DeployJob }[] = [];
  ready.forEach((slot, i) => {
    const record = issued[i]!;
    const action: ApplyItem['action'] = slot.item.serial ? 'renewed' : 'issued';
    if (slot.declared.targets.length === 0) {
      slot.result = succeeded(
        slot.declared,
        slot.item,
        { record, previous: slot.found.previous },
        now,
        action,
        undefined,
        null,
        pending,
        store,
      );
      return;
    }
    try {
      const job = { targets: targetsOf(slot.declared), material: materialOf(record), hooks: hooksOf(slot.declared) };
      jobs.push({ slot, record, job });
    } catch (error) {
      slot.result = failedItem(slot.declared, slot.item, slot.found.previous, now, error, pending, store);
    }
  });
  const outcomes = await deployMany(
    jobs.map((j) => j.job),
    listings,
    after,
    checked,
  );
  jobs.forEach(({ slot, record, job }, i) => {
    const outcome = outcomes[i]!;
    if (outcome instanceof Error) {
      slot.result = failedItem(slot.declared, slot.item, slot.found.previous, now, outcome, pending, store);
      return;
    }
    const fingerprint = deployFingerprint(record.serial, job.targets);
    const action: ApplyItem['action'] = slot.item.serial ? 'renewed' : 'issued';
    slot.result = succeeded(
      slot.declared,
      slot.item,
      { record, previous: slot.found.previous },
      now,
      action,
      outcome,
      fingerprint,
      pending,
      store,
    );
  });
}

function localRequest(declared: DeclaredCertificate): IssueRequest {
  return {
    kind: declared.kind,
    name: declared.name,
    sans: declared.names.map((s) => s.value),
    keyType: declared.key,
    days: declared.days,
    allowGit: true,
  };
}

/**
 * Reconcile: issue what is missing, renew what is due, rewrite targets whose content differs and run the
 * hooks of what changed. One apply per home at a time (others wait); a failure of one certificate does not
 * stop the others. Idempotent: a second run changes nothing.
 */
export async function applyConfig(context: Context, config: Config, options: PlanOptions = {}): Promise<ApplyResult> {
  const items: ApplyItem[] = [];
  const { changed, failed, backingOff, crl } = await applyEach(context, config, options, (item) => items.push(item));
  const result: ApplyResult = { items, changed, failed, backingOff: backingOff ?? 0 };
  if (crl) result.crl = crl;
  return result;
}

/**
 * applyConfig one certificate at a time: each item goes to `visit` as soon as it is done and nothing of it
 * is kept here. The plan of a certificate is made when its turn comes, from the same instant for all (the
 * time the run started), so it is what planRenewals said; the service (thousands of certificates, checked
 * every hour) keeps only what it needs of each item instead of holding the whole plan and result at once.
 */
/**
 * RFC 9773 §4.3: an ACME certificate's renewal window is asked for again once the CA's Retry-After has passed,
 * so a window the CA moves (earlier, after a revocation or a key compromise) is acted on at the next check. A
 * failed request keeps the window on record; a CA without ARI (no window on record) is not asked.
 */
async function refreshedRenewalInfo(
  context: Context,
  record: CertificateRecord | undefined,
  now: Date,
): Promise<CertificateRecord | undefined> {
  if (
    !record ||
    record.status !== 'valid' ||
    !record.issuer.startsWith('acme:') ||
    !record.ariCertId ||
    !record.renewalInfo
  )
    return record;
  if (Date.parse(record.renewalInfo.nextCheck) > now.getTime()) return record;
  const { refreshRenewalInfo } = await import('../acme/renewal-info.js');
  try {
    await refreshRenewalInfo(context, record.serial);
  } catch {
    return record;
  }
  return context.store().findCertificate(record.name) ?? record;
}

export async function applyEach(
  context: Context,
  config: Config,
  options: PlanOptions,
  visit: (item: ApplyItem) => void,
): Promise<Omit<ApplyResult, 'items'>> {
  return withHomeLock(context, 'apply', async () => {
    const forced = forcedNames(config, options);
    const store = context.store();
    const now = context.now();
    let changed = false;
    let failed = 0;
    let backingOff = 0;
    // the CRL first: it is quick, and an expired one locks every client out (certificates are renewed well ahead)
    const crl = config.crl ? await applyCrl(context, config.crl) : undefined;
    if (crl?.action === 'published' || crl?.action === 'deployed') changed = true;
    if (crl?.action === 'failed') failed++;
    // under the apply lock, leftovers in target folders can only predate this run: list each folder once
    const listings: LeftoverListings = new Map();
    // replaced files and versions, removed at the end of the run (removeAll: never rejects)
    const removeAtEnd: string[] = [];
    // started by the first chunk that issues local certificates, closed at the end of the run
    const syncer: { shell?: FileSystemSyncer | null } = {};
    const certificates = config.certificates;
    try {
      for (let start = 0; start < certificates.length; start += CHUNK) {
        const slots: Slot[] = [];
        const pending: Pending = [];
        try {
          const chunk = certificates.slice(start, start + CHUNK);
          // without the PEM: what a run needs of a certificate on record is its dates, names and file paths, except
          // on a shared inventory, where a sealed key is checked against the certificate on record (shared.ts)
          const current = store.currentByNames(
            chunk.map((declared) => declared.name),
            { withoutPem: !sharesInventory(context) },
          );
          for (const [i, declared] of chunk.entries()) {
            throwIfInterrupted(options.signal, `apply, before ${declared.name}`);
            const onRecord = current[i]!.record;
            const found = {
              record: await refreshedRenewalInfo(context, onRecord, now),
              previous: current[i]!.state,
            };
            const item = decide(declared, found.record, found.previous, now, forced.has(declared.name));
            // the plan is what the record said before its renewal window was asked for again
            options.onPlan?.(
              found.record === onRecord
                ? item
                : decide(declared, onRecord, found.previous, now, forced.has(declared.name)),
            );
            slots.push({ declared, item, found });
          }
          const local = slots.filter((slot) => slot.item.due && slot.declared.issuer.type === 'local');
          // hosts sharing a PostgreSQL inventory take each certificate's lock (shared.ts): one at a time there
          if (local.length > 1 && !sharesInventory(context))
            await applyLocalBatch(context, local, listings, pending, removeAtEnd, syncer, options.signal);
          for (const slot of slots) {
            if (slot.result) continue;
            throwIfInterrupted(options.signal, `apply, before ${slot.declared.name}`);
            slot.result = await applyOne(
              context,
              slot.declared,
              slot.item,
              listings,
              slot.found,
              pending,
              options.signal,
            );
          }
        } finally {
          // what was done is recorded and reported, also when an interrupt stops the chunk
          if (pending.length > 0) store.transaction(() => pending.forEach((write) => write()));
          for (const { result: item } of slots) {
            if (!item) continue;
            if (item.action === 'issued' || item.action === 'renewed' || item.deployed.length > 0) changed = true;
            if (item.action === 'failed') failed++;
            else if (item.code === 'backoff') backingOff++;
            visit(item);
          }
        }
      }
    } finally {
      // under the lock: the next run finds every replaced file gone
      await removeAll(removeAtEnd);
      syncer.shell?.close();
    }
    return crl ? { changed, failed, backingOff, crl } : { changed, failed, backingOff };
  });
}
