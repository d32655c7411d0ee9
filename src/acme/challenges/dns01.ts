// dns-01 through a user hook (RFC 8555 section 8.4). The hook is run as an argv, never through a shell:
//
//   HOOK... present DOMAIN _acme-challenge.DOMAIN. VALUE
//   HOOK... cleanup DOMAIN _acme-challenge.DOMAIN. VALUE
//
// with MCPKI_ACME_ACTION, MCPKI_ACME_DOMAIN, MCPKI_ACME_FQDN, MCPKI_ACME_VALUE and MCPKI_ACME_WILDCARD (1 or 0)
// in its environment. VALUE is base64url(SHA-256(keyAuthorization)). An order for example.com and
// *.example.com has two values for the same FQDN at once: a hook must add a TXT record, not replace the set,
// and remove exactly VALUE in cleanup. The hook runs in its own process group, which is killed when it runs
// past the timeout. After present, optionally wait: a fixed number of seconds and/or until a given resolver
// serves the value.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Resolver } from 'node:dns/promises';
import { childEnv } from '../../process/env.js';
import { McpkiError, fix } from '../../errors.js';
import { interrupted, sleep, throwIfInterrupted } from '../interrupt.js';
import {
  CHALLENGE_ERROR_CODES,
  assertKeyAuthorization,
  type ChallengeProvider,
  type ChallengeTask,
} from './provider.js';

export const DEFAULT_HOOK_TIMEOUT_SECONDS = 60;
export const DEFAULT_PROPAGATION_TIMEOUT_SECONDS = 120;
/** how long a hook gets between SIGTERM and SIGKILL */
const KILL_GRACE_MS = 1000;
/** how much of each output stream is kept */
const OUTPUT_LIMIT = 64 * 1024;

/** The TXT record value for a key authorization: base64url(SHA-256(keyAuthorization)), RFC 8555 section 8.4. */
export function dnsTxtValue(keyAuthorization: string): string {
  return createHash('sha256').update(keyAuthorization, 'utf8').digest('base64url');
}

/** `_acme-challenge.<domain>.` (absolute, trailing dot), for a domain given without "*.". */
export function dnsTxtName(domain: string): string {
  return `_acme-challenge.${domain.replace(/^\*\./, '').replace(/\.$/, '')}.`;
}

/**
 * Splits a command line into words like a POSIX shell does, and nothing more: blanks separate words,
 * '…' is literal, "…" is literal except for \" \\ \$ \` and \<newline>, a backslash outside quotes escapes the
 * next character, and adjacent pieces join ('a'"b"c is one word). No variables, command substitution, globbing,
 * redirection or operators: `$(…)`, `;`, `|`, `*` and `~` are ordinary characters.
 */
export function splitCommand(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  const unterminated = (what: string): McpkiError =>
    new McpkiError(
      'INVALID_INPUT',
      `the command ${JSON.stringify(text)} has an unterminated ${what}`,
      "close the quote, or quote the whole word with '…'",
    );
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw unterminated('single quote');
      word += text.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      inWord = true;
      i++;
      for (;;) {
        if (i >= text.length) throw unterminated('double quote');
        const d = text[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\' && i + 1 < text.length && '"\\$`\n'.includes(text[i + 1]!)) {
          if (text[i + 1] !== '\n') word += text[i + 1];
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
    } else if (c === '\\') {
      if (i + 1 >= text.length) throw unterminated('backslash at the end');
      if (text[i + 1] !== '\n') {
        word += text[i + 1];
        inWord = true;
      }
      i += 2;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** A command as text, quoted so splitCommand (and a shell) would read it back as the same argv. */
export function formatCommand(argv: readonly string[]): string {
  return argv
    .map((word) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

export interface PropagationCheck {
  /** 'IP', 'IP:PORT' or '[IPv6]:PORT' of a DNS server to ask (ideally the zone's authoritative server) */
  resolver: string;
  /** default 120 */
  timeoutSeconds?: number;
}

export interface Dns01HookOptions {
  /** a command line (split with splitCommand) or an argv */
  hook: string | readonly string[];
  /** default 60; the hook's whole process group is killed after it */
  timeoutSeconds?: number;
  /** sleep this long after each successful present (after the propagation check, if any); 0 = no sleep */
  propagationSeconds?: number;
  /** after each successful present, poll this resolver until the TXT value is visible */
  propagationCheck?: PropagationCheck;
  /** the hook's base environment (default process.env); the MCPKI_ACME_* variables are added */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface HookRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** The `cause` of a hook failure: the hook's exit status and the end of its output. */
export class HookFailure extends Error {
  readonly run: HookRun;
  constructor(run: HookRun) {
    const tail = (text: string): string => text.trimEnd().split('\n').slice(-10).join('\n');
    super(
      `exit code ${run.exitCode ?? 'none'}${run.signal ? `, signal ${run.signal}` : ''}${run.timedOut ? ' (timed out)' : ''}\n--- stderr (end) ---\n${tail(run.stderr)}\n--- stdout (end) ---\n${tail(run.stdout)}`,
    );
    this.name = 'HookFailure';
    this.run = run;
  }
}

function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const line = lines[lines.length - 1] ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

function positive(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0)
    throw new McpkiError(
      'INVALID_INPUT',
      `${what} must be a positive number of seconds, not ${value}`,
      `give ${what} in seconds, e.g. 60`,
    );
  return value;
}

export class Dns01HookProvider implements ChallengeProvider {
  readonly type = 'dns-01' as const;
  readonly argv: readonly string[];
  private readonly timeoutMs: number;
  private readonly propagationMs: number;
  private readonly check: { resolver: Resolver; address: string; timeoutMs: number } | undefined;
  private readonly env: NodeJS.ProcessEnv;
  private readonly cwd: string | undefined;
  /** tasks whose present hook was started, so cleanup runs once for each of them and only for them */
  private readonly presented = new Set<string>();

  constructor(options: Dns01HookOptions) {
    const argv = typeof options.hook === 'string' ? splitCommand(options.hook) : [...options.hook];
    if (argv.length === 0 || argv[0] === '') {
      throw new McpkiError(
        'USAGE',
        'the dns-01 hook command is empty',
        fix(
          'give the program that sets TXT records, e.g. {--dns-hook "/usr/local/bin/dns-hook --zone example.com"|challenge.hook: [/usr/local/bin/dns-hook, --zone, example.com]}',
        ),
      );
    }
    this.argv = argv;
    this.timeoutMs = positive(options.timeoutSeconds, DEFAULT_HOOK_TIMEOUT_SECONDS, 'the dns-01 hook timeout') * 1000;
    this.propagationMs = !options.propagationSeconds
      ? 0
      : positive(options.propagationSeconds, 0, 'the DNS propagation wait') * 1000;
    if (options.propagationCheck) {
      const { resolver: address } = options.propagationCheck;
      const resolver = new Resolver({ timeout: 2000, tries: 1 });
      try {
        resolver.setServers([address]);
      } catch (error) {
        throw new McpkiError(
          'INVALID_INPUT',
          `${JSON.stringify(address)} is not a DNS server address`,
          'give the resolver as IP or IP:PORT, e.g. 192.0.2.53:53 or [2001:db8::53]:53',
          { cause: error },
        );
      }
      this.check = {
        resolver,
        address,
        timeoutMs:
          positive(
            options.propagationCheck.timeoutSeconds,
            DEFAULT_PROPAGATION_TIMEOUT_SECONDS,
            'the DNS propagation timeout',
          ) * 1000,
      };
    }
    this.env = options.env ?? process.env;
    this.cwd = options.cwd;
  }

  /** Before the order: the hook's program exists and is executable (found on PATH when given without a slash). */
  async prepare(): Promise<void> {
    const program = this.argv[0]!;
    const hint = fix(
      'give {--dns-hook|challenge.hook:} an executable program (a path, or a name on PATH) and its arguments; it is not run through a shell',
    );
    const candidates = program.includes('/')
      ? [program]
      : (this.env.PATH ?? '')
          .split(delimiter)
          .filter(Boolean)
          .map((dir) => join(dir, program));
    for (const candidate of candidates) {
      let stat;
      try {
        stat = statSync(candidate);
      } catch {
        continue;
      }
      if (!stat.isFile()) {
        if (program.includes('/'))
          throw new McpkiError('INVALID_INPUT', `the dns-01 hook ${candidate} is not a regular file`, hint);
        continue;
      }
      try {
        accessSync(candidate, constants.X_OK);
        return;
      } catch {
        if (program.includes('/'))
          throw new McpkiError(
            'INVALID_INPUT',
            `the dns-01 hook ${candidate} is not executable`,
            `chmod +x it, or ${hint}`,
          );
      }
    }
    throw new McpkiError(
      'INVALID_INPUT',
      program.includes('/') ? `the dns-01 hook ${program} does not exist` : `the dns-01 hook ${program} is not on PATH`,
      hint,
    );
  }

  async present(task: ChallengeTask, signal?: AbortSignal): Promise<void> {
    assertKeyAuthorization(task);
    throwIfInterrupted(signal, `the dns-01 present hook for ${task.identifier}`);
    const key = keyOf(task);
    this.presented.add(key);
    await this.runHook('present', task, signal);
    const fqdn = dnsTxtName(task.identifier);
    const value = dnsTxtValue(task.keyAuthorization);
    if (this.check) await this.waitForTxt(fqdn, value, signal);
    if (this.propagationMs > 0)
      await sleep(this.propagationMs, signal, `the DNS propagation wait for ${task.identifier}`);
  }

  async cleanup(task: ChallengeTask): Promise<void> {
    if (!this.presented.delete(keyOf(task))) return;
    await this.runHook('cleanup', task);
  }

  async close(): Promise<void> {
    this.check?.resolver.cancel();
  }

  /** Runs the hook once; resolves on exit code 0, throws a typed error otherwise. */
  private async runHook(action: 'present' | 'cleanup', task: ChallengeTask, signal?: AbortSignal): Promise<void> {
    const fqdn = dnsTxtName(task.identifier);
    const value = dnsTxtValue(task.keyAuthorization);
    // the hook never sees mcpki's secrets (root passphrase, EAB HMAC key, PKCS#12 password)
    const env = childEnv(
      {
        MCPKI_ACME_ACTION: action,
        MCPKI_ACME_DOMAIN: task.identifier,
        MCPKI_ACME_FQDN: fqdn,
        MCPKI_ACME_VALUE: value,
        MCPKI_ACME_WILDCARD: task.wildcard ? '1' : '0',
      },
      this.env,
    );
    const hookText = formatCommand(this.argv);
    let run: HookRun;
    try {
      run = await runCommand(
        [...this.argv, action, task.identifier, fqdn, value],
        env,
        this.cwd,
        this.timeoutMs,
        signal,
      );
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new McpkiError(
        'INVALID_INPUT',
        `cannot run the dns-01 hook ${hookText} (${code})`,
        fix(
          'give {--dns-hook|challenge.hook:} an executable program (a path, or a name on PATH) and its arguments; it is not run through a shell',
        ),
        { cause: error },
      );
    }
    // an interrupted present: the hook was killed (or had finished); cleanup runs for this task all the same
    if (signal?.aborted) throw interrupted(signal, `the dns-01 ${action} hook for ${task.identifier}`);
    if (run.exitCode === 0 && !run.timedOut) return;
    const failure = new HookFailure(run);
    const line = lastLine(run.stderr) || lastLine(run.stdout);
    const tail = line ? `: ${line}` : '';
    const cleanupHint =
      action === 'cleanup' ? `; remove the TXT record ${fqdn} "${value}" by hand if it is still there` : '';
    if (run.timedOut) {
      throw new McpkiError(
        CHALLENGE_ERROR_CODES.hookFailed,
        `dns-01 ${action} hook for ${task.identifier} timed out after ${this.timeoutMs / 1000} s and was killed: ${hookText}${tail}`,
        fix(
          `make the hook return once the record is set (wait for propagation with {--dns-resolver IP}), or raise {--dns-timeout SECONDS|challenge.timeout:}${cleanupHint}`,
        ),
        { cause: failure },
      );
    }
    const status = run.exitCode !== null ? `exit code ${run.exitCode}` : `signal ${run.signal}`;
    throw new McpkiError(
      CHALLENGE_ERROR_CODES.hookFailed,
      `dns-01 ${action} hook for ${task.identifier} failed (${status}): ${hookText}${tail}`,
      `run the hook by hand to see why: ${hookText} ${action} ${task.identifier} ${fqdn} ${value}${cleanupHint}`,
      { cause: failure },
    );
  }

  private async waitForTxt(fqdn: string, value: string, signal?: AbortSignal): Promise<void> {
    const check = this.check!;
    const name = fqdn.replace(/\.$/, '');
    const deadline = Date.now() + check.timeoutMs;
    let delay = 250;
    let lastError = '';
    for (;;) {
      throwIfInterrupted(signal, `the DNS propagation wait for ${fqdn}`);
      try {
        const records = await check.resolver.resolveTxt(name);
        if (records.some((chunks) => chunks.join('') === value)) return;
        lastError = `${records.length} other TXT record(s)`;
      } catch (error) {
        lastError = (error as NodeJS.ErrnoException).code ?? String(error);
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(delay, left), signal, `the DNS propagation wait for ${fqdn}`);
      delay = Math.min(delay * 1.5, 2000);
    }
    throw new McpkiError(
      CHALLENGE_ERROR_CODES.hookFailed,
      `TXT record ${fqdn} not visible at ${check.address} after ${check.timeoutMs / 1000} s (last answer: ${lastError})`,
      fix(
        `check that the hook writes to the zone ${check.address} serves, or give DNS more time with {--dns-propagation-timeout SECONDS}`,
      ),
    );
  }
}

function keyOf(task: ChallengeTask): string {
  return `${task.identifier}\u0000${task.keyAuthorization}`;
}

/**
 * Runs argv without a shell in a new process group, with stdin closed and output captured (the last 64 KiB
 * of each stream). After timeoutMs the group gets SIGTERM, then SIGKILL. Rejects only when the program cannot
 * be started (ENOENT, EACCES).
 */
export function runCommand(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string | undefined,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<HookRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env,
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: false,
    });
    let stdout = '';
    let stderr = '';
    const keep = (text: string, chunk: Buffer): string => {
      const joined = text + chunk.toString('utf8');
      return joined.length > OUTPUT_LIMIT ? joined.slice(-OUTPUT_LIMIT) : joined;
    };
    child.stdout!.on('data', (chunk: Buffer) => (stdout = keep(stdout, chunk)));
    child.stderr!.on('data', (chunk: Buffer) => (stderr = keep(stderr, chunk)));
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (signal: NodeJS.Signals): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // the group is gone already
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    }, timeoutMs);
    // an interrupt kills the hook's whole group the same way (SIGTERM, then SIGKILL)
    let interruptedRun = false;
    const onAbort = (): void => {
      if (exit || interruptedRun) return;
      interruptedRun = true;
      killGroup('SIGTERM');
      if (!killTimer) killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    };
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    let done = false;
    const finish = (): void => {
      if (done || !exit) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      if (timedOut || interruptedRun) killGroup('SIGKILL'); // whatever is left of the group after the leader died
      child.stdout!.destroy();
      child.stderr!.destroy();
      resolve({ exitCode: exit.code, signal: exit.signal, timedOut, stdout, stderr });
    };
    child.once('error', (error) => {
      if (exit) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      // a background process the hook left running may hold the pipes open: do not wait for it for long
      setTimeout(finish, 200).unref();
    });
    child.once('close', finish);
  });
}
