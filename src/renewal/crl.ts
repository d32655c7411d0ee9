// The `crl:` section of mcpki.yaml: apply/renew/serve keep the local CA's CRL published. Servers that check
// client certificates against it (nginx ssl_crl, HAProxy crl-file, Node's crl option) refuse every client once
// it passes its nextUpdate, and a revocation counts only once a CRL lists it. Each check reads the published
// file (HOME/ca/crl.pem) and compares it with the inventory and the CA, so a CRL made by hand with
// `mcpki crl` is taken into account: a few small files and one query per issuing CA, whatever the number of
// certificates.
import { existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config, DeclaredCrl, DeclaredCrlTarget, RenewBefore } from '../config/types.js';
import type { Context } from '../context.js';
import { errnoCode, fsyncDir, tryUnlink, writeFailed, writeTemp } from '../fs/files.js';
import { describeHookResult, hookFailed, runHook, type HookResult } from '../deploy/hooks.js';
import { checkOwnership, hasModeAndOwner, resolveId } from '../deploy/owners.js';
import { McpkiError } from '../errors.js';
import {
  CRL_FILE_LIMIT,
  crlKeyIdOf,
  adoptNewestCrl,
  generateCrl,
  newerStoredCrlNumber,
  readCaText,
  type AdoptedCrl,
  listCrlIssuers,
  normalizeSerial,
  readCrlFile,
  type PublishedCrl,
} from '../pki/crl.js';
import { fromPem } from '../pki/der.js';
import type { Store } from '../store/store.js';

/** Set while the reload hooks of a published CRL have not all succeeded: the next check runs them again. */
const RELOAD_PENDING = 'crl_reload_pending';

export type CrlCode =
  | 'no-ca'
  | 'missing'
  | 'unreadable'
  | 'issuers'
  | 'revoked'
  | 'expired'
  | 'refresh'
  | 'root'
  | 'target'
  | 'reload-pending'
  | 'newer'
  | 'not-yet';

/** The published CRL (HOME/ca/crl.pem): as it is now in a plan, as the run left it in an outcome. */
interface CrlState {
  code: CrlCode;
  /** one line, for humans */
  reason: string;
  /** null when there is none */
  number: string | null;
  thisUpdate: string | null;
  nextUpdate: string | null;
  /** when it is due for republishing (nextUpdate minus refreshBefore) */
  refreshAt: string | null;
  /** when to look again: now when due, else refreshAt */
  nextCheck: string | null;
}

export interface CrlPlan extends CrlState {
  /** something to do: publish, rewrite a copy, or run the reload hooks again */
  due: boolean;
  /** a new CRL is signed (otherwise the published one is copied and the hooks run) */
  publish: boolean;
  /** copies (declared targets) that will be written */
  targets: string[];
}

export interface CrlOutcome extends CrlState {
  action: 'published' | 'deployed' | 'unchanged' | 'failed' | 'skipped';
  /** copies written by this run */
  deployed: string[];
  hooksRun: number;
  /** from generateCrl, e.g. a root CRL that could not be signed */
  warnings: string[];
  /**
   * the newest CRL another home of a shared inventory published, made this home's (no number signed here):
   * its number and the one this home's file held before; null otherwise
   */
  copied: { number: string; previous: string } | null;
  error?: { code: string; message: string; hint: string | null };
}

interface Published {
  number: string | null;
  thisUpdate: Date;
  nextUpdate: Date | null;
  refreshAt: Date | null;
}

function refreshTime(thisUpdate: Date, nextUpdate: Date | null, refreshBefore: RenewBefore): Date | null {
  if (!nextUpdate) return null;
  const lifetime = nextUpdate.getTime() - thisUpdate.getTime();
  const margin = refreshBefore.type === 'duration' ? refreshBefore.ms : refreshBefore.fraction * lifetime;
  return new Date(nextUpdate.getTime() - Math.max(0, margin));
}

function refreshText(refreshBefore: RenewBefore): string {
  if (refreshBefore.type === 'fraction') return `${Number((refreshBefore.fraction * 100).toFixed(2))}% of its validity`;
  const hours = refreshBefore.ms / 3_600_000;
  return hours >= 24 && Number.isInteger(hours / 24) ? `${hours / 24} day(s)` : `${Number(hours.toFixed(2))} hour(s)`;
}

function wholeSeconds(text: string): Date {
  return new Date(Math.floor(Date.parse(text) / 1000) * 1000);
}

function iso(date: Date | null | undefined): string | null {
  return date ? date.toISOString() : null;
}

function hasLocalCa(context: Context): boolean {
  return (
    existsSync(context.layout.intermediateCert) &&
    existsSync(context.layout.intermediateKey) &&
    existsSync(context.layout.rootCert)
  );
}

/** A copy differs when its bytes or mode do (or its owner/group, when declared). */
function targetDiffers(target: DeclaredCrlTarget, pem: Buffer, ids: Map<string, number>): boolean {
  let stat;
  try {
    stat = statSync(target.path);
    if (!stat.isFile() || stat.size !== pem.length) return true; // never read a FIFO or a device
    if (!readFileSync(target.path).equals(pem)) return true;
  } catch {
    return true;
  }
  try {
    const uid = resolveId(target.owner, 'passwd', target.path, ids);
    const gid = resolveId(target.group, 'group', target.path, ids);
    return !hasModeAndOwner(stat, target.mode, uid, gid);
  } catch {
    return true; // an unknown owner: writing the copy reports it
  }
}

type Verdict = Pick<CrlPlan, 'publish' | 'code' | 'reason'>;

/** Whether the published CRLs still say what the CA and the inventory say, and are fresh enough. */
function judge(
  context: Context,
  declared: DeclaredCrl,
  crls: PublishedCrl[],
  store: Store | undefined,
  now: Date,
): { verdict: Verdict | undefined; published: Published } {
  const { layout } = context;
  const rootKeyId = crlKeyIdOf(fromPem(readCaText(layout.rootCert, 'the root certificate'), 'CERTIFICATE')[0]!);
  const issuers = listCrlIssuers(layout.retiredDir, layout.intermediateCert, now);
  const caCrls = crls.filter((crl) => crl.keyId !== rootKeyId);
  // the intermediates' CRLs decide the times: the one that ends first
  const first = caCrls.reduce<PublishedCrl | undefined>(
    (soonest, crl) =>
      !soonest || (crl.nextUpdate?.getTime() ?? 0) < (soonest.nextUpdate?.getTime() ?? 0) ? crl : soonest,
    undefined,
  );
  const published = {
    number: first?.number ?? null,
    thisUpdate: first?.thisUpdate ?? now,
    nextUpdate: first?.nextUpdate ?? null,
    refreshAt: first ? refreshTime(first.thisUpdate, first.nextUpdate, declared.refreshBefore) : null,
  };
  const label = `CRL${published.number ? ` #${published.number}` : ''}`;
  if (issuers.length === 0) {
    return {
      verdict: {
        publish: false,
        code: 'no-ca',
        reason:
          "the CA's issuing intermediate has expired: there is no CA to sign a CRL (mcpki ca rotate-intermediate)",
      },
      published,
    };
  }

  const wantedIssuers = issuers
    .map((i) => i.keyId)
    .sort()
    .join(',');
  const haveIssuers = [...new Set(caCrls.map((crl) => crl.keyId ?? '?'))].sort().join(',');
  if (!first || wantedIssuers !== haveIssuers) {
    return {
      verdict: {
        publish: true,
        code: 'issuers',
        reason: `the published ${label} is not signed by the CA's current issuing intermediate(s) (rotated?)`,
      },
      published,
    };
  }

  const wanted = new Map<string, string>();
  for (const issuer of issuers)
    for (const row of store?.listRevokedBy(issuer.serial) ?? []) wanted.set(normalizeSerial(row.serial), row.name);
  const listed = new Set(caCrls.flatMap((crl) => crl.revoked));
  const added = [...wanted.keys()].filter((serial) => !listed.has(serial));
  const extra = [...listed].filter((serial) => !wanted.has(serial));
  if (added.length > 0) {
    const names =
      added
        .slice(0, 3)
        .map((serial) => wanted.get(serial))
        .join(', ') + (added.length > 3 ? `, … (${added.length} in all)` : '');
    return {
      verdict: { publish: true, code: 'revoked', reason: `revoked since ${label} was published: ${names}` },
      published,
    };
  }
  if (extra.length > 0) {
    return {
      verdict: {
        publish: true,
        code: 'revoked',
        reason: `${label} lists ${extra.length} certificate(s) the inventory does not have as revoked`,
      },
      published,
    };
  }

  if (!published.nextUpdate)
    return { verdict: { publish: true, code: 'refresh', reason: `${label} has no nextUpdate` }, published };
  if (now >= published.nextUpdate) {
    return {
      verdict: {
        publish: true,
        code: 'expired',
        reason: `${label} expired at ${published.nextUpdate.toISOString()}: servers that check it refuse every client`,
      },
      published,
    };
  }
  if (published.refreshAt && now >= published.refreshAt) {
    return {
      verdict: {
        publish: true,
        code: 'refresh',
        reason: `${label} has less than ${refreshText(declared.refreshBefore)} left (next update ${published.nextUpdate.toISOString()})`,
      },
      published,
    };
  }
  if (existsSync(layout.rootCrl) && crls.length === caCrls.length) {
    return {
      verdict: {
        publish: true,
        code: 'root',
        reason: `${label} is published without the root's CRL, which full-chain checks need`,
      },
      published,
    };
  }
  return { verdict: undefined, published };
}

function inspect(context: Context, declared: DeclaredCrl, store: Store | undefined, now: Date): CrlPlan {
  const nowIso = now.toISOString();
  const all = declared.targets.map((t) => t.path);
  const plan = (
    fields: Omit<CrlPlan, 'due' | 'nextCheck' | 'targets' | 'number' | 'thisUpdate' | 'nextUpdate' | 'refreshAt'>,
    published?: Published,
    targets = all,
  ): CrlPlan => {
    const due = fields.code !== 'no-ca' && fields.code !== 'not-yet';
    return {
      due,
      publish: fields.publish,
      code: fields.code,
      reason: fields.reason,
      number: published?.number ?? null,
      thisUpdate: published ? iso(published.thisUpdate) : null,
      nextUpdate: iso(published?.nextUpdate),
      refreshAt: iso(published?.refreshAt),
      nextCheck: due ? nowIso : iso(published?.refreshAt),
      targets: due ? targets : [],
    };
  };
  if (!hasLocalCa(context))
    return plan({
      publish: false,
      code: 'no-ca',
      reason: 'this home has no local CA (mcpki init): there is no CRL to publish',
    });
  let pem: Buffer;
  try {
    pem = Buffer.from(readCaText(context.layout.crl, 'the published CRL', CRL_FILE_LIMIT));
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    const reason =
      errnoCode(cause ?? error) === 'ENOENT' ? `${context.layout.crl} does not exist yet` : (error as Error).message;
    return plan({ publish: true, code: 'missing', reason });
  }
  let crls: PublishedCrl[];
  try {
    crls = readCrlFile(pem.toString('utf8'));
    if (crls.length === 0) throw new Error('no CRL in it');
  } catch (error) {
    return plan({
      publish: true,
      code: 'unreadable',
      reason: `${context.layout.crl} is damaged (${(error as Error).message})`,
    });
  }
  let judged: ReturnType<typeof judge>;
  try {
    judged = judge(context, declared, crls, store, now);
  } catch (error) {
    // e.g. an unreadable CA certificate: publishing reports the real problem
    return plan({
      publish: true,
      code: 'unreadable',
      reason: `cannot compare ${context.layout.crl} with the CA (${(error as Error).message})`,
    });
  }
  const { verdict, published } = judged;
  if (verdict) return plan(verdict, published);
  const ids = new Map<string, number>();
  const differing = declared.targets.filter((target) => targetDiffers(target, pem, ids)).map((t) => t.path);
  if (differing.length > 0) {
    return plan(
      {
        publish: false,
        code: 'target',
        reason: `${differing.length === 1 ? 'a copy differs' : `${differing.length} copies differ`} from ${context.layout.crl}: ${differing.join(', ')}`,
      },
      published,
      differing,
    );
  }
  if (store?.getSetting(RELOAD_PENDING) === '1') {
    return plan(
      {
        publish: false,
        code: 'reload-pending',
        reason: 'the reload hooks of the last publication failed: running them again',
      },
      published,
      [],
    );
  }
  const until = published.refreshAt ? ` until ${published.refreshAt.toISOString()}` : '';
  return plan(
    {
      publish: false,
      code: 'not-yet',
      reason: `CRL${published.number ? ` #${published.number}` : ''} is current${until}`,
    },
    published,
  );
}

/** Whether the declared CRL is due and why; null without a `crl:` section. Reads only. */
export function planCrl(context: Context, config: Config): CrlPlan | null {
  if (!config.crl) return null;
  const store = context.existingStore();
  const plan = inspect(context, config.crl, store, context.now());
  let newer: ReturnType<typeof newerStoredCrlNumber>;
  try {
    newer = store && hasLocalCa(context) ? newerStoredCrlNumber(context, store) : undefined;
  } catch {
    newer = undefined; // the check itself reports what is wrong
  }
  if (newer && plan.code !== 'no-ca') {
    plan.due = true;
    plan.code = 'newer';
    plan.reason = `CRL #${newer.newest}, stored by another home of the inventory, is newer than this home's #${newer.own}: it is copied (after its signatures are checked)${plan.publish ? `, then ${plan.reason}` : ''}`;
    plan.nextCheck = context.now().toISOString();
    if (!plan.publish) plan.targets = config.crl.targets.map((t) => t.path);
  }
  return plan;
}

/** Writes one copy: a temp file with the final mode and owner, fsynced, renamed over the path. */
function writeCopy(target: DeclaredCrlTarget, data: Buffer, ids: Map<string, number>): void {
  const uid = resolveId(target.owner, 'passwd', target.path, ids);
  const gid = resolveId(target.group, 'group', target.path, ids);
  checkOwnership(target.path, uid, gid);
  const dir = dirname(target.path);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 }); // a CRL is public; servers' workers may need to reach it
  } catch (error) {
    throw writeFailed(dir, error, 'create the folder');
  }
  let temp: string | undefined;
  try {
    temp = writeTemp({ path: target.path, data, mode: target.mode, uid, gid });
    renameSync(temp, target.path);
    fsyncDir(dir);
  } catch (error) {
    if (temp) tryUnlink(temp);
    throw writeFailed(target.path, error);
  }
}

function errorBody(error: unknown): { code: string; message: string; hint: string | null } {
  if (error instanceof McpkiError)
    return { code: error.code, message: error.message, hint: error.hintFor('config') ?? null };
  return { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error), hint: null };
}

/**
 * One check of the declared CRL: publish it when due (generateCrl with the declared days), write the copies
 * that differ, then run the reload hooks if anything changed. A failing hook does not take the new CRL
 * back (the previous one is older, maybe expired, and lacks the latest revocations): the failure is reported
 * and the hooks run again at the next check.
 */
export async function applyCrl(context: Context, declared: DeclaredCrl): Promise<CrlOutcome> {
  const store = context.store();
  const now = context.now();
  // a shared inventory: the newest CRL another home published replaces an older HOME/ca/crl.pem first, so a
  // revocation made there is served here without a number of this home's own
  let adopted: AdoptedCrl | undefined;
  let refused: unknown;
  if (hasLocalCa(context)) {
    try {
      adopted = adoptNewestCrl(context);
    } catch (error) {
      refused = error;
    }
  }
  const plan = inspect(context, declared, store, now);
  if (adopted) {
    plan.due = true;
    plan.code = 'newer';
    plan.reason = `CRL #${adopted.number}, the newest another home of the inventory published, replaces #${adopted.previous}${plan.publish ? ` (then: ${plan.reason})` : ''}`;
    if (!plan.publish) plan.targets = declared.targets.map((t) => t.path);
  }
  const outcome: CrlOutcome = {
    action: plan.code === 'no-ca' ? 'skipped' : 'unchanged',
    code: plan.code,
    reason: plan.reason,
    number: plan.number,
    thisUpdate: plan.thisUpdate,
    nextUpdate: plan.nextUpdate,
    refreshAt: plan.refreshAt,
    nextCheck: plan.nextCheck,
    deployed: [],
    hooksRun: 0,
    warnings: [],
    copied: adopted ? { number: adopted.number, previous: adopted.previous } : null,
  };
  if (!plan.due && !refused) return outcome;
  const hooks: HookResult[] = [];
  try {
    if (refused) throw refused; // a stored CRL that fails its checks: nothing is published over the good file
    let pem: Buffer;
    if (plan.publish) {
      const result = generateCrl(context, { days: declared.days });
      pem = Buffer.from(result.pem);
      outcome.action = 'published';
      // as the file says them (whole seconds), so this run and the next agree
      const thisUpdate = wholeSeconds(result.thisUpdate);
      const nextUpdate = wholeSeconds(result.nextUpdate);
      outcome.number = result.number;
      outcome.thisUpdate = iso(thisUpdate);
      outcome.nextUpdate = iso(nextUpdate);
      outcome.refreshAt = iso(refreshTime(thisUpdate, nextUpdate, declared.refreshBefore));
      outcome.warnings = result.warnings;
    } else {
      pem = Buffer.from(readCaText(context.layout.crl, 'the published CRL', CRL_FILE_LIMIT));
    }
    const ids = new Map<string, number>();
    for (const target of declared.targets) {
      if (!targetDiffers(target, pem, ids)) continue;
      writeCopy(target, pem, ids);
      outcome.deployed.push(target.path);
    }
    if (outcome.action !== 'published' && (outcome.deployed.length > 0 || adopted)) outcome.action = 'deployed';
    if (declared.hooks.reload.length > 0 && (outcome.action !== 'unchanged' || plan.code === 'reload-pending')) {
      store.setSetting(RELOAD_PENDING, '1');
      const env = {
        MCPKI_CRL_PATH: context.layout.crl,
        MCPKI_CRL_TARGETS: JSON.stringify(declared.targets.map((t) => t.path)),
        MCPKI_CRL_NUMBER: outcome.number ?? '',
        MCPKI_CRL_NEXT_UPDATE: outcome.nextUpdate ?? '',
      };
      for (const argv of declared.hooks.reload) {
        const result = await runHook(argv, env, declared.hooks.timeoutMs);
        hooks.push(result);
        outcome.hooksRun++;
        if (hookFailed(result)) {
          throw new McpkiError(
            'DEPLOY_HOOK_FAILED',
            `CRL reload hook ${JSON.stringify(argv.join(' '))} failed: ${describeHookResult(result)}`,
            'the new CRL is in place; fix the hook or the service, the next apply runs the hooks again',
          );
        }
      }
    }
    store.setSetting(RELOAD_PENDING, '0');
    if (outcome.action === 'unchanged') outcome.action = 'deployed'; // only the hooks ran again
    outcome.code = plan.code;
    outcome.nextCheck = outcome.refreshAt;
    store.addEvent({
      type: `crl.${outcome.action}`,
      detail: {
        reason: plan.reason,
        number: outcome.number,
        nextUpdate: outcome.nextUpdate,
        deployed: outcome.deployed,
        hooks: hooks.map((h) => ({ argv: h.argv, exitCode: h.exitCode })),
      },
    });
    return outcome;
  } catch (error) {
    const body = errorBody(error);
    outcome.action = 'failed';
    outcome.error = body;
    outcome.nextCheck = null; // the next scheduled check tries again
    store.addEvent({
      type: 'crl.failed',
      detail: {
        ...body,
        reason: plan.reason,
        number: outcome.number,
        deployed: outcome.deployed,
        hooks: hooks.map((h) => ({ argv: h.argv, exitCode: h.exitCode })),
      },
    });
    return outcome;
  }
}
