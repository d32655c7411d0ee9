// Loading a command group's bundle (dist/cli-GROUP.cjs) with V8's code cache (dist/cli-GROUP.cjs.cache, made
// by `npm run build`), as bin/mcpki.js loads dist/cli.cjs: V8 then neither parses the bundle's text nor
// compiles the functions the build's warm-up ran. A cache that does not match the bundle or this V8 is
// ignored by V8 (the bundle is compiled from source, as require() would). See "Start-up cost" in
// docs/architecture.md.
import * as buffer from 'node:buffer';
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vm from 'node:vm';
import * as commander from 'commander';

/** One bundle loaded by this process: its exports, and the script V8 compiled (for the cache build). */
export interface LoadedBundle {
  file: string;
  exports: unknown;
  script?: vm.Script;
}

const loaded = new Map<string, LoadedBundle>();

/** Every bundle this process loaded through `loadBundle`, in load order. */
export function loadedBundles(): LoadedBundle[] {
  return [...loaded.values()];
}

/** Where V8's data starts in a cache file whose name takes `length` bytes: the next multiple of 8 after it. */
function dataStart(length: number): number {
  return (4 + length + 7) & ~7;
}

/**
 * The cache file's layout (shared with bin/mcpki.js and the batch worker's loader): a 4-byte little-endian
 * length, the bundle's path at build time, zero bytes up to a multiple of 8, V8's data. V8 copies cached data
 * that does not start on an 8-byte boundary before reading it (a file read lands on one).
 */
export function encodeCache(builtAs: string, data: Buffer): Buffer {
  const name = Buffer.from(builtAs, 'utf8');
  const head = Buffer.alloc(dataStart(name.length));
  head.writeUInt32LE(name.length, 0);
  name.copy(head, 4);
  return Buffer.concat([head, data]);
}

function readCache(file: string): { builtAs?: string; cachedData?: Buffer } {
  let data: Buffer;
  try {
    data = readFileSync(`${file}.cache`);
  } catch {
    return {};
  }
  const length = data.length >= 4 ? data.readUInt32LE(0) : -1;
  if (length < 0 || dataStart(length) > data.length) return {};
  return { builtAs: data.toString('utf8', 4, 4 + length), cachedData: data.subarray(dataStart(length)) };
}

const renamed: Array<[string, string]> = [];

/** Code from a cache keeps the build folder's file name in its stack frames: show the installed one. */
function showInstalledPath(builtAs: string, installed: string): void {
  if (renamed.length === 0) {
    const previous = Error.prepareStackTrace;
    Error.prepareStackTrace = (error, frames) => {
      let text: unknown = previous
        ? previous(error, frames)
        : `${safeHead(error)}${frames.map((frame) => `\n    at ${frame}`).join('')}`;
      if (typeof text === 'string') for (const [from, to] of renamed) text = (text as string).split(from).join(to);
      return text;
    };
  }
  renamed.push([builtAs, installed]);
}

function safeHead(error: Error): string {
  try {
    return Error.prototype.toString.call(error);
  } catch {
    return '<error>';
  }
}

/**
 * The group bundles are built with commander external (src/cli/build-bundles.ts): they get the copy this
 * bundle already evaluated, so one process has one commander.
 */
function requireFor(file: string): NodeJS.Require {
  const real = createRequire(file);
  return Object.assign((id: string) => (id === 'commander' ? commander : real(id)), real);
}

const WRAP = ['(function (exports, require, module, __filename, __dirname) {', '\n})'] as const;

/** Text esbuild wrote as ASCII (escapes) becomes a string without UTF-8 decoding; anything else is decoded as UTF-8. */
function sourceText(bytes: Buffer): string {
  const isAscii = (buffer as { isAscii?: (input: Buffer) => boolean }).isAscii;
  return isAscii?.(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
}

/**
 * The bundle's text inside the CommonJS wrapper (bin/mcpki.js's), read into one buffer with the wrapper around
 * it: V8 would otherwise copy the joined text once more to flatten it.
 */
function readWrapped(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const end = WRAP[0].length + size;
    const bytes = Buffer.allocUnsafeSlow(end + WRAP[1].length);
    bytes.write(WRAP[0], 0, 'latin1');
    let at = WRAP[0].length;
    for (let read = 1; at < end && read > 0; at += read) read = readSync(fd, bytes, at, end - at, null);
    if (at !== end) return `${WRAP[0]}${sourceText(readFileSync(file))}${WRAP[1]}`; // changed while read
    bytes.write(WRAP[1], end, 'latin1');
    return sourceText(bytes);
  } finally {
    closeSync(fd);
  }
}

/** Loads a CommonJS bundle once per process, with its code cache when V8 accepts it. */
export function loadBundle(file: string): unknown {
  const known = loaded.get(file);
  if (known) return known.exports;
  const entry: LoadedBundle = { file, exports: undefined };
  if (!vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER) {
    entry.exports = createRequire(file)(file); // (its require finds commander in node_modules: a second copy, same behaviour)
  } else {
    const { builtAs, cachedData } = readCache(file);
    const script = new vm.Script(readWrapped(file), {
      filename: file,
      cachedData,
      importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    });
    if (cachedData && !script.cachedDataRejected && builtAs && builtAs !== file) showInstalledPath(builtAs, file);
    const module = { exports: {} as unknown };
    (script.runInThisContext() as (...args: unknown[]) => void)(
      module.exports,
      requireFor(file),
      module,
      file,
      dirname(file),
    );
    entry.exports = module.exports;
    entry.script = script;
  }
  loaded.set(file, entry);
  return entry.exports;
}

/** A bundle beside the running one (dist/cli.cjs): dist/NAME. */
export function besideThisBundle(name: string): string {
  return fileURLToPath(new URL(`./${name}`, import.meta.url));
}
