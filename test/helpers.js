// Shared test helpers: temporary homes, running the real CLI, and calling real peers (openssl, python3).
import { spawnSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = join(ROOT, 'bin', 'mcpki.js');

/** A fresh folder under the system temp dir (outside any git work tree), removed by the returned cleanup. */
export function tempDir(prefix = 'mcpki-test-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * With MCPKI_TEST_POSTGRES (a postgres:// URL, set by test/postgres-pass.js), every home the CLI is run with
 * keeps its inventory in a schema of its own in that database: the same tests run against PostgreSQL.
 */
export function storeEnv(args, env = {}) {
  const base = process.env.MCPKI_TEST_POSTGRES;
  if (!base || env.MCPKI_STORE !== undefined) return {};
  const at = args.indexOf('--home');
  const inline = args.find((a) => typeof a === 'string' && a.startsWith('--home='));
  const home = at >= 0 ? args[at + 1] : inline ? inline.slice(7) : (env.MCPKI_HOME ?? process.env.MCPKI_HOME);
  if (!home) return {};
  const schema = 'h_' + createHash('sha256').update(resolve(home)).digest('hex').slice(0, 24);
  return { MCPKI_STORE: `${base}${base.includes('?') ? '&' : '?'}schema=${schema}` };
}

/** Runs the CLI synchronously; returns { status, stdout, stderr, json }. */
export function mcpki(args, options = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', ...storeEnv(args, options.env), ...(options.env ?? {}) },
    input: options.input,
    cwd: options.cwd,
    timeout: options.timeout ?? 60_000,
  });
  let json;
  if (args.includes('--json')) {
    try {
      json = JSON.parse(result.stdout);
    } catch {
      json = undefined;
    }
  }
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, json };
}

/** Runs the CLI asynchronously (for concurrency tests). */
export function mcpkiAsync(args, options = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, NO_COLOR: '1', ...storeEnv(args, options.env), ...(options.env ?? {}) },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Runs any program; returns { status, stdout, stderr }. */
export function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: options.timeout ?? 60_000,
    input: options.input,
    env: options.env ?? process.env,
    cwd: options.cwd,
  });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '', error: result.error };
}

export function hasCommand(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** Starts a long-running peer and waits until it accepts TCP connections on port. */
export async function startPeer(cmd, args, port, { waitMs = 15_000, ...options } = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${cmd} exited with ${child.exitCode}: ${output}`);
    const open = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return { child, stop, output: () => output };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${cmd} did not listen on ${port}: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** createContext's `store` for a home in the PostgreSQL pass (see storeEnv); empty otherwise. */
export function testStore(home) {
  const env = storeEnv(['--home', home]);
  return env.MCPKI_STORE ? { store: env.MCPKI_STORE } : {};
}
