// The normalised form of mcpki.yaml: defaults applied, paths resolved against the file's folder, modes as
// numbers, durations in milliseconds. Produced only from a file without a single error.
import type { Target } from '../deploy/types.js';
import type { KeyType } from '../pki/keys.js';
import type { San } from '../pki/names.js';
import type { RenewBefore } from '../duration.js';
import type { AcmeServerSettings } from '../acme-server/start.js';

export type CertificateKind = 'server' | 'client';

export type DeclaredIssuer = { type: 'local' } | { type: 'acme'; account: string };

export type { RenewBefore } from '../duration.js';

export type DeclaredChallenge =
  | { type: 'http-01'; port?: number; host?: string; webroot?: string }
  | {
      type: 'dns-01';
      hook: string[];
      timeoutMs?: number;
      propagationSeconds?: number;
      /** the DNS server polled until the TXT value is visible, "IP:PORT" ("[IPv6]:PORT"), as --dns-resolver */
      resolver?: string;
      /** how long to poll the resolver, as --dns-propagation-timeout */
      propagationTimeoutMs?: number;
    }
  | { type: 'tls-alpn-01'; port?: number; host?: string };

export const TARGET_TYPES = ['cert', 'key', 'chain', 'fullchain', 'combined', 'p12', 'k8s-secret'] as const;
export type TargetType = (typeof TARGET_TYPES)[number];

/** A target as deploy takes it (deploy/targets.ts), with the mode resolved and the path as the file wrote it. */
export interface DeclaredTarget extends Target {
  type: TargetType;
  /** absolute */
  path: string;
  /** as written in the file, for messages */
  pathAsWritten: string;
  /** permission bits; default 0o600 for targets holding the private key (key, combined, p12, k8s-secret), else 0o644 */
  mode: number;
}

export interface DeclaredHooks {
  /** argv arrays, run in order without a shell; [] when none */
  reload: string[][];
  timeoutMs: number;
  verify?: { host: string; port: number };
}

export interface DeclaredCertificate {
  name: string;
  issuer: DeclaredIssuer;
  /** classified and normalised with classifySan, in file order */
  names: San[];
  kind: CertificateKind;
  key: KeyType;
  /** local certificates only (default 90) */
  days?: number;
  /** ACME certificates only */
  profile?: string;
  /** ACME certificates only (default { type: 'http-01' }) */
  challenge?: DeclaredChallenge;
  /** ACME certificates only: a renewal keeps the private key (certbot's --reuse-key) */
  reuseKey?: boolean;
  /** ACME certificates only: the alternate chain with a certificate issued by this CN, when the CA offers it */
  preferredChain?: string;
  /** from the certificate, else from defaults; undefined: the built-in policy decides */
  renewBefore?: RenewBefore;
  targets: DeclaredTarget[];
  hooks: DeclaredHooks;
  /** 1-based line of the certificate's entry in the file, for messages */
  line: number;
}

export interface ConfigDefaults {
  issuer: DeclaredIssuer;
  key: KeyType;
  days: number;
  renewBefore?: RenewBefore;
  hookTimeoutMs: number;
}

/** A copy of HOME/ca/crl.pem for a server that reads the CRL elsewhere. */
export interface DeclaredCrlTarget {
  /** absolute */
  path: string;
  /** as written in the file, for messages */
  pathAsWritten: string;
  /** permission bits; default 0o644 (a CRL is public) */
  mode: number;
  owner?: string | number;
  group?: string | number;
}

/** The `crl:` section: keep the local CA's CRL published (HOME/ca/crl.pem and its copies). */
export interface DeclaredCrl {
  /** validity of each published CRL, 1–365 (default 7) */
  days: number;
  /** republish when less than this part of the published CRL's validity is left (default 1/2) */
  refreshBefore: RenewBefore;
  targets: DeclaredCrlTarget[];
  /** reload commands run after a new CRL is published or a copy rewritten */
  hooks: { reload: string[][]; timeoutMs: number };
  /** 1-based line of the section, for messages */
  line: number;
}

export interface Config {
  version: 1;
  /** absolute path of the file */
  file: string;
  /** absolute folder relative paths were resolved against */
  dir: string;
  defaults: ConfigDefaults;
  certificates: DeclaredCertificate[];
  /** absent: mcpki apply/renew/serve leave the CRL alone */
  crl?: DeclaredCrl;
  /** the settings of `mcpki acme-server` (the flags override them) */
  acmeServer?: AcmeServerSettings;
  /**
   * `store:` — where the inventory lives (`sqlite` or a postgres:// URL, relative certificate paths made
   * absolute); --store and MCPKI_STORE win over it
   */
  store?: string;
}
