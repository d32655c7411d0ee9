'use strict';
// Running one of mcpki's CommonJS bundles (dist/*.cjs) from V8's code cache (FILE.cache, made by `npm run build`:
// src/cli/build-code-cache.ts): bin/mcpki.js runs dist/cli.cjs with it, src/cli/bundles.ts each command group's
// bundle, src/pki/batch-pool.ts the batch worker's bundle in each worker. V8 then neither parses the bundle's text
// nor compiles the functions the build's warm-up ran; a cache that does not fit the text or this V8 is ignored
// (the bundle is compiled from source, as require() would). Plain JavaScript, beside bin/mcpki.js: it runs before
// any bundle exists in the process. See "Start-up cost" in docs/architecture.md.
const { closeSync, fstatSync, openSync, readFileSync, readSync } = require('node:fs');
const { dirname } = require('node:path');
const vm = require('node:vm');
// Module.createRequire of the module system that loaded this file: require('node:module') would also load Node's
// ES module loader and its source-map support, ~0.7 ms at every start that no bundle here needs
const createRequire = module.constructor.createRequire || require('node:module').createRequire;

/** The CommonJS wrapper around a bundle's text: the build compiles the same text for the cache. */
const WRAP = ['(function (exports, require, module, __filename, __dirname) {', '\n})'];

/** Whether this Node can run a script from a code cache with dynamic import() (Node 20.12 and later do). */
const canUseCodeCache = Boolean(vm.constants && vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER);

/** Where V8's data starts in a cache file whose name takes `length` bytes: the next multiple of 8 after it. */
function dataStart(length) {
  return (4 + length + 7) & ~7;
}

/**
 * The cache file: a 4-byte little-endian length, the file name the bundle had when the cache was made, zero
 * bytes up to a multiple of 8, then V8's data. V8 keeps that file name for the code it takes from the cache, so
 * stacks would name the build machine's folder; the name tells which text to replace with the installed path.
 * V8 copies cached data that does not start on an 8-byte boundary before reading it (a file read lands on one).
 */
function encodeCache(builtAs, data) {
  const name = Buffer.from(builtAs, 'utf8');
  const head = Buffer.alloc(dataStart(name.length));
  head.writeUInt32LE(name.length, 0);
  name.copy(head, 4);
  return Buffer.concat([head, data]);
}

/** The name and V8's data of FILE.cache; nothing when there is no such file or it is too short. */
function readCache(file) {
  let data;
  try {
    data = readFileSync(`${file}.cache`);
  } catch {
    return {}; // no cache: V8 compiles from source
  }
  const length = data.length >= 4 ? data.readUInt32LE(0) : -1;
  if (length < 0 || dataStart(length) > data.length) return {};
  return { builtAs: data.toString('utf8', 4, 4 + length), cachedData: data.subarray(dataStart(length)) };
}

/** Text esbuild wrote as ASCII (escapes) becomes a string without UTF-8 decoding; anything else is decoded. */
function sourceText(bytes) {
  const { isAscii } = require('node:buffer');
  return isAscii && isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
}

/**
 * The bundle's text inside the CommonJS wrapper, read into one buffer with the wrapper around it: V8 would
 * otherwise copy the joined text once more to flatten it.
 */
function readWrapped(file) {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const end = WRAP[0].length + size;
    const bytes = Buffer.allocUnsafeSlow(end + WRAP[1].length);
    bytes.write(WRAP[0], 0, 'latin1');
    let at = WRAP[0].length;
    for (let read = 1; at < end && read > 0; at += read) read = readSync(fd, bytes, at, end - at, null);
    if (at !== end) return WRAP[0] + sourceText(readFileSync(file)) + WRAP[1]; // changed while read
    bytes.write(WRAP[1], end, 'latin1');
    return sourceText(bytes);
  } finally {
    closeSync(fd);
  }
}

/** [name at build time, installed name] of each bundle run from a cache made elsewhere */
const renamed = [];

function defaultStack(error, frames) {
  let head;
  try {
    head = Error.prototype.toString.call(error);
  } catch {
    head = '<error>';
  }
  return head + frames.map((frame) => `\n    at ${frame}`).join('');
}

/** Stacks name the installed bundle, not the folder the code cache was made in (one hook for every bundle). */
function showInstalledPath(builtAs, installed) {
  if (!builtAs || builtAs === installed) return;
  if (renamed.length === 0) {
    const previous = Error.prepareStackTrace;
    Error.prepareStackTrace = (error, frames) => {
      let text = previous ? previous(error, frames) : defaultStack(error, frames);
      if (typeof text === 'string') for (const [from, to] of renamed) text = text.split(from).join(to);
      return text;
    };
  }
  renamed.push([builtAs, installed]);
}

/**
 * Compiles FILE (with its cache when V8 takes it) and runs it as a CommonJS module: its exports, and the script
 * (whose createCachedData() the build saves). `require` is the one the bundle gets (default: one for FILE);
 * `dynamicImport`: the bundle may call import() (the command bundles; not the worker's).
 */
function runBundle(file, options = {}) {
  const { builtAs, cachedData } = readCache(file);
  const script = new vm.Script(readWrapped(file), {
    filename: file,
    cachedData,
    ...(options.dynamicImport ? { importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER } : {}),
  });
  if (cachedData && !script.cachedDataRejected) showInstalledPath(builtAs, file);
  const module = { exports: {} };
  script.runInThisContext()(module.exports, options.require || createRequire(file), module, file, dirname(file));
  return { exports: module.exports, script };
}

module.exports = { canUseCodeCache, createRequire, encodeCache, readWrapped, runBundle };
// the command bundles find this loader here (src/cli/bundles.ts), not through a require of their own
globalThis[Symbol.for('mcpki.bundleLoader')] = module.exports;
