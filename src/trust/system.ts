// The Linux system trust store, done the distribution's way: drop the root into an anchors folder and run the
// distribution's refresh tool, which rebuilds the PEM bundle that OpenSSL, GnuTLS, curl, Python, Go… read.
// debian.ts and fedora.ts only describe where things are; this file does the work for both.
import { unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../fs/atomic.js';
import { McpkiError } from '../errors.js';
import { assertSafeDir } from '../fs/safe-path.js';
import {
  findTool,
  isFile,
  isRootUser,
  isWritable,
  pemContains,
  readTextIfExists,
  runTool,
  shellWord,
  type Availability,
  type RootCertificate,
  type TrustStore,
  type TrustStoreResult,
} from './common.js';

export interface AnchorStoreLayout {
  /** 'system:debian' | 'system:fedora' */
  name: string;
  /** where local anchors go, e.g. /usr/local/share/ca-certificates */
  anchorDir: string;
  /** the refresh tool and its arguments, e.g. update-ca-certificates, update-ca-trust extract */
  tool: string;
  toolArgs: readonly string[];
  /** arguments after removing an anchor, when they differ (Debian needs --fresh to drop the hashed links) */
  uninstallToolArgs?: readonly string[];
  /** the bundle the refresh tool writes; the first one that exists is checked */
  bundles: readonly string[];
  /** how to get the tool, for hints */
  installHint: string;
}

/** mcpki-<first 16 hex of the SHA-256 fingerprint>.crt: several CAs coexist, uninstall removes exactly ours. */
export function anchorFileName(root: RootCertificate): string {
  return `mcpki-${root.id}.crt`;
}

export class AnchorDirStore implements TrustStore {
  readonly name: string;
  readonly location: string;
  /** How the hints name this program (e.g. its full path, which sudo finds without the user's PATH). */
  invocation: readonly string[] = ['mcpki'];

  constructor(
    private readonly layout: AnchorStoreLayout,
    private readonly home: string,
  ) {
    this.name = layout.name;
    this.location = layout.anchorDir;
  }

  isAvailable(): Availability {
    if (!findTool(this.layout.tool))
      return { ok: false, reason: `${this.layout.tool} not found`, hint: this.layout.installHint };
    return { ok: true };
  }

  private fileFor(root: RootCertificate): string {
    return join(this.layout.anchorDir, anchorFileName(root));
  }

  private bundle(): string | null {
    return this.layout.bundles.find((path) => isFile(path)) ?? null;
  }

  /** true/false, or null when there is no bundle to look in */
  private inBundle(root: RootCertificate): boolean | null {
    const bundle = this.bundle();
    if (!bundle) return null;
    const text = readTextIfExists(bundle);
    return text === null ? null : pemContains(text, root.der);
  }

  private result(root: RootCertificate, state: TrustStoreResult['state'], detail?: string): TrustStoreResult {
    return { store: this.name, location: this.fileFor(root), state, ...(detail ? { detail } : {}) };
  }

  private requireWritable(verb: 'install' | 'uninstall'): void {
    // the anchors folder decides what the whole machine trusts: no foreign owner, symlink or writable mode on the way
    assertSafeDir(this.layout.anchorDir, 'the system anchors folder');
    const dirs = [this.layout.anchorDir, ...this.layout.bundles.slice(0, 1).map((b) => dirname(b))];
    const blocked = dirs.find((dir) => !isWritable(dir));
    if (!blocked) return;
    const who = isRootUser() ? 'this process' : 'a normal user';
    throw new McpkiError(
      'TRUST_PERMISSION',
      `${who} cannot write ${blocked}: changing the system trust store needs root`,
      `run: ${this.sudoCommand(verb)}`,
    );
  }

  /** The command that does this as root: sudo, this program by its full path, the same home. */
  sudoCommand(verb: 'install' | 'uninstall'): string {
    return [
      'sudo',
      ...this.invocation.map(shellWord),
      'trust',
      verb,
      '--store',
      'system',
      '--home',
      shellWord(this.home),
    ].join(' ');
  }

  private argsFor(verb: 'install' | 'uninstall'): readonly string[] {
    return verb === 'uninstall' ? (this.layout.uninstallToolArgs ?? this.layout.toolArgs) : this.layout.toolArgs;
  }

  private refreshCommand(verb: 'install' | 'uninstall' = 'install'): string {
    return [this.layout.tool, ...this.argsFor(verb)].join(' ');
  }

  private refresh(verb: 'install' | 'uninstall'): void {
    const tool = findTool(this.layout.tool);
    if (!tool) throw new McpkiError('TRUST_TOOL_MISSING', `${this.layout.tool} not found`, this.layout.installHint);
    runTool(tool, this.argsFor(verb), `run ${this.refreshCommand(verb)} by hand to see its messages`);
  }

  install(root: RootCertificate): TrustStoreResult {
    const file = this.fileFor(root);
    const current = readTextIfExists(file);
    const fileOk = current !== null && pemContains(current, root.der);
    if (fileOk && this.inBundle(root) !== false) return this.result(root, 'already-installed');
    this.requireWritable('install');
    if (!fileOk) writeAnchor(file, root.pem);
    this.refresh('install');
    if (this.inBundle(root) === false) {
      throw new McpkiError(
        'TRUST_FAILED',
        `${this.layout.tool} ran but ${this.bundle()} does not contain the root`,
        `check ${file} and run ${this.refreshCommand()} by hand to see its messages`,
      );
    }
    return this.result(root, 'installed', fileOk ? `refreshed ${this.bundle()}` : undefined);
  }

  uninstall(root: RootCertificate): TrustStoreResult {
    const file = this.fileFor(root);
    if (readTextIfExists(file) === null) {
      const still = this.inBundle(root) === true;
      return this.result(
        root,
        'not-installed',
        still
          ? `but still in ${this.bundle()}: run ${this.refreshCommand('uninstall')}, or it was added outside mcpki`
          : undefined,
      );
    }
    this.requireWritable('uninstall');
    try {
      unlinkSync(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      if (code !== 'ENOENT') {
        throw new McpkiError(
          code === 'EACCES' || code === 'EPERM' ? 'TRUST_PERMISSION' : 'TRUST_FAILED',
          `cannot remove ${file} (${code})`,
          `run: ${this.sudoCommand('uninstall')}`,
          { cause: error },
        );
      }
    }
    this.refresh('uninstall');
    if (this.inBundle(root) === true) {
      throw new McpkiError(
        'TRUST_FAILED',
        `removed ${file} but ${this.bundle()} still contains the root`,
        `the root is also installed some other way; run ${this.refreshCommand('uninstall')} by hand, or look for another copy under ${dirname(this.layout.anchorDir)}`,
      );
    }
    return this.result(root, 'removed');
  }

  status(root: RootCertificate): TrustStoreResult {
    const file = this.fileFor(root);
    const current = readTextIfExists(file);
    const fileOk = current !== null && pemContains(current, root.der);
    const inBundle = this.inBundle(root);
    const refresh = this.refreshCommand();
    if (fileOk) {
      if (inBundle === true) return this.result(root, 'trusted');
      if (inBundle === null) return this.result(root, 'trusted', 'anchor installed; no bundle found to confirm');
      return this.result(root, 'untrusted', `anchor installed but not in ${this.bundle()}: run ${refresh}`);
    }
    if (current !== null) return this.result(root, 'untrusted', `${file} holds a different certificate`);
    if (inBundle === true) return this.result(root, 'trusted', `in ${this.bundle()}, added outside mcpki`);
    return this.result(root, 'not-installed');
  }
}

function writeAnchor(file: string, pem: string): void {
  try {
    writeFileAtomic(file, pem, 0o644);
  } catch (error) {
    const cause = (error as { cause?: NodeJS.ErrnoException }).cause;
    if (cause?.code === 'EACCES' || cause?.code === 'EPERM' || cause?.code === 'EROFS') {
      throw new McpkiError(
        'TRUST_PERMISSION',
        `cannot write ${file} (${cause.code})`,
        'changing the system trust store needs root: run the command with sudo',
        { cause: error },
      );
    }
    throw error;
  }
}
