// Glue between commander and the core: every action gets a Context and the output options, and every
// error becomes one message, one hint and the documented exit code.
import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { createContext, type Context } from '../index.js';
import { reportError, type OutputOptions } from './output.js';

export interface GlobalOptions extends OutputOptions {
  home?: string;
  store?: string;
}

export interface ActionEnv {
  context: Context;
  out: GlobalOptions;
}

/**
 * Set by bin/mcpki.js, which ends the process with process.exit() right after the command (exitWhenIdle): an
 * SQLite inventory is then left open (unless its WAL has grown large). Its rows are durable at commit
 * (synchronous = FULL, src/store/sqlite.ts); closing would only checkpoint the WAL into mcpki.db and delete it,
 * two more fsyncs, which the next process does not need (it reads the WAL). Processes that run main() and go
 * on (tests, the code-cache build) close.
 */
const EXITS_AFTER_COMMAND = Symbol.for('mcpki.cli.exitsAfterCommand');

/**
 * Up to this much WAL is left for the next process, which reads it frame by frame when it opens the inventory
 * (about 1 ms per MiB); a larger one (a batch, or many commands since the last checkpoint) is checkpointed into
 * mcpki.db and removed by closing, as before. A single `issue` adds about 30 KiB.
 */
const WAL_LEFT_AT_EXIT = 512 * 1024;

/**
 * The commands whose start-up counts (issue 9: `issue server|client`, `list`, `show`) leave the inventory open;
 * every other one closes it as before, so that after `init`, `ca`, `revoke`, `forget`, `apply` or a batch,
 * mcpki.db alone holds the whole inventory again (a plain copy of it is a whole copy).
 */
function isHotCommand(command: Command): boolean {
  const name = command.name();
  if (command.parent?.name() === 'issue') return name === 'server' || name === 'client';
  return name === 'list' || name === 'show';
}

function leftOpenAtExit(context: Context, command: Command): boolean {
  if ((globalThis as Record<symbol, unknown>)[EXITS_AFTER_COMMAND] !== true) return false;
  if (!isHotCommand(command)) return false;
  if (context.storeLocation.kind !== 'sqlite') return false;
  try {
    const wal = statSync(`${context.layout.database}-wal`, { throwIfNoEntry: false });
    // an empty WAL (a read of an inventory the last command closed) is removed by closing, as before
    return wal !== undefined && wal.size > 0 && wal.size <= WAL_LEFT_AT_EXIT;
  } catch {
    return false;
  }
}

/** Commands that act on mcpki.yaml: an error's fix names its keys (days:) rather than options (--days). */
const CONFIG_COMMANDS = new Set(['apply', 'renew', 'serve']);

/**
 * Wraps a command action: builds the Context lazily (the inventory opens on first use), reports errors. The
 * action returns its exit code when it is not 0 (a report such as `check`'s, or apply's "some failed"); this and
 * main.ts are the only places that set process.exitCode (test/architecture.test.js).
 */
export function action<Args extends unknown[]>(
  run: (env: ActionEnv, ...args: Args) => Promise<number | void> | number | void,
  options: { storeIsTrustStore?: boolean } = {},
) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args[args.length - 1] as Command;
    const globals = command.optsWithGlobals() as GlobalOptions;
    if (options.storeIsTrustStore) {
      // `trust install --store nss` predates the global --store URL, which commander gives the value to: in
      // the trust commands it names the trust store, as it always did (the inventory comes from MCPKI_STORE)
      const flags = args[args.length - 2] as { store?: string };
      if (globals.store !== undefined) flags.store = globals.store;
      delete globals.store;
    }
    const out: GlobalOptions = {
      json: globals.json === true,
      home: globals.home,
      surface: CONFIG_COMMANDS.has(command.name()) ? 'config' : 'cli',
    };
    let context: Context | undefined;
    try {
      context = createContext({ home: out.home, ...(globals.store === undefined ? {} : { store: globals.store }) });
      const code = await run({ context, out }, ...(args.slice(0, -1) as Args));
      if (typeof code === 'number') process.exitCode = code;
    } catch (error) {
      process.exitCode = reportError(out, error);
    } finally {
      if (context && !leftOpenAtExit(context, command)) context.close();
    }
  };
}

export { collect, isRepeatable } from './options.js';
