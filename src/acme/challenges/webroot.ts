// http-01 through a running web server (RFC 8555 section 8.3): the key authorization is written to
// <webroot>/.well-known/acme-challenge/<token> (atomically, 0644, so the web server can read it whatever the
// umask), and removed in cleanup together with the folders this provider created, once they are empty.
import { accessSync, chmodSync, constants, mkdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { McpkiError, fix } from '../../errors.js';
import { writeFileAtomic } from '../../fs/atomic.js';
import {
  assertKeyAuthorization,
  assertNotWildcard,
  assertToken,
  type ChallengeProvider,
  type ChallengeTask,
} from './provider.js';

export class WebrootProvider implements ChallengeProvider {
  readonly type = 'http-01' as const;
  readonly webroot: string;
  /** folders this provider created, outermost first */
  private readonly created: string[] = [];
  private readonly written = new Set<string>();

  constructor(webroot: string) {
    this.webroot = resolve(webroot);
  }

  /** Where the file for a token goes. */
  pathFor(token: string): string {
    return join(this.webroot, '.well-known', 'acme-challenge', token);
  }

  /** Before the order: the webroot is a folder, and the deepest part of .well-known/acme-challenge that exists is writable. */
  async prepare(): Promise<void> {
    this.assertFolder();
    let deepest = this.webroot;
    for (const part of [join(this.webroot, '.well-known'), join(this.webroot, '.well-known', 'acme-challenge')]) {
      let stat;
      try {
        stat = statSync(part);
      } catch {
        break;
      }
      if (!stat.isDirectory())
        throw new McpkiError(
          'INVALID_INPUT',
          `${part} is not a folder`,
          fix(
            'remove it, or give {--webroot DIR|challenge.webroot: DIR} as the folder your web server serves for this domain',
          ),
        );
      deepest = part;
    }
    try {
      accessSync(deepest, constants.W_OK | constants.X_OK);
    } catch (error) {
      throw writeError(deepest, error);
    }
  }

  private assertFolder(): void {
    let stat;
    try {
      stat = statSync(this.webroot);
    } catch {
      stat = undefined;
    }
    if (!stat?.isDirectory()) {
      throw new McpkiError(
        'INVALID_INPUT',
        `webroot ${this.webroot} is not a folder`,
        fix(
          'give {--webroot DIR|challenge.webroot: DIR} as the folder your web server serves for this domain (its document root)',
        ),
      );
    }
  }

  async present(task: ChallengeTask): Promise<void> {
    assertNotWildcard(task, 'http-01');
    assertToken(task.token);
    assertKeyAuthorization(task);
    this.assertFolder();
    const wellKnown = join(this.webroot, '.well-known');
    this.makeDir(wellKnown);
    this.makeDir(join(wellKnown, 'acme-challenge'));
    const path = this.pathFor(task.token);
    this.written.add(path);
    writeFileAtomic(path, task.keyAuthorization, 0o644);
    try {
      chmodSync(path, 0o644); // the temp file was created under the process umask
    } catch (error) {
      throw writeError(path, error);
    }
  }

  async cleanup(task: ChallengeTask): Promise<void> {
    if (!/^[A-Za-z0-9_-]+$/.test(task.token)) return;
    const path = this.pathFor(task.token);
    if (!this.written.delete(path)) return;
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
    this.removeCreatedDirs();
  }

  async close(): Promise<void> {
    for (const path of this.written) {
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    }
    this.written.clear();
    this.removeCreatedDirs();
  }

  private makeDir(dir: string): void {
    try {
      mkdirSync(dir, { mode: 0o755 });
      this.created.push(dir);
      chmodSync(dir, 0o755); // the web server must be able to traverse it whatever the umask
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && statSync(dir).isDirectory()) return;
      throw writeError(dir, error);
    }
  }

  /** Innermost first; a folder still holding files (other tokens, the user's own) stays. */
  private removeCreatedDirs(): void {
    for (let i = this.created.length - 1; i >= 0; i--) {
      try {
        rmdirSync(this.created[i]!);
        this.created.splice(i, 1);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') this.created.splice(i, 1);
        else break;
      }
    }
  }
}

function writeError(path: string, error: unknown): McpkiError {
  const code = (error as NodeJS.ErrnoException).code ?? String(error);
  return new McpkiError(
    'WRITE_FAILED',
    `cannot write ${path} for the http-01 challenge (${code})`,
    fix(
      'check that {--webroot DIR|challenge.webroot: DIR} is the folder your web server serves and that mcpki may write to it',
    ),
    { cause: error },
  );
}
