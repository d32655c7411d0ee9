#!/usr/bin/env node
'use strict';
// The command line runs from one bundled CommonJS file, dist/cli.cjs, compiled with V8's code cache
// (dist/cli.cjs.cache, made by `npm run build`) when this Node can use it. Each step removes start-up time
// that a bare `node` does not pay: Node 20's ES module loader, one file per module, re-parsing the bundle.
// See "Start-up cost" in docs/architecture.md.
const { readFileSync } = require('node:fs');
const { dirname, join } = require('node:path');
const vm = require('node:vm');
const { createRequire } = require('node:module');

const bundle = join(__dirname, '..', 'dist', 'cli.cjs');

function loadWithCodeCache() {
  let cachedData;
  try {
    cachedData = readFileSync(`${bundle}.cache`);
  } catch {
    // no cache: V8 compiles from source, as require() would
  }
  const source = readFileSync(bundle, 'utf8');
  const wrapper = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const script = new vm.Script(wrapper, {
    filename: bundle,
    cachedData,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  return { cli: module.exports, script };
}

const loaded = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER ? loadWithCodeCache() : { cli: require(bundle) };
module.exports = loaded;
if (require.main === module) loaded.cli.main(process.argv);
