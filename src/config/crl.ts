// The crl: section: how long each published CRL is valid, when it is refreshed, the copies written and the
// reload hooks run after they change.
import type { LineCounter, Node } from 'yaml';
import { join, Section, type Checker } from './checker.js';
import { checkHooks } from './hooks.js';
import type { WrittenPaths } from './targets.js';
import type { DeclaredCrl, DeclaredCrlTarget, DeclaredHooks, RenewBefore } from './types.js';
import { DEFAULT_CRL_DAYS, MAX_CRL_DAYS } from '../pki/limits.js';

export const CRL_KEYS = ['days', 'refreshBefore', 'targets', 'hooks'] as const;
export const CRL_TARGET_KEYS = ['path', 'mode', 'owner', 'group'] as const;
export const CRL_HOOK_KEYS = ['reload', 'timeout'] as const;

/** the `crl:` section: the same default and bounds as `mcpki crl --days` */
export { DEFAULT_CRL_DAYS, MAX_CRL_DAYS };
export const DEFAULT_CRL_REFRESH: RenewBefore = { type: 'fraction', fraction: 0.5 };

export function checkCrl(
  check: Checker,
  node: Node | null,
  base: string,
  defaultTimeoutMs: number,
  lineCounter: LineCounter,
  targetPaths: WrittenPaths,
): DeclaredCrl | undefined {
  const path = 'crl';
  const e = check.map(node, path, CRL_KEYS, 'the crl section');
  if (!e) return undefined;
  const section = new Section(check, e);
  const at = section.at.bind(section);
  const need = section.need.bind(section);
  const days = e.has('days')
    ? need(check.integer(at('days'), join(path, 'days'), 1, MAX_CRL_DAYS, `a number of days from 1 to ${MAX_CRL_DAYS}`))
    : DEFAULT_CRL_DAYS;
  let refreshBefore: RenewBefore | undefined = DEFAULT_CRL_REFRESH;
  if (e.has('refreshBefore')) {
    refreshBefore = need(check.renewBefore(at('refreshBefore'), join(path, 'refreshBefore')));
    if (refreshBefore?.type === 'duration' && days !== undefined && refreshBefore.ms >= days * 86_400_000) {
      refreshBefore = need(
        check.error(
          at('refreshBefore'),
          join(path, 'refreshBefore'),
          `refreshBefore must be shorter than the CRL's validity (${days} days), or it would be published on every check`,
        ),
      );
    }
  }
  const targets: DeclaredCrlTarget[] = [];
  if (e.has('targets')) {
    const items = need(check.list(at('targets'), join(path, 'targets'), 'a list of targets')) ?? [];
    for (const item of items) {
      const target = need(checkCrlTarget(check, item.node, item.path, base));
      if (!target) continue;
      const seen = targetPaths.get(target.target.path);
      const pathNode = target.pathNode;
      if (seen)
        need(
          check.error(
            pathNode,
            `${item.path}.path`,
            `${JSON.stringify(target.target.pathAsWritten)} is also written by ${seen.path} (line ${seen.line})`,
          ),
        );
      else {
        targetPaths.set(target.target.path, {
          path: item.path,
          line: lineCounter.linePos(pathNode?.range?.[0] ?? 0).line,
        });
        targets.push(target.target);
      }
    }
  }
  let hooks: DeclaredHooks | undefined = { reload: [], timeoutMs: defaultTimeoutMs };
  if (e.has('hooks')) {
    const misplaced = (key: string): string | undefined =>
      key === 'verify'
        ? 'verify is only for certificate hooks (it checks the certificate a server presents); a CRL has nothing to probe'
        : undefined;
    hooks = need(checkHooks(check, at('hooks'), join(path, 'hooks'), defaultTimeoutMs, CRL_HOOK_KEYS, misplaced));
  }
  if (!section.ok || days === undefined || !refreshBefore || !hooks) return undefined;
  return {
    days,
    refreshBefore,
    targets,
    hooks: { reload: hooks.reload, timeoutMs: hooks.timeoutMs },
    line: lineCounter.linePos(node?.range?.[0] ?? 0).line,
  };
}

function checkCrlTarget(
  check: Checker,
  node: Node | null,
  path: string,
  base: string,
): { target: DeclaredCrlTarget; pathNode: Node | null } | undefined {
  const misplaced = (key: string): string | undefined =>
    key === 'type' ? 'a CRL target has no type: it is always a copy of the CRL file (PEM); remove type' : undefined;
  const e = check.map(node, path, CRL_TARGET_KEYS, 'a CRL target', misplaced);
  if (!e) return undefined;
  const section = new Section(check, e);
  const at = section.at.bind(section);
  const need = section.need.bind(section);
  let file: { absolute: string; written: string } | undefined;
  if (!e.has('path'))
    need(
      check.error(node, join(path, 'path'), 'missing; write where the copy goes, e.g. path: /etc/nginx/mcpki-crl.pem'),
    );
  else file = need(check.path(at('path'), join(path, 'path'), base));
  const mode = e.has('mode') ? need(check.mode(at('mode'), join(path, 'mode'))) : 0o644;
  const owner = e.has('owner') ? need(check.ownerOrGroup(at('owner'), join(path, 'owner'), 'user')) : undefined;
  const group = e.has('group') ? need(check.ownerOrGroup(at('group'), join(path, 'group'), 'group')) : undefined;
  if (!section.ok || !file || mode === undefined) return undefined;
  const target: DeclaredCrlTarget = { path: file.absolute, pathAsWritten: file.written, mode };
  if (owner !== undefined) target.owner = owner;
  if (group !== undefined) target.group = group;
  return { target, pathNode: at('path') };
}
