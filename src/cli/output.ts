// Rendering for humans (aligned tables, colour only on a TTY and never with NO_COLOR) and for machines
// (--json: one JSON document on stdout, the documented contract in docs/cli.md).
import { EXIT_CODES, installError, isMcpkiError, type Fix, type Surface } from '../index.js';
import { stdoutColumns, stdoutIsTTY, writeStdout } from './stdout.js';

export interface OutputOptions {
  json: boolean;
  /** whose words an error's fix is put in: options (the default) or mcpki.yaml keys (apply, renew, serve) */
  surface?: Surface;
}

/** Colour on the given stream (standard output when none is given). */
export function colorEnabled(stream?: NodeJS.WriteStream): boolean {
  if ('NO_COLOR' in process.env) return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return stream === undefined ? stdoutIsTTY() : stream.isTTY === true;
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

/** The width tables are fitted to: the terminal's on a TTY; none (no wrapping) when stdout is a pipe or file. */
export function terminalColumns(stream?: NodeJS.WriteStream): number | undefined {
  if (stream === undefined) return stdoutColumns();
  return stream.isTTY && stream.columns > 0 ? stream.columns : undefined;
}

/** A column is never wrapped narrower than this. */
const MIN_WRAP = 12;

/** Splits text into lines of at most width visible characters, at spaces where it can (colour dropped). */
function wrapCell(text: string, width: number): string[] {
  if (visibleLength(text) <= width) return [text];
  const plain = text.replace(ANSI, '');
  const lines: string[] = [];
  let line = '';
  for (let word of plain.split(' ')) {
    while (word.length > width) {
      if (line) {
        lines.push(line);
        line = '';
      }
      lines.push(word.slice(0, width));
      word = word.slice(width);
    }
    if (!line) line = word;
    else if (line.length + 1 + word.length <= width) line += ' ' + word;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/**
 * Left-aligned columns separated by two spaces; the last column is not padded. On a terminal the table fits
 * its width: the widest of the `wrap` columns (default: the last) is narrowed, and its cells wrapped onto
 * continuation lines, until the lines fit. Output to a pipe or file is never wrapped (one row, one line).
 */
export function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  options: { wrap?: readonly number[]; columns?: number } = {},
): string {
  const widths = header.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const columns = options.columns ?? terminalColumns();
  const wrap = options.wrap ?? [header.length - 1];
  if (columns !== undefined) {
    const total = () => widths.reduce((sum, w) => sum + w, 0) + 2 * (widths.length - 1);
    for (let excess = total() - columns; excess > 0; excess = total() - columns) {
      const widest = wrap.filter((i) => widths[i]! > MIN_WRAP).sort((a, b) => widths[b]! - widths[a]!)[0];
      if (widest === undefined) break;
      const others = wrap.filter((i) => i !== widest).map((i) => widths[i]!);
      const next = Math.max(...others, 0);
      // narrow the widest down to the next widest (or as far as needed), one step at a time
      widths[widest] = Math.max(MIN_WRAP, widths[widest]! - Math.max(1, Math.min(excess, widths[widest]! - next)));
    }
  }
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) =>
        i === cells.length - 1 ? cell : cell + ' '.repeat(Math.max(0, widths[i]! - visibleLength(cell))),
      )
      .join('  ')
      .trimEnd();
  const render = (cells: readonly string[]): string => {
    const wrapped = cells.map((cell, i) =>
      columns !== undefined && wrap.includes(i) ? wrapCell(cell, widths[i]!) : [cell],
    );
    const height = Math.max(...wrapped.map((w) => w.length));
    const out: string[] = [];
    for (let k = 0; k < height; k++) out.push(line(wrapped.map((w) => w[k] ?? '')));
    return out.join('\n');
  };
  return [line(header.map((h) => color.bold(h))), ...rows.map(render)].join('\n');
}

/**
 * The one date format of human output: "2026-12-06 22:11 UTC" (ISO 8601 order, minutes, always UTC).
 * --json keeps full ISO 8601 timestamps.
 */
export function formatDate(value: string | Date | null | undefined): string {
  if (value === null || value === undefined || value === '') return '-';
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** How long work runs before a progress line is shown on a terminal. */
export const PROGRESS_AFTER_MS = 2_000;

export interface Progress {
  /** What is being done now, e.g. "12/500". */
  update(detail: string): void;
  /** Clears the progress line. */
  done(): void;
}

export interface ProgressOptions {
  /**
   * Draw the line at once rather than after PROGRESS_AFTER_MS: for work that may block the event loop (signing
   * a CRL over a large inventory), where no timer could draw it later. Short work erases it at once.
   */
  immediate?: boolean;
}

/**
 * A progress line on stderr, only when stderr is a terminal and the output is not --json, and only once the
 * work has run for PROGRESS_AFTER_MS: "issuing 500 certificates… 3s". It is rewritten in place every second
 * (and on update) and erased when the work is done, so nothing of it is left in the terminal or in a pipe.
 */
export function startProgress(
  options: OutputOptions,
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
  progressOptions: ProgressOptions = {},
): Progress {
  if (options.json || !stream.isTTY) return { update() {}, done() {} };
  const started = Date.now();
  let detail = '';
  let shown = false;
  const draw = (force = false) => {
    const elapsed = Date.now() - started;
    if (elapsed < PROGRESS_AFTER_MS && !force) return;
    shown = true;
    const text = `${label}${detail ? ` ${detail}` : ''}…${elapsed >= 1000 ? ` ${Math.floor(elapsed / 1000)}s` : ''}`;
    const width = terminalColumns(stream) ?? 80;
    stream.write(`\r\u001b[2K${safeText(text).slice(0, width - 1)}`);
  };
  const timer = setInterval(draw, 1_000);
  timer.unref();
  if (progressOptions.immediate) draw(true);
  return {
    update(next: string) {
      detail = next;
      draw();
    },
    done() {
      clearInterval(timer);
      if (shown) stream.write('\r\u001b[2K');
    },
  };
}

/** Runs work with a progress line (see startProgress). */
export async function withProgress<T>(
  options: OutputOptions,
  label: string,
  work: (progress: Progress) => Promise<T> | T,
  progressOptions: ProgressOptions = {},
): Promise<T> {
  const progress = startProgress(options, label, process.stderr, progressOptions);
  try {
    return await work(progress);
  } finally {
    progress.done();
  }
}

/** A top-level array at least this long is written a run of elements at a time (writeJsonPieces). */
const STREAMED_ARRAY_LENGTH = 256;
/** writeJsonPieces hands text on once it has at least this many characters. */
const JSON_PIECE_CHARS = 64 * 1024;

/** An object or array of the given prototype that JSON.stringify writes field by field (no toJSON). */
const isPlain = (value: unknown, proto: object): boolean =>
  typeof value === 'object' &&
  value !== null &&
  Object.getPrototypeOf(value) === proto &&
  typeof (value as { toJSON?: unknown }).toJSON !== 'function';

const isLongArray = (value: unknown): value is unknown[] =>
  isPlain(value, Array.prototype) && (value as unknown[]).length >= STREAMED_ARRAY_LENGTH;

/**
 * `JSON.stringify(data, null, 2)` and a newline, handed to `write` in pieces of about JSON_PIECE_CHARS. A plan
 * over 10,000 certificates is 4 MB of JSON: as one string, V8 builds it in parts, copies it flat, and Node copies
 * it again into a buffer of its size, about 2,700 pages first touched (−27 ms on a VM where that costs 11 µs a
 * page); in pieces the same memory is used again. Only a plain object's long arrays are taken apart, a run of
 * elements at a time; every other value goes through JSON.stringify whole, indented to its depth. A value
 * JSON.stringify refuses (a BigInt, a cycle) throws after the pieces before it were written: the commands'
 * outputs hold none.
 */
export function writeJsonPieces(data: unknown, write: (text: string) => void): void {
  if (!isPlain(data, Object.prototype) || !Object.values(data as object).some(isLongArray)) {
    write(JSON.stringify(data, null, 2) + '\n');
    return;
  }
  const object = data as Record<string, unknown>;
  let out = '{';
  let separator = '';
  for (const key of Object.keys(object)) {
    const value = object[key];
    if (isLongArray(value)) {
      out += `${separator}\n  ${JSON.stringify(key)}: [`;
      // a run of elements at a time, as many as make about JSON_PIECE_CHARS (guessed from the run before):
      // JSON.stringify of the run, less its brackets, indented one level more. JSON text holds no raw newline
      // inside a string, so each '\n' starts a line to indent. (An element at a time took twice as long.)
      let count = 16;
      for (let i = 0; i < value.length; i += count) {
        if (i > 0) count = Math.max(1, Math.min(4096, Math.round(JSON_PIECE_CHARS / (out.length / count))));
        if (i > 0) write(out);
        const text = JSON.stringify(value.slice(i, i + count), null, 2);
        out = `${i === 0 ? out : ','}${text.slice(1, -2).replaceAll('\n', '\n  ')}`;
      }
      out += '\n  ]';
    } else {
      const text = JSON.stringify(value, null, 2);
      if (text === undefined) continue;
      out += `${separator}\n  ${JSON.stringify(key)}: ${text.replaceAll('\n', '\n  ')}`;
    }
    separator = ',';
  }
  write(`${out}\n}\n`);
}

/** Prints a command's result: JSON for --json, the human rendering otherwise. */
export function emit(options: OutputOptions, data: unknown, human: () => string): void {
  if (options.json) writeJsonPieces(data, writeStdout);
  else {
    const text = human();
    if (text) writeStdout(text.endsWith('\n') ? text : text + '\n');
  }
}

export function warn(options: OutputOptions, message: string): void {
  if (!options.json) process.stderr.write(`${color.yellow('warning:', process.stderr)} ${safeText(message)}\n`);
}

/** A single value (a word) longer than this is cut in messages: "…(N chars)" says how long it was. */
export const MAX_VALUE_CHARS = 200;
/** A whole message or hint longer than this is cut the same way. */
export const MAX_MESSAGE_CHARS = 1000;

// C0 and C1 controls, DEL, and the Unicode characters that reorder or break lines on a terminal or in an
// editor: bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F, U+061C), line
// and paragraph separators (U+2028/U+2029), and the byte-order mark.
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;
const NAMED_ESCAPES: Record<string, string> = {
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\u0000': '\\0',
  '\u001b': '\\e',
};

function escapeChar(char: string): string {
  const named = NAMED_ESCAPES[char];
  if (named) return named;
  const code = char.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

function escapeUnsafe(text: string): string {
  // lone surrogates would become U+FFFD on output and hide what was there
  return text
    .replace(UNSAFE_CHARS, escapeChar)
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, escapeChar);
}

/**
 * What mcpki prints about input it was given: control characters escaped (NUL as \0, ESC as \e, CR/LF as
 * \r/\n, U+202E as \u202e), every word of more than MAX_VALUE_CHARS cut, and the whole text cut at
 * MAX_MESSAGE_CHARS, each cut ending in "…(N chars)" with the length it had. The one place that renders
 * error messages, hints and warnings, for the terminal and for --json alike. It looks at no more of a
 * 30 MB message than it prints.
 */
export function safeText(text: string): string {
  let out = '';
  for (let start = 0; start <= text.length;) {
    let end = text.indexOf(' ', start);
    if (end < 0) end = text.length;
    const length = end - start;
    out += (start > 0 ? ' ' : '') + escapeUnsafe(text.slice(start, start + Math.min(length, MAX_VALUE_CHARS)));
    if (length > MAX_VALUE_CHARS) out += `…(${length} chars)`;
    if (out.length > MAX_MESSAGE_CHARS) return `${out.slice(0, MAX_MESSAGE_CHARS)}…(${text.length} chars)`;
    start = end + 1;
  }
  return out;
}

/** Errors that carry a list (every problem of a config file) show each on its own line. */
function detailLines(error: Error): string[] | undefined {
  const details = (error as { details?: unknown }).details;
  return Array.isArray(details) && details.every((d) => typeof d === 'string') ? details.map(safeText) : undefined;
}

/** MCPKI_DEBUG: where the error was thrown (the frames only; the message was printed, made safe, above). */
function stackFrames(error: Error): string {
  const frames = (error.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  return frames.map((line) => `${safeText(line)}\n`).join('');
}

/** --json's `fix`: the hint's text with {0}, {1}, … and the settings it names (flag, mcpki.yaml key), made safe. */
function safeFix(fix: Fix | undefined): Fix | null {
  if (!fix) return null;
  return {
    text: safeText(fix.text),
    settings: fix.settings.map((s) => ({ flag: safeText(s.flag), key: s.key === null ? null : safeText(s.key) })),
  };
}

/** Reports an error (one line, then a hint line) and returns the exit code. */
export function reportError(options: OutputOptions, error: unknown): number {
  // a package or native addon that cannot be loaded is an incomplete installation, not a bug
  if (!isMcpkiError(error)) error = installError(error) ?? error;
  if (isMcpkiError(error)) {
    const details = detailLines(error);
    const message = safeText(error.message);
    const shown = error.hintFor(options.surface ?? 'cli');
    const hint = shown === undefined ? undefined : safeText(shown);
    if (options.json) {
      const body = {
        code: error.code,
        message,
        hint: hint ?? null,
        fix: safeFix(error.fix),
        exitCode: error.exitCode,
        ...(details ? { details } : {}),
      };
      writeStdout(JSON.stringify({ error: body }, null, 2) + '\n');
    } else {
      process.stderr.write(`${color.red('error:', process.stderr)} ${message}\n`);
      for (const line of details ?? []) process.stderr.write(`  ${line}\n`);
      if (hint) process.stderr.write(`${color.dim('hint:', process.stderr)} ${hint}\n`);
      if (process.env.MCPKI_DEBUG) process.stderr.write(stackFrames(error));
    }
    return error.exitCode;
  }
  const message = safeText(error instanceof Error ? error.message : String(error));
  if (options.json) {
    writeStdout(
      JSON.stringify(
        {
          error: {
            code: 'INTERNAL',
            message,
            hint: 'this is a bug in mcpki; please report it with the command you ran',
            fix: null,
            exitCode: EXIT_CODES.INTERNAL,
          },
        },
        null,
        2,
      ) + '\n',
    );
  } else {
    process.stderr.write(`${color.red('error:', process.stderr)} ${message}\n`);
    if (process.env.MCPKI_DEBUG && error instanceof Error) process.stderr.write(stackFrames(error));
    process.stderr.write(
      `${color.dim('hint:', process.stderr)} this is a bug in mcpki; please report it with the command you ran (MCPKI_DEBUG=1 shows the stack)\n`,
    );
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
