// Build step: runs the bundled CLI through its common commands in a throw-away home, then saves V8's code
// cache for the bundle next to it (dist/cli.cjs.cache). bin/mcpki.js hands the cache to V8, which uses it
// when the bundle and the V8 version match and silently ignores it otherwise.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Script } from 'node:vm';

const require = createRequire(import.meta.url);
const loaded = require('../../bin/mcpki.js') as { cli: { main(argv: string[]): Promise<void> }; script?: Script };
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
  const path = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'cli.cjs.cache');
  const data = loaded.script.createCachedData();
  writeFileSync(path, data);
  process.exitCode = 0;
  console.log(`code cache: ${data.length} bytes written to ${path}`);
}
