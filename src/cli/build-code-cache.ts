// Build step: runs the bundled CLI through its common commands in a throw-away home, then saves V8's code
// cache for the bundle next to it (dist/cli.cjs.cache). bin/mcpki.js hands the cache to V8, which uses it
// when the bundle and the V8 version match and silently ignores it otherwise. The file starts with the name
// the bundle had here (a 4-byte length, then UTF-8), which V8 bakes into the cached code's stacks.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Script } from 'node:vm';

const require = createRequire(import.meta.url);
const path = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'cli.cjs.cache');
// compile from source: code taken from an older cache would keep that cache's file name
rmSync(path, { force: true });
const loaded = require('../../bin/mcpki.js') as { cli: { main(argv: string[]): Promise<void> }; script?: Script; bundle?: string };
if (!loaded.script) {
  console.log('code cache: this Node cannot use it; skipped');
} else {
  const home = mkdtempSync(join(tmpdir(), 'mcpki-code-cache-'));
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    for (const args of [['init'], ['issue', 'server', 'warm', 'warm.localhost', '127.0.0.1'], ['issue', 'client', 'warm-client'], ['list'], ['show', 'warm'], ['--version']]) {
      await loaded.cli.main(['node', 'mcpki', '--home', home, ...args]);
    }
  } finally {
    process.stdout.write = write;
    rmSync(home, { recursive: true, force: true });
  }
  const data = loaded.script.createCachedData();
  // V8 keeps the file name the script was compiled with for code taken from the cache: record it first, so
  // that bin/mcpki.js can show the installed path in stacks instead of this build folder
  const name = Buffer.from(loaded.bundle ?? '', 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(name.length, 0);
  writeFileSync(path, Buffer.concat([length, name, data]));
  process.exitCode = 0;
  console.log(`code cache: ${data.length} bytes written to ${path}`);
}
