// `mcpki check TARGET`: the TLS troubleshooting guide as one call. It returns a report of findings, each
// with a severity and a fix; it throws only for a TARGET or an option that cannot be used.
import { existsSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import type { Context } from '../context.js';
import { McpkiError, fix } from '../errors.js';
import { INPUT_LIMITS, readInputText } from '../fs/read.js';
import { findCertificate } from '../inventory.js';
import { isHost } from '../net/address.js';
import { loadCaCertificates } from '../pki/ca.js';
import type { CertificateSummary } from './certificate.js';
import { loadAnchors, type ChainReport } from './chain.js';
import type { InventoryReport } from './expected.js';
import { checkFile, type FileReport } from './file.js';
import { exitCodeOf, Findings, statusOf, type CheckStatus, type Finding } from './findings.js';
import { checkRemote, type TlsReport } from './remote.js';
import { parseTarget, unknownTarget } from './target.js';

export type { Finding, Severity, CheckStatus } from './findings.js';

export const DEFAULT_CHECK_TIMEOUT_MS = 3_000;

export interface CheckOptions {
  /** the name to ask for (SNI) and to match; default: the host of TARGET (files: no name check) */
  servername?: string;
  /** the private key of a certificate file, to check that they match */
  key?: string;
  /** the inventory certificate the server should present (default: any recorded for the name) */
  cert?: string;
  /** an inventory client certificate to present, to test whether the server accepts it */
  clientCert?: string;
  /** more trust anchors (PEM files) besides mcpki's root and the system roots */
  ca?: string[];
  /** per probe, in milliseconds (default 3000) */
  timeoutMs?: number;
  /** weak cipher suites that current clients never negotiate count as warnings instead of info */
  strict?: boolean;
  /** record an unexpected certificate as an event in the inventory (default true) */
  record?: boolean;
}

export interface CheckReport {
  target: {
    input: string;
    kind: 'remote' | 'file' | 'name';
    host: string | null;
    port: number | null;
    path: string | null;
    name: string | null;
  };
  status: CheckStatus;
  exitCode: number;
  findings: Finding[];
  certificate: CertificateSummary | null;
  chain: ChainReport | null;
  tls: TlsReport | null;
  file: FileReport['file'] | null;
  inventory: InventoryReport | null;
  elapsedMs: number;
}

/**
 * Whether TARGET (or a path option) names something on disk: a regular file, and also a FIFO, a device, a
 * socket or a folder given as a path, so that reading it says what it is instead of treating it as a host or
 * a certificate name (the read refuses anything but a regular file).
 */
function isFile(path: string): boolean {
  try {
    const stat = statSync(path);
    return !stat.isDirectory() || path.includes('/');
  } catch {
    return false;
  }
}

function usage(flag: string, applies: string): McpkiError {
  return new McpkiError('USAGE', `${flag} applies to ${applies} only`, 'see "mcpki check --help"');
}

function clientCertificate(
  context: Context,
  name: string,
): { name: string; cert: string; key: string; revoked?: { reason: string; at: string | null } } {
  const record = findCertificate(context, name);
  const certPath = record.paths.fullchain ?? record.paths.cert;
  const keyPath = record.paths.key;
  if (!certPath || !keyPath || !existsSync(certPath) || !existsSync(keyPath)) {
    throw new McpkiError(
      'NOT_FOUND',
      `the files of certificate "${name}" are missing (${certPath ?? 'no cert path'}, ${keyPath ?? 'no key path'})`,
      `issue it again: mcpki issue client ${name} …`,
    );
  }
  const read = (path: string, what: string) => readInputText(path, { what, maxBytes: INPUT_LIMITS.pem });
  const revoked =
    record.state === 'revoked'
      ? { revoked: { reason: record.revocationReason ?? 'unspecified', at: record.revokedAt ?? null } }
      : {};
  return {
    name,
    cert: read(certPath, `the certificate file of "${name}"`),
    key: read(keyPath, `the key file of "${name}"`),
    ...revoked,
  };
}

/** --servername: a DNS name (IDN as punycode; a wildcard for files) or an IP address, what SNI can carry. */
function checkServername(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const ascii = /^[\x21-\x7e]*$/.test(name) ? name : /[\p{Cc}\p{Cf}\p{Z}]/u.test(name) ? '' : domainToASCII(name);
  // "web.localhost." is web.localhost (SNI carries no trailing dot)
  if (ascii !== '' && isHost(ascii.replace(/^\*\./, '')))
    return ascii.length > 1 && isIP(ascii) === 0 ? ascii.replace(/\.$/, '') : ascii;
  throw new McpkiError(
    'INVALID_INPUT',
    `--servername ${JSON.stringify(name)} is not a DNS name or an IP address`,
    fix('give the name clients connect to, e.g. {--servername api.localhost}'),
  );
}

export async function checkTarget(context: Context, input: string, options: CheckOptions = {}): Promise<CheckReport> {
  const started = performance.now();
  options = { ...options, servername: checkServername(options.servername) };
  const timeoutMs = options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  if (!(Number.isInteger(timeoutMs) && timeoutMs > 0))
    throw new McpkiError(
      'INVALID_INPUT',
      `timeout ${timeoutMs} is not a positive number of milliseconds`,
      fix('e.g. {--timeout 2000}'),
    );
  const parsed = parseTarget(input, isFile);
  // mcpki's own CA through the CA loader: a garbage, empty or foreign root.crt is CA_CORRUPT, not a missing anchor
  const anchors = loadAnchors(
    existsSync(context.layout.rootCert) ? loadCaCertificates(context) : undefined,
    options.ca ?? [],
  );
  const findings = new Findings();
  const report: Omit<CheckReport, 'status' | 'exitCode' | 'findings' | 'elapsedMs'> = {
    target: { input, kind: 'remote', host: null, port: null, path: null, name: null },
    certificate: null,
    chain: null,
    tls: null,
    file: null,
    inventory: null,
  };
  if (parsed.kind === 'remote') {
    if (options.key) throw usage('--key', 'certificate files and names');
    if (options.cert) findCertificate(context, options.cert); // an unknown name is an error before any probe
    report.target = { ...report.target, host: parsed.host, port: parsed.port };
    const label = `${parsed.host.includes(':') ? `[${parsed.host}]` : parsed.host}:${parsed.port}`;
    const remote = await checkRemote(context, parsed, findings, {
      servername: options.servername,
      timeoutMs,
      strict: options.strict === true,
      clientCert: options.clientCert ? clientCertificate(context, options.clientCert) : undefined,
      expectedName: options.cert,
      record: options.record !== false,
      anchors,
      label,
    });
    Object.assign(report, remote);
  } else {
    if (options.clientCert) throw usage('--client-cert', 'host:port targets');
    if (options.cert) throw usage('--cert', 'host:port targets');
    let certPath = parsed.text;
    let keyPath = options.key;
    let inventoryName: string | undefined;
    if (isFile(parsed.text)) {
      report.target = { ...report.target, kind: 'file', path: parsed.text };
    } else {
      const record = context.existingStore()?.findCertificate(parsed.text);
      if (!record) throw unknownTarget(parsed.text);
      inventoryName = record.name;
      certPath = record.paths.fullchain ?? record.paths.cert ?? '';
      keyPath ??= record.paths.key;
      report.target = { ...report.target, kind: 'name', name: record.name, path: certPath };
      if (!certPath || !isFile(certPath)) {
        findings.add(
          'file',
          'failure',
          `${record.name}'s certificate file ${certPath || '(none recorded)'} is missing`,
          `issue it again (mcpki issue ${record.kind} ${record.name} …) or rewrite the declared files (mcpki apply)`,
        );
        return finish(report, findings, started);
      }
      if (keyPath && !isFile(keyPath)) {
        findings.add(
          'key-match',
          'failure',
          `${record.name}'s key file ${keyPath} is missing`,
          `issue it again: mcpki issue ${record.kind} ${record.name} …`,
        );
        keyPath = undefined;
      }
    }
    if (options.key && !isFile(options.key))
      throw new McpkiError(
        'NOT_FOUND',
        `key file ${options.key} does not exist`,
        fix('give the PEM key file with {--key FILE}'),
      );
    const local = checkFile(context, findings, {
      certPath,
      keyPath,
      servername: options.servername,
      anchors,
      inventoryName,
    });
    report.certificate = local.certificate;
    report.chain = local.chain;
    report.file = local.file;
  }
  return finish(report, findings, started);
}

function finish(
  report: Omit<CheckReport, 'status' | 'exitCode' | 'findings' | 'elapsedMs'>,
  findings: Findings,
  started: number,
): CheckReport {
  const status = statusOf(findings.list);
  const { target, certificate, chain, tls, file, inventory } = report;
  return {
    target,
    status,
    exitCode: exitCodeOf(status),
    findings: findings.list,
    certificate,
    chain,
    tls,
    file,
    inventory,
    elapsedMs: Math.round(performance.now() - started),
  };
}
