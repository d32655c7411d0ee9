#!/usr/bin/env node
'use strict';
// The command line runs from one bundled CommonJS file, dist/cli.cjs, compiled with V8's code cache
// (dist/cli.cjs.cache, made by `npm run build`) when this Node can use it. Each step removes start-up time
// that a bare `node` does not pay: Node 20's ES module loader, one file per module, re-parsing the bundle.
// See "Start-up cost" in docs/architecture.md.
const { join } = require('node:path');
const { canUseCodeCache, runBundle } = require('./load-bundle.js');

const bundle = join(__dirname, '..', 'dist', 'cli.cjs');

function loadWithCodeCache() {
  const { exports, script } = runBundle(bundle, { dynamicImport: true });
  return { cli: exports, script, bundle };
}

const loaded = canUseCodeCache ? loadWithCodeCache() : { cli: require(bundle) };
module.exports = loaded;
// when the command is done and nothing is left to run, end without tearing down the heap (src/cli/main.ts)
// (the commands then leave an SQLite inventory open: src/cli/command.ts)
if (require.main === module) {
  globalThis[Symbol.for('mcpki.cli.exitsAfterCommand')] = true;
  loaded.cli.main(process.argv).then(() => loaded.cli.exitWhenIdle?.());
}
