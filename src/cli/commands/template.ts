import { McpkiError, assertSafeDir, listTemplates, renderTemplate, writeFileAtomic } from '../../index.js';
import type { Command } from 'commander';
import { lstatSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
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

/**
 * --out must name a file (new or to replace) in a folder that exists and is safe to write in: checked before
 * anything is written, so a folder, a missing parent or a special file is a user error that leaves nothing
 * behind (no .mcpki-tmp- file from a rename that could not succeed).
 */
function checkOut(out: string): void {
  if (out.trim() === '')
    throw new McpkiError('USAGE', '--out is empty', 'give the file to write, e.g. --out /etc/nginx/conf.d/mcp.conf');
  const path = resolve(out);
  let stat: Stats | undefined;
  try {
    stat = lstatSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR')
      throw new McpkiError(
        'WRITE_FAILED',
        `cannot write --out ${out}: a part of its path is not a folder`,
        'choose a path in an existing folder',
      );
    if (code !== 'ENOENT')
      throw new McpkiError(
        'WRITE_FAILED',
        `cannot use --out ${out} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        'check the path and its permissions',
      );
  }
  if (stat?.isDirectory())
    throw new McpkiError(
      'INVALID_INPUT',
      `--out ${out} is a folder`,
      `name the file to write in it, e.g. --out ${join(out, 'mcp.conf')}`,
    );
  if (stat && !stat.isFile() && !stat.isSymbolicLink())
    throw new McpkiError(
      'INVALID_INPUT',
      `--out ${out} is not a regular file`,
      'name a regular file to write (it is replaced atomically)',
    );
  const parent = dirname(path);
  let folder: Stats;
  try {
    folder = statSync(parent);
  } catch {
    throw new McpkiError(
      'WRITE_FAILED',
      `cannot write --out ${out}: the folder ${parent} does not exist`,
      `create it first (mkdir -p ${parent}), or choose another path`,
    );
  }
  if (!folder.isDirectory())
    throw new McpkiError(
      'WRITE_FAILED',
      `cannot write --out ${out}: ${parent} is not a folder`,
      'choose a path in an existing folder',
    );
  assertSafeDir(parent, 'the --out folder');
}

export function registerTemplate(program: Command): void {
  const template = program
    .command('template')
    .description(
      'files that run mcpki or use its certificates (systemd units, reverse proxies, MCP servers and clients), filled with real paths',
    );
  template
    .command('list')
    .description('list the templates and the variables each needs')
    .action(
      action(async ({ out }) => {
        const templates = listTemplates().map(({ name, description, variables, defaults }) => ({
          name,
          description,
          variables,
          defaults,
        }));
        emit(out, { templates }, () =>
          table(
            ['TEMPLATE', 'VARIABLES', 'FOR'],
            templates.map((t) => [
              t.name,
              t.variables.map((v) => (t.defaults[v] === undefined ? v : `${v}=${t.defaults[v]}`)).join(', '),
              t.description,
            ]),
            { wrap: [1, 2] },
          ),
        );
      }),
    );
  template
    .command('render <name>')
    .description("fill a template with this installation's paths, a certificate's files (--cert) and --var values")
    .option(
      '--cert <name>',
      'fill cert, key, fullchain, chain, combined, name, serverName from this certificate, and ca, crl',
    )
    .option('--client-cert <name>', 'fill clientCert, clientKey, clientFullchain, … from this client certificate')
    .option(
      '-c, --config <file>',
      'the mcpki.yaml the rendered unit uses (default ./mcpki.yaml); with --cert, a certificate declared there with targets gives the deployed paths',
    )
    .option('--var <name=value>', 'set or override a variable; repeatable', collect)
    .option('--out <file>', 'write here (atomically) instead of printing')
    .addHelpText(
      'after',
      `
Examples:
  mcpki template render systemd/mcpki.service -c /etc/mcpki/mcpki.yaml --out /etc/systemd/system/mcpki.service
  mcpki template render systemd/mcpki-renew.timer
  mcpki template render nginx/mcp-mtls.conf --cert mcp.example.test -c mcpki.yaml --var upstream=http://127.0.0.1:3000
  mcpki template render haproxy/mcp-mtls.cfg --cert mcp.example.test -c mcpki.yaml --out /etc/haproxy/haproxy.cfg
  mcpki template render mcp/client.ts --cert agent --var url=https://mcp.example.test:8443/mcp --out client.ts`,
    )
    .action(
      action(
        async (
          { context, out },
          name: string,
          flags: { config?: string; cert?: string; clientCert?: string; var?: string[]; out?: string },
        ) => {
          const variables = parseVars(flags.var);
          const rendered = renderTemplate(context, name, {
            config: flags.config,
            cert: flags.cert,
            clientCert: flags.clientCert,
            variables,
          });
          if (flags.out) {
            checkOut(flags.out);
            writeFileAtomic(flags.out, rendered.text, rendered.name.endsWith('.sh') ? 0o755 : 0o644);
          }
          emit(out, { ...rendered, path: flags.out ?? null }, () =>
            flags.out ? `${color.green('wrote')} ${flags.out} from ${rendered.name}` : rendered.text,
          );
        },
      ),
    );
}
