// repairCheck: on-disk cert/key mismatches and interrupted deploys, reported without writing anything.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { staleBackups } from './backup.js';
import { errnoCode } from '../fs/files.js';
import { setLeftovers } from './fileset.js';
import { readTargetContents, spkiDer } from './targets.js';
import type { Target } from './types.js';

export interface RepairProblem {
  path: string;
  problem: string;
}

export interface RepairReport {
  ok: boolean;
  problems: RepairProblem[];
  /** targets with `.mcpki-prev-` links, or in a set with leftover versions, left by a killed deploy (the next deploy rewrites them) */
  interrupted: string[];
}

/**
 * Reads one certificate's targets from disk (through the symlinks of file sets), writes nothing, and reports
 * what a deploy must repair: missing or unreadable files, a private key that does not belong to the certificate next to it (in one file or
 * across the cert/key/fullchain files of the set), leaves with different serials, interrupted deploys.
 */
export function repairCheck(targets: readonly Target[]): RepairReport {
  const problems: RepairProblem[] = [];
  const interrupted: string[] = [];
  const leaves: { path: string; serial: string; spki: Buffer }[] = [];
  const keys: { path: string; spki: Buffer }[] = [];
  for (const target of targets) {
    const path = resolve(target.path);
    if (staleBackups(path).length > 0 || setLeftovers(path).length > 0) interrupted.push(path);
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (error) {
      problems.push({ path, problem: errnoCode(error) === 'ENOENT' ? 'missing' : `unreadable (${errnoCode(error)})` });
      continue;
    }
    try {
      const { leaf, key } = readTargetContents(target, data);
      const wantsLeaf = target.type !== 'key' && target.type !== 'chain';
      const wantsKey =
        target.type === 'key' || target.type === 'combined' || target.type === 'p12' || target.type === 'k8s-secret';
      if (wantsLeaf && !leaf) problems.push({ path, problem: 'no certificate in the file' });
      if (wantsKey && !key) problems.push({ path, problem: 'no private key in the file' });
      if (leaf) leaves.push({ path, serial: leaf.serialNumber, spki: spkiDer(leaf) });
      if (key) keys.push({ path, spki: spkiDer(key) });
      if (leaf && key && !spkiDer(leaf).equals(spkiDer(key)))
        problems.push({ path, problem: 'the private key does not match the certificate in the same file' });
    } catch (error) {
      problems.push({ path, problem: `cannot be parsed (${(error as Error).message})` });
    }
  }
  const first = leaves[0];
  for (const leaf of leaves.slice(1)) {
    if (first && leaf.serial !== first.serial)
      problems.push({ path: leaf.path, problem: `holds serial ${leaf.serial}, ${first.path} holds ${first.serial}` });
  }
  for (const key of keys) {
    for (const leaf of leaves) {
      if (key.path !== leaf.path && !key.spki.equals(leaf.spki))
        problems.push({ path: key.path, problem: `the private key does not match the certificate in ${leaf.path}` });
    }
  }
  return { ok: problems.length === 0 && interrupted.length === 0, problems, interrupted };
}
