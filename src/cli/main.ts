// The mcpki command line: commander wiring only. Each command group lives in commands/ and is loaded only when
// argv names it; it takes what it needs from the core API (src/index.ts), and the bundle keeps only that, so
// start-up stays close to a bare `node`.
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { McpkiError, exitCodeTable } from '../index.js';
import { isRepeatable } from './options.js';
import { reportError } from './output.js';
import { stdoutColumns, writeStdout } from './stdout.js';
import { besideThisBundle, loadBundle } from './bundles.js';
import type * as Acme from './commands/acme.js';
import type * as AcmeServer from './commands/acme-server.js';
import type * as Ca from './commands/ca.js';
import type * as Inventory from './commands/inventory.js';
import type * as Issue from './commands/issue.js';
import type * as Trust from './commands/trust.js';
import type * as Renew from './commands/renew.js';
import type * as Serve from './commands/serve.js';
import type * as Template from './commands/template.js';
import type * as Check from './commands/check.js';
import type * as Completion from './commands/completion.js';
import type * as Sign from './commands/sign.js';
import type * as Forget from './commands/forget.js';
import type * as Store from './commands/store.js';
import { VERSION } from './version.js';

export { VERSION };

/**
 * ACME, apply/renew, serve, template and check each live in a bundle of their own, dist/cli-GROUP.cjs, loaded
 * only when such a command runs: they are most of the code, and every other command would pay for reading it
 * at start-up. Each bundle holds only the part of the core API its commands use.
 */
function bundle<T>(group: keyof typeof GROUPS): T {
  return loadBundle(besideThisBundle(`cli-${group}.cjs`)) as T;
}

/** Each group's commands, loaded (with the core modules they use) when the group is registered. */
const GROUPS = {
  ca: async (program: Command) => bundle<typeof Ca>('ca').registerCa(program),
  issue: async (program: Command) => bundle<typeof Issue>('issue').registerIssue(program),
  inventory: async (program: Command) => bundle<typeof Inventory>('inventory').registerInventory(program),
  trust: async (program: Command) => bundle<typeof Trust>('trust').registerTrust(program),
  acme: async (program: Command) => bundle<typeof Acme>('acme').registerAcme(program),
  'acme-server': async (program: Command) => bundle<typeof AcmeServer>('acme-server').registerAcmeServer(program),
  renew: async (program: Command) => bundle<typeof Renew>('renew').registerRenew(program),
  serve: async (program: Command) => bundle<typeof Serve>('serve').registerServe(program),
  template: async (program: Command) => bundle<typeof Template>('template').registerTemplate(program),
  check: async (program: Command) => bundle<typeof Check>('check').registerCheck(program),
  sign: async (program: Command) => bundle<typeof Sign>('sign').registerSign(program),
  forget: async (program: Command) => bundle<typeof Forget>('forget').registerForget(program),
  store: async (program: Command) => bundle<typeof Store>('store').registerStore(program),
  // the completion script covers every command: it builds the whole program
  completion: async (program: Command) =>
    bundle<typeof Completion>('completion').registerCompletion(program, () => buildProgram()),
};

/** Which group defines each top-level command. */
const GROUP_OF: Record<string, keyof typeof GROUPS> = {
  init: 'ca',
  ca: 'ca',
  issue: 'issue',
  list: 'inventory',
  show: 'inventory',
  revoke: 'inventory',
  crl: 'inventory',
  events: 'inventory',
  trust: 'trust',
  env: 'trust',
  acme: 'acme',
  'acme-server': 'acme-server',
  apply: 'renew',
  renew: 'renew',
  validate: 'renew',
  serve: 'serve',
  template: 'template',
  check: 'check',
  sign: 'sign',
  forget: 'forget',
  store: 'store',
  completion: 'completion',
};

/** "Exit codes: 0 ok, 1 internal error, …" from the core's table (docs/cli.md has the same, in full), wrapped at 110 columns. */
export function exitCodeHelp(): string {
  const items = exitCodeTable().map((row) => `${row.exit.replace(', ', '/')} ${row.brief}`);
  const lines: string[] = [];
  let line = 'Exit codes:';
  for (const [i, item] of items.entries()) {
    const text = `${item}${i === items.length - 1 ? '.' : ','}`;
    if (line.length + 1 + text.length > 110) {
      lines.push(line);
      line = text;
    } else line += ` ${text}`;
  }
  return [...lines, line].join('\n');
}

/** The first word that is not an option (nor the value of --home). */
function firstCommandWord(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--home' || word === '--store') i++;
    else if (!word.startsWith('-')) return word;
  }
  return undefined;
}

/**
 * The whole program, or — when argv names a command — only that command's group: building every
 * command's options costs start-up time that a single command does not need.
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('mcpki')
    .description(
      'Certificates for MCP services and any TLS service: a name-constrained local CA, an inventory, trust-store setup.',
    )
    .version(VERSION)
    .option('--home <dir>', 'state folder (default: MCPKI_HOME, else $XDG_DATA_HOME/mcpki, else ~/.local/share/mcpki)')
    .option(
      '--store <url>',
      'where the inventory lives: sqlite (the home, default) or postgres://USER@HOST/DB?sslmode=… (default: MCPKI_STORE; in trust commands --store names the trust store)',
    )
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

${exitCodeHelp()}`,
    );
  const word = firstCommandWord(argv);
  const only = GROUP_OF[word ?? ''];
  if (only) await GROUPS[only](program);
  else if (word === undefined && (argv.includes('--version') || argv.includes('-V'))) {
    // the version needs no commands
  } else for (const register of Object.values(GROUPS)) await register(program);
  return program;
}

/**
 * `mcpki help issue server` is `mcpki issue server --help`: commander's own help command looks at its first
 * word only and would show the help of `issue`.
 */
export function helpArgv(argv: readonly string[]): string[] {
  let at = -1;
  for (let i = 2; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--home' || word === '--store') i++;
    else if (!word.startsWith('-')) {
      at = i;
      break;
    }
  }
  if (at < 0 || argv[at] !== 'help') return [...argv];
  const words = argv.slice(at + 1);
  if (words.length === 0 || words.some((w) => w.startsWith('-'))) return [...argv];
  // `mcpki help isue`: the unknown command is reported as such (with "did you mean issue?"), not as help
  if (!Object.hasOwn(GROUP_OF, words[0]!)) return [...argv.slice(0, at), ...words];
  return [...argv.slice(0, at), ...words, '--help'];
}

export async function main(argv: string[]): Promise<void> {
  argv = helpArgv(argv);
  let program: Command;
  try {
    program = await buildProgram(argv);
  } catch (error) {
    // a command group's bundle loads the packages its core modules import (yaml, cron): one that is missing
    // is reported as an incomplete installation
    process.exitCode = reportError({ json: argv.includes('--json') }, error);
    return;
  }
  // commander's own error text is replaced by ours (one error line, one hint line, or JSON)
  // a group named without a subcommand (`mcpki`, `mcpki issue`) prints its help to stdout and exits 0: asking
  // what a group holds is not an error; every command's help lists the global --home and --json
  forEachCommand(program, (command) => {
    command.exitOverride().configureOutput({
      outputError: () => {},
      writeOut: writeStdout,
      writeErr: writeStdout,
      getErrHelpWidth: () => stdoutColumns() ?? 80,
      getErrHasColors: () => false,
    });
    command.configureHelp({ showGlobalOptions: true });
    guardOptionValues(command);
  });
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // help and --version exit 0; any parse error is a usage error
    if (
      error.exitCode === 0 ||
      error.code === 'commander.helpDisplayed' ||
      error.code === 'commander.help' ||
      error.code === 'commander.version'
    ) {
      process.exitCode = 0;
      return;
    }
    process.exitCode = reportError({ json: argv.includes('--json') }, usageError(error, commandPath(program, argv)));
  }
}

/**
 * Ends the process as soon as the command is done and nothing is left to run: no handle but stdin, stdout and
 * stderr, no pending request (a write still queued on a pipe is one), no timer or immediate, no `beforeExit`
 * listener. That is the moment Node would exit on its own, after first tearing down the JavaScript heap and
 * the environment; process.exit() skips that teardown (docs/architecture.md, "Start-up cost"). 'exit'
 * listeners still run and process.exitCode is kept. Called by bin/mcpki.js only: a process that runs main()
 * more than once (the code-cache build, tests) must not end.
 */
export function exitWhenIdle(): void {
  setImmediate(() => {
    if (isIdle()) process.exit();
  });
}

/** Nothing would keep Node's event loop alive (false when this Node lacks the undocumented lists). */
function isIdle(): boolean {
  const internals = process as unknown as {
    _getActiveHandles?: () => Array<{ _isStdio?: boolean } | null>;
    _getActiveRequests?: () => unknown[];
  };
  if (typeof internals._getActiveHandles !== 'function' || typeof internals._getActiveRequests !== 'function')
    return false;
  if (process.listenerCount('beforeExit') > 0) return false;
  if (internals._getActiveRequests().length > 0) return false;
  if (internals._getActiveHandles().some((handle) => handle?._isStdio !== true)) return false;
  // timers are not handles: a referenced one is listed here as Timeout (an unreferenced one keeps nothing alive)
  return !process.getActiveResourcesInfo().some((kind) => kind === 'Timeout' || kind === 'Immediate');
}

const EMPTY_VALUE = 'mcpki: empty value';
const GIVEN_TWICE = 'mcpki: given twice';

/**
 * Every option that takes a value refuses an empty one (`--out ""` would otherwise mean "not given" and
 * write to the default place), and one that is not repeatable refuses to be given twice (which value wins
 * is not obvious to the reader of a script). --home is checked where the home is resolved.
 */
function guardOptionValues(command: Command): void {
  for (const option of command.options) {
    if (!option.required || option.long === '--home') continue;
    const parse = option.parseArg as ((value: string, previous: unknown) => unknown) | undefined;
    const repeatable = option.variadic || isRepeatable(parse);
    let given = false;
    option.argParser((value: string, previous: unknown) => {
      if (value.trim() === '') throw new InvalidArgumentError(EMPTY_VALUE);
      if (given && !repeatable) throw new InvalidArgumentError(GIVEN_TWICE);
      given = true;
      return parse ? parse(value, previous) : value;
    });
  }
}

/** Turns a commander parse error into a usage error with a hint. */
export function usageError(error: CommanderError, command: string): McpkiError {
  const [first, ...rest] = error.message.replace(/^error:\s*/, '').split('\n');
  let message = first!.trim();
  const suggestion = rest.join(' ').match(/\(Did you mean (.+)\?\)/);
  let hint = `see "mcpki ${command ? command + ' ' : ''}--help"`;
  const guarded = /^option '(?:-\w, )?(--[\w-]+) (<[^>]+>)' argument .* is invalid\. (mcpki: .+)$/s.exec(message);
  if (guarded?.[3] === EMPTY_VALUE)
    return new McpkiError(
      'USAGE',
      `${guarded[1]} was given an empty value`,
      `give ${guarded[1]} ${guarded[2]} a value, or leave the option out; ${hint}`,
    );
  if (guarded?.[3] === GIVEN_TWICE)
    return new McpkiError('USAGE', `${guarded[1]} was given more than once`, `give ${guarded[1]} once; ${hint}`);
  if (suggestion) hint = `did you mean ${suggestion[1]}? ${hint}`;
  const unknown = message.match(/^unknown option '(.+)'$/);
  if (unknown && !unknown[1]!.startsWith('--')) {
    hint = `if "${unknown[1]}" is a name, put "--" before it (e.g. mcpki issue server NAME -- ${unknown[1]}); ${hint}`;
  }
  message = message.replace(/\.$/, '');
  return new McpkiError('USAGE', message, hint);
}

/** The (sub)command names the arguments name, e.g. "issue server". */
function commandPath(program: Command, argv: readonly string[]): string {
  const path: string[] = [];
  let current = program;
  for (const word of argv.slice(2)) {
    const next = current.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!next) continue;
    path.push(next.name());
    current = next;
  }
  return path.join(' ');
}

function forEachCommand(command: Command, fn: (command: Command) => void): void {
  fn(command);
  for (const sub of command.commands) forEachCommand(sub, fn);
}

/** For the build's code-cache step (src/cli/build-code-cache.ts): the group bundles this process loaded. */
export { loadedBundles } from './bundles.js';
