// `mcpki forget NAME|SERIAL`: drop certificates from the inventory, with an event for each. A revoked
// certificate stays listed in the CRL: its row is kept, hidden from list/show, for the CRL's sake.
import type { Context } from '../context.js';
import { McpkiError } from '../errors.js';
import type { CertificateRecord } from '../store/store.js';

export interface ForgottenCertificate {
  name: string;
  serial: string;
  issuer: string;
  status: CertificateRecord['status'];
  notAfter: string;
  /** revoked: still listed in the CRLs mcpki signs */
  keptInCrl: boolean;
}

export interface ForgetResult {
  forgotten: ForgottenCertificate[];
  /** serials that were neither revoked nor expired: clients still trust them until they expire */
  stillTrusted: string[];
}

/** Every certificate of NAME (its whole history), or the one certificate with SERIAL. Files on disk are left alone. */
export function forgetCertificate(context: Context, nameOrSerial: string): ForgetResult {
  // control characters, C1 controls, line separators and bidi overrides: no name or serial holds one
  if (
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u.test(nameOrSerial) ||
    nameOrSerial.trim() === ''
  ) {
    throw new McpkiError(
      'INVALID_INPUT',
      `invalid certificate name or serial ${JSON.stringify(nameOrSerial)}`,
      'give a name or serial as "mcpki list --all" shows it',
    );
  }
  const store = context.existingStore();
  const now = context.now().getTime();
  const forgotten = store
    ? store.transaction(() => {
        const records = store.forgetCertificates(nameOrSerial);
        for (const record of records) {
          store.addEvent({
            type: 'certificate.forgotten',
            name: record.name,
            serial: record.serial,
            detail: {
              issuer: record.issuer,
              status: record.status,
              notAfter: record.notAfter,
              keptInCrl: record.status === 'revoked',
              given: nameOrSerial,
            },
          });
        }
        return records;
      })
    : [];
  if (forgotten.length === 0) {
    throw new McpkiError(
      'NOT_FOUND',
      `no certificate named or with serial "${nameOrSerial}"`,
      'see "mcpki list --all" for names and serials',
    );
  }
  return {
    forgotten: forgotten.map((r) => ({
      name: r.name,
      serial: r.serial,
      issuer: r.issuer,
      status: r.status,
      notAfter: r.notAfter,
      keptInCrl: r.status === 'revoked',
    })),
    stillTrusted: forgotten.filter((r) => r.status !== 'revoked' && Date.parse(r.notAfter) > now).map((r) => r.serial),
  };
}
