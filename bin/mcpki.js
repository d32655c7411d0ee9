#!/usr/bin/env node
'use strict';
// The command line runs from one bundled CommonJS file, dist/cli.cjs, compiled with V8's code cache
// (dist/cli.cjs.cache, made by `npm run build`) when this Node can use it. Each step removes start-up time
// that a bare `node` does not pay: Node 20's ES module loader, one file per module, re-parsing the bundle.
// See "Start-up cost" in docs/architecture.md.
const { closeSync, fstatSync, openSync, readFileSync, readSync } = require('node:fs');
const { dirname, join } = require('node:path');
const vm = require('node:vm');
const { createRequire } = require('node:module');

const bundle = join(__dirname, '..', 'dist', 'cli.cjs');

/**
 * The cache file: a 4-byte little-endian length, the file name the bundle had when the cache was made, zero
 * bytes up to a multiple of 8, then V8's data (src/cli/bundles.ts writes it). V8 keeps that file name for the
 * code it takes from the cache, so stacks would name the build machine's folder; the name tells which text to
 * replace with the installed path. V8 copies data that does not start on an 8-byte boundary before using it.
 */
function readCache() {
  let file;
  try {
    file = readFileSync(`${bundle}.cache`);
  } catch {
    return {}; // no cache: V8 compiles from source, as require() would
  }
  const length = file.length >= 4 ? file.readUInt32LE(0) : -1;
  const start = (4 + length + 7) & ~7;
  if (length < 0 || start > file.length) return {};
  return { builtAs: file.toString('utf8', 4, 4 + length), cachedData: file.subarray(start) };
}

const WRAP = ['(function (exports, require, module, __filename, __dirname) {', '\n})'];

/**
 * The bundle's text inside the CommonJS wrapper, read into one buffer with the wrapper around it: V8 would
 * otherwise copy the joined text once more to flatten it. esbuild writes ASCII, which becomes a string without
 * UTF-8 decoding; anything else is decoded as UTF-8.
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
    if (at !== end) return WRAP[0] + readFileSync(file, 'utf8') + WRAP[1]; // changed while read
    bytes.write(WRAP[1], end, 'latin1');
    return require('node:buffer').isAscii?.(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function defaultStack(error, frames) {
  let head;
  try {
    head = Error.prototype.toString.call(error);
  } catch {
    head = '<error>';
  }
  return head + frames.map((frame) => `\n    at ${frame}`).join('');
}

/** Stacks name the installed bundle, not the folder the code cache was made in. */
function showInstalledPaths(builtAs, installed) {
  if (!builtAs || builtAs === installed) return;
  const previous = Error.prepareStackTrace;
  Error.prepareStackTrace = (error, frames) => {
    const text = previous ? previous(error, frames) : defaultStack(error, frames);
    return typeof text === 'string' ? text.split(builtAs).join(installed) : text;
  };
}

function loadWithCodeCache() {
  const { builtAs, cachedData } = readCache();
  const script = new vm.Script(readWrapped(bundle), {
    filename: bundle,
    cachedData,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  if (cachedData && !script.cachedDataRejected) showInstalledPaths(builtAs, bundle);
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  return { cli: module.exports, script, bundle };
}

const loaded = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER ? loadWithCodeCache() : { cli: require(bundle) };
module.exports = loaded;
// when the command is done and nothing is left to run, end without tearing down the heap (src/cli/main.ts)
// (the commands then leave an SQLite inventory open: src/cli/command.ts)
if (require.main === module) {
  globalThis[Symbol.for('mcpki.cli.exitsAfterCommand')] = true;
  loaded.cli.main(process.argv).then(() => loaded.cli.exitWhenIdle?.());
}
