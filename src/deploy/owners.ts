// A target's owner and group: names resolved to ids (getent, cached per run), and a check that mcpki's user
// may give a file that owner.
import { spawnSync } from 'node:child_process';
import { childEnv } from '../process/env.js';
import type { Stats } from 'node:fs';
import { McpkiError } from '../errors.js';

function getentId(database: 'passwd' | 'group', name: string): number | undefined {
  const result = spawnSync('getent', [database, name], { encoding: 'utf8', env: childEnv() });
  if (result.status === 0) {
    const id = Number(result.stdout.split('\n')[0]!.split(':')[2]);
    if (Number.isInteger(id)) return id;
  }
  if (database === 'passwd') {
    const fallback = spawnSync('id', ['-u', name], { encoding: 'utf8', env: childEnv() });
    if (fallback.status === 0 && /^\d+\s*$/.test(fallback.stdout)) return Number(fallback.stdout.trim());
  }
  return undefined;
}

export function resolveId(
  value: string | number | undefined,
  database: 'passwd' | 'group',
  path: string,
  cache: Map<string, number>,
): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' || /^\d+$/.test(value)) {
    const id = Number(value);
    if (!Number.isInteger(id) || id < 0)
      throw new McpkiError(
        'INVALID_INPUT',
        `target ${path}: ${value} is not a valid ${database === 'passwd' ? 'uid' : 'gid'}`,
        'give a name or a non-negative number',
      );
    return id;
  }
  const key = `${database}:${value}`;
  let id = cache.get(key);
  if (id === undefined) {
    id = getentId(database, value);
    if (id === undefined) {
      throw new McpkiError(
        'INVALID_INPUT',
        `target ${path}: no such ${database === 'passwd' ? 'user' : 'group'} ${JSON.stringify(value)}`,
        `create the ${database === 'passwd' ? 'user' : 'group'} or fix the name`,
      );
    }
    cache.set(key, id);
  }
  return id;
}

/** Whether a file already has this mode and (where one is asked for) this owner and group. */
export function hasModeAndOwner(stat: Stats, mode: number, uid: number | undefined, gid: number | undefined): boolean {
  return (
    (stat.mode & 0o7777) === mode && (uid === undefined || stat.uid === uid) && (gid === undefined || stat.gid === gid)
  );
}

export function checkOwnership(path: string, uid: number | undefined, gid: number | undefined): void {
  const myUid = process.getuid?.();
  if (myUid === undefined || myUid === 0) return;
  if (uid !== undefined && uid !== myUid) {
    throw new McpkiError(
      'INVALID_INPUT',
      `target ${path}: owner ${uid} needs root (running as uid ${myUid})`,
      'run mcpki as root, or remove owner from the target',
    );
  }
  if (gid !== undefined && gid !== process.getgid?.() && !(process.getgroups?.() ?? []).includes(gid)) {
    throw new McpkiError(
      'INVALID_INPUT',
      `target ${path}: group ${gid} needs root or membership of that group`,
      'run mcpki as root, or remove group from the target',
    );
  }
}
