// Builds the path from a certificate to a trust anchor: mcpki's root, a --ca file, or Node's bundled Mozilla
// roots (tls.rootCertificates), and says what is missing when there is no path. Signatures are verified at
// each step; the system roots are only parsed when the chain does not end at mcpki's root.
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import tls from 'node:tls';
import { McpkiError } from '../errors.js';
import { INPUT_LIMITS, readInputText } from '../fs/read.js';
import { children, decodeOid, fromPem, parse } from '../pki/der.js';
import { dateText } from './certificate.js';
import { readCertificate } from '../pki/x509.js';
import { isWeakSignature, shortSubject, signatureAlgorithmOf } from './certificate.js';
import type { Findings } from './findings.js';

export type AnchorKind = 'mcpki' | 'ca-file' | 'system';

export interface Anchors {
  /** mcpki's root (HOME/ca/root.crt), when this home has a CA */
  mcpkiRoot?: X509Certificate;
  /** mcpki's current intermediate: completes chains that were served without it */
  mcpkiIntermediate?: X509Certificate;
  /** --ca FILE */
  extra: X509Certificate[];
  /** the system roots are read only when needed */
  system: boolean;
}

export interface ChainReport {
  /** who anchors the chain, or null when no path to a trusted root was found */
  anchor: AnchorKind | null;
  anchorSubject: string | null;
  /** subjects of the certificates sent (served chain or file), leaf first */
  sent: string[];
  /** subjects of the path to the anchor, leaf first */
  path: string[];
  /** the issuer that should have been sent but was not, if any */
  missing: string | null;
}

export function readPemCertificates(text: string): X509Certificate[] {
  return fromPem(text, 'CERTIFICATE').map((der) => new X509Certificate(der));
}

/** A PEM file of certificates, read as input (a regular file of at most 4 MiB); undefined when missing. */
function readPemFile(path: string, what: string, missingOk: boolean): X509Certificate[] | undefined {
  if (missingOk && !existsSync(path)) return undefined;
  const text = readInputText(path, {
    what,
    maxBytes: INPUT_LIMITS.pem,
    code: existsSync(path) ? 'INVALID_INPUT' : 'NOT_FOUND',
    hint: 'give a PEM file of CA certificates',
  });
  let certificates: X509Certificate[];
  try {
    certificates = readPemCertificates(text);
  } catch (error) {
    if (missingOk) return undefined; // mcpki's own CA files: a damaged one is reported by the commands that use the CA
    throw new McpkiError(
      'INVALID_INPUT',
      `${what} ${path} holds a certificate that cannot be read (${(error as Error).message})`,
      'give a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)',
      { cause: error },
    );
  }
  if (certificates.length === 0 && !missingOk)
    throw new McpkiError(
      'INVALID_INPUT',
      `${what} ${path} holds no PEM certificate`,
      'give a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)',
    );
  return certificates;
}

/** `ca`: mcpki's root and intermediate as the CA loader checked them (pki/ca.ts), when this home has a CA. */
export function loadAnchors(
  ca: { root: X509Certificate; intermediate: X509Certificate } | undefined,
  caFiles: readonly string[],
): Anchors {
  return {
    mcpkiRoot: ca?.root,
    mcpkiIntermediate: ca?.intermediate,
    extra: caFiles.flatMap((path) => readPemFile(path, '--ca file', false)!),
    system: true,
  };
}

function issues(issuer: X509Certificate, subject: X509Certificate): boolean {
  return subject.checkIssued(issuer) && subject.verify(issuer.publicKey);
}

let systemBySubject: Map<string, string[]> | undefined;

/** Node's bundled roots indexed by the DER of their subject, so that only candidates are parsed. */
function systemRootsFor(issuerDer: Buffer): X509Certificate[] {
  if (!systemBySubject) {
    systemBySubject = new Map();
    for (const pem of tls.rootCertificates) {
      const der = Buffer.from(pem.replace(/-----[^-]+-----|\s+/g, ''), 'base64');
      const key = readCertificate(der).subject.toString('hex');
      systemBySubject.set(key, [...(systemBySubject.get(key) ?? []), pem]);
    }
  }
  return (systemBySubject.get(issuerDer.toString('hex')) ?? []).map((pem) => new X509Certificate(pem));
}

function findAnchor(
  certificate: X509Certificate,
  anchors: Anchors,
): { kind: AnchorKind; certificate: X509Certificate } | undefined {
  if (anchors.mcpkiRoot && issues(anchors.mcpkiRoot, certificate))
    return { kind: 'mcpki', certificate: anchors.mcpkiRoot };
  const extra = anchors.extra.find((candidate) => issues(candidate, certificate));
  if (extra) return { kind: 'ca-file', certificate: extra };
  if (anchors.system) {
    const system = systemRootsFor(readCertificate(certificate.raw).issuer).find((candidate) =>
      issues(candidate, certificate),
    );
    if (system) return { kind: 'system', certificate: system };
  }
  return undefined;
}

function isAnchor(certificate: X509Certificate, anchors: Anchors): AnchorKind | undefined {
  const same = (other?: X509Certificate) => other?.fingerprint256 === certificate.fingerprint256;
  if (same(anchors.mcpkiRoot)) return 'mcpki';
  if (anchors.extra.some(same)) return 'ca-file';
  if (anchors.system && systemRootsFor(readCertificate(certificate.raw).subject).some(same)) return 'system';
  return undefined;
}

export interface ChainOptions {
  /** served by a server (a missing intermediate is a failure) or read from a file (a bare leaf is normal) */
  source: 'server' | 'file';
  now: Date;
  fix: { mcpkiFullchain: string };
}

/** Builds the path leaf → anchor from `sent` (leaf first), adds the chain findings, and returns the report. */
export function checkChain(
  findings: Findings,
  sent: readonly X509Certificate[],
  anchors: Anchors,
  options: ChainOptions,
): ChainReport {
  const leaf = sent[0]!;
  const pool = sent.slice(1);
  const path: X509Certificate[] = [leaf];
  const report: ChainReport = {
    anchor: null,
    anchorSubject: null,
    sent: sent.map((c) => shortSubject(c.subject)),
    path: [],
    missing: null,
  };
  let completedWithMcpki = false;
  let current = leaf;
  for (let depth = 0; depth < 8; depth++) {
    const self = isAnchor(current, anchors);
    if (self) {
      report.anchor = self;
      report.anchorSubject = shortSubject(current.subject);
      break;
    }
    const anchor = findAnchor(current, anchors);
    if (anchor) {
      path.push(anchor.certificate);
      report.anchor = anchor.kind;
      report.anchorSubject = shortSubject(anchor.certificate.subject);
      break;
    }
    const next = pool.find((candidate) => candidate !== current && issues(candidate, current));
    if (next) {
      path.push(next);
      current = next;
      continue;
    }
    if (issues(current, current)) break; // a self-signed certificate nobody trusts
    if (anchors.mcpkiIntermediate && !completedWithMcpki && issues(anchors.mcpkiIntermediate, current)) {
      report.missing = shortSubject(anchors.mcpkiIntermediate.subject);
      completedWithMcpki = true;
      path.push(anchors.mcpkiIntermediate);
      current = anchors.mcpkiIntermediate;
      continue;
    }
    report.missing = shortSubject(current.issuer);
    break;
  }
  report.path = path.map((c) => shortSubject(c.subject));
  addChainFindings(findings, report, path, sent, options, completedWithMcpki);
  return report;
}

const ANCHOR_TEXT: Record<AnchorKind, string> = {
  mcpki: "mcpki's root",
  'ca-file': 'the --ca file',
  system: 'the system roots',
};

function addChainFindings(
  findings: Findings,
  report: ChainReport,
  path: X509Certificate[],
  sent: readonly X509Certificate[],
  options: ChainOptions,
  completedWithMcpki: boolean,
): void {
  const leaf = sent[0]!;
  const trail = report.path.join(' → ');
  if (!report.anchor) {
    if (report.missing) {
      findings.add(
        'chain',
        'failure',
        `incomplete chain: the issuer "${report.missing}" is neither ${options.source === 'server' ? 'sent by the server' : 'in the file'} nor a trusted root`,
        options.source === 'server'
          ? 'serve the full chain (leaf, then its intermediates), e.g. the fullchain.pem file; or trust its root with --ca FILE'
          : 'add the intermediates to the file, or trust its root with --ca FILE',
      );
    } else if (path.length === 1 && issues(leaf, leaf)) {
      findings.add(
        'chain',
        'failure',
        'self-signed certificate that no trust anchor vouches for',
        'use a certificate from a CA the clients trust: mcpki issue server NAME … (then mcpki trust install), or pass its CA with --ca FILE',
      );
    } else {
      findings.add(
        'chain',
        'failure',
        `no path to a trusted root (${trail}): the root "${shortSubject(path[path.length - 1]!.issuer)}" is not trusted`,
        "trust that root (mcpki trust install for mcpki's CA), or pass it with --ca FILE",
      );
    }
  } else if (completedWithMcpki && options.source === 'server') {
    findings.add(
      'chain',
      'failure',
      `the server does not send mcpki's intermediate "${report.missing}": clients that trust only the root fail`,
      `serve the full chain: ${options.fix.mcpkiFullchain}`,
    );
  } else if (completedWithMcpki) {
    findings.add(
      'chain',
      'info',
      `chains to mcpki's root through its intermediate, which the file does not hold (${trail})`,
      `servers must send the full chain: ${options.fix.mcpkiFullchain}`,
    );
  } else {
    findings.add('chain', 'ok', `chains to ${ANCHOR_TEXT[report.anchor]}: ${trail}`);
  }
  // the path's intermediates must be valid and strongly signed too (the root's own signature does not matter)
  for (const certificate of path.slice(1)) {
    const name = shortSubject(certificate.subject);
    if (options.now > new Date(certificate.validTo))
      findings.add(
        'chain.expired',
        'failure',
        `the issuing certificate "${name}" expired on ${dateText(certificate.validTo)}`,
        'replace the intermediate (mcpki ca rotate-intermediate) and re-issue, or update the chain file',
      );
    const selfSigned = issues(certificate, certificate);
    const algorithm = signatureAlgorithmOf(certificate);
    if (!selfSigned && isWeakSignature(algorithm))
      findings.add(
        'chain.signature',
        'failure',
        `the intermediate "${name}" is signed with ${algorithm}`,
        'use an intermediate signed with SHA-256 or stronger',
      );
  }
}

const NAME_ATTRIBUTES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '0.9.2342.19200300.100.1.25': 'DC',
};

/** A DER Name as "CN=…, O=…" (for the CA names of a CertificateRequest). */
export function formatName(der: Buffer): string {
  try {
    const parts: string[] = [];
    for (const rdn of children(parse(der))) {
      for (const attribute of children(rdn)) {
        const [type, value] = children(attribute);
        const oid = decodeOid(type!);
        const text =
          value!.tag === 0x1e
            ? Buffer.from(value!.content).swap16().toString('utf16le')
            : value!.content.toString('utf8');
        parts.push(`${NAME_ATTRIBUTES[oid] ?? oid}=${text}`);
      }
    }
    return parts.join(', ');
  } catch {
    return '(unreadable name)';
  }
}

export function subjectDer(certificate: X509Certificate): Buffer {
  return readCertificate(certificate.raw).subject;
}
