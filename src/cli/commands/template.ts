import type { Command } from 'commander';
import { writeFileAtomic } from '../../deploy/atomic.js';
import { McpkiError } from '../../errors.js';
import { action, collect } from '../command.js';
import { color, emit, table } from '../output.js';

function parseVars(pairs: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new McpkiError('USAGE', `--var "${pair}" is not NAME=VALUE`, 'e.g. --var user=mcpki');
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

export function registerTemplate(program: Command): void {
  const template = program.command('template').description('files that run mcpki or use its certificates (systemd units, …), filled with real paths');
  template
    .command('list')
    .description('list the templates and the variables each needs')
    .action(
      action(async ({ out }) => {
        const { listTemplates } = await import('../../templates/render.js');
        const templates = listTemplates().map(({ name, variables }) => ({ name, variables }));
        emit(out, { templates }, () => table(['TEMPLATE', 'VARIABLES'], templates.map((t) => [t.name, t.variables.join(', ')])));
      }),
    );
  template
    .command('render <name>')
    .description('fill a template with this installation\'s paths (node, mcpki, home, config, user) and --var values')
    .option('-c, --config <file>', 'the mcpki.yaml the rendered unit uses (default ./mcpki.yaml)')
    .option('--var <name=value>', 'set or override a variable; repeatable', collect)
    .option('--out <file>', 'write here (atomically) instead of printing')
    .addHelpText(
      'after',
      `
Examples:
  mcpki template render systemd/mcpki.service -c /etc/mcpki/mcpki.yaml --out /etc/systemd/system/mcpki.service
  mcpki template render systemd/mcpki-renew.timer`,
    )
    .action(
      action(async ({ context, out }, name: string, flags: { config?: string; var?: string[]; out?: string }) => {
        const { renderTemplate } = await import('../../templates/render.js');
        const rendered = renderTemplate(context, name, { config: flags.config, variables: parseVars(flags.var) });
        if (flags.out) writeFileAtomic(flags.out, rendered.text, 0o644);
        emit(out, { ...rendered, path: flags.out ?? null }, () => (flags.out ? `${color.green('wrote')} ${flags.out} from ${rendered.name}` : rendered.text));
      }),
    );
}
