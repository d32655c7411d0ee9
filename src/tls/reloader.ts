// Zero-downtime certificate rotation for node:tls / node:https servers: the server gets its context from files
// mcpki writes, and when they change (a renewal, a new CRL) a new SecureContext is swapped in with
// server.setSecureContext. Connections already open keep the context they were made with; new handshakes get
// the new one. A pair that does not match, or a file that does not parse, is never installed: the old context
// stays and the error is reported, and the next change is tried again.
import type tls from 'node:tls';
import { isMcpkiError, McpkiError } from '../errors.js';
import {
  readTlsMaterial,
  type CertificateByName,
  type TlsCertificateInfo,
  type TlsMaterial,
  type TlsPaths,
} from './material.js';
import { settingsOf } from './server-settings.js';
import { signatureOf, watchFiles, type FileWatcher } from './watch.js';

export type { CertificateByName, TlsCertificateInfo, TlsPaths } from './material.js';

/** Finds the files of a certificate given by name (resolve.ts, through the inventory); absent where only paths are accepted. */
export type ByNameLookup = (options: CertificateByName, requestCert: boolean) => TlsPaths;

export interface TlsReloaderCommon {
  /** ask clients for a certificate (mTLS) */
  requestCert?: boolean;
  /** refuse clients whose certificate does not verify against ca (and crl); default true */
  rejectUnauthorized?: boolean;
  /**
   * Other context settings (minVersion, ciphers, passphrase, …) for every context built. Settings given to the
   * server itself are kept too (attach() reads them back); these take precedence over them.
   */
  contextOptions?: tls.SecureContextOptions;
  /** a new context was installed */
  onReload?: (info: TlsCertificateInfo) => void;
  /** changed files were refused; the previous context is still served */
  onError?: (error: McpkiError) => void;
  /** how often the resolved files are stat()ed, in ms (default 5000); fs.watch usually notices sooner */
  intervalMs?: number;
  /** false: no fs.watch, only the periodic check (file systems without change notification, or to spare inotify watches) */
  watch?: boolean;
  /** how long the files must stay unchanged before they are read, in ms (default 200) */
  settleMs?: number;
}

export type TlsReloaderOptions = (TlsPaths | CertificateByName) & TlsReloaderCommon;

export interface TlsReloader {
  /** the files being watched */
  readonly paths: TlsPaths;
  /** options for https.createServer / tls.createServer: the current context plus requestCert/rejectUnauthorized */
  serverOptions(): tls.TlsOptions;
  /** swap this server's context on every change (from now on); returns the server */
  attach<S extends tls.Server>(server: S): S;
  /** the certificate being served */
  current(): TlsCertificateInfo;
  /** the last refusal since the last successful load, if any */
  lastError(): McpkiError | undefined;
  /** reads the files now; installs them when their content differs from what is served. Throws when they are unusable (the old context stays). */
  reload(): TlsCertificateInfo;
  /** stops watching; attached servers keep their current context */
  close(): void;
}

const DEFAULT_INTERVAL_MS = 5_000;
const DEFAULT_SETTLE_MS = 200;
const TORN_READ_RETRIES = 5;

function toMcpkiError(error: unknown): McpkiError {
  if (isMcpkiError(error)) return error;
  return new McpkiError(
    'INTERNAL',
    `TLS reload failed: ${error instanceof Error ? error.message : String(error)}`,
    'report this as a bug',
    { cause: error },
  );
}

function validateTiming(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 1)
    throw new McpkiError(
      'INVALID_INPUT',
      `${name} must be a positive number of milliseconds, got ${String(value)}`,
      `leave it out for the default (${fallback})`,
    );
  return value;
}

/**
 * The reloader behind both entries' createTlsReloader: `mcpki` (resolve.ts) passes the inventory lookup,
 * `mcpki/tls` (index.ts) passes none, so that module graph never reaches the inventory.
 */
export function createReloader(options: TlsReloaderOptions, byName: ByNameLookup | undefined): TlsReloader {
  const requestCert = options.requestCert === true;
  const rejectUnauthorized = options.rejectUnauthorized !== false;
  const intervalMs = validateTiming('intervalMs', options.intervalMs, DEFAULT_INTERVAL_MS);
  const settleMs = validateTiming('settleMs', options.settleMs, DEFAULT_SETTLE_MS);
  const paths = resolvePaths(options, requestCert, byName);
  const watched = [paths.cert, paths.key, paths.ca, paths.crl].filter((p): p is string => p !== undefined);
  const extra = options.contextOptions ?? {};

  /** attached servers, each with the settings it was created with */
  const servers = new Map<tls.Server, tls.SecureContextOptions>();
  const detachers = new Map<tls.Server, () => void>();
  let loaded = readStable();
  let refusedSignature: string | undefined;
  let failure: McpkiError | undefined;
  let settleTimer: NodeJS.Timeout | undefined;
  let candidate: string | undefined;
  let closed = false;

  /** Reads until the files did not change while being read (a deploy renames them one after another). */
  function readStable(): TlsMaterial & { signature: string } {
    for (let attempt = 1; ; attempt++) {
      const before = signatureOf(watched);
      const material = readTlsMaterial(paths, extra);
      if (signatureOf(watched) === before) return { ...material, signature: before };
      if (attempt >= TORN_READ_RETRIES) {
        throw new McpkiError(
          'INVALID_INPUT',
          `the files ${watched.join(', ')} kept changing while being read`,
          'try again once the deploy has finished',
        );
      }
    }
  }

  function install(next: TlsMaterial & { signature: string }): void {
    if (next.digest === loaded.digest) {
      loaded = { ...loaded, signature: next.signature };
      refusedSignature = undefined;
      failure = undefined;
      return;
    }
    for (const [server, settings] of servers) server.setSecureContext({ ...settings, ...next.context });
    loaded = next;
    refusedSignature = undefined;
    failure = undefined;
    try {
      options.onReload?.(next.info);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      report(
        new McpkiError(
          'INTERNAL',
          `onReload threw: ${reason}`,
          'fix the onReload callback; the new certificate is being served',
          { cause: error },
        ),
      );
    }
  }

  function report(error: McpkiError): void {
    failure = error;
    try {
      options.onError?.(error);
    } catch {
      // a failing error callback must not stop the watching
    }
  }

  /** The files have been still for settleMs: read them, unless they are what is served or what was refused. */
  function settle(): void {
    settleTimer = undefined;
    if (closed) return;
    const signature = signatureOf(watched);
    if (signature !== candidate) return notice();
    if (signature === loaded.signature || signature === refusedSignature) return;
    try {
      install(readStable());
    } catch (error) {
      const now = signatureOf(watched);
      if (now !== signature) return notice(); // changed under us: judge the next state, not this one
      refusedSignature = signature;
      report(toMcpkiError(error));
    } finally {
      watcher.refresh();
    }
  }

  function notice(): void {
    if (closed) return;
    const signature = signatureOf(watched);
    if (settleTimer === undefined && (signature === loaded.signature || signature === refusedSignature)) return;
    candidate = signature;
    if (settleTimer !== undefined) clearTimeout(settleTimer);
    settleTimer = setTimeout(settle, settleMs);
    settleTimer.unref();
  }

  const watcher: FileWatcher = watchFiles(watched, notice, intervalMs, options.watch !== false);

  return {
    paths,
    serverOptions() {
      return { ...loaded.context, requestCert, rejectUnauthorized };
    },
    attach(server) {
      if (typeof server?.setSecureContext !== 'function') {
        throw new McpkiError(
          'INVALID_INPUT',
          'attach() needs a node:tls or node:https server',
          'pass the server returned by https.createServer or tls.createServer',
        );
      }
      if (closed || servers.has(server)) return server;
      const settings = settingsOf(server);
      // the server may have been created from an older serverOptions()
      server.setSecureContext({ ...settings, ...loaded.context });
      servers.set(server, settings);
      const onClose = () => {
        servers.delete(server);
        detachers.delete(server);
      };
      server.once('close', onClose);
      detachers.set(server, () => server.off('close', onClose));
      return server;
    },
    current() {
      return { ...loaded.info };
    },
    lastError() {
      return failure;
    },
    reload() {
      if (closed) throw new McpkiError('INVALID_INPUT', 'reload() after close()', 'create a new reloader');
      let next: TlsMaterial & { signature: string };
      try {
        next = readStable();
      } catch (error) {
        const mcpkiError = toMcpkiError(error);
        refusedSignature = signatureOf(watched);
        failure = mcpkiError;
        throw mcpkiError;
      } finally {
        watcher.refresh();
      }
      install(next);
      return { ...loaded.info };
    },
    close() {
      closed = true;
      watcher.close();
      if (settleTimer !== undefined) clearTimeout(settleTimer);
      settleTimer = undefined;
      for (const detach of detachers.values()) detach();
      detachers.clear();
      servers.clear();
    },
  };
}

function resolvePaths(options: TlsReloaderOptions, requestCert: boolean, byName: ByNameLookup | undefined): TlsPaths {
  if ('name' in options && options.name !== undefined) {
    if ('cert' in options || 'key' in options) {
      throw new McpkiError(
        'INVALID_INPUT',
        'give either name or cert and key, not both',
        'name looks the files up in the mcpki inventory; cert and key are paths',
      );
    }
    if (byName === undefined) {
      throw new McpkiError(
        'INVALID_INPUT',
        'mcpki/tls takes cert and key paths, not a certificate name',
        "import createTlsReloader from 'mcpki' to look the files up by name, or pass { cert, key }",
      );
    }
    return byName(options, requestCert);
  }
  const files = options as TlsPaths;
  if (typeof files.cert !== 'string' || typeof files.key !== 'string' || files.cert === '' || files.key === '') {
    throw new McpkiError(
      'INVALID_INPUT',
      'createTlsReloader needs cert and key paths, or a certificate name',
      'pass { cert, key } or { name }',
    );
  }
  const paths: TlsPaths = { cert: files.cert, key: files.key };
  if (files.ca !== undefined) paths.ca = files.ca;
  if (files.crl !== undefined) paths.crl = files.crl;
  return paths;
}
