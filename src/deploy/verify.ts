// The `verify: host:port` probe: connect with TLS after the reload hooks and check which certificate the
// service now presents. It compares serial numbers, it does not judge trust (rejectUnauthorized: false),
// so it works the same for the local CA and for ACME certificates.
import tls from 'node:tls';
import { formatHostPort, parseHostPort, type HostPort } from '../net/address.js';
import { isIP } from '../net/ip.js';

export interface VerifyOptions {
  /** SNI name; default: the host when it is a DNS name */
  servername?: string;
  /** extra trust anchors (PEM); only used so that servers which insist on a known CA still talk to us */
  ca?: string | Buffer;
  /** the overall budget: the probe retries until the new serial is served or this passes (default 5000) */
  timeoutMs?: number;
  /** pause between attempts (default 250) */
  intervalMs?: number;
}

export interface VerifyResult {
  ok: boolean;
  servedSerial?: string;
  error?: string;
  attempts: number;
}

/** The verify target: host:port or [v6]:port (src/net/address.ts); a parsed { host, port } is taken as it is. */
export function parseVerifyTarget(target: string | HostPort): HostPort {
  return parseHostPort(target, {
    what: `verify target ${typeof target === 'string' ? JSON.stringify(target) : formatHostPort(target)}`,
  });
}

/** Upper-case hex without leading zeros, so "00ab" and "AB" compare equal. */
export function normalizeSerial(serial: string): string {
  const hex = serial
    .replace(/[:\s]/g, '')
    .toUpperCase()
    .replace(/^0+(?=.)/, '');
  return hex;
}

function probeOnce(
  host: string,
  port: number,
  servername: string | undefined,
  ca: string | Buffer | undefined,
  timeoutMs: number,
): Promise<{ serial?: string; error?: string }> {
  return new Promise((resolve) => {
    let done = false;
    const options: tls.ConnectionOptions = { host, port, rejectUnauthorized: false };
    if (servername) options.servername = servername;
    if (ca !== undefined) options.ca = ca;
    const socket = tls.connect(options);
    const finish = (outcome: { serial?: string; error?: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ error: `no TLS handshake within ${timeoutMs} ms` }), timeoutMs);
    socket.once('secureConnect', () => {
      const serial = socket.getPeerCertificate()?.serialNumber;
      finish(serial ? { serial: normalizeSerial(serial) } : { error: 'the server presented no certificate' });
    });
    socket.once('error', (error: NodeJS.ErrnoException) =>
      finish({ error: `${error.code ?? 'error'}: ${error.message}` }),
    );
  });
}

/**
 * Connects to hostPort until it presents a certificate with `expectedSerial` or `timeoutMs` runs out
 * (services often reload asynchronously). Never throws for network problems: they are in `error`.
 */
export async function verifyServedSerial(
  target: string | HostPort,
  expectedSerial: string,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const { host, port } = parseVerifyTarget(target);
  const hostPort = formatHostPort({ host, port });
  const servername = options.servername ?? (isIP(host) ? undefined : host);
  const budget = options.timeoutMs ?? 5_000;
  const interval = options.intervalMs ?? 250;
  const expected = normalizeSerial(expectedSerial);
  const deadline = Date.now() + budget;
  let attempts = 0;
  let last: { serial?: string; error?: string } = {};
  // the last serial any attempt saw: a final attempt cut short by the deadline must not hide it
  let served: string | undefined;
  for (;;) {
    attempts++;
    const remaining = Math.max(1, deadline - Date.now());
    last = await probeOnce(host, port, servername, options.ca, remaining);
    if (last.serial === expected) return { ok: true, servedSerial: last.serial, attempts };
    served = last.serial ?? served;
    if (Date.now() + interval >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
  const result: VerifyResult = { ok: false, attempts };
  if (served) {
    result.servedSerial = served;
    result.error = `${hostPort} serves serial ${served}, expected ${expected}`;
  } else {
    result.error = `${hostPort}: ${last.error ?? 'no answer'}`;
  }
  return result;
}
