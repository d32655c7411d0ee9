// Standard output without process.stdout where a terminal is not involved. Node builds process.stdout on first
// use and, for a file, a pipe or /dev/null, loads its whole stream library to do it: about 1 ms of a command's
// start-up that a bare `node` does not pay (issue 9). When file descriptor 1 is a regular file, a pipe, a socket
// or /dev/null — never a terminal — text is written to it with writeSync, as Node's own synchronous stdio
// does. A terminal, or a pipe left non-blocking by whoever made it (EAGAIN), goes through process.stdout; so
// does everything when main() runs inside another program (tests, the code-cache build), which may replace
// process.stdout.write.
import { fstatSync, statSync, writeSync } from 'node:fs';

/** Set by bin/mcpki.js when it runs as the program (src/cli/command.ts reads it too). */
const CLI_PROCESS = Symbol.for('mcpki.cli.exitsAfterCommand');

/** One state for every command-group bundle of the process (each bundle has its own copy of this module). */
interface StdoutState {
  direct?: boolean;
  stream?: NodeJS.WriteStream;
}
const STATE = Symbol.for('mcpki.cli.stdout');
const shared = globalThis as typeof globalThis & Record<symbol, unknown>;
const state = (shared[STATE] ??= {}) as StdoutState;

function isDevNull(rdev: number): boolean {
  try {
    const devNull = statSync('/dev/null');
    return devNull.isCharacterDevice() && devNull.rdev === rdev;
  } catch {
    return false;
  }
}

/** True when file descriptor 1 is certainly not a terminal (then writes skip process.stdout). */
function writesDirectly(): boolean {
  if (state.direct === undefined) {
    try {
      const stats = fstatSync(1);
      state.direct =
        shared[CLI_PROCESS] === true &&
        (stats.isFile() || stats.isFIFO() || stats.isSocket() || (stats.isCharacterDevice() && isDevNull(stats.rdev)));
    } catch {
      state.direct = false;
    }
  }
  return state.direct;
}

/** `mcpki list | head`: a reader that went away is not an error. */
function onStdoutError(error: NodeJS.ErrnoException): void {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
}

/** process.stdout, with the closed-pipe rule attached once. */
export function stdoutStream(): NodeJS.WriteStream {
  if (state.stream === undefined) {
    state.stream = process.stdout;
    if (!state.stream.listeners('error').includes(onStdoutError)) state.stream.on('error', onStdoutError);
  }
  return state.stream;
}

export function writeStdout(text: string): void {
  if (state.stream !== undefined || !writesDirectly()) {
    stdoutStream().write(text);
    return;
  }
  let bytes: Buffer | undefined;
  let at = 0;
  try {
    // the text as it is first (no copy into a Buffer: a 10,000-certificate plan is 4 MB); a partial write, as
    // to a pipe a signal interrupted, goes on from the bytes
    at = writeSync(1, text);
    if (at === Buffer.byteLength(text)) return;
    bytes = Buffer.from(text);
    while (at < bytes.length) at += writeSync(1, bytes, at);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') process.exit(0);
    if (code !== 'EAGAIN') throw error;
    // a full non-blocking pipe: the stream waits for the reader; everything after goes through it too
    stdoutStream().write((bytes ?? Buffer.from(text)).subarray(at));
  }
}

/** Whether standard output is a terminal, without building process.stdout when it cannot be one. */
export function stdoutIsTTY(): boolean {
  return writesDirectly() ? false : stdoutStream().isTTY === true;
}

/** The terminal's width; undefined when standard output is not a terminal. */
export function stdoutColumns(): number | undefined {
  if (!stdoutIsTTY()) return undefined;
  const columns = stdoutStream().columns;
  return columns > 0 ? columns : undefined;
}
