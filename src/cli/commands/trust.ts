import { McpkiError, buildEnv, formatEnv, installTrust, trustStatus, uninstallTrust } from '../../index.js';
import type { ShellKind, TrustReport, TrustStoreName } from '../../index.js';
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { action, collect } from '../command.js';
import { color, emit, table, warn } from '../output.js';

// kept here (not imported from the core) so that parsing the command line loads no core module
const STORES: readonly TrustStoreName[] = ['system', 'nss', 'all'];
const SHELLS: readonly ShellKind[] = ['sh', 'fish', 'powershell', 'dotenv'];

interface TrustFlags {
  store: string;
  nssDb?: string[];
}

function parseStore(value: string): TrustStoreName {
  if ((STORES as readonly string[]).includes(value)) return value as TrustStoreName;
  throw new McpkiError('USAGE', `unknown trust store "${value}"`, `--store takes one of: ${STORES.join(', ')}`);
}

const SHELL_ALIASES: Record<string, ShellKind> = {
  bash: 'sh',
  zsh: 'sh',
  dash: 'sh',
  ksh: 'sh',
  pwsh: 'powershell',
  env: 'dotenv',
};

function parseShell(value: string): ShellKind {
  if ((SHELLS as readonly string[]).includes(value)) return value as ShellKind;
  if (Object.hasOwn(SHELL_ALIASES, value)) return SHELL_ALIASES[value]!;
  throw new McpkiError('USAGE', `unknown shell "${value}"`, `--shell takes one of: ${SHELLS.join(', ')}`);
}

const STATE_COLOR: Record<string, (text: string) => string> = {
  installed: color.green,
  'already-installed': color.green,
  trusted: color.green,
  removed: color.yellow,
  'not-installed': color.dim,
  untrusted: color.yellow,
  skipped: color.yellow,
};

function renderReport(report: TrustReport): string {
  const rows = report.stores.map((s) => [
    s.store,
    s.location,
    (STATE_COLOR[s.state] ?? String)(s.state) + (s.detail ? ` (${s.detail})` : ''),
  ]);
  return [
    `root: ${report.root.subject}`,
    `sha-256: ${report.root.fingerprint}`,
    '',
    table(['STORE', 'LOCATION', 'STATE'], rows),
  ].join('\n');
}

/** The folders sudo's secure_path searches for node (with the usual /usr/bin/env node shebang). */
const SUDO_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/**
 * How "run: sudo …" names this program: the full path of the mcpki script (sudo does not search the user's
 * PATH, where npm and nvm put it), preceded by node's own full path when node is not where sudo looks.
 */
function invocation(): string[] {
  const script = process.argv[1] ? resolve(process.argv[1]) : 'mcpki';
  const node = process.execPath;
  return SUDO_PATH.some((dir) => node === `${dir}/node`) ? [script] : [node, script];
}

const STORE_HELP = `
Stores:
  system  the Linux system store: Debian/Ubuntu (update-ca-certificates) or Fedora/RHEL (update-ca-trust);
          changing it needs root (with --store all it is skipped, not an error, when you are not root)
  nss     NSS databases: ~/.pki/nssdb (Chrome, Chromium) and Firefox profiles, or each --nss-db DIR;
          needs certutil (apt-get install libnss3-tools / dnf install nss-tools)
  all     both (default)`;

export function registerTrust(program: Command): void {
  const trust = program
    .command('trust')
    .description('install, remove or check the development root CA in the system and NSS trust stores');

  const operations = [
    {
      name: 'install',
      description: 'trust the development root CA (the system store needs root; NSS does not)',
      examples: `
Examples:
  mcpki trust install                                   every store this user can change
  sudo mcpki trust install --store system --home ~/.local/share/mcpki
  mcpki trust install --store nss --nss-db ~/.mozilla/firefox/abcd1234.default-release`,
    },
    {
      name: 'uninstall',
      description: 'remove the development root CA from the trust stores (only the copy mcpki installed)',
      examples: `
Examples:
  mcpki trust uninstall
  sudo mcpki trust uninstall --store system --home ~/.local/share/mcpki`,
    },
    {
      name: 'status',
      description: 'show, per store, whether the development root CA is trusted (changes nothing)',
      examples: `
Examples:
  mcpki trust status
  mcpki trust status --store nss --json`,
    },
  ] as const;

  for (const op of operations) {
    trust
      .command(op.name)
      .description(op.description)
      .option('--store <store>', 'system, nss or all', 'all')
      .option(
        '--nss-db <dir>',
        'an NSS database folder (holding cert9.db) instead of the discovered ones; repeatable',
        collect,
      )
      .addHelpText('after', STORE_HELP + '\n' + op.examples)
      .action(
        action(
          async ({ context, out }, flags: TrustFlags) => {
            const store = parseStore(flags.store);
            const nssDbs = flags.nssDb ?? [];
            if (nssDbs.length > 0 && store === 'system') {
              throw new McpkiError(
                'USAGE',
                '--nss-db does not apply to --store system',
                'drop --nss-db, or use --store nss or --store all',
              );
            }
            const run = op.name === 'install' ? installTrust : op.name === 'uninstall' ? uninstallTrust : trustStatus;
            const report = run(context, { store, nssDbs, invocation: invocation() });
            // install: some store trusts the root now; uninstall: some store is without it now
            const done = op.name === 'install' ? ['installed', 'already-installed'] : ['removed', 'not-installed'];
            const reached = report.stores.some((row) => done.includes(row.state));
            const skipped = report.stores.filter((row) => row.state === 'skipped');
            if (op.name !== 'status' && !reached && skipped.length > 0) {
              // nothing was done and something could not be: not a success a script should take for one
              const error = new McpkiError(
                report.sudoCommand ? 'TRUST_PERMISSION' : 'TRUST_FAILED',
                `no trust store was changed: ${skipped.map((row) => row.store).join(', ')} skipped`,
                report.sudoCommand
                  ? `the system store needs root: run ${report.sudoCommand}`
                  : 'see each store\'s reason above; "mcpki trust install --help" lists what each store needs',
              );
              throw Object.assign(error, {
                details: skipped.map((row) => `${row.store} ${row.location}: ${row.detail ?? 'skipped'}`),
              });
            }
            emit(out, report, () => renderReport(report));
            if (report.sudoCommand)
              warn(out, `the system store was not changed (it needs root): run ${report.sudoCommand}`);
          },
          { storeIsTrustStore: true },
        ),
      );
  }

  program
    .command('env')
    .description('print environment variables that make Node, Python and curl trust the development CA')
    .option('--shell <shell>', 'sh (bash, zsh), fish, powershell (pwsh) or dotenv', 'sh')
    .addHelpText(
      'after',
      `
Sets NODE_EXTRA_CA_CERTS to the root certificate (Node adds it to its own roots), and SSL_CERT_FILE,
REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE to HOME/ca/bundle.pem: the system roots plus the development root,
rewritten on every run (these variables replace the default roots). Nothing is installed; no root needed.

Examples:
  eval "$(mcpki env)"                                   sh, bash, zsh
  mcpki env --shell fish | source
  mcpki env --shell powershell | Invoke-Expression
  mcpki env --shell dotenv >> .env`,
    )
    .action(
      action(async ({ context, out }, flags: { shell: string }) => {
        const shell = parseShell(flags.shell);
        const report = buildEnv(context);
        const text = formatEnv(report, shell);
        if (!report.systemBundle)
          warn(
            out,
            `no system CA bundle found: ${report.bundlePath} holds only the development root, so public sites will fail for tools that read it`,
          );
        emit(out, report, () => text);
      }),
    );
}
