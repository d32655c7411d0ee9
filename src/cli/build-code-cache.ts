// Build step: runs the bundled CLI through its common commands in a throw-away home, then saves V8's code
// cache for dist/cli.cjs and for each command group's bundle it loaded (dist/cli-GROUP.cjs.cache).
// bin/mcpki.js and src/cli/bundles.ts hand a cache to V8, which uses it when the bundle and the V8 version
// match and silently ignores it otherwise. Each file starts with the name the bundle had here (a 4-byte
// length, then UTF-8), which V8 bakes into the cached code's stacks.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';
import type { BundleLoader } from './bundles.js';

interface Cli {
  main(argv: string[]): Promise<void>;
  loadedBundles?: () => Array<{ file: string; script?: Script }>;
}

/**
 * Batch issuance's worker bundle (dist/pki/batch-worker.cjs), run here as src/pki/batch-pool.ts runs it in a
 * worker (the same wrapped text, so V8 takes the cache there), then made to sign a few certificates with a
 * throw-away key into a temp folder, so the cache holds the signing code compiled as well.
 */
function warmWorkerBundle(file: string): Script {
  // test/batch-worker-cache.test.js checks that V8 takes the cache for the text the worker's loader compiles
  const script = new Script(loader.readWrapped(file), { filename: file });
  const module = { exports: {} as Record<string, unknown> };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  const makeLeaves = module.exports.makeLeaves as (ca: unknown, plans: unknown[], now: number) => unknown[];
  const dir = mkdtempSync(join(tmpdir(), 'mcpki-worker-cache-'));
  try {
    const ca = {
      signer: {
        key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
        subject: Buffer.from('3000', 'hex'),
        keyId: Buffer.alloc(20),
        permitted: { dns: [], ip: [], uri: [], email: [] },
        cert: { validTo: new Date(Date.now() + 86_400_000 * 365).toISOString() },
      },
      pem: '',
      der: Buffer.alloc(0),
      rootPem: '',
    };
    const plans = ['server', 'client'].map((kind, i) => ({
      kind,
      name: `warm-${i}`,
      sans: [{ type: 'dns', value: `warm-${i}.localhost` }],
      keyType: 'ec-p256',
      days: 30,
      paths: {
        cert: join(dir, `warm-${i}.crt`),
        key: join(dir, `warm-${i}.key`),
        fullchain: join(dir, `warm-${i}.fullchain.pem`),
        ca: i === 0 ? join(dir, 'ca.crt') : undefined,
      },
    }));
    makeLeaves(ca, plans, Date.now());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return script;
}

const require = createRequire(import.meta.url);
const loader = require('../../bin/load-bundle.js') as BundleLoader;
const dist = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
// compile from source: code taken from an older cache would keep that cache's file name
for (const name of readdirSync(dist)) if (name.endsWith('.cjs.cache')) rmSync(join(dist, name), { force: true });
const loaded = require('../../bin/mcpki.js') as { cli: Cli; script?: Script; bundle?: string };
if (!loaded.script) {
  console.log('code cache: this Node cannot use it; skipped');
} else {
  const home = mkdtempSync(join(tmpdir(), 'mcpki-code-cache-'));
  const config = join(home, 'warm.yaml');
  writeFileSync(config, 'version: 1\ncertificates:\n  - name: warm-apply\n    names: [warm-apply.localhost]\n');
  let cliCache: Buffer | undefined;
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    for (const args of [
      ['init'],
      ['issue', 'server', 'warm', 'warm.localhost', '127.0.0.1'],
      ['issue', 'client', 'warm-client'],
      ['list'],
      ['list', '--json'],
      ['show', 'warm'],
      ['events'],
      ['template', 'list'],
      ['apply', '-c', config],
      ['renew', '--dry-run', '-c', config],
      ['--version'],
    ]) {
      await loaded.cli.main(['node', 'mcpki', '--home', home, ...args]);
    }
    // dist/cli.cjs's cache is taken now: what the help text compiles would make every start read a larger cache
    cliCache = loaded.script.createCachedData();
    // the other groups (trust, acme, serve, check): their registration at least
    await loaded.cli.main(['node', 'mcpki', '--home', home, '--help']);
  } finally {
    process.stdout.write = write;
    rmSync(home, { recursive: true, force: true });
  }
  const encode = loader.encodeCache;
  const made: string[] = [];
  const save = (file: string, data: Buffer) => {
    writeFileSync(`${file}.cache`, encode(file, data));
    made.push(`${file.slice(dist.length + 1)} ${Math.round(data.length / 1024)} KiB`);
  };
  save(loaded.bundle!, cliCache!);
  for (const bundle of loaded.cli.loadedBundles?.() ?? [])
    if (bundle.script) save(bundle.file, bundle.script.createCachedData());
  const worker = join(dist, 'pki', 'batch-worker.cjs');
  if (existsSync(worker)) save(worker, warmWorkerBundle(worker).createCachedData());
  process.exitCode = 0;
  console.log(`code cache: ${made.join(', ')}`);
}
