// `mcpki acme-server`: the WFE behind node:https, on a certificate this CA issues to the server itself (key in
// memory only, re-signed before it is two-thirds through its life). Requests are read with a size cap; the
// URLs in every response are built from the public URL when one is set (behind a load balancer; the Host
// header is then not used), else from the Host the client used, as long as it is a name the server's
// certificate carries, so one server can be reached as 127.0.0.1 and as localhost. close() stops accepting,
// lets in-flight requests and validations finish, and resolves.
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../context.js';
import { McpkiError, fix } from '../errors.js';
import { loadIssuingCa } from '../pki/ca.js';
import { toPem } from '../pki/der.js';
import { fingerprintOf, signLeaf } from '../pki/issue.js';
import { assertPermitted } from '../pki/constraints.js';
import { classifySan, type San } from '../pki/names.js';
import { parsePublicUrl, type PublicUrl } from './public-url.js';
import { createMemoryState, type AcmeState } from './model.js';
import { createMemoryNonceStore, type NonceStore } from './nonces.js';
import { problem } from './problem.js';
import type { ValidationSettings } from './va.js';
import {
  createWfe,
  problemResponse,
  storeUnavailable,
  unavailableProblem,
  type EabKey,
  type ProfileSettings,
} from './wfe.js';
import { createMemoryOrderRate, type OrderRate } from './rate.js';
import { CRL_FOLLOW_MS, serveCrl } from './crl.js';
import type { Order } from './model.js';

export interface AcmeServerOptions {
  listen: { host: string; port: number }[];
  validation: ValidationSettings;
  profiles?: Record<string, ProfileSettings>;
  requireEab?: boolean;
  findEabKey?: (kid: string) => EabKey | undefined;
  ordersPerHour?: number;
  /** extra names for the server's own certificate (besides the listen addresses and localhost) */
  names?: string[];
  /** https://HOST[:PORT][/PREFIX] clients reach the server by (a load balancer): every URL handed out uses it */
  publicUrl?: string;
  state?: AcmeState;
  nonces?: NonceStore;
  /** shared by instances on one inventory (src/acme-server/shared.ts); default in memory */
  orderRate?: OrderRate;
  updateOrderIf?(order: Order, status: Order['status']): boolean;
  /** on a shared inventory, how often to look for a newer CRL another instance published (default 5 s) */
  crlCheckMs?: number;
}

export interface RunningAcmeServer {
  /** https://HOST:PORT/acme/directory for each listener; the public URL's directory alone when one is set */
  directories: string[];
  /** HOST:PORT each listener is bound to (the port the system chose for port 0) */
  addresses: string[];
  /** the server certificate's chain (leaf + intermediate) */
  certificatePem(): string;
  close(): Promise<void>;
}

export const DEFAULT_PROFILES: Record<string, ProfileSettings> = {
  default: { kind: 'server', days: 90, description: 'TLS server certificate (serverAuth), 90 days' },
  shortlived: { kind: 'server', days: 7, description: 'TLS server certificate (serverAuth), 7 days' },
  client: { kind: 'client', days: 30, description: 'TLS client certificate (clientAuth) for MCP agents, 30 days' },
};

/** A request body larger than this is refused before it is parsed (a finalize with an RSA-4096 CSR is ~3 KB). */
export const MAX_BODY_BYTES = 64 * 1024;
const SERVER_CERT_DAYS = 7;
const WILDCARD_ADDRESSES = new Set(['0.0.0.0', '::']);

export async function startAcmeServer(context: Context, options: AcmeServerOptions): Promise<RunningAcmeServer> {
  if (options.listen.length === 0)
    throw new McpkiError(
      'USAGE',
      'the ACME server needs at least one --listen address',
      fix('give {--listen 127.0.0.1:8443|listen: 127.0.0.1:8443}'),
    );
  const state = options.state ?? createMemoryState();
  const nonces = options.nonces ?? createMemoryNonceStore();
  const profiles = options.profiles ?? DEFAULT_PROFILES;
  // one counter for every origin the server is reached by
  const orderRate =
    options.orderRate ?? createMemoryOrderRate(options.ordersPerHour ?? 300, () => context.now().getTime());
  const publicUrl = options.publicUrl !== undefined ? parsePublicUrl(options.publicUrl) : undefined;
  const names = serverNames(options, publicUrl);
  const inFlight = new Set<Promise<unknown>>();
  const track = (work: Promise<unknown>) => {
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  };
  const wfes = new Map<string, ReturnType<typeof createWfe>>();
  const wfeFor = (origin: string) => {
    let wfe = wfes.get(origin);
    if (!wfe) {
      wfe = createWfe({
        context,
        baseUrl: origin,
        state,
        nonces,
        validation: options.validation,
        profiles,
        requireEab: options.requireEab ?? false,
        findEabKey: options.findEabKey ?? (() => undefined),
        ordersPerHour: options.ordersPerHour ?? 300,
        ...(orderRate ? { orderRate } : {}),
        ...(options.updateOrderIf ? { updateOrderIf: options.updateOrderIf } : {}),
        track,
      });
      wfes.set(origin, wfe);
    }
    return wfe;
  };

  // signed first and recorded only once every listener is up: a server that fails to start leaves no
  // certificate in the inventory
  // the names asked for, checked against the CA's constraints as `mcpki issue server` checks them
  assertPermitted(
    [...(options.names ?? []), ...(publicUrl ? [publicUrl.host] : [])].map((n) => classifySan(n)),
    loadIssuingCa(context).permitted,
  );
  const first = issueServerCertificate(context, names);
  let tls = first;
  const servers: Server[] = [];
  const directories: string[] = [];
  const addresses: string[] = [];
  try {
    for (const { host, port } of options.listen) {
      const server = createServer({ key: tls.key, cert: tls.chain, minVersion: 'TLSv1.2' }, (req, res) => {
        const work = serve(req, res, (server.address() as { port: number }).port).catch((error: unknown) =>
          failed(res, error),
        );
        track(work);
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', (error: NodeJS.ErrnoException) =>
          reject(
            new McpkiError(
              'LISTEN_FAILED',
              `cannot listen on ${host}:${port} (${error.code ?? error.message})`,
              error.code === 'EADDRINUSE'
                ? fix(`another process uses port ${port}; choose another {--listen} port`)
                : fix('check the {--listen} address'),
            ),
          ),
        );
        server.listen(port, host, () => resolve());
      });
      const actual = (server.address() as { port: number }).port;
      addresses.push(`${hostForUrl(host)}:${actual}`);
      if (!publicUrl)
        directories.push(
          `https://${hostForUrl(host === '0.0.0.0' || host === '::' ? 'localhost' : host)}:${actual}/acme/directory`,
        );
      servers.push(server);
    }
    if (publicUrl) directories.push(publicUrl.directory);
    first.record();
  } catch (error) {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    throw error;
  }
  // renewed in memory before it is two-thirds through its life
  const renewEvery = Math.floor((SERVER_CERT_DAYS * 86_400_000 * 2) / 3);
  const timer = setInterval(() => {
    try {
      tls = issueServerCertificate(context, names);
      tls.record();
    } catch {
      return; // the inventory is away: the certificate has a third of its life left, tried again next time
    }
    for (const server of servers) server.setSecureContext({ key: tls.key, cert: tls.chain, minVersion: 'TLSv1.2' });
  }, renewEvery);
  timer.unref();
  const crl = serveCrl(context, options.crlCheckMs ?? CRL_FOLLOW_MS);

  async function serve(req: IncomingMessage, res: ServerResponse, port: number): Promise<void> {
    const hostHeader = req.headers.host ?? '';
    // behind a load balancer the Host is whatever the balancer or client wrote: not trusted for any URL
    const origin = publicUrl ? publicUrl.base : originOf(hostHeader, port, names);
    if (!origin) {
      res.writeHead(421, { 'content-type': 'application/problem+json' });
      res.end(
        JSON.stringify(
          problem(
            'malformed',
            `this server is not reached as ${hostHeader.slice(0, 100) || '(no Host)'}; use one of ${[...names].join(', ')}`,
            { status: 421 },
          ).toDocument(),
        ),
      );
      req.resume();
      return;
    }
    let path = (req.url ?? '/').split('?')[0]!;
    // a balancer that passes the public URL's path on unchanged (TLS passthrough) and one that strips it both work
    if (publicUrl?.prefix && path.startsWith(`${publicUrl.prefix}/`)) path = path.slice(publicUrl.prefix.length);
    if (path === '/crl' && (req.method === 'GET' || req.method === 'HEAD')) {
      req.resume();
      answerCrl(res, req.method, crl.current());
      return;
    }
    const body = await readBody(req);
    const wfe = wfeFor(origin);
    if (body === null) {
      let nonce: string | undefined;
      try {
        nonce = nonces.issue();
      } catch {
        // the nonce store is away: the client takes a new one
      }
      res.writeHead(413, {
        'content-type': 'application/problem+json',
        ...(nonce ? { 'replay-nonce': nonce } : {}),
        connection: 'close',
      });
      res.end(
        JSON.stringify(
          problem('malformed', `the request body is larger than ${MAX_BODY_BYTES} bytes`, { status: 413 }).toDocument(),
        ),
      );
      return;
    }
    const response = await wfe.handle({
      method: req.method ?? 'GET',
      path,
      contentType: req.headers['content-type'],
      body,
    });
    res.writeHead(response.status, response.headers);
    res.end(req.method === 'HEAD' ? undefined : response.body);
  }

  return {
    directories,
    addresses,
    certificatePem: () => tls.chain,
    async close() {
      clearInterval(timer);
      crl.stop();
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeIdleConnections();
            }),
        ),
      );
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}

/** GET /crl: the issuing intermediate's newest CRL, DER (RFC 5280 §4.2.1.13), or a 404 problem before the first. */
function answerCrl(res: ServerResponse, method: string, crl: { der: Buffer; number: string | null } | undefined): void {
  if (!crl) {
    res.writeHead(404, { 'content-type': 'application/problem+json' });
    res.end(
      JSON.stringify(
        problem('malformed', 'no CRL is published yet: run "mcpki crl" on the CA home', { status: 404 }).toDocument(),
      ),
    );
    return;
  }
  res.writeHead(200, {
    'content-type': 'application/pkix-crl',
    'content-length': String(crl.der.length),
    'cache-control': 'no-cache',
  });
  res.end(method === 'HEAD' ? undefined : crl.der);
}

/** A request that failed outside the WFE (its body cut off, the nonce store away): answered, never a crash. */
function failed(res: ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const response = problemResponse(
    storeUnavailable(error)
      ? unavailableProblem()
      : problem('serverInternal', 'the server failed to handle this request; see its log'),
  );
  res.writeHead(response.status, response.headers);
  res.end(response.body);
}

function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      req.resume();
      resolve(null);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      else if (!tooLarge) {
        // answered at once (and the connection closed), not when a client that sends forever stops
        tooLarge = true;
        chunks.length = 0;
        resolve(null);
      }
    });
    req.on('end', () => resolve(tooLarge ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** https://HOST:PORT for a Host header naming one of the certificate's names on this listener's port. */
function originOf(hostHeader: string, port: number, names: Set<string>): string | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d+))?$/.exec(hostHeader);
  if (!match) return undefined;
  const host = match[1]!.toLowerCase();
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  if (!names.has(bare)) return undefined;
  if (match[2] !== undefined && Number(match[2]) !== port) return undefined;
  return `https://${host}:${port}`;
}

function serverNames(options: AcmeServerOptions, publicUrl: PublicUrl | undefined): Set<string> {
  const names = new Set<string>(['localhost']);
  for (const { host } of options.listen) if (!WILDCARD_ADDRESSES.has(host)) names.add(classifySan(host).value);
  if (publicUrl) names.add(classifySan(publicUrl.host).value);
  for (const name of options.names ?? []) names.add(classifySan(name).value);
  return names;
}

/** The server's own certificate, signed; `record` puts it in the inventory once it is in use. */
function issueServerCertificate(context: Context, names: Set<string>): { key: string; chain: string; record(): void } {
  const ca = loadIssuingCa(context);
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const sans: San[] = [...names].map((n) => classifySan(n));
  const signed = signLeaf(
    ca,
    { kind: 'server', name: 'acme-server', sans, keyType: 'ec-p256', days: SERVER_CERT_DAYS },
    { spki: pair.publicKey.export({ type: 'spki', format: 'der' }) },
    context.now(),
  );
  const pem = toPem('CERTIFICATE', signed.der);
  const serial = signed.serial.toString('hex').toUpperCase();
  const record = () => {
    const store = context.store();
    store.transaction(() => {
      store.addCertificate({
        name: 'acme-server',
        kind: 'server',
        serial,
        subject: signed.subject.map((a) => `${a.type}=${a.value}`).join(', '),
        sans,
        issuer: 'local',
        issuerSerial: ca.cert.serialNumber.toUpperCase(),
        profile: null,
        keyType: 'ec-p256',
        notBefore: signed.notBefore.toISOString(),
        notAfter: signed.notAfter.toISOString(),
        fingerprint: fingerprintOf(signed.der),
        pem,
        paths: {},
      });
      store.addEvent({
        type: 'acme-server.tls-certificate',
        name: 'acme-server',
        serial,
        detail: { names: [...names] },
      });
    });
  };
  return { key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, chain: pem + ca.pem, record };
}
