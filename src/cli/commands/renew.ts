import { EXIT_CODES, McpkiError, applyConfig, loadConfig, planCrl, planRenewals, renewIssued } from '../../index.js';
import type { ApplyResult, Config, Context, CrlOutcome, CrlPlan, PlanItem, RenewIssuedResult } from '../../index.js';
import type { GlobalOptions } from '../command.js';
import { readSecretFile } from '../passphrase.js';
import { join } from 'node:path';
import type { Command } from 'commander';
import { action, collect } from '../command.js';
import { color, emit, formatDate, table, withProgress } from '../output.js';
import { writeStdout } from '../stdout.js';

function when(iso: string | null): string {
  return formatDate(iso);
}

function renderPlan(plan: PlanItem[]): string {
  if (plan.length === 0) return 'no certificates declared';
  return table(
    ['NAME', 'DUE', 'WHY', 'NEXT CHECK', 'FAILURES'],
    plan.map((p) => [
      p.name,
      p.due ? color.yellow('due') : p.code === 'backoff' ? color.yellow('backing off') : color.green('no'),
      p.reason,
      p.due ? 'now' : when(p.nextCheck),
      p.failures ? color.red(String(p.failures)) : '0',
    ]),
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
    return [
      `CRL: ${color.red('failed')}: ${crl.error?.message ?? crl.reason}${crl.error?.hint ? ` (hint: ${crl.error.hint})` : ''}`,
      ...warnings,
    ];
  }
  const copies = crl.deployed.length ? `, ${crl.deployed.length} copy(ies) written` : '';
  const hooks = crl.hooksRun ? `, ${crl.hooksRun} hook(s) run` : '';
  return [
    `CRL: ${color.green(crl.action)} #${crl.number ?? '?'} (${crl.reason}), next update ${when(crl.nextUpdate)}${copies}${hooks}`,
    ...warnings,
  ];
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
    i.action === 'failed'
      ? color.red('failed')
      : i.code === 'backoff'
        ? color.yellow('backing off')
        : i.action === 'unchanged'
          ? 'unchanged'
          : color.green(i.action),
    i.deployed.length ? `${i.deployed.length} file(s)` : '-',
    String(i.hooksRun),
    i.error
      ? `${i.error.message}${i.error.hint ? ` (hint: ${i.error.hint})` : ''}`
      : i.code === 'backoff'
        ? i.reason
        : i.action === 'unchanged'
          ? `next check ${when(i.nextCheck)}`
          : i.reason,
  ]);
  // `failed` counts the CRL too (one more when its publication or reload hooks failed)
  const total = result.items.length + (result.crl ? 1 : 0);
  const waiting = backingOff
    ? `${backingOff} of ${result.items.length} not renewed yet (backing off after a failure, see above)`
    : '';
  const summary = result.failed
    ? color.red(`${result.failed} of ${total} failed${waiting ? `, ${waiting}` : ''}; the others were done`)
    : waiting
      ? color.yellow(`${waiting}; the others are current`)
      : color.green('done');
  const lines = rows.length ? [table(['NAME', 'ACTION', 'DEPLOYED', 'HOOKS', 'DETAIL'], rows)] : [];
  return [...lines, ...renderCrl(result.crl), summary].join('\n');
}

/** `renew NAME` / `renew --all-issued`: one row per certificate made by `issue`. */
function renderIssued(result: RenewIssuedResult, dryRun: boolean): string {
  if (result.items.length === 0) return 'no certificates made by "mcpki issue" in this home';
  const rows = result.items.map((i) => [
    i.name,
    i.action === 'renewed'
      ? color.green('renewed')
      : i.action === 'failed'
        ? color.red('failed')
        : i.action === 'due'
          ? color.yellow('due')
          : i.action === 'not-due'
            ? 'not due'
            : 'skipped',
    i.action === 'renewed' ? i.notAfter.slice(0, 10) : '-',
    i.error ? `${i.error.message}${i.error.hint ? ` (hint: ${i.error.hint})` : ''}` : i.reason,
  ]);
  const summary = dryRun
    ? `${result.items.filter((i) => i.action === 'due').length} due (dry run: nothing renewed)`
    : result.failed
      ? color.red(`${result.failed} failed; ${result.renewed} renewed`)
      : color.green(`${result.renewed} renewed`);
  const paths = result.items.flatMap((i) =>
    i.renewed ? [`  ${i.name}: ${i.renewed.paths.cert}, ${i.renewed.paths.key}`] : [],
  );
  return [table(['NAME', 'ACTION', 'VALID UNTIL', 'DETAIL'], rows), ...paths, summary].join('\n');
}

/**
 * `validate` and `apply --dry-run`: the declaration checked (every error listed, exit 3) and the plan shown.
 * Nothing is written: not even the parsed-declaration cache in HOME/cache.
 */
function showValidation(context: Context, out: GlobalOptions, file: string): void {
  const config: Config = loadConfig(file, { context });
  const plan = planRenewals(context, config);
  const crl = planCrl(context, config);
  const targets = config.certificates.reduce((n, c) => n + c.targets.length, 0);
  const result = {
    valid: true,
    file: config.file,
    certificates: config.certificates.length,
    targets,
    plan,
    ...(crl ? { crl } : {}),
  };
  emit(out, result, () =>
    [
      `${color.green('valid:')} ${config.file} declares ${config.certificates.length} certificate(s) with ${targets} target(s)${config.crl ? ' and a CRL' : ''}`,
      '',
      renderPlan(plan) + (crl ? `\n${renderCrlPlan(crl)}` : ''),
      '',
      'nothing was changed; "mcpki apply" does what is due',
    ].join('\n'),
  );
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
    .description(
      'reconcile mcpki.yaml: issue what is missing, renew what is due, rewrite changed targets, run their hooks',
    )
    .option('-c, --config <file>', CONFIG_HELP, 'mcpki.yaml')
    .option('--dry-run', 'validate mcpki.yaml and show the plan, change nothing (as "mcpki validate")')
    .addHelpText(
      'after',
      `\nIdempotent: a second run changes nothing and says so. Exit 0 when all succeeded, ${EXIT_CODES.SOME_FAILED} when some failed or are backing off after a failure.`,
    )
    .action(
      action(async ({ context, out }, flags: { config: string; dryRun?: boolean }) => {
        if (flags.dryRun) {
          showValidation(context, out, flags.config);
          return;
        }
        const config = loadConfig(flags.config, { cacheDir: join(context.home, 'cache'), context });
        const result = await withProgress(
          out,
          `applying ${config.certificates.length} certificates`,
          () => interruptible((signal) => applyConfig(context, config, { signal })),
          { immediate: true },
        );
        emit(out, result, () => renderApply(result));
        return result.failed || result.backingOff ? EXIT_CODES.SOME_FAILED : undefined;
      }),
    );

  program
    .command('validate')
    .description('check mcpki.yaml (every error listed, exit 3 when invalid) and show the plan; changes nothing')
    .option('-c, --config <file>', CONFIG_HELP, 'mcpki.yaml')
    .action(action(async ({ context, out }, flags: { config: string }) => showValidation(context, out, flags.config)));

  program
    .command('renew [name]')
    .description(
      'show the renewal plan of mcpki.yaml (each certificate: due or not, why, next check), then renew what is due; or renew a certificate made by "issue"',
    )
    .option('-c, --config <file>', CONFIG_HELP, 'mcpki.yaml')
    .option('--dry-run', 'show the plan only')
    .option('--force <name>', 'renew this certificate whatever the policy says; repeatable', collect)
    .option('--all-issued', 'renew every certificate made by "mcpki issue" that is due (no mcpki.yaml needed)')
    .option(
      '--p12-password-file <file>',
      'with NAME or --all-issued: the password of recorded PKCS#12 files (or MCPKI_P12_PASSWORD)',
    )
    .addHelpText(
      'after',
      `
Without NAME: the certificates declared in mcpki.yaml. With NAME: the certificate "mcpki issue" made, now, with the
same names, kind, key type, lifetime and files (a new key). --all-issued: each of those the renewal policy says is due.
Examples:
  mcpki renew --dry-run
  mcpki renew my-mcp
  mcpki renew --all-issued`,
    )
    .action(
      action(
        async (
          { context, out },
          name: string | undefined,
          flags: { config: string; dryRun?: boolean; force?: string[]; allIssued?: boolean; p12PasswordFile?: string },
        ) => {
          if (name !== undefined || flags.allIssued) {
            if (name !== undefined && flags.allIssued)
              throw new McpkiError(
                'USAGE',
                `give NAME (${name}) or --all-issued, not both`,
                'e.g. mcpki renew my-mcp, or mcpki renew --all-issued',
              );
            if (flags.force?.length)
              throw new McpkiError(
                'USAGE',
                '--force NAME is for certificates declared in mcpki.yaml',
                name !== undefined ? `mcpki renew ${name} renews it whatever the policy says` : 'leave out --force',
              );
            const p12Password = flags.p12PasswordFile
              ? readSecretFile(flags.p12PasswordFile, 'PKCS#12 password')
              : process.env.MCPKI_P12_PASSWORD || undefined;
            const result = renewIssued(context, { name, all: flags.allIssued, dryRun: flags.dryRun, p12Password });
            emit(out, result, () => renderIssued(result, flags.dryRun === true));
            return result.failed ? EXIT_CODES.SOME_FAILED : undefined;
          }
          const config = loadConfig(flags.config, { cacheDir: join(context.home, 'cache'), context });
          // with --json the plan is printed with the result: the run reports it as it reads each certificate,
          // instead of a first read of every one here
          const planWhileApplying = out.json && !flags.dryRun;
          const plan: PlanItem[] = planWhileApplying ? [] : planRenewals(context, config, { force: flags.force });
          const crl = planCrl(context, config);
          const planText = () => renderPlan(plan) + (crl ? `\n${renderCrlPlan(crl)}` : '');
          if (flags.dryRun) {
            emit(out, crl ? { plan, crl } : { plan }, planText);
            return;
          }
          if (!out.json) writeStdout(planText() + '\n\n');
          const result = await withProgress(
            out,
            `renewing (${config.certificates.length} certificates declared)`,
            () =>
              interruptible((signal) =>
                applyConfig(context, config, {
                  force: flags.force,
                  signal,
                  ...(planWhileApplying ? { onPlan: (item: PlanItem) => plan.push(item) } : {}),
                }),
              ),
            { immediate: true },
          );
          emit(out, { plan, ...result }, () => renderApply(result));
          return result.failed || result.backingOff ? EXIT_CODES.SOME_FAILED : undefined;
        },
      ),
    );
}
