// Loading a command group's bundle (dist/cli-GROUP.cjs) once per process, with V8's code cache
// (dist/cli-GROUP.cjs.cache, made by `npm run build`), through bin/load-bundle.js as bin/mcpki.js loads
// dist/cli.cjs. See "Start-up cost" in docs/architecture.md.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
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

/**
 * The group bundles are built with commander external (src/cli/build-bundles.ts): they get the copy this
 * bundle already evaluated, so one process has one commander.
 */
function requireFor(loader: BundleLoader, file: string): NodeJS.Require {
  const real = loader.createRequire(file);
  return Object.assign((id: string) => (id === 'commander' ? commander : real(id)), real);
}

/** What bin/load-bundle.js exports (the one reader of bundles and their code cache; the build uses it too). */
export interface BundleLoader {
  canUseCodeCache: boolean;
  createRequire(file: string): NodeJS.Require;
  encodeCache(builtAs: string, data: Buffer): Buffer;
  readWrapped(file: string): string;
  runBundle(
    file: string,
    options: { require?: NodeJS.Require; dynamicImport?: boolean },
  ): { exports: unknown; script: vm.Script };
}

/**
 * bin/load-bundle.js, which registers itself when loaded (bin/mcpki.js and the build load it before any bundle
 * runs); otherwise that of the installation `file` belongs to (every bundle is in its dist/).
 */
function loaderFor(file: string): BundleLoader {
  const registered = (globalThis as Record<symbol, unknown>)[Symbol.for('mcpki.bundleLoader')];
  if (registered) return registered as BundleLoader;
  return createRequire(file)(join(dirname(dirname(file)), 'bin', 'load-bundle.js')) as BundleLoader;
}

/** Loads a CommonJS bundle once per process, with its code cache when V8 accepts it. */
export function loadBundle(file: string): unknown {
  const known = loaded.get(file);
  if (known) return known.exports;
  const entry: LoadedBundle = { file, exports: undefined };
  const loader = loaderFor(file);
  if (!loader.canUseCodeCache) {
    entry.exports = loader.createRequire(file)(file); // (its require finds commander in node_modules: a second copy, same behaviour)
  } else {
    const { exports, script } = loader.runBundle(file, { require: requireFor(loader, file), dynamicImport: true });
    entry.exports = exports;
    entry.script = script;
  }
  loaded.set(file, entry);
  return entry.exports;
}

/** A bundle beside the running one (dist/cli.cjs): dist/NAME. */
export function besideThisBundle(name: string): string {
  return fileURLToPath(new URL(`./${name}`, import.meta.url));
}
