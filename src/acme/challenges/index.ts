// ACME challenge providers: http-01 (standalone responder or webroot), dns-01 (user hook), tls-alpn-01
// (standalone responder), chosen from the command line's options by createChallengeProvider.
import { McpkiError, fix } from '../../errors.js';
import { Dns01HookProvider, type Dns01HookOptions } from './dns01.js';
import { Http01Provider } from './http01.js';
import { CHALLENGE_TYPES, type ChallengeProvider, type ChallengeType } from './provider.js';
import { TlsAlpn01Provider } from './tlsalpn01.js';
import { WebrootProvider } from './webroot.js';

export {
  CHALLENGE_TYPES,
  CHALLENGE_ERROR_CODES,
  assertChallengeSupports,
  assertKeyAuthorization,
  type ChallengeProvider,
  type ChallengeTask,
  type ChallengeType,
} from './provider.js';
export { Http01Provider, DEFAULT_HTTP_PORT, type Http01Options } from './http01.js';
export { WebrootProvider } from './webroot.js';
export {
  Dns01HookProvider,
  HookFailure,
  dnsTxtValue,
  dnsTxtName,
  splitCommand,
  formatCommand,
  DEFAULT_HOOK_TIMEOUT_SECONDS,
  DEFAULT_PROPAGATION_TIMEOUT_SECONDS,
  type Dns01HookOptions,
  type PropagationCheck,
  type HookRun,
} from './dns01.js';
export {
  TlsAlpn01Provider,
  DEFAULT_ALPN_PORT,
  ACME_TLS_ALPN,
  OID_ACME_IDENTIFIER,
  buildValidationCertificate,
  sniNameFor,
  type TlsAlpn01Options,
} from './tlsalpn01.js';

/**
 * The challenge options of `mcpki acme issue`, as commander parses them (`--http-port 8080` → httpPort: '8080');
 * numbers may also be given as numbers by library callers. Defaults are applied here, not by the CLI, so that
 * an option given for another challenge type can be reported.
 */
export interface ChallengeOptions {
  /** --challenge: default http-01 */
  type?: string;
  /** --http-port (default 80) and --http-host (default: all interfaces), standalone http-01 */
  httpPort?: string | number;
  httpHost?: string;
  /** --webroot DIR: http-01 through a running web server instead of the standalone responder */
  webroot?: string;
  /** --dns-hook CMD (a command line, split without a shell), or an argv from the library */
  dnsHook?: string | readonly string[];
  /** --dns-timeout SECONDS (default 60): how long the hook may run */
  dnsTimeoutSeconds?: string | number;
  /** --dns-propagation-seconds SECONDS: sleep after each present */
  propagationSeconds?: string | number;
  /** --dns-resolver IP[:PORT]: after each present, poll this DNS server until the TXT value is visible */
  dnsResolver?: string;
  /** --dns-propagation-timeout SECONDS (default 120): how long to poll --dns-resolver */
  propagationTimeoutSeconds?: string | number;
  /** --alpn-port (default 443) and --alpn-host (default: all interfaces), tls-alpn-01 */
  alpnPort?: string | number;
  alpnHost?: string;
  /** the dns-01 hook's base environment (default process.env) */
  env?: NodeJS.ProcessEnv;
}

const OPTION_FLAGS: Record<string, string> = {
  httpPort: '--http-port',
  httpHost: '--http-host',
  webroot: '--webroot',
  dnsHook: '--dns-hook',
  dnsTimeoutSeconds: '--dns-timeout',
  propagationSeconds: '--dns-propagation-seconds',
  dnsResolver: '--dns-resolver',
  propagationTimeoutSeconds: '--dns-propagation-timeout',
  alpnPort: '--alpn-port',
  alpnHost: '--alpn-host',
};

const OPTIONS_BY_TYPE: Record<ChallengeType, readonly (keyof ChallengeOptions)[]> = {
  'http-01': ['httpPort', 'httpHost', 'webroot'],
  'dns-01': ['dnsHook', 'dnsTimeoutSeconds', 'propagationSeconds', 'dnsResolver', 'propagationTimeoutSeconds'],
  'tls-alpn-01': ['alpnPort', 'alpnHost'],
};

/** The challenge type the options ask for (default http-01). */
export function parseChallengeType(value: string | undefined): ChallengeType {
  const type = (value ?? 'http-01').toLowerCase();
  if ((CHALLENGE_TYPES as readonly string[]).includes(type)) return type as ChallengeType;
  throw new McpkiError(
    'INVALID_INPUT',
    `unknown challenge type "${value}"`,
    `use one of: ${CHALLENGE_TYPES.join(', ')}`,
  );
}

function port(value: string | number | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535)
    throw new McpkiError(
      'INVALID_INPUT',
      `${flag} must be a port number from 1 to 65535, not "${value}"`,
      `e.g. ${flag} 8080`,
    );
  return n;
}

function seconds(value: string | number | undefined, flag: string, allowZero = false): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(String(value).trim());
  if (String(value).trim() === '' || !Number.isFinite(n) || n < 0 || (n === 0 && !allowZero))
    throw new McpkiError(
      'INVALID_INPUT',
      `${flag} must be a positive number of seconds, not "${value}"`,
      `e.g. ${flag} 60`,
    );
  return n;
}

/** Builds the provider the options describe, after checking them; nothing is started until the first present(). */
export function createChallengeProvider(options: ChallengeOptions = {}): ChallengeProvider {
  const type = parseChallengeType(options.type);
  for (const [other, keys] of Object.entries(OPTIONS_BY_TYPE)) {
    if (other === type) continue;
    for (const key of keys) {
      if (options[key] !== undefined) {
        throw new McpkiError(
          'USAGE',
          `${OPTION_FLAGS[key]} applies only to --challenge ${other}, not ${type}`,
          fix(`leave out {${OPTION_FLAGS[key]}}, or use {--challenge ${other}|challenge.type: ${other}}`),
        );
      }
    }
  }
  switch (type) {
    case 'http-01': {
      if (options.webroot !== undefined) {
        for (const key of ['httpPort', 'httpHost'] as const) {
          if (options[key] !== undefined)
            throw new McpkiError(
              'USAGE',
              `${OPTION_FLAGS[key]} and --webroot cannot be combined`,
              fix(
                'with {--webroot DIR|challenge.webroot: DIR} the running web server answers the challenge; leave out one of them',
              ),
            );
        }
        if (options.webroot.trim() === '')
          throw new McpkiError(
            'USAGE',
            '--webroot needs a folder',
            fix(
              'give the folder your web server serves, e.g. {--webroot /var/www/html|challenge.webroot: /var/www/html}',
            ),
          );
        return new WebrootProvider(options.webroot);
      }
      return new Http01Provider({ port: port(options.httpPort, '--http-port'), host: options.httpHost || undefined });
    }
    case 'dns-01': {
      if (options.dnsHook === undefined) {
        throw new McpkiError(
          'USAGE',
          'dns-01 needs --dns-hook CMD',
          fix(
            'give the program that adds and removes TXT records, e.g. {--dns-hook "/usr/local/bin/acme-dns-hook --zone example.com"|challenge.hook: [/usr/local/bin/acme-dns-hook, --zone, example.com]}',
          ),
        );
      }
      if (options.propagationTimeoutSeconds !== undefined && options.dnsResolver === undefined) {
        throw new McpkiError(
          'USAGE',
          '--dns-propagation-timeout needs --dns-resolver',
          fix('give the DNS server to poll with {--dns-resolver IP[:PORT]}'),
        );
      }
      const hookOptions: Dns01HookOptions = {
        hook: options.dnsHook,
        timeoutSeconds: seconds(options.dnsTimeoutSeconds, '--dns-timeout'),
        propagationSeconds: seconds(options.propagationSeconds, '--dns-propagation-seconds', true),
        env: options.env,
      };
      if (options.dnsResolver !== undefined) {
        hookOptions.propagationCheck = {
          resolver: options.dnsResolver,
          timeoutSeconds: seconds(options.propagationTimeoutSeconds, '--dns-propagation-timeout'),
        };
      }
      return new Dns01HookProvider(hookOptions);
    }
    case 'tls-alpn-01':
      return new TlsAlpn01Provider({
        port: port(options.alpnPort, '--alpn-port'),
        host: options.alpnHost || undefined,
      });
  }
}
