// Prometheus metrics and a health check for `mcpki serve`: renderMetrics (text exposition format 0.0.4) and a small
// node:http server (GET /metrics, GET /healthz). Loopback only unless allowRemote: the metrics name every certificate
// and its serial, which is inventory detail a remote scraper should be let in to see on purpose.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { McpkiError, fix } from '../errors.js';
import { checkHostPort } from '../net/address.js';

/** A point in time: ISO string, Date, or milliseconds since the epoch. */
export type MetricTime = string | Date | number;

export interface CertificateMetrics {
  name: string;
  /** 'local' or 'acme:ACCOUNT' */
  issuer: string;
  /** hex serial of the current certificate */
  serial: string;
  /** null: not issued yet (no not-after sample) */
  notAfter: MetricTime | null;
  /** the next renewal check the policy chose */
  nextRenewal?: MetricTime | null;
  /** counters since the service started */
  renewals?: { success: number; failure: number };
  deploys?: { success: number; failure: number };
  /** the last successful renewal (or issuance) */
  lastSuccess?: MetricTime | null;
}

export interface SchedulerMetrics {
  /** completed ticks */
  ticks: number;
  /** ticks that failed (threw) */
  failed: number;
  /** ticks skipped because one was still running */
  skipped: number;
}

/** The `crl:` section, when mcpki.yaml has one. */
export interface CrlMetrics {
  /** nextUpdate of the published CRL (of the intermediate); null before the first check */
  nextUpdate: MetricTime | null;
  /** its cRLNumber, decimal */
  number: string | null;
  /** publications (a new CRL, or copies rewritten and hooks run) by this service */
  publishes: { success: number; failure: number };
}

/** Everything /metrics and /healthz show: plain data, built by the service for each scrape. */
export interface MetricsSnapshot {
  /** mcpki's version, for mcpki_build_info */
  version: string;
  certificates: CertificateMetrics[];
  /** when the last check (scheduler tick) finished; null before the first */
  lastCheck?: MetricTime | null;
  scheduler?: SchedulerMetrics;
  crl?: CrlMetrics;
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

interface Family {
  name: string;
  type: 'gauge' | 'counter';
  help: string;
  samples: Array<{ labels: Array<[string, string]>; value: number }>;
}

/** The snapshot in the Prometheus text exposition format 0.0.4 (HELP and TYPE before each family, one sample a line). */
export function renderMetrics(snapshot: MetricsSnapshot): string {
  const family = (name: string, type: Family['type'], help: string): Family => ({ name, type, help, samples: [] });
  const notAfter = family(
    'mcpki_certificate_not_after_seconds',
    'gauge',
    'Expiry (notAfter) of the current certificate, seconds since the epoch.',
  );
  const nextRenewal = family(
    'mcpki_certificate_next_renewal_seconds',
    'gauge',
    'When the certificate is next checked for renewal, seconds since the epoch.',
  );
  const renewals = family('mcpki_renewals_total', 'counter', 'Renewals attempted by this service, by result.');
  const deploys = family(
    'mcpki_deploys_total',
    'counter',
    'Deploys (targets written, hooks run) by this service, by result.',
  );
  const lastSuccess = family(
    'mcpki_last_success_timestamp_seconds',
    'gauge',
    'Last successful renewal of the certificate, seconds since the epoch.',
  );

  const seen = new Set<string>();
  for (const cert of snapshot.certificates) {
    if (seen.has(cert.name)) continue; // a duplicate series would make Prometheus reject the whole scrape
    seen.add(cert.name);
    const name: [string, string] = ['name', cert.name];
    const na = seconds(cert.notAfter);
    if (na !== undefined)
      notAfter.samples.push({ labels: [name, ['issuer', cert.issuer], ['serial', cert.serial]], value: na });
    const nr = seconds(cert.nextRenewal);
    if (nr !== undefined) nextRenewal.samples.push({ labels: [name], value: nr });
    for (const result of ['success', 'failure'] as const) {
      renewals.samples.push({ labels: [name, ['result', result]], value: cert.renewals?.[result] ?? 0 });
      deploys.samples.push({ labels: [name, ['result', result]], value: cert.deploys?.[result] ?? 0 });
    }
    const ls = seconds(cert.lastSuccess);
    if (ls !== undefined) lastSuccess.samples.push({ labels: [name], value: ls });
  }

  const families = [notAfter, nextRenewal, renewals, deploys, lastSuccess];
  const lastCheck = seconds(snapshot.lastCheck);
  if (lastCheck !== undefined) {
    const f = family(
      'mcpki_last_check_timestamp_seconds',
      'gauge',
      'When the service last finished checking all certificates, seconds since the epoch.',
    );
    f.samples.push({ labels: [], value: lastCheck });
    families.push(f);
  }
  if (snapshot.scheduler) {
    const s = snapshot.scheduler;
    for (const [key, help] of [
      ['ticks', 'Scheduled checks completed.'],
      ['failed', 'Scheduled checks that failed as a whole.'],
      ['skipped', 'Scheduled checks skipped because the previous one was still running.'],
    ] as const) {
      const f = family(`mcpki_scheduler_${key}_total`, 'counter', help);
      f.samples.push({ labels: [], value: s[key] });
      families.push(f);
    }
  }
  if (snapshot.crl) {
    const crl = snapshot.crl;
    const nu = seconds(crl.nextUpdate);
    if (nu !== undefined) {
      const f = family(
        'mcpki_crl_next_update_timestamp_seconds',
        'gauge',
        'nextUpdate of the published CRL, seconds since the epoch: servers checking it refuse every client after this.',
      );
      f.samples.push({ labels: [], value: nu });
      families.push(f);
    }
    if (crl.number !== null && /^\d+$/.test(crl.number)) {
      const f = family('mcpki_crl_number', 'gauge', 'cRLNumber of the published CRL.');
      f.samples.push({ labels: [], value: Number(crl.number) });
      families.push(f);
    }
    const publishes = family(
      'mcpki_crl_publish_total',
      'counter',
      'CRL publications (a new CRL, or its copies rewritten and reload hooks run) by this service, by result.',
    );
    for (const result of ['success', 'failure'] as const)
      publishes.samples.push({ labels: [['result', result]], value: crl.publishes[result] });
    families.push(publishes);
  }
  const up = family('mcpki_up', 'gauge', 'Whether the mcpki service is running.');
  up.samples.push({ labels: [], value: 1 });
  const build = family('mcpki_build_info', 'gauge', 'mcpki version, as a label; the value is always 1.');
  build.samples.push({ labels: [['version', snapshot.version]], value: 1 });
  families.push(up, build);

  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const sample of f.samples) {
      const labels = sample.labels.length
        ? `{${sample.labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`
        : '';
      lines.push(`${f.name}${labels} ${formatValue(sample.value)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Label values: backslash, double quote and line feed are escaped (\\, \", \n). */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function seconds(time: MetricTime | null | undefined): number | undefined {
  if (time === null || time === undefined) return undefined;
  const ms = typeof time === 'number' ? time : typeof time === 'string' ? Date.parse(time) : time.getTime();
  return Number.isFinite(ms) ? ms / 1000 : undefined;
}

// --- the HTTP server ----------------------------------------------------------------------------------------

export interface MetricsServerOptions {
  /** HOST:PORT, [IPv6]:PORT, or PORT alone (127.0.0.1); default 127.0.0.1:9464 */
  listen?: string;
  snapshot: () => MetricsSnapshot;
  /** accept a non-loopback listen address (default: refuse) */
  allowRemote?: boolean;
  /** /healthz answers 503 when the last check is older than this (default: never) */
  maxCheckAgeSeconds?: number;
  now?: () => Date;
}

export interface MetricsServer {
  /** where it listens, HOST:PORT ([::1]:PORT for IPv6) with the actual port */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** http://address */
  readonly url: string;
  /** stops listening and closes open connections */
  close(): Promise<void>;
}

export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9464';

/** Parses HOST:PORT and applies the loopback-only policy; throws McpkiError INVALID_INPUT. */
export function parseListenAddress(listen: string, allowRemote = false): { host: string; port: number } {
  const result = checkHostPort(listen, { defaultHost: '127.0.0.1', example: '127.0.0.1:9464', listen: true });
  if (!result.ok) {
    throw new McpkiError(
      'INVALID_INPUT',
      `invalid metrics listen address "${listen}": ${result.message}`,
      fix('use HOST:PORT, e.g. {--metrics 127.0.0.1:9464} (IPv6: [::1]:9464)'),
    );
  }
  let { host } = result.value;
  const { port } = result.value;
  if (host.toLowerCase() === 'localhost') host = '127.0.0.1';
  if (!allowRemote && !isLoopback(host)) {
    throw new McpkiError(
      'INVALID_INPUT',
      `refusing to serve metrics on ${listen}: not a loopback address`,
      'metrics name every certificate; listen on 127.0.0.1:9464 or [::1]:9464 (scrape through a proxy or SSH tunnel), or allow remote listening explicitly',
    );
  }
  return { host, port };
}

function isLoopback(host: string): boolean {
  const kind = isIP(host);
  if (kind === 4) return host.split('.')[0] === '127';
  if (kind === 6) {
    const h = host.toLowerCase();
    if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped ? mapped[1]!.split('.')[0] === '127' : false;
  }
  return false;
}

/** Starts the /metrics and /healthz endpoint. Resolves once listening; rejects with McpkiError if it cannot. */
export function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  let host: string;
  let port: number;
  try {
    ({ host, port } = parseListenAddress(options.listen ?? DEFAULT_METRICS_LISTEN, options.allowRemote));
  } catch (error) {
    return Promise.reject(error);
  }
  const now = options.now ?? (() => new Date());
  const server = createServer((request, response) => handle(request, response, options, now));
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const what =
        error.code === 'EADDRINUSE'
          ? 'the address is in use'
          : error.code === 'EACCES'
            ? 'permission denied'
            : (error.code ?? String(error));
      reject(
        new McpkiError(
          'LISTEN_FAILED',
          `cannot serve metrics on ${options.listen ?? DEFAULT_METRICS_LISTEN}: ${what}`,
          fix('pick another port, e.g. {--metrics 127.0.0.1:9465}'),
          { cause: error },
        ),
      );
    };
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError);
      server.on('error', () => undefined); // after listening, errors belong to single connections
      const bound = server.address();
      const actualPort = bound && typeof bound === 'object' ? bound.port : port;
      const address = host.includes(':') ? `[${host}]:${actualPort}` : `${host}:${actualPort}`;
      let closing: Promise<void> | undefined;
      resolve({
        address,
        host,
        port: actualPort,
        url: `http://${address}`,
        close() {
          closing ??= new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          });
          return closing;
        },
      });
    });
  });
}

function handle(
  request: IncomingMessage,
  response: ServerResponse,
  options: MetricsServerOptions,
  now: () => Date,
): void {
  const path = (request.url ?? '/').split('?')[0];
  const known = path === '/metrics' || path === '/healthz';
  if (!known) return send(response, 404, 'text/plain; charset=utf-8', 'not found: try /metrics or /healthz\n');
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    return send(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
  }
  let snapshot: MetricsSnapshot;
  try {
    snapshot = options.snapshot();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (path === '/healthz')
      return send(response, 503, 'application/json', JSON.stringify({ status: 'error', error: message }) + '\n');
    return send(response, 500, 'text/plain; charset=utf-8', `snapshot failed: ${message}\n`);
  }
  if (path === '/metrics')
    return send(response, 200, METRICS_CONTENT_TYPE, renderMetrics(snapshot), request.method === 'HEAD');
  const lastMs = seconds(snapshot.lastCheck);
  const lastCheck = lastMs === undefined ? null : new Date(lastMs * 1000).toISOString();
  const ageSeconds = lastMs === undefined ? null : Math.max(0, now().getTime() / 1000 - lastMs);
  const stale =
    options.maxCheckAgeSeconds !== undefined && ageSeconds !== null && ageSeconds > options.maxCheckAgeSeconds;
  const body = {
    status: stale ? 'stale' : 'ok',
    version: snapshot.version,
    lastCheck,
    certificates: snapshot.certificates.length,
  };
  send(response, stale ? 503 : 200, 'application/json', JSON.stringify(body) + '\n', request.method === 'HEAD');
}

function send(response: ServerResponse, status: number, type: string, body: string, headOnly = false): void {
  response.statusCode = status;
  response.setHeader('Content-Type', type);
  response.setHeader('Content-Length', Buffer.byteLength(body));
  response.setHeader('Cache-Control', 'no-store');
  response.end(headOnly ? undefined : body);
}
