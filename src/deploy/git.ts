// Private keys must never reach version control: refuse to write one inside a git work tree unless git
// ignores that path.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { McpkiError } from '../errors.js';

/** The work tree that contains `path` (walking up from the nearest existing folder), if any. */
export function findWorkTree(path: string): string | undefined {
  let dir = resolve(dirname(path));
  for (;;) {
    if (existsSync(join(dir, '.git'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

export function assertKeyPathOutsideGit(keyPath: string): void {
  const workTree = findWorkTree(keyPath);
  if (!workTree) return;
  const result = spawnSync('git', ['-C', workTree, 'check-ignore', '-q', '--no-index', '--', resolve(keyPath)], { stdio: 'ignore' });
  if (result.status === 0) return; // ignored: fine
  const why = result.error ? 'git is not available to check .gitignore' : 'it is not git-ignored';
  throw new McpkiError(
    'GIT_TRACKED_PATH',
    `refusing to write private key ${keyPath} inside git work tree ${workTree}: ${why}`,
    `add the path to .gitignore, choose another --out, or pass --allow-git`,
  );
}
