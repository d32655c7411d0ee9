// The types the deploy modules share: a target and the material it is rendered from, a planned file, a file
// set and its swap, the leftover listings of a run. Declarations only (and the list of target types), so
// that every deploy module can name them without importing another's code.

export const TARGET_TYPES = ['cert', 'key', 'chain', 'fullchain', 'combined', 'p12', 'k8s-secret'] as const;
export type TargetType = (typeof TARGET_TYPES)[number];

export interface Target {
  type: TargetType;
  path: string;
  /** file mode; defaults: 0600 for anything holding the private key, 0644 otherwise */
  mode?: number;
  /** user name or uid; applied only when running as root */
  owner?: string | number;
  /** group name or gid */
  group?: string | number;
  /** p12: the password is the first line of this file */
  passwordFile?: string;
  /** k8s-secret: metadata.namespace */
  namespace?: string;
  /** k8s-secret: metadata.name (default: the certificate's name) */
  secretName?: string;
}

export interface Material {
  name: string;
  /** hex serial of the leaf */
  serial: string;
  /** the leaf certificate, PEM */
  certPem: string;
  /** the intermediates, PEM (may be empty) */
  chainPem: string;
  /** the leaf's private key, PEM (PKCS#8 or traditional, unencrypted) */
  keyPem: string;
}

export interface Rendered {
  data: Buffer;
  mode: number;
}

/** One target as step 0 planned it: the bytes, mode and owner to write, and what sits at its path now. */
export interface Plan {
  target: Target;
  path: string;
  data: Buffer;
  mode: number;
  uid: number | undefined;
  gid: number | undefined;
  existed: boolean;
  stale: string[];
  changed: boolean;
  state: PathState;
  /** set members: a file already holding exactly these bytes, mode and owner (hard-linked into a new version) */
  source: string | null;
  set?: FileSet;
}

/** missing; a plain file; our symlink into the set; a symlink someone else made */
export type PathState = 'missing' | 'file' | 'link' | 'foreign';

export interface FileSet {
  /** the targets' folder */
  dir: string;
  /** `.mcpki-set-NAME` */
  name: string;
  path: string;
  exists: boolean;
  /** the version `current` points at */
  version: string | null;
  /** leftovers of killed runs in the set folder */
  stale: string[];
  members: Plan[];
  dirMode: number;
  changed: boolean;
  /** fewer than two of the certificate's set types remain in this folder: release the set */
  dissolve?: boolean;
}

/** One set's swap: what publishing it needs and what undoing it needs. */
export interface SetBackup {
  /** the set folder */
  path: string;
  dir: string;
  /** this deploy created the set folder */
  created: boolean;
  /** the version `current` pointed at before the swap (after a migration: the adopted one), or null */
  previous: string | null;
  /** the new version */
  next: string | null;
  /** the temp symlink renamed over `current`; null once published */
  swapTemp: string | null;
  /** temp symlinks and the member paths (missing before) they are renamed over */
  linkTemps: [string, string][];
  /** member symlinks this deploy created (removed on rollback) */
  links: string[];
  /** versions replaced by an adopted one with the same inodes: removed on success and on rollback */
  superseded: string[];
  /** versions and temp symlinks an interrupted earlier deploy left: removed on success, kept on rollback */
  stale: string[];
}

/** Leftover names (`-prev-` links, temp files) per folder. */
export type LeftoverListings = Map<string, Set<string>>;

/**
 * Target folders already checked (fs/safe-path.ts) during one chunk of certificates deployed together, and
 * whether others may write in them. Short-lived: made per chunk, so a folder changed later is checked again.
 */
export type DirChecks = Map<string, boolean>;
