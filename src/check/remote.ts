// `mcpki check host:port`: every probe starts at once (raw ClientHellos per version and per weak cipher
// suite group, the TLS 1.2 flight with its exact chain and CertificateRequest, one complete node:tls
// handshake, and one with --client-cert), then the answers become findings.
import { X509Certificate } from 'node:crypto';
import type { Context } from '../context.js';
import { isIP } from '../pki/names.js';
import {
  checkHostname,
  checkStrength,
  checkValidity,
  dateText,
  summarize,
  type CertificateSummary,
} from './certificate.js';
import { checkChain, formatName, subjectDer, type Anchors, type ChainReport } from './chain.js';
import { checkExpected, type InventoryReport } from './expected.js';
import type { Findings, Severity } from './findings.js';
import { handshake, type HandshakeOutcome } from './handshake.js';
import { sendHello, VERSIONS, versionName, type HelloOutcome, type TlsVersion } from './hello.js';
import { ANY_TLS12_SUITES, categoryOf, LEGACY_SUITES, suiteName, TLS13_SUITES, WEAK_CATEGORIES } from './suites.js';
import type { RemoteTarget } from './target.js';

export interface RemoteOptions {
  servername?: string;
  timeoutMs: number;
  /** weak cipher suites that modern clients never choose count as warnings, not info */
  strict: boolean;
  clientCert?: { name: string; cert: string; key: string; revoked?: { reason: string; at: string | null } };
  expectedName?: string;
  record: boolean;
  anchors: Anchors;
  /** how to print the target in messages */
  label: string;
}

export type VersionState = 'accepted' | 'refused' | 'no-answer';
export type ClientAuth = 'required' | 'requested' | 'none' | 'unknown';

export interface TlsReport {
  address: string | null;
  servername: string | null;
  /** what a current client (node:tls defaults) negotiates */
  protocol: string | null;
  cipher: string | null;
  versions: Record<TlsVersion, VersionState>;
  /** per weak group: the suite the server chose when offered only that group, or null when refused */
  weakSuites: Record<string, string | null>;
  clientAuth: ClientAuth;
  /** the CA names of the TLS 1.2 CertificateRequest */
  clientCaNames: string[];
  clientCert: { name: string; accepted: boolean | null; detail: string } | null;
}

export interface RemoteReport {
  certificate: CertificateSummary | null;
  chain: ChainReport | null;
  tls: TlsReport | null;
  inventory: InventoryReport | null;
}

const HARDEN =
  "allow only ECDHE with AES-GCM or ChaCha20 in TLS 1.2 (Mozilla's intermediate profile; Node: the ciphers option)";

function versionState(outcome: HelloOutcome, version: TlsVersion): VersionState {
  if (outcome.kind === 'server-hello') return outcome.version === VERSIONS[version] ? 'accepted' : 'refused';
  return outcome.kind === 'timeout' ? 'no-answer' : 'refused';
}

function readableError(code: string, message: string): string {
  const alert = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(.+)$/.exec(code);
  if (alert) return `alert ${alert[1]!.toLowerCase()}`;
  if (code === 'ECONNRESET') return 'the server closed the connection';
  return `${code}: ${message}`;
}

function connectFailure(findings: Findings, outcome: HelloOutcome, label: string, timeoutMs: number): boolean {
  if (outcome.kind === 'connect-error') {
    const messages: Record<string, [string, string]> = {
      ECONNREFUSED: [
        `nothing listens on ${label} (connection refused)`,
        'start the service, or check the host and port',
      ],
      ENOTFOUND: [`cannot resolve the host of ${label}`, 'check the name (DNS, /etc/hosts)'],
      EAI_AGAIN: [`cannot resolve the host of ${label} (DNS did not answer)`, 'check the name and the resolver'],
      EHOSTUNREACH: [`${label} is unreachable (no route to host)`, 'check the address and the network'],
      ENETUNREACH: [`${label} is unreachable (network unreachable)`, 'check the address and the network'],
    };
    const [message, fix] = messages[outcome.code] ?? [
      `cannot connect to ${label}: ${outcome.code} ${outcome.message}`,
      'check the host and port',
    ];
    findings.add('connect', 'failure', message, fix);
    return true;
  }
  if (outcome.kind === 'timeout' && !outcome.connected) {
    findings.add(
      'connect',
      'failure',
      `no TCP connection to ${label} within ${timeoutMs} ms (dropped by a firewall, or the host is down)`,
      'check the host, the port and firewalls; --timeout MS waits longer',
    );
    return true;
  }
  return false;
}

export async function checkRemote(
  context: Context,
  target: RemoteTarget,
  findings: Findings,
  options: RemoteOptions,
): Promise<RemoteReport> {
  const { host, port } = target;
  // the name the certificate must cover; SNI carries it only when it is a DNS name
  const name = options.servername ?? host;
  const servername = isIP(name) === 0 ? name : undefined;
  const timeout = options.timeoutMs;
  const hello = (version: TlsVersion, suites: readonly number[], fullFlight = false) =>
    sendHello(host, port, { version, suites, servername, fullFlight }, timeout);
  const [flight, v10, v11, v13, weak, main, client] = await Promise.all([
    hello('TLSv1.2', ANY_TLS12_SUITES, true),
    hello('TLSv1', LEGACY_SUITES),
    hello('TLSv1.1', LEGACY_SUITES),
    hello('TLSv1.3', TLS13_SUITES),
    Promise.all(WEAK_CATEGORIES.map((category) => hello('TLSv1.2', category.suites))),
    handshake({ host, port, servername, timeoutMs: timeout }),
    options.clientCert
      ? handshake({
          host,
          port,
          servername,
          cert: options.clientCert.cert,
          key: options.clientCert.key,
          timeoutMs: timeout,
        })
      : undefined,
  ]);
  const closeAll = () => [main, client].forEach((h) => h?.ok && h.close());
  const empty: RemoteReport = { certificate: null, chain: null, tls: null, inventory: null };

  if (connectFailure(findings, flight, options.label, timeout)) {
    closeAll();
    return empty;
  }
  if (flight.kind === 'not-tls') {
    closeAll();
    const http = /^HTTP\/\d/.test(flight.sample);
    findings.add(
      'tls',
      'failure',
      http
        ? `${options.label} speaks plain HTTP, not TLS (it answered "${flight.sample}")`
        : `${options.label} does not speak TLS (it answered: "${flight.sample}")`,
      http
        ? 'use the port that serves HTTPS, or turn TLS on in the service (certificate: NAME.fullchain.pem, key: NAME.key)'
        : 'check the port: it serves another protocol',
    );
    return empty;
  }
  const answers = [flight, v10, v11, v13, ...weak];
  if (!main.ok && !answers.some((a) => a.kind === 'server-hello' || a.kind === 'alert')) {
    closeAll();
    const silent = answers.every((a) => a.kind === 'timeout');
    findings.add(
      'tls',
      'failure',
      silent
        ? `${options.label} accepts connections but sends no TLS answer within ${timeout} ms`
        : `${options.label} accepts connections but closes them without a TLS answer`,
      'check that this port serves TLS (not plain TCP or another protocol); --timeout MS waits longer',
    );
    return empty;
  }

  const versions: Record<TlsVersion, VersionState> = {
    TLSv1: versionState(v10, 'TLSv1'),
    'TLSv1.1': versionState(v11, 'TLSv1.1'),
    'TLSv1.2': versionState(flight, 'TLSv1.2'),
    'TLSv1.3': versionState(v13, 'TLSv1.3'),
  };
  const tlsReport: TlsReport = {
    address: main.ok ? main.address : null,
    servername: servername ?? null,
    protocol: main.ok ? main.protocol : flight.kind === 'server-hello' ? versionName(flight.version) : null,
    cipher: main.ok ? main.cipher : flight.kind === 'server-hello' ? suiteName(flight.suite) : null,
    versions,
    weakSuites: {},
    clientAuth: 'unknown',
    clientCaNames: [],
    clientCert: null,
  };

  // the certificate: as a current client sees it, else from the TLS ≤ 1.2 flight
  const flightChain =
    flight.kind === 'server-hello' && flight.certificates
      ? flight.certificates.map((der) => new X509Certificate(der))
      : [];
  const received = main.ok && main.chain.length ? main.chain : flightChain;
  const leaf = received[0];
  const report: RemoteReport = { certificate: null, chain: null, tls: tlsReport, inventory: null };
  if (!leaf) {
    findings.add(
      'certificate',
      'failure',
      `${options.label} presented no certificate`,
      'configure a certificate and key in the service',
    );
  } else {
    const now = context.now();
    report.certificate = summarize(leaf, now);
    checkValidity(
      findings,
      leaf,
      now,
      'renew it and reload the service (mcpki: mcpki renew --force NAME, or mcpki issue server NAME … again)',
    );
    checkHostname(findings, leaf, name);
    // the exact chain sent, when the TLS 1.2 flight carried the same leaf; else what node:tls reports
    const sent = flightChain[0]?.fingerprint256 === leaf.fingerprint256 ? flightChain : received;
    report.chain = checkChain(findings, sent, options.anchors, {
      source: 'server',
      now,
      fix: { mcpkiFullchain: 'configure NAME.fullchain.pem (leaf + intermediate) instead of NAME.crt' },
    });
    checkStrength(findings, leaf, 'server');
  }

  addProtocolFindings(findings, versions);
  addCipherFindings(findings, tlsReport, weak, options.strict);
  const certificateRequested =
    flight.kind === 'server-hello' && flight.version <= VERSIONS['TLSv1.2']
      ? Boolean(flight.certificateRequest)
      : undefined;
  if (flight.kind === 'server-hello' && flight.certificateRequest)
    tlsReport.clientCaNames = flight.certificateRequest.authorities.map(formatName);
  const grace = Math.min(timeout, Math.max(150, 3 * (main.ok ? main.elapsedMs : 50)));
  const [clientAuth, clientCert] = await Promise.all([
    settleClientAuth(main, certificateRequested, grace),
    client ? settleClientCert(client, grace) : undefined,
  ]);
  tlsReport.clientAuth = clientAuth;
  addClientAuthFinding(findings, tlsReport, options);
  if (
    !main.ok &&
    clientAuth !== 'required' &&
    (versions['TLSv1.2'] === 'accepted' || versions['TLSv1.3'] === 'accepted')
  ) {
    findings.add(
      'handshake',
      'failure',
      `a handshake as a current client makes it fails: ${readableError(main.code, main.message)}`,
      "see the service's log for why it aborts the handshake",
    );
  }
  if (options.clientCert && clientCert) {
    tlsReport.clientCert = { name: options.clientCert.name, ...clientCert };
    addClientCertFinding(findings, tlsReport.clientCert, certificateRequested, options.clientCert.revoked);
  }
  if (leaf) {
    report.inventory = checkExpected(context, findings, leaf, {
      name,
      expectedName: options.expectedName,
      target: options.label,
      address: tlsReport.address ?? undefined,
      record: options.record,
    });
  }
  return report;
}

function addProtocolFindings(findings: Findings, versions: Record<TlsVersion, VersionState>): void {
  const label = (v: string) => v.replace('TLSv1', 'TLS 1').replace(/^TLS 1$/, 'TLS 1.0');
  const by = (state: VersionState) =>
    (Object.keys(versions) as TlsVersion[]).filter((v) => versions[v] === state).map(label);
  const accepted = by('accepted');
  const summary = [
    `accepts ${accepted.join(', ') || 'no TLS version'}`,
    by('refused').length ? `refuses ${by('refused').join(', ')}` : '',
    by('no-answer').length ? `no answer for ${by('no-answer').join(', ')}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  const modern = versions['TLSv1.2'] === 'accepted' || versions['TLSv1.3'] === 'accepted';
  findings.add(
    'protocols',
    modern ? 'ok' : 'failure',
    summary,
    modern ? null : 'enable TLS 1.2 and 1.3 in the service: current clients refuse anything older',
  );
  const minimum =
    "set the minimum version to TLS 1.2 (nginx: ssl_protocols TLSv1.2 TLSv1.3; Node: minVersion: 'TLSv1.2')";
  if (versions.TLSv1 === 'accepted')
    findings.add('protocol.tls1.0', 'warning', 'accepts TLS 1.0, deprecated since 2021 (RFC 8996)', minimum);
  if (versions['TLSv1.1'] === 'accepted')
    findings.add('protocol.tls1.1', 'warning', 'accepts TLS 1.1, deprecated since 2021 (RFC 8996)', minimum);
  if (versions['TLSv1.3'] !== 'accepted' && versions['TLSv1.2'] === 'accepted')
    findings.add(
      'protocol.tls1.3',
      'info',
      'does not accept TLS 1.3',
      'enable TLS 1.3: faster handshakes, only strong cipher suites',
    );
  if (versions['TLSv1.2'] !== 'accepted' && versions['TLSv1.3'] === 'accepted')
    findings.add('protocol.tls1.2', 'info', 'accepts TLS 1.3 only: clients without TLS 1.3 cannot connect', null);
}

function addCipherFindings(findings: Findings, report: TlsReport, weak: HelloOutcome[], strict: boolean): void {
  if (report.cipher) {
    const category = categoryOf(report.cipher);
    const severity: Severity = category ? (category.severity === 'failure' ? 'failure' : 'warning') : 'ok';
    findings.add(
      'cipher',
      severity,
      `negotiates ${report.cipher} over ${report.protocol}${category ? ` (${category.label}: ${category.why})` : ''}`,
      category ? `prefer modern suites: ${HARDEN}` : null,
    );
  }
  const refused: string[] = [];
  WEAK_CATEGORIES.forEach((category, i) => {
    const outcome = weak[i]!;
    const chosen =
      outcome.kind === 'server-hello' && outcome.version <= VERSIONS['TLSv1.2'] ? suiteName(outcome.suite) : null;
    report.weakSuites[category.id] = chosen;
    if (!chosen) {
      refused.push(category.label.replace(/ cipher suites.*/, ''));
      return;
    }
    const severity: Severity = strict && category.severity === 'info' ? 'warning' : category.severity;
    const note = category.severity === 'info' ? ' when a client offers nothing better' : '';
    findings.add(
      `cipher.${category.id}`,
      severity,
      `accepts ${category.label} (${chosen})${note}: ${category.why}`,
      HARDEN,
    );
  });
  if (refused.length === WEAK_CATEGORIES.length)
    findings.add('ciphers', 'ok', 'refuses CBC, RSA key exchange, 3DES and broken cipher suites');
}

async function settleClientAuth(
  main: HandshakeOutcome,
  requested: boolean | undefined,
  grace: number,
): Promise<ClientAuth> {
  if (!main.ok) {
    // up to TLS 1.2 a server that requires a certificate aborts the handshake of a client without one
    return requested && /ALERT|ECONNRESET/.test(main.code)
      ? 'required'
      : requested
        ? 'requested'
        : requested === false
          ? 'none'
          : 'unknown';
  }
  if (requested === false) {
    main.close();
    return 'none';
  }
  // a request was seen (TLS 1.2), or could not be seen (TLS 1.3 only): wait for a refusal after the handshake
  const settled = await main.settle(grace);
  if (settled.closed && (/CERTIFICATE_REQUIRED/.test(settled.error ?? '') || requested)) return 'required';
  return requested ? 'requested' : 'unknown';
}

async function settleClientCert(
  client: HandshakeOutcome,
  grace: number,
): Promise<{ accepted: boolean; detail: string }> {
  if (!client.ok) return { accepted: false, detail: readableError(client.code, client.message) };
  const settled = await client.settle(grace);
  if (settled.closed)
    return {
      accepted: false,
      detail: settled.error
        ? readableError(settled.error, '')
        : 'the server closed the connection right after the handshake',
    };
  return { accepted: true, detail: `handshake completed (${client.protocol}) and the connection stayed open` };
}

function addClientAuthFinding(findings: Findings, report: TlsReport, options: RemoteOptions): void {
  const root = options.anchors.mcpkiRoot;
  const rootName = root ? formatName(subjectDer(root)) : undefined;
  const names = report.clientCaNames.map((n) => (n === rootName ? `${n} (mcpki's root)` : n));
  const from = names.length ? `; it accepts certificates issued by: ${names.join('; ')}` : '';
  switch (report.clientAuth) {
    case 'required':
      findings.add(
        'client-auth',
        'info',
        `requires a client certificate (mutual TLS)${from}`,
        options.clientCert
          ? null
          : 'clients need a certificate from a CA it trusts (mcpki issue client NAME); test one with --client-cert NAME',
      );
      break;
    case 'requested':
      findings.add(
        'client-auth',
        'info',
        `requests a client certificate but completes the handshake without one${from} (it may still refuse requests without one, as nginx's ssl_verify_client on does with a 400)`,
        null,
      );
      break;
    case 'none':
      findings.add('client-auth', 'ok', 'does not ask for a client certificate');
      break;
    default:
      findings.add(
        'client-auth',
        'info',
        'does not require a client certificate; whether it requests one cannot be seen (TLS 1.3 only, where the request is encrypted)',
        null,
      );
  }
}

function addClientCertFinding(
  findings: Findings,
  result: { name: string; accepted: boolean | null; detail: string },
  requested: boolean | undefined,
  revoked?: { reason: string; at: string | null },
): void {
  const when = revoked ? ` (${revoked.reason}${revoked.at ? `, ${dateText(revoked.at)}` : ''})` : '';
  if (requested === false) {
    result.accepted = null;
    result.detail = 'the server does not ask for a client certificate, so it was not sent';
    findings.add(
      'client-cert',
      'info',
      `${result.name}'s certificate was not tested: the server does not ask for a client certificate${revoked ? `; ${result.name} is revoked${when}` : ''}`,
      null,
    );
  } else if (revoked && result.accepted) {
    findings.add(
      'client-cert',
      'failure',
      `accepts ${result.name}'s client certificate although ${result.name} is revoked${when}: the server does not check the CRL, or has an old one`,
      "publish the CRL (mcpki crl) where the server reads it (nginx ssl_crl, HAProxy crl-file, Node's crl option) and reload it",
    );
  } else if (revoked) {
    findings.add(
      'client-cert',
      'warning',
      `refuses ${result.name}'s client certificate: ${result.name} is revoked${when} (${result.detail})`,
      `issue a new one (mcpki issue client ${result.name} …) and give it to the client`,
    );
  } else if (result.accepted) {
    findings.add('client-cert', 'ok', `accepts ${result.name}'s client certificate`);
  } else {
    findings.add(
      'client-cert',
      'failure',
      `refuses ${result.name}'s client certificate (${result.detail})`,
      'the server must trust the CA that issued it (for mcpki: HOME/ca/root.crt as its client CA), and it must be a client certificate (mcpki issue client NAME)',
    );
  }
}
