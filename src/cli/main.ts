// The mcpki command line: commander wiring only. Each command lives in commands/ and loads the core
// modules it needs when it runs, so start-up stays close to a bare `node`.
import { Command, CommanderError } from 'commander';
import { EXIT_CODES } from '../errors.js';
import { registerCa } from './commands/ca.js';
import { registerInventory } from './commands/inventory.js';
import { registerIssue } from './commands/issue.js';
import { registerTrust } from './commands/trust.js';

export const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('mcpki')
    .description('Certificates for MCP services and any TLS service: a name-constrained local CA, an inventory, trust-store setup.')
    .version(VERSION)
    .option('--home <dir>', 'state folder (default: MCPKI_HOME, else $XDG_DATA_HOME/mcpki, else ~/.local/share/mcpki)')
    .option('--json', 'print a machine-readable JSON result (see docs/cli.md)')
    .showSuggestionAfterError()
    .exitOverride()
    .addHelpText(
      'after',
      `
Quick start:
  mcpki init                                   create the development CA
  mcpki issue server my-mcp localhost 127.0.0.1
  mcpki trust install                          trust it (system store and NSS)
  eval "$(mcpki env)"                          make Node, Python and curl trust it

Exit codes: 0 ok, 1 internal error, 2 usage, 3 invalid input, 4 no CA, 5 already exists,
6 name not permitted, 7 inventory error, 8 file system, 9 git guard, 10 not found, 11 trust store, 12 passphrase.`,
    );
  registerCa(program);
  registerIssue(program);
  registerInventory(program);
  registerTrust(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  for (const command of program.commands) applyExitOverride(command);
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // help and --version exit 0; any parse error is a usage error
      process.exitCode = error.exitCode === 0 ? 0 : EXIT_CODES.USAGE;
      return;
    }
    throw error;
  }
}

function applyExitOverride(command: Command): void {
  command.exitOverride();
  for (const sub of command.commands) applyExitOverride(sub);
}
