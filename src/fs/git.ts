// Private keys must never reach version control: refuse to write one inside a git work tree unless git
// ignores that path. The check runs on the real path: `--out link` where link points into a repository is
// inside that repository.
import { spawnSync } from 'node:child_process';
import { childEnv } from '../process/env.js';
import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { McpkiError, fix } from '../errors.js';

/** The path with every symlink on the way resolved: realpath of the nearest existing folder, plus the rest. */
export function realPathOf(path: string, hops = 0): string {
  const absolute = resolve(path);
  const rest: string[] = [];
  for (let current = absolute; ; current = dirname(current)) {
    try {
      return join(realpathSync(current), ...rest);
    } catch {
      // a dangling symlink (its target is created later) still decides where the file lands
      if (hops < 40 && isSymlink(current))
        return join(realPathOf(resolve(dirname(current), readlinkSync(current)), hops + 1), ...rest);
      if (dirname(current) === current) return absolute;
      rest.unshift(basename(current));
    }
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() ?? false;
  } catch {
    return false;
  }
}

/** The work tree that contains `path` (walking up from the nearest existing folder), if any. */
export function findWorkTree(path: string): string | undefined {
  let dir = dirname(realPathOf(path));
  for (;;) {
    if (existsSync(join(dir, '.git'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

export function assertKeyPathOutsideGit(keyPath: string): void {
  const real = realPathOf(keyPath);
  const workTree = findWorkTree(real);
  if (!workTree) return;
  const result = spawnSync('git', ['-C', workTree, 'check-ignore', '-q', '--no-index', '--', real], {
    stdio: 'ignore',
    env: childEnv(),
  });
  if (result.status === 0) return; // ignored: fine
  const why = result.error ? 'git is not available to check .gitignore' : 'it is not git-ignored';
  const shown = real === resolve(keyPath) ? keyPath : `${keyPath} (really ${real})`;
  throw new McpkiError(
    'GIT_TRACKED_PATH',
    `refusing to write private key ${shown} inside git work tree ${workTree}: ${why}`,
    fix('add the path to .gitignore, choose another {--out DIR|path}, or pass {--allow-git}'),
  );
}
