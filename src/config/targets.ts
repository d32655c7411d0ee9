// One entry of a certificate's targets: list: the file (or Kubernetes Secret) a certificate is written to, its
// type, mode, owner and the type-specific keys (passwordFile for p12, namespace and secretName for k8s-secret).
import type { Node } from 'yaml';
import { targetModeProblem } from '../deploy/targets.js';
import { join, Section, type Checker } from './checker.js';
import { TARGET_TYPES, type DeclaredTarget, type TargetType } from './types.js';

export const TARGET_KEYS = [
  'type',
  'path',
  'mode',
  'owner',
  'group',
  'passwordFile',
  'namespace',
  'secretName',
] as const;
/** target types whose files hold the private key */
export const KEY_BEARING_TARGETS: readonly TargetType[] = ['key', 'combined', 'p12', 'k8s-secret'];

/** Every file path written so far (absolute), with the YAML path and line that declared it: no two writers. */
export type WrittenPaths = Map<string, { path: string; line: number }>;

const K8S_NAMESPACE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const K8S_NAME = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

export function checkTarget(
  check: Checker,
  node: Node | null,
  path: string,
  base: string,
  certificateName: string | undefined,
): { target: DeclaredTarget; pathNode: Node | null } | undefined {
  const e = check.map(node, path, TARGET_KEYS, 'a target');
  if (!e) return undefined;
  const section = new Section(check, e);
  const at = section.at.bind(section);
  const need = section.need.bind(section);
  let type: TargetType | undefined;
  if (!e.has('type'))
    need(check.error(node, join(path, 'type'), `missing; write type: followed by one of ${TARGET_TYPES.join(', ')}`));
  else type = need(check.oneOf(at('type'), join(path, 'type'), TARGET_TYPES));
  let file: { absolute: string; written: string } | undefined;
  if (!e.has('path'))
    need(check.error(node, join(path, 'path'), 'missing; write where the file goes, e.g. path: /etc/ssl/my-mcp.pem'));
  else file = need(check.path(at('path'), join(path, 'path'), base));
  const keyBearing = type !== undefined && KEY_BEARING_TARGETS.includes(type);
  let mode: number | undefined = keyBearing ? 0o600 : 0o644;
  if (e.has('mode')) {
    mode = need(check.mode(at('mode'), join(path, 'mode')));
    if (mode !== undefined && keyBearing && (mode & 0o007) !== 0) {
      mode = need(
        check.error(
          at('mode'),
          join(path, 'mode'),
          `a ${type} target holds the private key: it must not be readable or writable by others (use "0600" or "0640")`,
        ),
      );
    }
    const modeProblem = mode !== undefined && type !== undefined ? targetModeProblem(type, mode) : null;
    if (modeProblem)
      mode = need(check.error(at('mode'), join(path, 'mode'), `${modeProblem.problem}: ${modeProblem.hint}`));
  }
  const owner = e.has('owner') ? need(check.ownerOrGroup(at('owner'), join(path, 'owner'), 'user')) : undefined;
  const group = e.has('group') ? need(check.ownerOrGroup(at('group'), join(path, 'group'), 'group')) : undefined;
  let passwordFile: string | undefined;
  if (e.has('passwordFile')) {
    if (type !== undefined && type !== 'p12')
      need(check.error(e.get('passwordFile')!.key, join(path, 'passwordFile'), 'passwordFile is only for p12 targets'));
    else passwordFile = need(check.path(at('passwordFile'), join(path, 'passwordFile'), base))?.absolute;
  } else if (type === 'p12')
    need(
      check.error(
        node,
        join(path, 'passwordFile'),
        'missing; a p12 target needs passwordFile: the file holding the PKCS#12 password',
      ),
    );
  let namespace: string | undefined;
  let secretName: string | undefined;
  for (const key of ['namespace', 'secretName'] as const) {
    if (!e.has(key)) continue;
    if (type !== undefined && type !== 'k8s-secret') {
      need(check.error(e.get(key)!.key, join(path, key), `${key} is only for k8s-secret targets`));
      continue;
    }
    const text = need(
      check.string(
        at(key),
        join(path, key),
        key === 'namespace' ? 'a Kubernetes namespace' : 'a Kubernetes Secret name',
      ),
    );
    if (text === undefined) continue;
    const pattern = key === 'namespace' ? K8S_NAMESPACE : K8S_NAME;
    if (!pattern.test(text)) {
      need(
        check.error(
          at(key),
          join(path, key),
          `${JSON.stringify(text)} is not a valid Kubernetes ${key === 'namespace' ? 'namespace (a DNS label' : 'name (a DNS subdomain'}: lower-case letters, digits${key === 'namespace' ? '' : ', "."'} and "-")`,
        ),
      );
      continue;
    }
    if (key === 'namespace') namespace = text;
    else secretName = text;
  }
  if (type === 'k8s-secret' && !e.has('secretName') && certificateName !== undefined) {
    if (K8S_NAME.test(certificateName)) secretName = certificateName;
    else
      need(
        check.error(
          node,
          join(path, 'secretName'),
          `missing; the certificate name ${JSON.stringify(certificateName)} is not a valid Kubernetes name, so give secretName (lower-case letters, digits, "." and "-")`,
        ),
      );
  }
  if (!section.ok || !type || !file || mode === undefined) return undefined;
  const target: DeclaredTarget = { type, path: file.absolute, pathAsWritten: file.written, mode };
  if (owner !== undefined) target.owner = owner;
  if (group !== undefined) target.group = group;
  if (passwordFile !== undefined) target.passwordFile = passwordFile;
  if (namespace !== undefined) target.namespace = namespace;
  if (secretName !== undefined) target.secretName = secretName;
  return { target, pathNode: at('path') };
}
