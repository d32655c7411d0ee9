// Reload hooks: argv arrays run without a shell, in their own process group, with a timeout that kills the
// whole group (a hook that forks a daemon or a `sleep` does not outlive it).
import { spawn } from 'node:child_process';
import { childEnv } from '../process/env.js';

export { childEnv, isSecretEnvName, SECRET_ENV_VARS } from '../process/env.js';

export interface HookResult {
  argv: string[];
  /** null when the process was killed by a signal or could not be started */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** the last 64 KiB of each stream */
  stdout: string;
  stderr: string;
  durationMs: number;
  /** set when the program could not be started (ENOENT, EACCES, …) */
  spawnError?: string;
}

const OUTPUT_LIMIT = 64 * 1024;

/** After SIGTERM to the group, how long before SIGKILL. */
const KILL_GRACE_MS = 1_000;
/** After the hook exits, how long to wait for descendants that still hold its stdout/stderr. */
const DRAIN_MS = 500;

export function hookFailed(result: HookResult): boolean {
  return result.timedOut || result.exitCode !== 0;
}

/** One line that says how a hook ended: "exit 3: last stderr line", "timed out after 2000 ms", … */
export function describeHookResult(result: HookResult): string {
  const lastLine =
    (result.stderr.trim().split('\n').pop() ?? '').trim() || (result.stdout.trim().split('\n').pop() ?? '').trim();
  let how: string;
  if (result.spawnError) how = `could not start (${result.spawnError})`;
  else if (result.timedOut) how = `timed out after ${result.durationMs} ms and was killed`;
  else if (result.exitCode !== null) how = `exit ${result.exitCode}`;
  else how = `killed by ${result.signal}`;
  return lastLine && !result.spawnError ? `${how}: ${lastLine.slice(0, 200)}` : how;
}

function append(buffer: string, chunk: string): string {
  const next = buffer + chunk;
  return next.length > OUTPUT_LIMIT ? next.slice(next.length - OUTPUT_LIMIT) : next;
}

/**
 * Runs argv[0] with argv[1..] (no shell) and `env` laid over this process's environment minus every
 * secret (SECRET_ENV_VARS). On timeout the
 * process group gets SIGTERM, then SIGKILL after a second. Never rejects: failures are in the result.
 */
export function runHook(argv: readonly string[], env: Record<string, string>, timeoutMs: number): Promise<HookResult> {
  const started = Date.now();
  const base = { argv: [...argv] };
  if (argv.length === 0 || !argv[0]) {
    return Promise.resolve({
      ...base,
      exitCode: null,
      signal: null,
      timedOut: false,
      stdout: '',
      stderr: '',
      durationMs: 0,
      spawnError: 'empty command',
    });
  }
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    let exit: { code: number | null; signal: string | null } | undefined;
    const timers: NodeJS.Timeout[] = [];
    const child = spawn(argv[0]!, argv.slice(1), {
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout = append(stdout, chunk)));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = append(stderr, chunk)));

    const killGroup = (signal: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // the group is already gone
      }
    };
    const finish = (spawnError?: string) => {
      if (settled) return;
      settled = true;
      timers.forEach(clearTimeout);
      child.stdout.destroy();
      child.stderr.destroy();
      // a timed-out hook's descendants go with it, even if the leader had already exited
      if (timedOut) killGroup('SIGKILL');
      const result: HookResult = {
        ...base,
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        timedOut,
        stdout,
        stderr,
        durationMs: Date.now() - started,
      };
      if (spawnError) result.spawnError = spawnError;
      resolve(result);
    };

    timers.push(
      setTimeout(
        () => {
          timedOut = true;
          killGroup('SIGTERM');
          timers.push(setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS));
        },
        Math.max(0, timeoutMs),
      ),
    );
    child.on('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // stdout/stderr may be held open by a grandchild; do not wait for it forever
      timers.push(setTimeout(() => finish(), DRAIN_MS));
    });
    child.on('close', () => finish());
  });
}
