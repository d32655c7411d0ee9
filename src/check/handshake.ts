// One complete handshake through node:tls, as a current client makes it: what it negotiates, the chain it
// receives, and how the server reacts once the handshake is over. In TLS 1.3 a server that requires a
// client certificate (or rejects the one it got) answers the client's Finished with an alert or by closing
// the connection, which reaches the client only after 'secureConnect'; `settle()` waits for that.
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';

export interface HandshakeRequest {
  host: string;
  port: number;
  servername?: string;
  /** client certificate (PEM, leaf first) and key */
  cert?: string;
  key?: string;
  timeoutMs: number;
}

export interface SettleOutcome {
  /** the server ended or reset the connection, or sent an alert, within the wait */
  closed: boolean;
  /** e.g. ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED, ECONNRESET; null for a clean close */
  error: string | null;
}

export type HandshakeOutcome =
  | {
      ok: true;
      protocol: string;
      cipher: string;
      /** the peer's address and port, e.g. 127.0.0.1:8443 */
      address: string;
      /** DER certificates as Node reports the peer's chain, leaf first */
      chain: X509Certificate[];
      /** connect to secureConnect, in milliseconds */
      elapsedMs: number;
      /** waits up to `ms` for the server to close or alert, then closes the connection */
      settle(ms: number): Promise<SettleOutcome>;
      close(): void;
    }
  | { ok: false; code: string; message: string; connected: boolean; timedOut: boolean };

function peerChain(socket: tls.TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  const seen = new Set<string>();
  let current: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (current?.raw && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    out.push(new X509Certificate(current.raw));
    current = current.issuerCertificate;
  }
  return out;
}

export function handshake(request: HandshakeRequest): Promise<HandshakeOutcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    const options: tls.ConnectionOptions = { host: request.host, port: request.port, rejectUnauthorized: false };
    if (request.servername) options.servername = request.servername;
    if (request.cert !== undefined) options.cert = request.cert;
    if (request.key !== undefined) options.key = request.key;
    let connected = false;
    let done = false;
    let ended: SettleOutcome | undefined;
    const waiters: ((outcome: SettleOutcome) => void)[] = [];
    const socket = tls.connect(options);
    const timer = setTimeout(
      () => fail({ code: 'ETIMEDOUT', message: `no TLS handshake within ${request.timeoutMs} ms` }, true),
      request.timeoutMs,
    );
    const onEnd = (outcome: SettleOutcome) => {
      ended ??= outcome;
      for (const waiter of waiters.splice(0)) waiter(ended);
    };
    function fail(error: { code: string; message: string }, timedOut = false): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: false, code: error.code, message: error.message, connected, timedOut });
    }
    socket.once('connect', () => (connected = true));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!done) fail({ code: error.code ?? 'ERROR', message: error.message });
      else onEnd({ closed: true, error: error.code ?? error.message });
    });
    socket.once('close', () =>
      done
        ? onEnd({ closed: true, error: null })
        : fail({ code: 'ECONNRESET', message: 'the server closed the connection during the handshake' }),
    );
    socket.once('secureConnect', () => {
      done = true;
      clearTimeout(timer);
      const elapsedMs = performance.now() - started;
      const cipher = socket.getCipher();
      const chain = peerChain(socket);
      socket.on('data', () => {}); // read on, so that a post-handshake alert is seen
      socket.once('end', () => onEnd({ closed: true, error: null }));
      resolve({
        ok: true,
        protocol: socket.getProtocol() ?? 'unknown',
        cipher: cipher.name,
        address:
          socket.remoteFamily === 'IPv6'
            ? `[${socket.remoteAddress}]:${socket.remotePort}`
            : `${socket.remoteAddress}:${socket.remotePort}`,
        chain,
        elapsedMs,
        settle(ms: number) {
          return new Promise<SettleOutcome>((settle) => {
            if (ended) {
              socket.destroy();
              settle(ended);
              return;
            }
            const wait = setTimeout(() => {
              socket.destroy();
              settle({ closed: false, error: null });
            }, ms);
            waiters.push((outcome) => {
              clearTimeout(wait);
              socket.destroy();
              settle(outcome);
            });
          });
        },
        close: () => socket.destroy(),
      });
    });
  });
}
