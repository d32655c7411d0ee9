// The folders a deploy creates for its targets, and who owns them.
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { errnoCode, statOrNull, writeFailed } from '../fs/files.js';
import type { Plan } from './types.js';

/** Missing folders from the outermost down. */
function missingDirs(dir: string): string[] {
  const missing: string[] = [];
  for (let current = dir; statOrNull(current) === null; current = dirname(current)) {
    missing.unshift(current);
    if (dirname(current) === current) break;
  }
  return missing;
}

/**
 * Missing parent folders, owned by mcpki's user (never by the target's owner: a folder another user owns
 * could have its entries swapped, and the next deploy refuses it): 0700, or 0711 when the target belongs to
 * another owner or group (they pass through; the file's own mode decides who reads it).
 */
export function createDirs(plans: readonly Plan[], created: string[]): void {
  for (const p of plans) {
    const mode = p.uid !== undefined || p.gid !== undefined ? 0o711 : 0o700;
    for (const dir of missingDirs(dirname(p.path))) {
      try {
        mkdirSync(dir, { mode: 0o700 });
      } catch (error) {
        if (errnoCode(error) === 'EEXIST') continue;
        throw writeFailed(dir, error, 'create the folder');
      }
      created.push(dir);
      if (mode !== 0o700) chmodSync(dir, mode);
    }
  }
}
