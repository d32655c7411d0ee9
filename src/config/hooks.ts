// The hooks: section of a certificate: the reload commands run after its files change, their time limit, and
// the host:port whose certificate is probed afterwards. crl.ts reuses it for the CRL's hooks (without verify).
import { isSeq, type Node } from 'yaml';
import { join, Section, type Checker } from './checker.js';
import type { DeclaredHooks } from './types.js';

export const HOOK_KEYS = ['reload', 'timeout', 'verify'] as const;
export const DEFAULT_HOOK_TIMEOUT_MS = 30_000;

export function checkHooks(
  check: Checker,
  node: Node | null,
  path: string,
  defaultTimeoutMs: number,
  allowed: readonly string[] = HOOK_KEYS,
  misplaced?: (key: string) => string | undefined,
): DeclaredHooks | undefined {
  const e = check.map(node, path, allowed, 'hooks', misplaced);
  if (!e) return undefined;
  const section = new Section(check, e);
  const at = section.at.bind(section);
  const need = section.need.bind(section);
  const reload: string[][] = [];
  if (e.has('reload')) {
    const value = at('reload');
    const reloadPath = join(path, 'reload');
    if (isSeq(value) && value.items.length > 0 && value.items.every((item) => isSeq(check.node(item)))) {
      value.items.forEach((item, index) => {
        const argv = need(check.argv(check.node(item), `${reloadPath}[${index}]`));
        if (argv) reload.push(argv);
      });
    } else if (isSeq(value) && value.items.some((item) => isSeq(check.node(item)))) {
      need(
        check.error(
          value,
          reloadPath,
          'expected one command (a list of strings) or a list of commands (a list of lists), not a mix of both',
        ),
      );
    } else {
      const argv = need(check.argv(value, reloadPath));
      if (argv) reload.push(argv);
    }
  }
  const timeoutMs = e.has('timeout')
    ? need(check.duration(at('timeout'), join(path, 'timeout'), '30s'))
    : defaultTimeoutMs;
  const verify = e.has('verify') ? need(check.hostPort(at('verify'), join(path, 'verify'))) : undefined;
  if (!section.ok || timeoutMs === undefined) return undefined;
  const hooks: DeclaredHooks = { reload, timeoutMs };
  if (verify) hooks.verify = verify;
  return hooks;
}
