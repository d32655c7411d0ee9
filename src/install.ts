// An installation that is missing a piece (`npm install --ignore-scripts`, pnpm without approved build
// scripts, a node_modules copied from another Node version) fails when the piece is first loaded. That is
// not a broken inventory nor a bug in mcpki: say which package is incomplete and how to complete it.
import { McpkiError } from './errors.js';

/** Packages mcpki loads at run time, and whether they carry a native addon that must be built. */
const PACKAGES: Record<string, { native: boolean }> = {
  'better-sqlite3': { native: true },
  'acme-client': { native: false },
  cron: { native: false },
  yaml: { native: false },
};

function packageNamed(text: string): string | undefined {
  return Object.keys(PACKAGES).find(
    (name) =>
      text.includes(`'${name}'`) ||
      text.includes(`"${name}"`) ||
      text.includes(`/${name}/`) ||
      text.includes(name.replace('-', '_')),
  );
}

/**
 * The McpkiError (INSTALL_INCOMPLETE, exit 23) for an error that says a package or its native addon could
 * not be loaded; undefined for any other error.
 */
export function installError(error: unknown): McpkiError | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const message = error.message;
  // `bindings` (better-sqlite3's loader) found no built addon
  const missingAddon = /Could not locate the bindings file/.test(message);
  // an addon built for another Node (NODE_MODULE_VERSION) or another platform, or a truncated one
  const badAddon =
    code === 'ERR_DLOPEN_FAILED' || /NODE_MODULE_VERSION|invalid ELF header|wrong ELF class/.test(message);
  const missingModule = code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND';
  if (!missingAddon && !badAddon && !missingModule) return undefined;
  const name = packageNamed(message) ?? (missingAddon ? 'better-sqlite3' : undefined);
  if (!name) return undefined;
  if (PACKAGES[name]!.native && (missingAddon || badAddon)) {
    return new McpkiError(
      'INSTALL_INCOMPLETE',
      `the native module of ${name} is ${missingAddon ? 'missing (it was never built)' : 'not built for this Node.js'}; mcpki's installation is incomplete`,
      `build it in mcpki's installation folder: npm rebuild ${name} (pnpm: pnpm rebuild ${name}; it needs python3, make and a C++ compiler, or a prebuilt binary download)`,
      { cause: error },
    );
  }
  return new McpkiError(
    'INSTALL_INCOMPLETE',
    `the package ${name} is missing from mcpki's installation`,
    `reinstall mcpki (npm install -g mcpki), or run npm install in its folder`,
    { cause: error },
  );
}
