import { join } from 'node:path';
import type { Command } from 'commander';
import type { ApplyResult, PlanItem } from '../../renewal/runner.js';
import { EXIT_CODES } from '../../errors.js';
import { action, collect } from '../command.js';
import { color, emit, table } from '../output.js';

function when(iso: string | null): string {
  return iso ? iso.slice(0, 16).replace('T', ' ') : '-';
}

function renderPlan(plan: PlanItem[]): string {
  if (plan.length === 0) return 'no certificates declared';
  return table(
    ['NAME', 'DUE', 'WHY', 'NEXT CHECK', 'FAILURES'],
    plan.map((p) => [p.name, p.due ? color.yellow('due') : color.green('no'), p.reason, p.due ? 'now' : when(p.nextCheck), p.failures ? color.red(String(p.failures)) : '0']),
  );
}

function renderApply(result: ApplyResult): string {
  if (!result.changed && result.failed === 0) return `${color.green('nothing to do:')} all ${result.items.length} certificates are current and deployed`;
  const rows = result.items.map((i) => [
    i.name,
    i.action === 'failed' ? color.red('failed') : i.action === 'unchanged' ? 'unchanged' : color.green(i.action),
    i.deployed.length ? `${i.deployed.length} file(s)` : '-',
    String(i.hooksRun),
    i.error ? `${i.error.message}${i.error.hint ? ` (hint: ${i.error.hint})` : ''}` : i.action === 'unchanged' ? `next check ${when(i.nextCheck)}` : i.reason,
  ]);
  const summary = result.failed ? color.red(`${result.failed} of ${result.items.length} failed; the others were done`) : color.green('done');
  return `${table(['NAME', 'ACTION', 'DEPLOYED', 'HOOKS', 'DETAIL'], rows)}\n${summary}`;
}

const CONFIG_HELP = 'the declaration file (default ./mcpki.yaml)';

export function registerRenew(program: Command): void {
  program
    .command('apply')
    .description('reconcile mcpki.yaml: issue what is missing, renew what is due, rewrite changed targets, run their hooks')
    .option('-c, --config <file>', CONFIG_HELP, 'mcpki.yaml')
    .addHelpText('after', `\nIdempotent: a second run changes nothing and says so. Exit 0 when all succeeded, ${EXIT_CODES.SOME_FAILED} when some failed.`)
    .action(
      action(async ({ context, out }, flags: { config: string }) => {
        const { loadConfig } = await import('../../config/index.js');
        const { applyConfig } = await import('../../renewal/runner.js');
        const result = await applyConfig(context, loadConfig(flags.config, { cacheDir: join(context.home, 'cache') }));
        emit(out, result, () => renderApply(result));
        if (result.failed) process.exitCode = EXIT_CODES.SOME_FAILED;
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
        const { loadConfig } = await import('../../config/index.js');
        const { applyConfig, planRenewals } = await import('../../renewal/runner.js');
        const config = loadConfig(flags.config, { cacheDir: join(context.home, 'cache') });
        const plan = planRenewals(context, config, { force: flags.force });
        if (flags.dryRun) {
          emit(out, { plan }, () => renderPlan(plan));
          return;
        }
        if (!out.json) process.stdout.write(renderPlan(plan) + '\n\n');
        const result = await applyConfig(context, config, { force: flags.force });
        emit(out, { plan, ...result }, () => renderApply(result));
        if (result.failed) process.exitCode = EXIT_CODES.SOME_FAILED;
      }),
    );
}
