// The validation authority: proves control of an identifier by the three RFC challenge types, against the
// identifier's own addresses. http-01 (RFC 8555 §8.3) fetches the key authorization from port `httpPort`;
// dns-01 (§8.4) reads the TXT record through the configured resolver; tls-alpn-01 (RFC 8737) completes an
// `acme-tls/1` handshake on `tlsPort` and checks the self-signed certificate's acmeIdentifier extension.
// Every outcome is a problem document the client can act on; nothing here throws past `validate`.
import { createHash, X509Certificate } from 'node:crypto';
import { lookup as systemLookup, Resolver } from 'node:dns/promises';
import { request as httpRequest } from 'node:http';
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { ipToBytes } from '../net/ip.js';
import { children, decodeOid, parse, TAG } from '../pki/der.js';
import type { ChallengeType, Identifier } from './model.js';
import { AcmeProblem, problem } from './problem.js';

export interface ValidationSettings {
  /** the port http-01 is fetched from (RFC: 80) */
  httpPort: number;
  /** the port tls-alpn-01 connects to (RFC: 443) */
  tlsPort: number;
  /** a DNS server "host:port" for dns-01 TXT and for addresses; default: the system's resolver */
  dnsResolver?: { host: string; port: number };
  /** per attempt, ms */
  timeoutMs?: number;
}

const ACME_IDENTIFIER_OID = '1.3.6.1.5.5.7.1.31';
/** A key authorization is token '.' thumbprint: well under 1 KiB; more is not an answer to our challenge. */
const MAX_HTTP_BODY = 8 * 1024;

export interface ValidationRequest {
  type: ChallengeType;
  identifier: Identifier;
  token: string;
  keyAuthorization: string;
}

/** Resolves when the challenge is met; rejects with an AcmeProblem that says what was seen instead. */
export async function validateChallenge(settings: ValidationSettings, request: ValidationRequest): Promise<void> {
  try {
    if (request.type === 'http-01') return await validateHttp01(settings, request);
    if (request.type === 'dns-01') return await validateDns01(settings, request);
    return await validateTlsAlpn01(settings, request);
  } catch (error) {
    if (error instanceof AcmeProblem) throw error;
    throw problem(
      'serverInternal',
      `validation of ${request.identifier.value} failed unexpectedly: ${(error as Error).message}`,
    );
  }
}

function resolverFor(settings: ValidationSettings): Resolver | undefined {
  if (!settings.dnsResolver) return undefined;
  const resolver = new Resolver({ timeout: settings.timeoutMs ?? 10_000, tries: 2 });
  const { host, port } = settings.dnsResolver;
  resolver.setServers([isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`]);
  return resolver;
}

/** The addresses to validate against: the IP itself, or the DNS name's A/AAAA records. */
async function addressesOf(settings: ValidationSettings, identifier: Identifier): Promise<string[]> {
  if (identifier.type === 'ip') return [identifier.value];
  const resolver = resolverFor(settings);
  let addresses: string[] = [];
  try {
    if (resolver) {
      const [v4, v6] = await Promise.allSettled([
        resolver.resolve4(identifier.value),
        resolver.resolve6(identifier.value),
      ]);
      addresses = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    } else {
      addresses = (await systemLookup(identifier.value, { all: true })).map((a) => a.address);
    }
  } catch {
    addresses = [];
  }
  if (addresses.length === 0)
    throw problem(
      'dns',
      `${identifier.value} has no A or AAAA record${settings.dnsResolver ? ` at ${settings.dnsResolver.host}:${settings.dnsResolver.port}` : ''}; the server cannot reach it to validate`,
    );
  return addresses;
}

/**
 * Runs `attempt` against each address of the identifier in turn while nothing answers there (a name may resolve
 * to ::1 and 127.0.0.1 with only one answering); any other failure, or the last one, is the outcome.
 */
async function atEachAddress(
  settings: ValidationSettings,
  identifier: Identifier,
  attempt: (address: string) => Promise<void>,
): Promise<void> {
  let failure: AcmeProblem | undefined;
  for (const address of await addressesOf(settings, identifier)) {
    try {
      return await attempt(address);
    } catch (error) {
      failure = error as AcmeProblem;
      if (failure.type !== 'connection') throw failure;
    }
  }
  throw failure!;
}

function validateHttp01(settings: ValidationSettings, request: ValidationRequest): Promise<void> {
  return atEachAddress(settings, request.identifier, (address) => fetchHttp01(settings, request, address));
}

function fetchHttp01(settings: ValidationSettings, request: ValidationRequest, address: string): Promise<void> {
  const path = `/.well-known/acme-challenge/${request.token}`;
  const hostHeader =
    request.identifier.type === 'ip' && isIP(request.identifier.value) === 6
      ? `[${request.identifier.value}]`
      : request.identifier.value;
  const where = `http://${hostHeader}:${settings.httpPort}${path}`;
  return new Promise<void>((resolve, reject) => {
    const req = httpRequest(
      {
        host: address,
        port: settings.httpPort,
        path,
        method: 'GET',
        headers: { host: hostHeader, 'user-agent': 'mcpki-acme-server' },
        timeout: settings.timeoutMs ?? 10_000,
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(
            problem(
              'unauthorized',
              `${where} answered HTTP ${res.statusCode}, not 200 with the key authorization${res.statusCode && res.statusCode >= 300 && res.statusCode < 400 ? ' (redirects are not followed)' : ''}`,
            ),
          );
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_HTTP_BODY) {
            req.destroy();
            reject(
              problem(
                'unauthorized',
                `${where} answered more than ${MAX_HTTP_BODY} bytes; a key authorization is one short line`,
              ),
            );
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          // RFC 8555 §8.3: trailing white space is ignored
          const answer = Buffer.concat(chunks).toString('utf8').replace(/\s+$/, '');
          if (answer === request.keyAuthorization) resolve();
          else
            reject(
              problem(
                'unauthorized',
                `${where} answered ${JSON.stringify(answer.slice(0, 100))}, not the key authorization for this challenge`,
              ),
            );
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (error: NodeJS.ErrnoException) =>
      reject(problem('connection', `cannot fetch ${where} from ${address}: ${error.code ?? error.message}`)),
    );
    req.end();
  });
}

async function validateDns01(settings: ValidationSettings, request: ValidationRequest): Promise<void> {
  const name = `_acme-challenge.${request.identifier.value}`;
  const expected = createHash('sha256').update(request.keyAuthorization).digest('base64url');
  let records: string[][];
  try {
    records = await (
      resolverFor(settings) ?? new Resolver({ timeout: settings.timeoutMs ?? 10_000, tries: 2 })
    ).resolveTxt(name);
  } catch (error) {
    throw problem('dns', `no TXT record for ${name} (${(error as NodeJS.ErrnoException).code ?? 'lookup failed'})`);
  }
  const values = records.map((parts) => parts.join(''));
  if (!values.includes(expected)) {
    throw problem(
      'unauthorized',
      `the TXT records for ${name} (${values.length === 0 ? 'none' : values.map((v) => JSON.stringify(v.slice(0, 60))).join(', ')}) do not include ${expected}`,
    );
  }
}

/** RFC 8738 §6: an IP identifier is named in SNI by its reverse-DNS name. */
function reverseName(ip: string): string {
  if (isIP(ip) === 4) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  return `${ipToBytes(ip).toString('hex').split('').reverse().join('.')}.ip6.arpa`;
}

function validateTlsAlpn01(settings: ValidationSettings, request: ValidationRequest): Promise<void> {
  return atEachAddress(settings, request.identifier, (address) => handshakeTlsAlpn01(settings, request, address));
}

/** Socket errors that mean nothing answered at that address (another address may). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

async function handshakeTlsAlpn01(
  settings: ValidationSettings,
  request: ValidationRequest,
  address: string,
): Promise<void> {
  const where = `${request.identifier.value} (${address}:${settings.tlsPort})`;
  const servername =
    request.identifier.type === 'ip' ? reverseName(request.identifier.value) : request.identifier.value;
  const der = await new Promise<Buffer>((resolve, reject) => {
    const socket = tlsConnect(
      {
        host: address,
        port: settings.tlsPort,
        servername,
        ALPNProtocols: ['acme-tls/1'],
        rejectUnauthorized: false,
        timeout: settings.timeoutMs ?? 10_000,
      },
      () => {
        const alpn = socket.alpnProtocol;
        const peer = socket.getPeerX509Certificate();
        socket.end();
        if (alpn !== 'acme-tls/1')
          return reject(problem('tls', `${where} did not negotiate the acme-tls/1 protocol (got ${alpn || 'none'})`));
        if (!peer) return reject(problem('tls', `${where} sent no certificate`));
        resolve(peer.raw);
      },
    );
    socket.on('timeout', () => socket.destroy(new Error('timed out')));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      reject(
        UNREACHABLE.has(error.code ?? '')
          ? problem('connection', `cannot connect to ${where}: ${error.code}`)
          : problem('tls', `cannot complete a TLS handshake with ${where}: ${error.code ?? error.message}`),
      ),
    );
  });
  checkAlpnCertificate(der, request, where);
}

/** The certificate must name exactly the identifier and carry a critical acmeIdentifier with SHA-256(key authorization). */
function checkAlpnCertificate(der: Buffer, request: ValidationRequest, where: string): void {
  const cert = new X509Certificate(der);
  const names = (cert.subjectAltName ?? '').split(', ').filter(Boolean);
  const wanted =
    request.identifier.type === 'dns'
      ? `DNS:${request.identifier.value}`
      : `IP Address:${request.identifier.value.toUpperCase()}`;
  if (names.length !== 1 || names[0]!.toUpperCase() !== wanted.toUpperCase()) {
    throw problem(
      'unauthorized',
      `the acme-tls/1 certificate of ${where} names ${names.join(', ') || 'nothing'}, not exactly ${wanted}`,
    );
  }
  const extension = findExtension(der, ACME_IDENTIFIER_OID);
  if (!extension)
    throw problem('unauthorized', `the acme-tls/1 certificate of ${where} has no acmeIdentifier extension`);
  if (!extension.critical)
    throw problem('unauthorized', `the acmeIdentifier extension of ${where} is not critical (RFC 8737 §3)`);
  const expected = createHash('sha256').update(request.keyAuthorization).digest();
  let value: Buffer | undefined;
  try {
    const inner = parse(extension.value);
    if (inner.tag === TAG.OCTET_STRING && inner.raw.length === extension.value.length) value = inner.content;
  } catch {
    value = undefined;
  }
  if (!value || !value.equals(expected))
    throw problem(
      'unauthorized',
      `the acmeIdentifier of ${where} is not SHA-256 of this challenge's key authorization`,
    );
}

function findExtension(der: Buffer, oid: string): { critical: boolean; value: Buffer } | undefined {
  try {
    const [tbs] = children(parse(der));
    const explicit3 = children(tbs!).find((node) => node.tag === 0xa3);
    if (!explicit3) return undefined;
    const [list] = children(explicit3);
    for (const ext of children(list!)) {
      const parts = children(ext);
      if (decodeOid(parts[0]!) !== oid) continue;
      const critical = parts.length === 3 && parts[1]!.tag === TAG.BOOLEAN && parts[1]!.content[0] !== 0;
      return { critical, value: parts.at(-1)!.content };
    }
  } catch {
    return undefined;
  }
  return undefined;
}
