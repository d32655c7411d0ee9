// Deploy targets: the forms one certificate takes on disk (cert, key, chain, fullchain, HAProxy's combined
// file, PKCS#12, a Kubernetes TLS Secret manifest). Rendering is pure: bytes and a mode, nothing written.
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { McpkiError } from '../errors.js';
import { INPUT_LIMITS, readInputText } from '../fs/read.js';
import { fromPem, toPem } from '../pki/der.js';
import { encodePkcs12, openPkcs12 } from '../pki/pkcs12.js';
import { TARGET_TYPES, type Material, type Rendered, type Target, type TargetType } from './types.js';

const SECRET_TYPES: ReadonlySet<TargetType> = new Set(['key', 'combined', 'p12', 'k8s-secret']);
/** RFC 1123 subdomain (Secret names) and label (namespaces), as Kubernetes validates them. */
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function holdsPrivateKey(type: TargetType): boolean {
  return SECRET_TYPES.has(type);
}

export function defaultMode(type: TargetType): number {
  return holdsPrivateKey(type) ? 0o600 : 0o644;
}

/**
 * What is wrong with a target's file mode, or null: setuid, setgid and sticky bits never belong on a
 * certificate or key; a file holding the private key must not be writable by group or others nor readable by
 * others (0600 or 0640); nothing mcpki writes is writable by others.
 */
export function targetModeProblem(type: TargetType, mode: number): { problem: string; hint: string } | null {
  const text = (mode & 0o7777).toString(8).padStart(4, '0');
  if ((mode & 0o7000) !== 0) {
    const bits = [mode & 0o4000 ? 'setuid' : '', mode & 0o2000 ? 'setgid' : '', mode & 0o1000 ? 'sticky' : '']
      .filter(Boolean)
      .join(' and ');
    return {
      problem: `mode ${text} sets the ${bits} bit`,
      hint: `use a plain file mode such as ${holdsPrivateKey(type) ? '0600' : '0644'}`,
    };
  }
  if (holdsPrivateKey(type) && (mode & 0o027) !== 0) {
    return {
      problem: `mode ${text} lets ${mode & 0o007 ? 'others' : 'the group'} ${mode & 0o022 ? 'write' : 'read'} the private key`,
      hint: 'use "0600", or "0640" with a group that may read the key',
    };
  }
  if ((mode & 0o002) !== 0)
    return { problem: `mode ${text} lets everyone write the file`, hint: 'use "0644" or narrower' };
  return null;
}

function invalid(target: Target, problem: string, hint: string): McpkiError {
  return new McpkiError('INVALID_INPUT', `target ${target.type} ${target.path}: ${problem}`, hint);
}

/** Checks one target's own fields (not the file system). Throws INVALID_INPUT. */
export function validateTarget(target: Target): void {
  if (!(TARGET_TYPES as readonly string[]).includes(target.type)) {
    throw new McpkiError(
      'INVALID_INPUT',
      `unknown target type ${JSON.stringify(target.type)}`,
      `use one of ${TARGET_TYPES.join(', ')}`,
    );
  }
  if (typeof target.path !== 'string' || target.path === '' || !target.path.startsWith('/')) {
    throw invalid(target, 'the path must be absolute', 'give an absolute path such as /etc/ssl/mcpki/web.crt');
  }
  if (target.path.endsWith('/')) throw invalid(target, 'the path names a folder', 'give a file path');
  if (target.mode !== undefined && (!Number.isInteger(target.mode) || target.mode < 0 || target.mode > 0o7777)) {
    throw invalid(target, `mode ${String(target.mode)} is not a file mode`, 'give an octal mode such as 0640');
  }
  const modeProblem = targetModeProblem(target.type, target.mode ?? defaultMode(target.type));
  if (modeProblem) throw invalid(target, modeProblem.problem, modeProblem.hint);
  if (target.type === 'p12' && !target.passwordFile)
    throw invalid(
      target,
      'a p12 target needs passwordFile',
      'add passwordFile: a file whose first line is the password',
    );
  if (target.type === 'k8s-secret') {
    if (target.secretName !== undefined && !DNS_SUBDOMAIN.test(target.secretName)) {
      throw invalid(
        target,
        `secretName ${JSON.stringify(target.secretName)} is not a valid Kubernetes name`,
        'use lower-case letters, digits, "-" and "."',
      );
    }
    if (target.namespace !== undefined && !DNS_LABEL.test(target.namespace)) {
      throw invalid(
        target,
        `namespace ${JSON.stringify(target.namespace)} is not a valid Kubernetes namespace`,
        'use lower-case letters, digits and "-", at most 63 characters',
      );
    }
  }
}

function certificates(material: Material): { leaf: Buffer; chain: Buffer[] } {
  const [leaf] = fromPem(material.certPem, 'CERTIFICATE');
  if (!leaf)
    throw new McpkiError(
      'INVALID_INPUT',
      `certificate ${material.name}: no PEM certificate in the material`,
      'pass the leaf certificate as PEM',
    );
  return { leaf, chain: fromPem(material.chainPem, 'CERTIFICATE') };
}

function privateKey(material: Material): KeyObject {
  try {
    return createPrivateKey(material.keyPem);
  } catch (error) {
    throw new McpkiError(
      'INVALID_INPUT',
      `certificate ${material.name}: the private key cannot be read`,
      'pass an unencrypted PEM private key',
      { cause: error },
    );
  }
}

/**
 * The key as PKCS#8 PEM. A single PKCS#8 block (what mcpki writes) is only re-wrapped, byte for byte what
 * OpenSSL would print; anything else is parsed and re-exported. Parsing every key of a large apply was slow.
 */
function normalizedPkcs8(material: Material): string {
  const blocks = fromPem(material.keyPem, 'PRIVATE KEY');
  if (
    blocks.length === 1 &&
    material.keyPem.trimStart().startsWith('-----BEGIN PRIVATE KEY-----') &&
    !material.keyPem.includes('ENCRYPTED')
  ) {
    return toPem('PRIVATE KEY', blocks[0]!);
  }
  return privateKey(material).export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** The PEM texts every form is built from, normalized (one trailing newline per block, no stray text). */
function pems(material: Material): { cert: string; chain: string; fullchain: string; key: string } {
  const { leaf, chain } = certificates(material);
  const cert = toPem('CERTIFICATE', leaf);
  const chainText = chain.map((der) => toPem('CERTIFICATE', der)).join('');
  const key = normalizedPkcs8(material);
  return { cert, chain: chainText, fullchain: cert + chainText, key };
}

/** The first line of a password file (as `issue --p12-password-file` reads it). */
export function readPasswordFile(target: Target): string {
  return readInputText(target.passwordFile!, {
    what: 'the PKCS#12 password file',
    maxBytes: INPUT_LIMITS.secret,
    code: 'PASSPHRASE_MISSING',
    hint: 'give a readable file whose first line is the password',
  }).split(/\r?\n/)[0]!;
}

function yamlString(text: string): string {
  // a JSON string is a valid YAML double-quoted scalar
  return JSON.stringify(text);
}

function k8sSecret(target: Target, material: Material, fullchain: string, key: string): string {
  const lines = [
    'apiVersion: v1',
    'kind: Secret',
    'type: kubernetes.io/tls',
    'metadata:',
    `  name: ${yamlString(target.secretName ?? material.name)}`,
  ];
  if (target.namespace !== undefined) lines.push(`  namespace: ${yamlString(target.namespace)}`);
  lines.push(
    'data:',
    `  tls.crt: ${Buffer.from(fullchain).toString('base64')}`,
    `  tls.key: ${Buffer.from(key).toString('base64')}`,
  );
  return lines.join('\n') + '\n';
}

/**
 * The bytes and mode of one target. Deterministic for every type except p12 (PKCS#12 salts and IVs are
 * random); use `targetUpToDate` to compare with what is on disk.
 */
export function renderTarget(target: Target, material: Material): Rendered {
  validateTarget(target);
  const mode = target.mode ?? defaultMode(target.type);
  const p = pems(material);
  switch (target.type) {
    case 'cert':
      return { data: Buffer.from(p.cert), mode };
    case 'key':
      return { data: Buffer.from(p.key), mode };
    case 'chain':
      return { data: Buffer.from(p.chain), mode };
    case 'fullchain':
      return { data: Buffer.from(p.fullchain), mode };
    case 'combined':
      return { data: Buffer.from(p.key + p.fullchain), mode };
    case 'p12': {
      const { leaf, chain } = certificates(material);
      const data = encodePkcs12({
        key: privateKey(material),
        certificates: [leaf, ...chain],
        password: readPasswordFile(target),
        friendlyName: material.name,
      });
      return { data, mode };
    }
    case 'k8s-secret':
      return { data: Buffer.from(k8sSecret(target, material, p.fullchain, p.key)), mode };
  }
}

/** True when `existing` (the bytes on disk) already holds exactly what `rendered` would write. */
export function targetUpToDate(target: Target, material: Material, rendered: Rendered, existing: Buffer): boolean {
  if (target.type !== 'p12') return existing.equals(rendered.data);
  try {
    const opened = openPkcs12(existing, readPasswordFile(target));
    const { leaf, chain } = certificates(material);
    const wanted = [leaf, ...chain];
    const key = privateKey(material).export({ type: 'pkcs8', format: 'der' });
    return (
      opened.certificates.length === wanted.length &&
      opened.certificates.every((der, i) => der.equals(wanted[i]!)) &&
      opened.keys.length === 1 &&
      opened.keys[0]!.export({ type: 'pkcs8', format: 'der' }).equals(key)
    );
  } catch {
    return false;
  }
}

/** What a target file on disk holds: its leaf certificate and/or private key, when the type has them. */
export function readTargetContents(target: Target, data: Buffer): { leaf?: X509Certificate; key?: KeyObject } {
  const text = () => data.toString('utf8');
  const firstCert = (pem: string) => {
    const [der] = fromPem(pem, 'CERTIFICATE');
    return der ? new X509Certificate(der) : undefined;
  };
  const keyOf = (pem: string) => {
    const block = /-----BEGIN ((?:RSA |EC |)PRIVATE KEY)-----[\s\S]*?-----END \1-----/.exec(pem);
    return block ? createPrivateKey(block[0]) : undefined;
  };
  switch (target.type) {
    case 'cert':
    case 'fullchain':
      return { leaf: firstCert(text()) };
    case 'key':
      return { key: keyOf(text()) };
    case 'combined':
      return { leaf: firstCert(text()), key: keyOf(text()) };
    case 'chain':
      return {};
    case 'p12': {
      const opened = openPkcs12(data, readPasswordFile(target));
      return {
        leaf: opened.certificates[0] ? new X509Certificate(opened.certificates[0]) : undefined,
        key: opened.keys[0],
      };
    }
    case 'k8s-secret': {
      const crt = /^ {2}tls\.crt: ([A-Za-z0-9+/=]+)$/m.exec(text());
      const key = /^ {2}tls\.key: ([A-Za-z0-9+/=]+)$/m.exec(text());
      return {
        leaf: crt ? firstCert(Buffer.from(crt[1]!, 'base64').toString('utf8')) : undefined,
        key: key ? keyOf(Buffer.from(key[1]!, 'base64').toString('utf8')) : undefined,
      };
    }
  }
}

/** The SubjectPublicKeyInfo DER of a private key or a certificate, for matching the two. */
export function spkiDer(source: KeyObject | X509Certificate): Buffer {
  const pub = source instanceof X509Certificate ? source.publicKey : createPublicKey(source);
  return pub.export({ type: 'spki', format: 'der' });
}
