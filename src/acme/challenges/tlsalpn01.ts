// tls-alpn-01 responder (RFC 8737; IP identifiers per RFC 8738). A plain TCP listener reads each ClientHello
// first: only a hello that offers ALPN "acme-tls/1" and names a pending identifier in SNI is handed to the TLS
// server; anything else gets a fatal alert before any certificate is sent (no_application_protocol, or
// unrecognized_name). The TLS server picks the certificate by SNI (SNICallback): self-signed, P-256, with the
// identifier as the only subjectAltName and the critical acmeIdentifier extension holding SHA-256(keyAuthorization).
import { createHash, type KeyObject } from 'node:crypto';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { octets, toPem } from '../../pki/der.js';
import { generateKey, privateKeyPem, signatureAlgorithmFor, spkiOf } from '../../pki/keys.js';
import { expandIpv6, isIP } from '../../pki/names.js';
import { encodeName, randomSerial, signCertificate, subjectAltName } from '../../pki/x509.js';
import { LazyListener } from './listener.js';
import {
  assertKeyAuthorization,
  assertNotWildcard,
  assertToken,
  type ChallengeProvider,
  type ChallengeTask,
} from './provider.js';

export const DEFAULT_ALPN_PORT = 443;
export const ACME_TLS_ALPN = 'acme-tls/1';
/** id-pe-acmeIdentifier, RFC 8737 section 6.1 */
export const OID_ACME_IDENTIFIER = '1.3.6.1.5.5.7.1.31';

const ALERT_UNRECOGNIZED_NAME = 112;
const ALERT_NO_APPLICATION_PROTOCOL = 120;
const ALERT_HANDSHAKE_FAILURE = 40;
/** how long a client gets to send its ClientHello and to finish the handshake */
const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface TlsAlpn01Options {
  /** default 443; 0 picks a free port (see `port` after the first present) */
  port?: number;
  /** default: all interfaces */
  host?: string;
}

/** The SNI name a validation of this identifier uses: the name itself, or the reverse-DNS name of an IP (RFC 8738). */
export function sniNameFor(identifier: string): string {
  const version = isIP(identifier);
  if (version === 4) return `${identifier.split('.').reverse().join('.')}.in-addr.arpa`;
  if (version === 6) {
    const hex = expandIpv6(identifier)
      .map((group) => group.toString(16).padStart(4, '0'))
      .join('');
    return `${[...hex].reverse().join('.')}.ip6.arpa`;
  }
  return identifier.toLowerCase().replace(/\.$/, '');
}

/** The self-signed validation certificate of RFC 8737 section 3, as DER. */
export function buildValidationCertificate(
  identifier: string,
  keyAuthorization: string,
  privateKey: KeyObject,
  publicKey: KeyObject,
  now = new Date(),
): Buffer {
  const name = encodeName([{ type: 'CN', value: 'mcpki tls-alpn-01 challenge' }]);
  const digest = createHash('sha256').update(keyAuthorization, 'utf8').digest();
  const san = isIP(identifier)
    ? { type: 'ip' as const, value: identifier }
    : { type: 'dns' as const, value: identifier.toLowerCase() };
  return signCertificate(
    {
      serial: randomSerial(),
      issuer: name,
      subject: name,
      notBefore: new Date(now.getTime() - 60 * 60 * 1000),
      notAfter: new Date(now.getTime() + 7 * 24 * 60 * 60 * 1000),
      spki: spkiOf(publicKey),
      extensions: [subjectAltName([san]), { oid: OID_ACME_IDENTIFIER, critical: true, value: octets(digest) }],
    },
    signatureAlgorithmFor(privateKey),
  );
}

interface ClientHello {
  serverName: string | undefined;
  alpn: string[];
}

export class TlsAlpn01Provider implements ChallengeProvider {
  readonly type = 'tls-alpn-01' as const;
  /** SNI name (lower case) → the task and its secure context */
  private readonly contexts = new Map<string, { keyAuthorization: string; context: tls.SecureContext }>();
  private key: { privateKey: KeyObject; publicKey: KeyObject; pem: string } | undefined;
  private readonly sockets = new Set<net.Socket | tls.TLSSocket>();
  private readonly listener: LazyListener<net.Server>;

  constructor(options: TlsAlpn01Options = {}) {
    this.listener = new LazyListener({
      type: 'tls-alpn-01',
      port: options.port ?? DEFAULT_ALPN_PORT,
      host: options.host,
      create: () => this.createListener(),
      dropConnections: () => {
        for (const socket of this.sockets) socket.destroy();
        this.sockets.clear();
      },
    });
  }

  /** The port the responder listens on, once started. */
  get port(): number | undefined {
    return this.listener.port;
  }

  /** Binds the port before the order is placed, and keeps it until close(). */
  async prepare(): Promise<void> {
    await this.listener.start();
  }

  async present(task: ChallengeTask): Promise<void> {
    assertNotWildcard(task, 'tls-alpn-01');
    assertToken(task.token);
    assertKeyAuthorization(task);
    if (!this.key) {
      const pair = generateKey('ec-p256');
      this.key = { ...pair, pem: privateKeyPem(pair.privateKey) };
    }
    const der = buildValidationCertificate(
      task.identifier,
      task.keyAuthorization,
      this.key.privateKey,
      this.key.publicKey,
    );
    const context = tls.createSecureContext({
      key: this.key.pem,
      cert: toPem('CERTIFICATE', der),
      minVersion: 'TLSv1.2',
    });
    const name = sniNameFor(task.identifier);
    this.contexts.set(name, { keyAuthorization: task.keyAuthorization, context });
    try {
      await this.listener.start();
    } catch (error) {
      this.contexts.delete(name);
      throw error;
    }
  }

  async cleanup(task: ChallengeTask): Promise<void> {
    const name = sniNameFor(task.identifier);
    if (this.contexts.get(name)?.keyAuthorization === task.keyAuthorization) this.contexts.delete(name);
  }

  close(): Promise<void> {
    this.contexts.clear();
    return this.listener.close();
  }

  /** A plain TCP listener that reads each ClientHello before handing the connection to the TLS server. */
  private createListener(): net.Server {
    const tlsServer = tls.createServer(
      {
        ALPNProtocols: [ACME_TLS_ALPN],
        minVersion: 'TLSv1.2',
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
        SNICallback: (servername, callback) => {
          const entry = this.contexts.get(servername.toLowerCase());
          if (entry) callback(null, entry.context);
          else callback(new Error(`no tls-alpn-01 challenge for ${servername}`));
        },
      },
      (socket) => {
        // the validation is the handshake itself; RFC 8737 section 3: no application data is exchanged
        if (socket.alpnProtocol !== ACME_TLS_ALPN) socket.destroy();
        else socket.end();
      },
    );
    tlsServer.on('tlsClientError', (_error, socket) => socket.destroy());
    tlsServer.on('secureConnection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
    });
    return net.createServer((socket) => this.gate(socket, tlsServer));
  }

  /** Reads the ClientHello; hands acceptable connections to the TLS server, refuses the others with an alert. */
  private gate(socket: net.Socket, tlsServer: tls.Server): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => socket.destroy());
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const hello = parseClientHello(received);
      if (hello === 'incomplete') return;
      socket.off('data', onData);
      socket.pause();
      if (hello === 'invalid') return refuse(socket, ALERT_HANDSHAKE_FAILURE);
      if (!hello.alpn.includes(ACME_TLS_ALPN)) return refuse(socket, ALERT_NO_APPLICATION_PROTOCOL);
      if (!hello.serverName || !this.contexts.has(hello.serverName.toLowerCase()))
        return refuse(socket, ALERT_UNRECOGNIZED_NAME);
      socket.setTimeout(0);
      tlsServer.emit('connection', replay(socket, received));
    };
    socket.on('data', onData);
  }
}

/** A fatal TLS alert (sent as a TLS 1.2 record, which TLS 1.3 clients accept before ServerHello), then close. */
function refuse(socket: net.Socket, description: number): void {
  socket.end(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description]));
  socket.setTimeout(1000, () => socket.destroy());
}

/** A Duplex over `socket` whose readable side first yields `head`, the bytes already read from it. */
function replay(socket: net.Socket, head: Buffer): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end(() => callback());
    },
    destroy(error, callback) {
      socket.destroy();
      callback(error);
    },
  });
  duplex.push(head);
  socket.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('close', () => duplex.destroy());
  return duplex;
}

class Truncated extends Error {}

/** Parses a TLS ClientHello (possibly spread over several records) far enough to read SNI and ALPN. */
export function parseClientHello(data: Buffer): ClientHello | 'incomplete' | 'invalid' {
  const fragments: Buffer[] = [];
  let offset = 0;
  for (;;) {
    if (data.length < offset + 5) return 'incomplete';
    if (data[offset] !== 0x16 || data[offset + 1] !== 0x03) return 'invalid';
    const length = data.readUInt16BE(offset + 3);
    if (length === 0 || length > 16384) return 'invalid';
    if (data.length < offset + 5 + length) return 'incomplete';
    fragments.push(data.subarray(offset + 5, offset + 5 + length));
    offset += 5 + length;
    const handshake = Buffer.concat(fragments);
    if (handshake.length < 4) continue;
    if (handshake[0] !== 0x01) return 'invalid';
    const need = 4 + handshake.readUIntBE(1, 3);
    if (need > 65536) return 'invalid';
    if (handshake.length < need) continue;
    try {
      return readHello(handshake.subarray(4, need));
    } catch (error) {
      if (error instanceof Truncated) return 'invalid';
      throw error;
    }
  }
}

function readHello(body: Buffer): ClientHello {
  let p = 0;
  const need = (n: number): void => {
    if (p + n > body.length) throw new Truncated();
  };
  const u8 = (): number => (need(1), body[p++]!);
  const u16 = (): number => {
    need(2);
    const v = body.readUInt16BE(p);
    p += 2;
    return v;
  };
  const skip = (n: number): void => {
    need(n);
    p += n;
  };
  skip(2 + 32); // legacy_version, random
  skip(u8()); // session id
  skip(u16()); // cipher suites
  skip(u8()); // compression methods
  const hello: ClientHello = { serverName: undefined, alpn: [] };
  if (p === body.length) return hello; // no extensions
  const end = p + u16();
  if (end > body.length) throw new Truncated();
  while (p < end) {
    const type = u16();
    const length = u16();
    need(length);
    const ext = body.subarray(p, p + length);
    p += length;
    if (type === 0x0000) hello.serverName = readServerName(ext);
    else if (type === 0x0010) hello.alpn = readAlpn(ext);
  }
  return hello;
}

function readServerName(ext: Buffer): string | undefined {
  if (ext.length < 2) throw new Truncated();
  const end = Math.min(2 + ext.readUInt16BE(0), ext.length);
  for (let p = 2; p + 3 <= end;) {
    const type = ext[p]!;
    const length = ext.readUInt16BE(p + 1);
    if (p + 3 + length > end) throw new Truncated();
    if (type === 0) return ext.subarray(p + 3, p + 3 + length).toString('latin1');
    p += 3 + length;
  }
  return undefined;
}

function readAlpn(ext: Buffer): string[] {
  if (ext.length < 2) throw new Truncated();
  const end = Math.min(2 + ext.readUInt16BE(0), ext.length);
  const out: string[] = [];
  for (let p = 2; p < end;) {
    const length = ext[p]!;
    if (p + 1 + length > end) throw new Truncated();
    out.push(ext.subarray(p + 1, p + 1 + length).toString('latin1'));
    p += 1 + length;
  }
  return out;
}
