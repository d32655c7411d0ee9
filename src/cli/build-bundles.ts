// Build step (`npm run bundle`, after tsc): the command line as CommonJS bundles, dist/cli.cjs (commander,
// output, errors) and one dist/cli-GROUP.cjs per command group, loaded when argv names the group
// (src/cli/main.ts, src/cli/bundles.ts). Two things esbuild's command line cannot say, each measured with
// bench/run.js (see "Start-up cost" in docs/architecture.md):
// - node:child_process (with net, stream, dgram behind it) is loaded when first called, not when a bundle
//   starts: commander requires it for executable subcommands mcpki does not have, and most commands never
//   spawn anything;
// - the group bundles take commander from dist/cli.cjs (src/cli/bundles.ts hands it over) instead of
//   evaluating a second copy.
import { build, type BuildOptions, type Plugin } from 'esbuild';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..');
const GROUPS = [
  'ca',
  'issue',
  'inventory',
  'trust',
  'acme',
  'acme-server',
  'renew',
  'serve',
  'template',
  'check',
  'sign',
  'forget',
  'store',
  'completion',
];

/** The functions of node:child_process that mcpki and its bundled packages call; anything else fails the build. */
const LAZY_CHILD_PROCESS = `
let loaded;
const cp = () => (loaded ??= require('node:child_process'));
export function spawn(...args) { return cp().spawn(...args); }
export function spawnSync(...args) { return cp().spawnSync(...args); }
export default { spawn, spawnSync };
`;

/**
 * The yaml package (about 60 files from node_modules, no code cache) is needed only to parse mcpki.yaml, and
 * apply, renew and serve mostly read the parsed form from HOME/cache: loaded at the first call. Only what
 * src/config imports; anything else fails the build. The classes are constructed through the real ones.
 */
const LAZY_YAML = `
let loaded;
const y = () => (loaded ??= require('yaml'));
export function parseDocument(...args) { return y().parseDocument(...args); }
export function visit(...args) { return y().visit(...args); }
export function isAlias(node) { return y().isAlias(node); }
export function isMap(node) { return y().isMap(node); }
export function isScalar(node) { return y().isScalar(node); }
export function isSeq(node) { return y().isSeq(node); }
export class LineCounter { constructor(...args) { return new (y().LineCounter)(...args); } }
export class Scalar { constructor(...args) { return new (y().Scalar)(...args); } }
`;

/** `import … from 'NAME'` in a bundle gets `shim` instead, and the shim's own require gets the real module. */
function lazy(pattern: RegExp, name: string, real: string, shim: string): Plugin {
  return {
    name: `lazy-${name}`,
    setup(b) {
      b.onResolve({ filter: pattern }, (args) =>
        args.namespace === `mcpki-lazy-${name}`
          ? { path: real, external: true }
          : { path: name, namespace: `mcpki-lazy-${name}` },
      );
      b.onLoad({ filter: /.*/, namespace: `mcpki-lazy-${name}` }, () => ({
        contents: shim,
        loader: 'js',
        resolveDir: dist,
      }));
    },
  };
}

/**
 * A Node built-in loaded when one of its exports is first used, not when a bundle starts: node:crypto (not in
 * Node's start-up snapshot; `list`, `show` and `--version` use none of it) and node:worker_threads (the
 * PostgreSQL store and batch issuance start workers; its internals cost more than the rest of `show`). The
 * stand-in is CommonJS with one getter per export, named here from the real module: the bundle reads
 * `crypto.X509Certificate` when it runs that line (esbuild keeps the property access), so classes,
 * `instanceof` and every export work unchanged.
 */
function lazyBuiltin(name: string): Plugin {
  const exports = Object.keys(createRequire(import.meta.url)(`node:${name}`) as object).filter(
    (key) => key !== 'default',
  );
  // The getters sit on the stand-in's prototype: esbuild's __toESM, run at every file that imports the module,
  // makes an object with that same prototype and copies only own properties (with one getter per export on the
  // stand-in itself it copied ~70 getters for node:crypto at each of 11 files, ~0.5 ms of start-up).
  const shim = `
let loaded;
const real = () => (loaded ??= require('node:${name}'));
const exported = {};
for (const key of ${JSON.stringify(exports)})
  Object.defineProperty(exported, key, { enumerable: true, get: () => real()[key] });
module.exports = Object.create(exported);
`;
  return lazy(new RegExp(`^(node:)?${name}$`), name, `node:${name}`, shim);
}

const lazyCrypto = lazyBuiltin('crypto');
const lazyWorkers = lazyBuiltin('worker_threads');
// node:os: the inventory's hostname (locks) and the home's homedir, neither needed by list or show
const lazyOs = lazyBuiltin('os');
// node:tls and node:net (with the stream library behind them): the service, checks and ACME use them, a renewal
// plan and most commands never do (`renew --dry-run` loaded tls, net and 20 more modules at start-up)
const lazyTls = lazyBuiltin('tls');
const lazyNet = lazyBuiltin('net');
const lazyHttp = lazyBuiltin('http');
const lazyHttps = lazyBuiltin('https');
// node:module brings Node's ES module loader and source-map support (~0.7 ms); the bundles call createRequire
// only for a batch's workers and V8 flags, and bundles.ts takes bin/load-bundle.js's
const lazyModule = lazyBuiltin('module');
// node:v8 brings three more of Node's modules; only `issue batch` (its V8 flag) and the service use it
const lazyV8 = lazyBuiltin('v8');

const lazyChildProcess = lazy(/^(node:)?child_process$/, 'child_process', 'node:child_process', LAZY_CHILD_PROCESS);
const lazyYaml = lazy(/^yaml$/, 'yaml', 'yaml', LAZY_YAML);

const common: BuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  supported: { 'dynamic-import': false },
  // import.meta.url is made on first use: most commands never ask, and pathToFileURL costs start-up time
  define: { 'import.meta.url': '__mcpkiModule.url' },
  banner: {
    js: "var __mcpkiModule = { get url() { return require('node:url').pathToFileURL(__filename).href; } };",
  },
  external: ['acme-client', 'cron', 'yaml'],
  plugins: [
    lazyChildProcess,
    lazyYaml,
    lazyCrypto,
    lazyWorkers,
    lazyOs,
    lazyTls,
    lazyNet,
    lazyHttp,
    lazyHttps,
    lazyModule,
    lazyV8,
  ],
  // names stay (stacks keep them); without indentation and comments the text each start reads and copies is
  // 25-45% smaller (dist/cli.cjs 157 -> 84 KB): 55-65 fewer page faults per command here
  minifyWhitespace: true,
  logLevel: 'warning',
};

await build({ ...common, entryPoints: [join(dist, 'cli', 'main.js')], outfile: join(dist, 'cli.cjs') });
const groupBundles = (groups: string[], plugins: Plugin[]) =>
  build({
    ...common,
    plugins,
    entryPoints: groups.map((group) => join(dist, 'cli', 'commands', `${group}.js`)),
    external: [...common.external!, 'commander'],
    outdir: dist,
    entryNames: 'cli-[name]',
    outExtension: { '.js': '.cjs' },
  });
// `mcpki serve` keeps yaml loaded from the start: with the stand-in, the service holding 2,000 certificates sat
// at 81 MB resident 15 s after its first check instead of 75 MB (measured twice each), although it never
// loaded yaml (its mcpki.yaml came from HOME/cache)
await groupBundles(
  GROUPS.filter((group) => group !== 'serve'),
  [
    lazyChildProcess,
    lazyYaml,
    lazyCrypto,
    lazyWorkers,
    lazyOs,
    lazyTls,
    lazyNet,
    lazyHttp,
    lazyHttps,
    lazyModule,
    lazyV8,
  ],
);
await groupBundles(['serve'], [lazyChildProcess, lazyCrypto, lazyWorkers, lazyOs, lazyModule]);
/** A worker thread's code as one CommonJS file beside its compiled module. */
const workerBundle = (from: string, external: string[] = []) =>
  build({
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    entryPoints: [join(dist, `${from}.js`)],
    outfile: join(dist, `${from}.cjs`),
    external,
    minifyWhitespace: true,
    logLevel: 'warning',
  });
// The PostgreSQL worker with pg inside, one file: 30 ms less CPU per start than importing pg's ~40 files
// (median of 20 starts each, 169 ms against 199 ms; a worker that loads nothing takes 93 ms). It has no code
// cache yet; batch issuance's worker below shows how one is loaded in a worker (src/pki/batch-pool.ts).
await workerBundle(join('store', 'postgres-worker'), ['pg-native']);
// Batch issuance's worker (src/pki/batch-worker.ts), one file that src/pki/batch-pool.ts compiles with V8's code
// cache (made by build-code-cache.ts): as an ES module, each worker started Node's ES module loader and
// compiled its ~15 modules from source (node:child_process among them, which the worker never calls).
await workerBundle(join('pki', 'batch-worker'));

// A package in a bundle that requires node:child_process (CommonJS) gets the stand-in as well, and would get
// `undefined` for a function the stand-in lacks: refuse to finish the build instead.
for (const name of readdirSync(dist)) {
  if (!/^cli(-\w+)?\.cjs$/.test(name)) continue;
  const text = readFileSync(join(dist, name), 'utf8');
  for (const match of text.matchAll(/\bchildProcess\d*\.(\w+)/g)) {
    if (match[1] !== 'spawn' && match[1] !== 'spawnSync')
      throw new Error(
        `${name} calls child_process.${match[1]}, which the stand-in in src/cli/build-bundles.ts lacks: add it there`,
      );
  }
}
