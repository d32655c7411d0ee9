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
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..');
const GROUPS = ['ca', 'issue', 'inventory', 'trust', 'acme', 'renew', 'serve', 'template', 'check'];

/** The functions of node:child_process that mcpki and its bundled packages call; anything else fails the build. */
const LAZY_CHILD_PROCESS = `
let loaded;
const cp = () => (loaded ??= require('node:child_process'));
export function spawn(...args) { return cp().spawn(...args); }
export function spawnSync(...args) { return cp().spawnSync(...args); }
export default { spawn, spawnSync };
`;

const lazyChildProcess: Plugin = {
  name: 'lazy-child-process',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      // the shim itself requires the real module
      args.namespace === 'mcpki-lazy' ? { path: 'node:child_process', external: true } : { path: 'child_process', namespace: 'mcpki-lazy' },
    );
    b.onLoad({ filter: /.*/, namespace: 'mcpki-lazy' }, () => ({ contents: LAZY_CHILD_PROCESS, loader: 'js', resolveDir: dist }));
  },
};

const common: BuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  supported: { 'dynamic-import': false },
  define: { 'import.meta.url': '__mcpkiModuleUrl' },
  banner: { js: "var __mcpkiModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  external: ['acme-client', 'cron', 'yaml'],
  plugins: [lazyChildProcess],
  logLevel: 'warning',
};

await build({ ...common, entryPoints: [join(dist, 'cli', 'main.js')], outfile: join(dist, 'cli.cjs') });
await build({
  ...common,
  entryPoints: GROUPS.map((group) => join(dist, 'cli', 'commands', `${group}.js`)),
  external: [...common.external!, 'commander'],
  outdir: dist,
  entryNames: 'cli-[name]',
  outExtension: { '.js': '.cjs' },
});
