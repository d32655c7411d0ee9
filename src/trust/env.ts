// `mcpki env`: environment variables that make Node, Python, curl and OpenSSL-based tools trust the development
// CA without touching any trust store (no root needed).
//
// NODE_EXTRA_CA_CERTS is *added* to Node's bundled roots, so it points at our root alone. SSL_CERT_FILE,
// REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE *replace* the default roots, so they point at HOME/ca/bundle.pem: the
// system roots plus ours, and public sites keep working. GIT_SSL_CAINFO is left out on purpose: it would
// pin every git remote to this bundle snapshot; after `mcpki trust install` git uses the system store anyway.
import { join } from 'node:path';
import type { Context } from '../context.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { McpkiError, fix } from '../errors.js';
import { loadRoot, pemContains, readTextIfExists } from './common.js';

export type ShellKind = 'sh' | 'fish' | 'powershell' | 'dotenv';
export const SHELL_KINDS: readonly ShellKind[] = ['sh', 'fish', 'powershell', 'dotenv'];

export interface EnvVariable {
  name: string;
  value: string;
  purpose: string;
}

export interface EnvReport {
  bundlePath: string;
  /** the system bundle copied into bundlePath; null when none was found (the bundle then holds only our root) */
  systemBundle: string | null;
  variables: EnvVariable[];
}

/** Debian/Ubuntu, Fedora/RHEL, openSUSE, Alpine (and macOS' LibreSSL) */
export const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/ssl/cert.pem',
];

/** Writes HOME/ca/bundle.pem (system roots + our root, 0644, atomically) and returns the variables to set. */
export function buildEnv(context: Context): EnvReport {
  const root = loadRoot(context);
  let systemBundle: string | null = null;
  let systemText = '';
  for (const candidate of SYSTEM_BUNDLES) {
    let text: string | null = null;
    try {
      text = readTextIfExists(candidate);
    } catch {
      text = null; // a folder or unreadable: try the next one
    }
    if (text !== null && text.includes('-----BEGIN CERTIFICATE-----')) {
      systemBundle = candidate;
      systemText = text.endsWith('\n') ? text : text + '\n';
      break;
    }
  }
  const bundlePath = join(context.layout.caDir, 'bundle.pem');
  // already there when the root was installed into the system store: no duplicate
  const bundle = pemContains(systemText, root.der) ? systemText : systemText + root.pem;
  writeFileAtomic(bundlePath, bundle, 0o644);
  return {
    bundlePath,
    systemBundle,
    variables: [
      { name: 'NODE_EXTRA_CA_CERTS', value: root.path, purpose: 'Node.js: added to its bundled root certificates' },
      {
        name: 'SSL_CERT_FILE',
        value: bundlePath,
        purpose: 'OpenSSL-based clients (Python ssl, Ruby, Go, curl): replaces the default roots',
      },
      { name: 'REQUESTS_CA_BUNDLE', value: bundlePath, purpose: "Python requests: replaces certifi's roots" },
      { name: 'CURL_CA_BUNDLE', value: bundlePath, purpose: 'curl: replaces its default roots' },
    ],
  };
}

/** The report as shell text: sh/bash/zsh (`eval "$(mcpki env)"`), fish, PowerShell or a .env file. */
export function formatEnv(report: EnvReport, shell: ShellKind): string {
  const line = (v: EnvVariable): string => {
    switch (shell) {
      case 'sh':
        return `export ${v.name}='${v.value.replace(/'/g, `'\\''`)}'`;
      case 'fish':
        return `set -gx ${v.name} '${v.value.replace(/[\\']/g, (c) => `\\${c}`)}'`;
      case 'powershell':
        return `$env:${v.name} = '${v.value.replace(/'/g, "''")}'`;
      case 'dotenv':
        // dotenv readers disagree on escapes and expansion inside quotes; refuse what they cannot all read
        if (/["\\$\n\r`]/.test(v.value)) {
          throw new McpkiError(
            'INVALID_INPUT',
            `${v.name}=${v.value} cannot be written portably to a .env file`,
            fix('use a {--home DIR} path without " \\ $ ` or line breaks, or {--shell sh}'),
          );
        }
        return `${v.name}="${v.value}"`;
      default:
        throw new McpkiError(
          'INVALID_INPUT',
          `unknown shell "${String(shell)}"`,
          `use one of: ${SHELL_KINDS.join(', ')}`,
        );
    }
  };
  return report.variables.map(line).join('\n') + '\n';
}
