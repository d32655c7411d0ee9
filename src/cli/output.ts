// Rendering for humans (aligned tables, colour only on a TTY and never with NO_COLOR) and for machines
// (--json: one JSON document on stdout, the documented contract in docs/cli.md).
import { isMcpkiError, EXIT_CODES } from '../errors.js';

export interface OutputOptions {
  json: boolean;
}

export function colorEnabled(stream: NodeJS.WriteStream = process.stdout): boolean {
  if ('NO_COLOR' in process.env) return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true;
}

function paint(code: string, text: string, stream?: NodeJS.WriteStream): string {
  return colorEnabled(stream) ? `\u001b[${code}m${text}\u001b[0m` : text;
}

export const color = {
  red: (t: string, s?: NodeJS.WriteStream) => paint('31', t, s),
  green: (t: string, s?: NodeJS.WriteStream) => paint('32', t, s),
  yellow: (t: string, s?: NodeJS.WriteStream) => paint('33', t, s),
  dim: (t: string, s?: NodeJS.WriteStream) => paint('2', t, s),
  bold: (t: string, s?: NodeJS.WriteStream) => paint('1', t, s),
};

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

function visibleLength(text: string): number {
  return text.replace(ANSI, '').length;
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visibleLength(cell))))
      .join('  ')
      .trimEnd();
  return [line(header.map((h) => color.bold(h))), ...rows.map(line)].join('\n');
}

/** Prints a command's result: JSON for --json, the human rendering otherwise. */
export function emit(options: OutputOptions, data: unknown, human: () => string): void {
  if (options.json) process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  else {
    const text = human();
    if (text) process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }
}

export function warn(options: OutputOptions, message: string): void {
  if (!options.json) process.stderr.write(`${color.yellow('warning:', process.stderr)} ${message}\n`);
}

/** Errors that carry a list (every problem of a config file) show each on its own line. */
function detailLines(error: Error): string[] | undefined {
  const details = (error as { details?: unknown }).details;
  return Array.isArray(details) && details.every((d) => typeof d === 'string') ? details : undefined;
}

/** Reports an error (one line, then a hint line) and returns the exit code. */
export function reportError(options: OutputOptions, error: unknown): number {
  if (isMcpkiError(error)) {
    const details = detailLines(error);
    if (options.json) {
      const body = { code: error.code, message: error.message, hint: error.hint ?? null, exitCode: error.exitCode, ...(details ? { details } : {}) };
      process.stdout.write(JSON.stringify({ error: body }, null, 2) + '\n');
    } else {
      process.stderr.write(`${color.red('error:', process.stderr)} ${error.message}\n`);
      for (const line of details ?? []) process.stderr.write(`  ${line}\n`);
      if (error.hint) process.stderr.write(`${color.dim('hint:', process.stderr)} ${error.hint}\n`);
    }
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  if (options.json) {
    process.stdout.write(JSON.stringify({ error: { code: 'INTERNAL', message, hint: 'this is a bug in mcpki; please report it with the command you ran', exitCode: EXIT_CODES.INTERNAL } }, null, 2) + '\n');
  } else {
    process.stderr.write(`${color.red('error:', process.stderr)} ${message}\n`);
    if (process.env.MCPKI_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    process.stderr.write(`${color.dim('hint:', process.stderr)} this is a bug in mcpki; please report it with the command you ran (MCPKI_DEBUG=1 shows the stack)\n`);
  }
  return EXIT_CODES.INTERNAL;
}

/** "89d 23h", "5h 2m", "expired 3d ago" */
export function formatTimeLeft(seconds: number): string {
  const abs = Math.abs(seconds);
  const d = Math.floor(abs / 86400);
  const h = Math.floor((abs % 86400) / 3600);
  const m = Math.floor((abs % 3600) / 60);
  const text = d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m`;
  return seconds < 0 ? `expired ${text} ago` : text;
}

/** A 10-cell bar of the lifetime left, coloured green > 1/3 > yellow > 1/10 > red. */
export function lifetimeBar(fraction: number): string {
  const cells = Math.round(fraction * 10);
  const bar = '█'.repeat(cells) + '░'.repeat(10 - cells);
  if (fraction > 1 / 3) return color.green(bar);
  if (fraction > 0.1) return color.yellow(bar);
  return color.red(bar);
}
