import { EXIT_CODES, applyConfig, loadConfig, planCrl, planRenewals } from '../../index.js';
import type { ApplyResult, CrlOutcome, CrlPlan, PlanItem } from '../../index.js';
import { join } from 'node:path';
import type { Command } from 'commander';
import { action, collect } from '../command.js';
import { color, emit, table } from '../output.js';

function when(iso: string | null): string {
  return iso ? iso.slice(0, 16).replace('T', ' ') : '-';
}

function renderPlan(plan: PlanItem[]): string {
  if (plan.length === 0) return 'no certificates declared';
  return table(
    ['NAME', 'DUE', 'WHY', 'NEXT CHECK', 'FAILURES'],
    plan.map((p) => [p.name, p.due ? color.yellow('due') : p.code === 'backoff' ? color.yellow('backing off') : color.green('no'), p.reason, p.due ? 'now' : when(p.nextCheck), p.failures ? color.red(String(p.failures)) : '0']),
  );
}

/** The CRL line of `renew` (and `--dry-run`): due or not, and why. */
function renderCrlPlan(crl: CrlPlan): string {
  const state = crl.due ? color.yellow(crl.publish ? 'due' : 'copy/reload due') : color.green('current');
  return `CRL: ${state}: ${crl.reason}${crl.due ? '' : ` (next check ${when(crl.nextCheck)})`}`;
}

/** What an apply did with the CRL; empty when nothing. */
function renderCrl(crl: CrlOutcome | undefined): string[] {
  if (!crl || crl.action === 'unchanged') return [];
  const warnings = crl.warnings.map((w) => `${color.yellow('warning:')} ${w}`);
  if (crl.action === 'skipped') return [`CRL: skipped: ${crl.reason}`, ...warnings];
  if (crl.action === 'failed') {
    return [`CRL: ${color.red('failed')}: ${crl.error?.message ?? crl.reason}${crl.error?.hint ? ` (hint: ${crl.error.hint})` : ''}`, ...warnings];
  }
  const copies = crl.deployed.length ? `, ${crl.deployed.length} copy(ies) written` : '';
  const hooks = crl.hooksRun ? `, ${crl.hooksRun} hook(s) run` : '';
  return [`CRL: ${color.green(crl.action)} #${crl.number ?? '?'} (${crl.reason}), next update ${when(crl.nextUpdate)}${copies}${hooks}`, ...warnings];
}

function renderApply(result: ApplyResult): string {
  const backingOff = result.backingOff ?? 0;
  if (!result.changed && result.failed === 0 && backingOff === 0) {
    const crl = result.crl?.number ? ` and CRL #${result.crl.number} (next update ${when(result.crl.nextUpdate)})` : '';
    return `${color.green('nothing to do:')} all ${result.items.length} certificates${crl} are current and deployed`;
  }
  // a certificate backing off is due (revoked, expiring, changed) and was not renewed: never "unchanged" or current
  const shown = result.changed || result.failed ? result.items : result.items.filter((i) => i.code === 'backoff');
  const rows = shown.map((i) => [
    i.name,
    i.action === 'failed' ? color.red('failed') : i.code === 'backoff' ? color.yellow('backing off') : i.action === 'unchanged' ? 'unchanged' : color.green(i.action),
    i.deployed.length ? `${i.deployed.length} file(s)` : '-',
    String(i.hooksRun),
    i.error ? `${i.error.message}${i.error.hint ? ` (hint: ${i.error.hint})` : ''}` : i.code === 'backoff' ? i.reason : i.action === 'unchanged' ? `next check ${when(i.nextCheck)}` : i.reason,
  ]);
  // `failed` counts the CRL too (one more when its publication or reload hooks failed)
  const total = result.items.length + (result.crl ? 1 : 0);
  const waiting = backingOff ? `${backingOff} of ${result.items.length} not renewed yet (backing off after a failure, see above)` : '';
  const summary = result.failed
    ? color.red(`${result.failed} of ${total} failed${waiting ? `, ${waiting}` : ''}; the others were done`)
    : waiting
      ? color.yellow(`${waiting}; the others are current`)
      : color.green('done');
  const lines = rows.length ? [table(['NAME', 'ACTION', 'DEPLOYED', 'HOOKS', 'DETAIL'], rows)] : [];
  return [...lines, ...renderCrl(result.crl), summary].join('\n');
}

const CONFIG_HELP = 'the declaration file (default ./mcpki.yaml)';

/**
 * Runs `work` with SIGINT/SIGTERM turned into an abort: an ACME order in flight cleans up (dns-01 cleanup
 * hooks, deactivated authorizations) and the command exits 130/143 instead of dying with a TXT record left.
 */
async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!interrupt.signal.aborted) interrupt.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await work(interrupt.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function registerRenew(program: Command): void {
  program
    .command('apply')
    .description('reconcile mcpki.yaml: issue what is missing, renew what is due, rewrite changed targets, run their hooks')
    .option('-c, --config <file>', CONFIG_HELP, 'mcpki.yaml')
    .addHelpText('after', `\nIdempotent: a second run changes nothing and says so. Exit 0 when all succeeded, ${EXIT_CODES.SOME_FAILED} when some failed or are backing off after a failure.`)
    .action(
      action(async ({ context, out }, flags: { config: string }) => {
        const config = loadConfig(flags.config, { cacheDir: join(context.home, 'cache') });
        const result = await interruptible((signal) => applyConfig(context, config, { signal }));
        emit(out, result, () => renderApply(result));
        return result.failed || result.backingOff ? EXIT_CODES.SOME_FAILED : undefined;
      }),
    );

  program
    .command('renew')
    .description('show the renewal plan (each certificate: due or not, why, next check), then renew what is due')
    .option('-c, --config <file>', CONFIG_HELP, 'mcpki.yaml')
    .option('--dry-run', 'show the plan only')
    .option('--force <name>', 'renew this certificate whatever the policy says; repeatable', collect)
    .action(
      action(async ({ context, out }, flags: { config: string; dryRun?: boolean; force?: string[] }) => {
        const config = loadConfig(flags.config, { cacheDir: join(context.home, 'cache') });
        const plan = planRenewals(context, config, { force: flags.force });
        const crl = planCrl(context, config);
        const planText = () => renderPlan(plan) + (crl ? `\n${renderCrlPlan(crl)}` : '');
        if (flags.dryRun) {
          emit(out, crl ? { plan, crl } : { plan }, planText);
          return;
        }
        if (!out.json) process.stdout.write(planText() + '\n\n');
        const result = await interruptible((signal) => applyConfig(context, config, { force: flags.force, signal }));
        emit(out, { plan, ...result }, () => renderApply(result));
        return result.failed || result.backingOff ? EXIT_CODES.SOME_FAILED : undefined;
      }),
    );
}
