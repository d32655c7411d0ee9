// Reading a file mcpki did not create (a batch file, mcpki.yaml, a password file, a CA bundle): it must be a
// regular file of bounded size. Opened with O_NONBLOCK so a FIFO cannot hang the process, checked with fstat
// on the open descriptor (no race between the check and the read), read up to the limit and no further, so
// /dev/zero or a 30 GB file cannot exhaust memory.
import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, readSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { McpkiError, type ErrorCode, type Hint } from '../errors.js';

export const KIB = 1024;
export const MIB = 1024 * KIB;

/** The largest input files mcpki reads (a batch of 100,000 lines, mcpki.yaml of 10,000 certificates fit). */
export const INPUT_LIMITS = {
  batch: 64 * MIB,
  config: 64 * MIB,
  secret: 64 * KIB,
  pem: 4 * MIB,
} as const;

export interface ReadInputOptions {
  /** what the file is, for messages: "batch file", "mcpki.yaml", "--p12-password-file" */
  what: string;
  maxBytes: number;
  /** the error code for a missing or unreadable file (default INVALID_INPUT) */
  code?: ErrorCode;
  /** the fix, when the file is missing or unreadable */
  hint?: Hint;
  /**
   * A file whose content mcpki acts on with its own privileges (mcpki.yaml: hooks run as the running user):
   * it must belong to the running user or root and not be writable by group or others.
   */
  trusted?: boolean;
}

export function readInputFile(path: string, options: ReadInputOptions): Buffer {
  const chunks: Buffer[] = [];
  readInputPieces(path, options, (piece) => chunks.push(piece), false);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/**
 * readInputFile's checks, its bytes given to `visit` 64 KiB at a time in one buffer reused for each piece
 * (`visit` must be done with a piece when it returns). For a large file read again and again by a
 * long-running process (mcpki.yaml by the service): no allocation of the file's size, which glibc would
 * serve from its heap once it has freed one such block and keep resident afterwards.
 */
export function readInputPieces(
  path: string,
  options: ReadInputOptions,
  visit: (piece: Buffer) => void,
  reuse = true,
): void {
  const code = options.code ?? 'INVALID_INPUT';
  assertNoForeignSymlink(path, options.what);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code ?? 'error';
    const why =
      errno === 'ENOENT'
        ? 'does not exist'
        : errno === 'EACCES'
          ? 'is not readable'
          : errno === 'EISDIR'
            ? 'is a folder'
            : `cannot be read (${errno})`;
    throw new McpkiError(
      code,
      `${options.what} ${path} ${why}`,
      options.hint ?? 'give the path of a readable regular file',
      { cause: error },
    );
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      throw new McpkiError(
        'INVALID_INPUT',
        `${options.what} ${path} is ${describeType(stat)}, not a regular file`,
        'give the path of a regular file',
      );
    }
    if (stat.size > options.maxBytes) {
      throw new McpkiError(
        'INVALID_INPUT',
        `${options.what} ${path} is ${stat.size} bytes; the limit is ${options.maxBytes}`,
        'split the file or check that it is the right one',
      );
    }
    if (options.trusted) assertTrustedOwner(path, stat, options.what);
    readUpTo(fd, path, options, visit, reuse);
  } finally {
    closeSync(fd);
  }
}

export function readInputText(path: string, options: ReadInputOptions): string {
  return readInputFile(path, options).toString('utf8');
}

/** Reads at most maxBytes; a file that grows past the limit while being read is refused as well. */
function readUpTo(
  fd: number,
  path: string,
  options: ReadInputOptions,
  visit: (piece: Buffer) => void,
  reuse: boolean,
): void {
  let total = 0;
  let buffer: Buffer | undefined;
  for (;;) {
    const size = Math.min(64 * KIB, options.maxBytes + 1 - total);
    const chunk = reuse && buffer && buffer.length >= size ? buffer : Buffer.allocUnsafe(size);
    if (reuse) buffer = chunk;
    const n = readSync(fd, chunk, 0, size, null);
    if (n === 0) break;
    total += n;
    if (total > options.maxBytes) {
      throw new McpkiError(
        'INVALID_INPUT',
        `${options.what} ${path} is over ${options.maxBytes} bytes`,
        'split the file or check that it is the right one',
      );
    }
    visit(n === chunk.length ? chunk : chunk.subarray(0, n));
  }
}

function assertTrustedOwner(path: string, stat: { uid: number; mode: number }, what: string): void {
  const me = process.getuid?.() ?? 0;
  if (stat.uid !== me && stat.uid !== 0) {
    throw new McpkiError(
      'UNSAFE_PATH',
      `${what} ${path} belongs to uid ${stat.uid}, not to this user (uid ${me}) or root`,
      `chown ${me} ${path}, after checking its content`,
    );
  }
  if ((stat.mode & 0o022) !== 0) {
    throw new McpkiError(
      'UNSAFE_PATH',
      `${what} ${path} is writable by ${stat.mode & 0o002 ? 'everyone' : 'its group'} (mode ${(stat.mode & 0o7777).toString(8).padStart(4, '0')})`,
      `chmod go-w ${path}, after checking its content`,
    );
  }
}

/**
 * Like the kernel's fs.protected_symlinks, whatever the machine's setting: a symlink on the way to an input
 * file that another user owns (planted in /tmp, say) is refused rather than followed, so that mcpki, often
 * root, never reads for someone a file they could not read themselves. Symlinks of this user or root are
 * followed (and what they point to is checked the same way).
 */
function assertNoForeignSymlink(path: string, what: string): void {
  const me = process.getuid?.() ?? 0;
  let hops = 0;
  const walk = (absolute: string): string => {
    let current: string = sep;
    const parts = absolute.split(sep).filter(Boolean);
    for (let i = 0; i < parts.length; i++) {
      const next = join(current, parts[i]!);
      let stat;
      try {
        stat = lstatSync(next);
      } catch {
        return join(next, ...parts.slice(i + 1)); // missing or unreachable: open() reports it
      }
      if (!stat.isSymbolicLink() || hops >= 40) {
        current = next;
        continue;
      }
      hops++;
      if (stat.uid !== me && stat.uid !== 0) {
        throw new McpkiError(
          'UNSAFE_PATH',
          `${what} ${path}: ${next} is a symlink owned by uid ${stat.uid}, not by this user (uid ${me}) or root`,
          `give the path of the file itself, after checking its content`,
        );
      }
      let target: string;
      try {
        target = readlinkSync(next);
      } catch {
        return absolute; // changed under us: open() reports what is there now
      }
      current = walk(isAbsolute(target) ? target : resolve(dirname(next), target));
    }
    return current;
  };
  walk(resolve(path));
}

function describeType(stat: ReturnType<typeof fstatSync>): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  if (stat.isDirectory()) return 'a folder';
  return 'a special file';
}
