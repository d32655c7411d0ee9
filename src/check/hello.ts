// A raw TLS ClientHello over plain TCP, and a reader for the server's first flight. It answers what a
// complete handshake through node:tls cannot: which versions and cipher suites the server accepts, whatever
// the local OpenSSL still offers (it only reads the ServerHello); up to TLS 1.2, the exact chain the server
// sends and whether it sends a CertificateRequest (in TLS 1.3 both are encrypted); and whether the port
// speaks TLS at all (plain HTTP answers "HTTP/1.1 400").
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { isIP } from '../pki/names.js';

export const VERSIONS = { TLSv1: 0x0301, 'TLSv1.1': 0x0302, 'TLSv1.2': 0x0303, 'TLSv1.3': 0x0304 } as const;
export type TlsVersion = keyof typeof VERSIONS;

export function versionName(code: number): string {
  return (
    Object.entries(VERSIONS).find(([, v]) => v === code)?.[0] ?? (code === 0x0300 ? 'SSLv3' : `0x${code.toString(16)}`)
  );
}

export interface HelloRequest {
  /** the highest version offered; TLS 1.3 is offered through supported_versions alone */
  version: TlsVersion;
  suites: readonly number[];
  servername?: string;
  /** read on to ServerHelloDone (up to TLS 1.2: Certificate, CertificateRequest); default: ServerHello only */
  fullFlight?: boolean;
}

export type HelloOutcome =
  | {
      kind: 'server-hello';
      version: number;
      suite: number;
      /** DER certificates as sent, leaf first (fullFlight, TLS ≤ 1.2 only) */
      certificates?: Buffer[];
      /** the CertificateRequest, when the server sent one (fullFlight, TLS ≤ 1.2 only) */
      certificateRequest?: { authorities: Buffer[] };
    }
  | { kind: 'alert'; level: number; description: number }
  /** the server answered, but not with TLS */
  | { kind: 'not-tls'; sample: string }
  /** the server closed the connection before a complete answer */
  | { kind: 'closed'; received: number }
  | { kind: 'timeout'; connected: boolean; received: number }
  /** the TCP connection failed (ECONNREFUSED, ENOTFOUND, …) */
  | { kind: 'connect-error'; code: string; message: string };

const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');

function u8(n: number): Buffer {
  return Buffer.from([n & 0xff]);
}
function u16(n: number): Buffer {
  return Buffer.from([(n >> 8) & 0xff, n & 0xff]);
}
function u24(n: number): Buffer {
  return Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}
function vec16(body: Buffer): Buffer {
  return Buffer.concat([u16(body.length), body]);
}
function vec8(body: Buffer): Buffer {
  return Buffer.concat([u8(body.length), body]);
}
function extension(type: number, body: Buffer): Buffer {
  return Buffer.concat([u16(type), vec16(body)]);
}
function list16(values: readonly number[]): Buffer {
  return Buffer.concat(values.map(u16));
}

const GROUPS = [0x001d, 0x0017, 0x0018, 0x0019]; // x25519, P-256, P-384, P-521
// ECDSA P-256/384/521, RSA-PSS, Ed25519, Ed448, RSA PKCS#1 and the SHA-1 forms some old servers need
const SIGNATURE_ALGORITHMS = [
  0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0807, 0x0808, 0x0809, 0x080a, 0x080b, 0x0401, 0x0501, 0x0601,
  0x0203, 0x0201,
];

export function buildClientHello(request: HelloRequest): Buffer {
  const tls13 = request.version === 'TLSv1.3';
  const extensions: Buffer[] = [];
  if (request.servername && isIP(request.servername) === 0) {
    const name = Buffer.from(request.servername, 'ascii');
    extensions.push(extension(0x0000, vec16(Buffer.concat([u8(0), vec16(name)]))));
  }
  extensions.push(extension(0x000a, vec16(list16(GROUPS))));
  extensions.push(extension(0x000b, vec8(u8(0))));
  extensions.push(extension(0x000d, vec16(list16(SIGNATURE_ALGORITHMS))));
  extensions.push(extension(0x0017, Buffer.alloc(0))); // extended_master_secret
  if (tls13) {
    extensions.push(extension(0x002b, vec8(u16(VERSIONS['TLSv1.3']))));
    extensions.push(extension(0x002d, vec8(u8(1)))); // psk_dhe_ke
    // any 32 bytes are an x25519 public key; the probe never completes the handshake
    extensions.push(extension(0x0033, vec16(Buffer.concat([u16(0x001d), vec16(randomBytes(32))]))));
  } else {
    extensions.push(extension(0xff01, vec8(Buffer.alloc(0)))); // renegotiation_info
  }
  const body = Buffer.concat([
    u16(tls13 ? VERSIONS['TLSv1.2'] : VERSIONS[request.version]),
    randomBytes(32),
    tls13 ? vec8(randomBytes(32)) : vec8(Buffer.alloc(0)),
    vec16(list16(request.suites)),
    vec8(u8(0)),
    vec16(Buffer.concat(extensions)),
  ]);
  const handshake = Buffer.concat([u8(1), u24(body.length), body]);
  return Buffer.concat([u8(22), u16(0x0301), u16(handshake.length), handshake]);
}

interface ReadState {
  records: Buffer;
  handshake: Buffer;
  result?: HelloOutcome;
  version?: number;
  suite?: number;
  certificates?: Buffer[];
  certificateRequest?: { authorities: Buffer[] };
}

/** The first line of what a non-TLS server sent (e.g. "HTTP/1.1 400 Bad Request"), printable characters only. */
function printable(bytes: Buffer): string {
  const text = bytes.subarray(0, 200).toString('latin1');
  const line = /^[\x20-\x7e]+(?=\r?\n)/.exec(text)?.[0] ?? text;
  return line
    .slice(0, 60)
    .replace(/[^\x20-\x7e]+/g, ' ')
    .trim();
}

function readServerHello(body: Buffer): { version: number; suite: number; retry: boolean } {
  let version = body.readUInt16BE(0);
  const retry = body.subarray(2, 34).equals(HRR_RANDOM);
  let at = 34;
  at += 1 + body[at]!; // session id
  const suite = body.readUInt16BE(at);
  at += 3; // suite, compression
  if (at + 2 <= body.length) {
    const end = at + 2 + body.readUInt16BE(at);
    for (at += 2; at + 4 <= end;) {
      const type = body.readUInt16BE(at);
      const length = body.readUInt16BE(at + 2);
      if (type === 0x002b && length === 2) version = body.readUInt16BE(at + 4);
      at += 4 + length;
    }
  }
  return { version, suite, retry };
}

function readCertificates(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const end = 3 + body.readUIntBE(0, 3);
  for (let at = 3; at + 3 <= end;) {
    const length = body.readUIntBE(at, 3);
    out.push(Buffer.from(body.subarray(at + 3, at + 3 + length)));
    at += 3 + length;
  }
  return out;
}

function readCertificateRequest(body: Buffer, version: number): { authorities: Buffer[] } {
  let at = 1 + body[0]!; // certificate types
  if (version >= VERSIONS['TLSv1.2']) at += 2 + body.readUInt16BE(at); // signature algorithms
  const authorities: Buffer[] = [];
  const end = at + 2 + body.readUInt16BE(at);
  for (at += 2; at + 2 <= end;) {
    const length = body.readUInt16BE(at);
    authorities.push(Buffer.from(body.subarray(at + 2, at + 2 + length)));
    at += 2 + length;
  }
  return { authorities };
}

/** Feeds received bytes; sets state.result once the answer is complete. Malformed input is "not TLS". */
function consume(state: ReadState, fullFlight: boolean): void {
  try {
    while (!state.result && state.records.length >= 5) {
      const type = state.records[0]!;
      const major = state.records[1]!;
      const length = state.records.readUInt16BE(3);
      if ((type !== 21 && type !== 22 && type !== 20) || major !== 3 || length > 18432) {
        state.result = { kind: 'not-tls', sample: printable(state.records) };
        return;
      }
      if (state.records.length < 5 + length) return;
      const fragment = state.records.subarray(5, 5 + length);
      state.records = state.records.subarray(5 + length);
      if (type === 21) {
        state.result = { kind: 'alert', level: fragment[0] ?? 2, description: fragment[1] ?? 0 };
        return;
      }
      if (type === 20) continue; // TLS 1.3 middlebox-compatibility ChangeCipherSpec
      state.handshake = Buffer.concat([state.handshake, fragment]);
      while (!state.result && state.handshake.length >= 4) {
        const messageType = state.handshake[0]!;
        const messageLength = state.handshake.readUIntBE(1, 3);
        if (state.handshake.length < 4 + messageLength) break;
        const body = state.handshake.subarray(4, 4 + messageLength);
        state.handshake = state.handshake.subarray(4 + messageLength);
        if (state.version === undefined) {
          if (messageType !== 2) {
            state.result = {
              kind: 'not-tls',
              sample: `a TLS handshake message of type ${messageType} instead of a ServerHello`,
            };
            return;
          }
          const hello = readServerHello(body);
          state.version = hello.retry ? VERSIONS['TLSv1.3'] : hello.version;
          state.suite = hello.suite;
          if (!fullFlight || state.version >= VERSIONS['TLSv1.3']) {
            state.result = { kind: 'server-hello', version: state.version, suite: hello.suite };
          }
        } else if (messageType === 11) state.certificates = readCertificates(body);
        else if (messageType === 13) state.certificateRequest = readCertificateRequest(body, state.version);
        else if (messageType === 14) {
          state.result = {
            kind: 'server-hello',
            version: state.version,
            suite: state.suite!,
            certificates: state.certificates ?? [],
            ...(state.certificateRequest ? { certificateRequest: state.certificateRequest } : {}),
          };
        }
      }
    }
  } catch {
    state.result = { kind: 'not-tls', sample: 'a malformed TLS record' };
  }
}

/** Sends one ClientHello and reads the answer. Never throws: every outcome is a value. */
export function sendHello(host: string, port: number, request: HelloRequest, timeoutMs: number): Promise<HelloOutcome> {
  return new Promise((resolve) => {
    const state: ReadState = { records: Buffer.alloc(0), handshake: Buffer.alloc(0) };
    let connected = false;
    let received = 0;
    let done = false;
    const socket = net.connect({ host, port });
    const finish = (outcome: HelloOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout', connected, received }), timeoutMs);
    socket.setNoDelay(true);
    socket.once('connect', () => {
      connected = true;
      socket.write(buildClientHello(request));
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      state.records = state.records.length ? Buffer.concat([state.records, chunk]) : chunk;
      consume(state, request.fullFlight === true);
      if (state.result) finish(state.result);
    });
    socket.once('end', () => finish({ kind: 'closed', received }));
    socket.once('close', () => finish({ kind: 'closed', received }));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      // a reset after connecting is how some servers refuse a version
      if (connected) finish({ kind: 'closed', received });
      else finish({ kind: 'connect-error', code: error.code ?? 'ERROR', message: error.message });
    });
  });
}
