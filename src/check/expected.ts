// Is the certificate a server presents one that mcpki issued or recorded for that name? A certificate
// mcpki never saw, served for a name mcpki manages, is an alarm: someone replaced it (or intercepts the
// connection). The alarm is recorded as a `check.unexpected-certificate` event.
import type { X509Certificate } from 'node:crypto';
import type { Context } from '../context.js';
import { McpkiError } from '../errors.js';
import { classifySan, isIP } from '../pki/names.js';
import type { CertificateRecord } from '../store/store.js';
import { shortSubject } from './certificate.js';
import type { Findings } from './findings.js';

export type InventoryMatch = 'current' | 'superseded' | 'revoked' | 'unexpected' | 'unmanaged';

export interface InventoryReport {
  match: InventoryMatch;
  /** the inventory names that cover the checked name (or the one named with --cert) */
  names: string[];
  /** the record the presented certificate matches, if any */
  certificate: { name: string; serial: string; status: string } | null;
  /** whether an event was recorded */
  eventRecorded: boolean;
}

function coveredBy(name: string, record: CertificateRecord): boolean {
  if (isIP(name) !== 0) {
    const ip = classifySan(name).value;
    return record.sans.some((san) => san.type === 'ip' && san.value === ip);
  }
  const host = name.toLowerCase().replace(/\.$/, '');
  return record.sans.some((san) => {
    if (san.type !== 'dns') return false;
    const value = san.value.toLowerCase();
    if (value === host) return true;
    if (!value.startsWith('*.') || !host.endsWith(value.slice(1))) return false;
    const label = host.slice(0, host.length - value.length + 1);
    return label.length > 0 && !label.includes('.');
  });
}

const normalize = (fingerprint: string) => fingerprint.replace(/:/g, '').toUpperCase();

export interface ExpectedOptions {
  /** the name the client asked for (SNI, or the IP address) */
  name: string;
  /** --cert NAME: compare with this inventory certificate only */
  expectedName?: string;
  /** what was checked, for the event */
  target: string;
  address?: string;
  /** record an event on an alarm (default true) */
  record: boolean;
}

export function checkExpected(
  context: Context,
  findings: Findings,
  served: X509Certificate,
  options: ExpectedOptions,
): InventoryReport {
  const store = context.existingStore();
  const all = store?.listCertificates({ all: true }) ?? [];
  let records: CertificateRecord[];
  if (options.expectedName) {
    records = all.filter((record) => record.name === options.expectedName);
    if (records.length === 0)
      throw new McpkiError('NOT_FOUND', `no certificate named "${options.expectedName}"`, 'see "mcpki list" for names');
  } else {
    records = all.filter((record) => coveredBy(options.name, record));
  }
  const names = [...new Set(records.map((record) => record.name))];
  const report: InventoryReport = { match: 'unmanaged', names, certificate: null, eventRecorded: false };
  if (records.length === 0) {
    findings.add(
      'inventory',
      'info',
      `mcpki manages no certificate for ${options.name}; the presented certificate is not compared with a recorded one`,
    );
    return report;
  }
  const fingerprint = normalize(served.fingerprint256);
  const found = records.find((record) => normalize(record.fingerprint) === fingerprint);
  if (found) {
    report.certificate = { name: found.name, serial: found.serial, status: found.status };
    const newest = all.filter((record) => record.name === found.name).reduce((a, b) => (b.id > a.id ? b : a));
    if (found.status === 'revoked') {
      report.match = 'revoked';
      findings.add(
        'inventory',
        'failure',
        `presents ${found.name}'s certificate serial ${found.serial}, which was revoked (${found.revocationReason ?? 'no reason'})`,
        `deploy the current certificate and reload the service; issue a new one first if needed: mcpki issue server ${found.name} …`,
      );
    } else if (found.id !== newest.id) {
      report.match = 'superseded';
      findings.add(
        'inventory',
        'warning',
        `presents an older certificate of ${found.name} (serial ${found.serial}); the current one is serial ${newest.serial}`,
        `deploy ${newest.paths.fullchain ?? newest.paths.cert ?? 'the current files'} and reload the service (mcpki apply does both for declared certificates)`,
      );
    } else {
      report.match = 'current';
      findings.add('inventory', 'ok', `is mcpki's certificate ${found.name} (serial ${found.serial})`);
    }
    return report;
  }
  report.match = 'unexpected';
  const expected = options.expectedName ? `"${options.expectedName}"` : `${options.name} (${names.join(', ')})`;
  findings.add(
    'inventory',
    'alarm',
    `UNEXPECTED CERTIFICATE: mcpki manages ${expected}, but the certificate presented (SHA-256 ${served.fingerprint256}, issuer ${shortSubject(served.issuer)}) is none it issued or recorded`,
    'find out who replaced it or intercepts the connection before trusting it; if the change was intended, record it through mcpki (mcpki issue / acme issue) and deploy that',
  );
  if (options.record) {
    context.store().addEvent({
      type: 'check.unexpected-certificate',
      name: options.expectedName ?? names[0] ?? null,
      serial: served.serialNumber.toUpperCase(),
      detail: {
        target: options.target,
        address: options.address ?? null,
        servername: options.name,
        fingerprint: served.fingerprint256,
        subject: served.subject.replace(/\n/g, ', '),
        issuer: served.issuer.replace(/\n/g, ', '),
        notAfter: new Date(served.validTo).toISOString(),
        managedNames: names,
      },
    });
    report.eventRecorded = true;
  }
  return report;
}
