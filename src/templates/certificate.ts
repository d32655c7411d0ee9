// The variables `template render --cert NAME` takes from a certificate: its file paths, the mcpki root and
// CRL, and its first host name. A certificate declared in mcpki.yaml with targets gives the deployed paths
// (what a proxy should read); otherwise the inventory's files are used.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config, DeclaredCertificate, TargetType } from '../config/types.js';
import type { Context } from '../context.js';
import { McpkiError } from '../errors.js';
import { findCertificate } from '../inventory.js';
import { loadCaCertificates } from '../pki/ca.js';
import type { San } from '../pki/names.js';

/** The certificate's own files, by variable name (the same as the deploy target types). */
const FILE_VARIABLES = ['cert', 'key', 'fullchain', 'chain', 'combined'] as const;
type FileVariable = (typeof FILE_VARIABLES)[number];

const TARGET_EXAMPLES: Record<FileVariable, string> = {
  cert: '/etc/ssl/mcpki/NAME.crt',
  key: '/etc/ssl/mcpki/NAME.key',
  fullchain: '/etc/ssl/mcpki/NAME.fullchain.pem',
  chain: '/etc/ssl/mcpki/NAME.chain.pem',
  combined: '/etc/haproxy/certs/NAME.pem',
};

/** The variable names one certificate fills; `prefix` ("client") gives clientCert, clientKey, … */
export function certificateVariableNames(prefix = ''): string[] {
  return [...FILE_VARIABLES, 'name', 'serverName'].map((v) => prefixed(prefix, v));
}

function prefixed(prefix: string, name: string): string {
  return prefix ? prefix + name[0]!.toUpperCase() + name.slice(1) : name;
}

/** First DNS name, else first IP address, else the certificate's name. */
function serverNameOf(name: string, sans: readonly San[]): string {
  return (sans.find((s) => s.type === 'dns') ?? sans.find((s) => s.type === 'ip'))?.value ?? name;
}

function declaredFiles(
  declared: DeclaredCertificate,
  config: Config,
  needed: (v: string) => boolean,
  prefix: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const file of FILE_VARIABLES) {
    const target = declared.targets.find((t) => t.type === (file as TargetType));
    if (target) out[prefixed(prefix, file)] = target.path;
    else if (needed(prefixed(prefix, file))) {
      const example = TARGET_EXAMPLES[file].replace('NAME', declared.name);
      throw new McpkiError(
        'NOT_FOUND',
        `certificate "${declared.name}" in ${config.file} has no ${file} target, which this template reads`,
        `add "- { type: ${file}, path: ${example} }" to its targets, run "mcpki apply -c ${config.file}", then render again`,
      );
    }
  }
  return out;
}

function inventoryFiles(
  context: Context,
  nameOrSerial: string,
  needed: (v: string) => boolean,
  prefix: string,
): { files: Record<string, string>; sans: San[]; name: string } {
  const record = findCertificate(context, nameOrSerial);
  const name = record.name;
  const paths = record.paths as Record<string, string | undefined>;
  const chain = paths.chain ?? issuerFile(context, record.issuerSerial);
  const files: Record<string, string | undefined> = {
    cert: paths.cert,
    key: paths.key,
    fullchain: paths.fullchain,
    chain,
    combined: undefined,
  };
  const out: Record<string, string> = {};
  for (const file of FILE_VARIABLES) {
    const path = files[file];
    if (path) out[prefixed(prefix, file)] = path;
    else if (needed(prefixed(prefix, file))) {
      const example = TARGET_EXAMPLES[file].replace('NAME', name);
      throw new McpkiError(
        'NOT_FOUND',
        `certificate "${name}" has no ${file} file, which this template reads`,
        `declare it in mcpki.yaml with "targets: [{ type: ${file}, path: ${example} }]", run "mcpki apply", then render with -c mcpki.yaml`,
      );
    }
  }
  return { files: out, sans: record.sans, name };
}

/** A locally issued certificate's chain is its intermediate: the current one, or an archived one after a rotation. */
function issuerFile(context: Context, issuerSerial: string | null): string | undefined {
  if (!issuerSerial) return undefined;
  const retired = join(context.layout.retiredDir, `intermediate-${issuerSerial.toUpperCase()}.crt`);
  if (existsSync(retired)) return retired;
  return existsSync(context.layout.intermediateCert) ? context.layout.intermediateCert : undefined;
}

export interface CertificateSource {
  /** the certificate's name (or serial, for the inventory) */
  name: string;
  /** "client" for --client-cert */
  prefix?: string;
}

/**
 * The variables of one certificate. `needed` says which variables the template uses: only a missing file
 * the template actually reads is an error.
 */
export function certificateVariables(
  context: Context,
  source: CertificateSource,
  config: Config | undefined,
  needed: (variable: string) => boolean,
): Record<string, string> {
  const prefix = source.prefix ?? '';
  const declared = config?.certificates.find((c) => c.name === source.name);
  const { files, sans, name } =
    declared && declared.targets.length > 0
      ? { files: declaredFiles(declared, config!, needed, prefix), sans: declared.names, name: declared.name }
      : inventoryFiles(context, source.name, needed, prefix);
  return { ...files, [prefixed(prefix, 'name')]: name, [prefixed(prefix, 'serverName')]: serverNameOf(name, sans) };
}

/** The mcpki root (to trust servers and verify client certificates) and the CRL `mcpki crl` writes. */
export function authorityVariables(context: Context, needed: (variable: string) => boolean): Record<string, string> {
  const crl = context.layout.crl;
  if (needed('crl') && !existsSync(crl)) {
    throw new McpkiError(
      'NOT_FOUND',
      `no CRL at ${crl}, which this template reads`,
      'run "mcpki crl" (and again before its next update, e.g. from a timer)',
    );
  }
  if (needed('ca') && !existsSync(context.layout.rootCert)) {
    throw new McpkiError('CA_MISSING', `no mcpki root at ${context.layout.rootCert}`, 'run "mcpki init" first');
  }
  // the file the rendered configuration will trust: checked like every load of the CA (CA_CORRUPT if damaged)
  if (needed('ca')) loadCaCertificates(context);
  return { ca: context.layout.rootCert, crl };
}
