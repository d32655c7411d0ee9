// Checks of one certificate on its own: validity period, key and signature strength, names.
import type { X509Certificate } from 'node:crypto';
import { children, decodeOid, parse } from '../pki/der.js';
import { classifySan, isIP } from '../pki/names.js';
import type { Findings } from './findings.js';

const DAY = 86_400_000;

export interface CertificateSummary {
  subject: string;
  issuer: string;
  serial: string;
  names: string[];
  notBefore: string;
  notAfter: string;
  daysLeft: number;
  keyType: string;
  signatureAlgorithm: string;
  fingerprint: string;
}

const SIGNATURES: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
  '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
  '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption',
  '1.2.840.113549.1.1.14': 'sha224WithRSAEncryption',
  '1.2.840.113549.1.1.10': 'rsassaPss',
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1',
  '1.2.840.10045.4.3.1': 'ecdsa-with-SHA224',
  '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
  '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
  '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
  '1.3.101.112': 'ED25519',
  '1.3.101.113': 'ED448',
  '1.2.840.10040.4.3': 'dsa-with-SHA1',
  '2.16.840.1.101.3.4.3.2': 'dsa-with-SHA256',
};

/** The certificate's signatureAlgorithm (X509Certificate in Node 20 does not expose it). */
export function signatureAlgorithmOf(certificate: X509Certificate): string {
  try {
    const oid = decodeOid(children(children(parse(certificate.raw))[1]!)[0]!);
    return SIGNATURES[oid] ?? oid;
  } catch {
    return 'unknown';
  }
}

export function isWeakSignature(algorithm: string): boolean {
  return /md5|sha1/i.test(algorithm);
}

export function keyTypeOf(certificate: X509Certificate): string {
  const key = certificate.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      return `${key.asymmetricKeyType.toUpperCase()} ${details.modulusLength ?? '?'}`;
    case 'ec': {
      const curve = details.namedCurve ?? '?';
      return `EC ${({ prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' } as Record<string, string>)[curve] ?? curve}`;
    }
    default:
      return (key.asymmetricKeyType ?? 'unknown').toUpperCase().replace('ED', 'Ed');
  }
}

/** "DNS:a, IP Address:1.2.3.4" → ["a", "1.2.3.4"] (each as written after its type). */
export function namesOf(certificate: X509Certificate): string[] {
  const text = certificate.subjectAltName;
  if (!text) return [];
  return text.split(/,\s*/).map((entry) => {
    const value = entry.replace(/^[^:]+:/, '').replace(/^"|"$/g, '');
    if (!entry.startsWith('IP Address:')) return value;
    try {
      return classifySan(value).value; // Node writes ::1 as 0:0:0:0:0:0:0:1
    } catch {
      return value;
    }
  });
}

/** The CN, else the whole subject, for one-line messages. */
export function shortSubject(subjectOrIssuer: string): string {
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(subjectOrIssuer);
  return cn ? cn[1]! : subjectOrIssuer.replace(/\n/g, ', ');
}

export function summarize(certificate: X509Certificate, now: Date): CertificateSummary {
  const notAfter = new Date(certificate.validTo);
  return {
    subject: certificate.subject.replace(/\n/g, ', '),
    issuer: certificate.issuer.replace(/\n/g, ', '),
    serial: certificate.serialNumber.toUpperCase(),
    names: namesOf(certificate),
    notBefore: new Date(certificate.validFrom).toISOString(),
    notAfter: notAfter.toISOString(),
    daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / DAY),
    keyType: keyTypeOf(certificate),
    signatureAlgorithm: signatureAlgorithmOf(certificate),
    fingerprint: certificate.fingerprint256,
  };
}

/** Dates in findings: the one format of mcpki's human output (as src/cli/output.ts formatDate), "2026-12-06 22:11 UTC". */
export function dateText(date: Date | string): string {
  return `${new Date(date).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** Expired, not yet valid, expiring within 7 days, or past 2/3 of its lifetime. */
export function checkValidity(findings: Findings, certificate: X509Certificate, now: Date, renewHint: string): void {
  const notBefore = new Date(certificate.validFrom);
  const notAfter = new Date(certificate.validTo);
  const left = notAfter.getTime() - now.getTime();
  const days = Math.floor(Math.abs(left) / DAY);
  const lifetime = Math.max(1, notAfter.getTime() - notBefore.getTime());
  if (left <= 0) {
    findings.add(
      'expiry',
      'failure',
      `expired ${days === 0 ? 'today' : `${days} day${days === 1 ? '' : 's'} ago`} (not after ${dateText(notAfter)})`,
      renewHint,
    );
  } else if (now < notBefore) {
    findings.add(
      'expiry',
      'failure',
      `not valid yet: valid from ${dateText(notBefore)}`,
      'check the clock of this machine and of the machine that issued it (timedatectl)',
    );
  } else if (left < 7 * DAY) {
    findings.add(
      'expiry',
      'warning',
      `expires in ${days < 1 ? `${Math.floor(left / 3_600_000)} hours` : `${days} day${days === 1 ? '' : 's'}`} (${dateText(notAfter)})`,
      renewHint,
    );
  } else if (left < lifetime / 3) {
    findings.add(
      'expiry',
      'info',
      `${days} days left of ${Math.round(lifetime / DAY)}: renewal is due (less than 1/3 of the lifetime left)`,
      renewHint,
    );
  } else {
    findings.add('expiry', 'ok', `valid for ${days} more days (until ${dateText(notAfter)})`);
  }
}

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * The mcpki command that issues a certificate like this one: `mcpki issue client` for a client certificate
 * (clientAuth without serverAuth in its extended key usage), else `mcpki issue server`.
 */
export function issueCommand(certificate: X509Certificate): 'mcpki issue client' | 'mcpki issue server' {
  // Node 20 names the extended key usage keyUsage; later versions add extKeyUsage
  const usage =
    (certificate as { extKeyUsage?: string[] }).extKeyUsage ?? (certificate as { keyUsage?: string[] }).keyUsage ?? [];
  return usage.includes(CLIENT_AUTH) && !usage.includes(SERVER_AUTH) ? 'mcpki issue client' : 'mcpki issue server';
}

/** RSA under 2048 bits, DSA, SHA-1 or MD5 signatures: failures. Ed25519/Ed448 server certificates: info. */
export function checkStrength(findings: Findings, certificate: X509Certificate, role: 'server' | 'file'): void {
  const key = certificate.publicKey;
  const keyType = keyTypeOf(certificate);
  const bits = key.asymmetricKeyDetails?.modulusLength;
  const reissue = `issue a new certificate with a strong key: ${issueCommand(certificate)} NAME … --key ec-p256 (or rsa-2048 and up)`;
  if ((key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') && bits !== undefined && bits < 2048) {
    findings.add(
      'key',
      'failure',
      `${keyType} key: RSA keys under 2048 bits can be factored and are refused by current clients`,
      reissue,
    );
  } else if (key.asymmetricKeyType === 'dsa') {
    findings.add('key', 'failure', 'DSA key: no current TLS client accepts DSA certificates', reissue);
  } else if (role === 'server' && (key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448')) {
    findings.add(
      'key',
      'info',
      `${keyType} key: fine for Node, Go and OpenSSL clients, but browsers do not accept ${keyType} server certificates`,
      'for browsers, issue it with --key ec-p256',
    );
  } else {
    findings.add('key', 'ok', `${keyType} key`);
  }
  const signature = signatureAlgorithmOf(certificate);
  if (isWeakSignature(signature)) {
    findings.add(
      'signature',
      'failure',
      `signed with ${signature}: collisions make it forgeable, clients refuse it`,
      'have it re-issued with a SHA-256 (or stronger) signature',
    );
  } else {
    findings.add('signature', 'ok', `signed with ${signature}`);
  }
}

/** Whether the certificate covers `name` (a DNS name or an IP address); SANs only, as browsers do. */
export function coversName(certificate: X509Certificate, name: string): boolean {
  if (isIP(name) !== 0) return certificate.checkIP(classifySan(name).value) !== undefined;
  return certificate.checkHost(name, { subject: 'never' }) !== undefined;
}

export function checkHostname(findings: Findings, certificate: X509Certificate, name: string): void {
  const names = namesOf(certificate);
  if (coversName(certificate, name)) {
    findings.add('hostname', 'ok', `covers ${name}`);
    return;
  }
  const has = names.length
    ? `it covers ${names.join(', ')}`
    : 'it has no subject alternative names (clients ignore the CN)';
  findings.add(
    'hostname',
    'failure',
    `does not cover ${name}: ${has}`,
    `connect with a name it covers (--servername NAME for SNI), or issue one that includes ${name}: mcpki issue server NAME ${name} …`,
  );
}
