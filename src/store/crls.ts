// The CRLs published on an inventory that several homes share (issue 12): each publication's whole file, so a
// home whose own HOME/ca/crl.pem is older serves the newest instead of signing a number of its own. The rows
// are public data but not trusted: src/pki/crl.ts checks every signature before it writes one to a file.
import type { SqlStatement } from './connection.js';

export interface StoredCrl {
  /** the root's key identifier, hex: which CA */
  ca: string;
  /** the cRLNumber, as the row says it (the reader compares it with the signed one) */
  number: bigint;
  /** serial of the issuing intermediate that signed the first CRL of the file */
  issuer: string;
  thisUpdate: string;
  nextUpdate: string;
  /** the intermediates' CRLs, then the root's, PEM */
  pem: string;
  /** HOST:HOME of the home that signed it */
  publishedBy: string;
  createdAt: string;
}

export interface RevocationEntry {
  /** hex, as stored */
  serial: string;
  name: string;
  revokedAt: string;
  revocationReason: string;
}

type Statement = (sql: string) => SqlStatement;
type Run = <T>(fn: () => T) => T;

/** How many CRLs of one CA are kept (the newest): the others can never be served again. */
export const KEPT_CRLS = 3;

interface CrlRow {
  ca: string;
  /** the number as text (ordering is by the column itself: a text alias would sort "9" above "11") */
  number_text: string;
  issuer: string;
  this_update: string;
  next_update: string;
  pem: string;
  published_by: string;
  created_at: string;
}

export class CrlTables {
  constructor(
    private readonly statement: Statement,
    private readonly run: Run,
    private readonly now: () => Date,
  ) {}

  /** Records a published CRL and drops the older ones of its CA beyond the newest KEPT_CRLS. */
  put(crl: Omit<StoredCrl, 'createdAt'>): void {
    this.run(() => {
      this.statement(
        `INSERT INTO crls (ca, number, issuer, this_update, next_update, pem, published_by, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ca, number) DO NOTHING`,
      ).run(
        crl.ca,
        crl.number.toString(),
        crl.issuer,
        crl.thisUpdate,
        crl.nextUpdate,
        crl.pem,
        crl.publishedBy,
        this.now().toISOString(),
      );
      this.statement(
        `DELETE FROM crls WHERE ca = ? AND number < (SELECT MIN(number) FROM (SELECT number FROM crls WHERE ca = ? ORDER BY number DESC LIMIT ${KEPT_CRLS}) newest)`,
      ).run(crl.ca, crl.ca);
    });
  }

  /**
   * What a CRL of one issuing CA lists: each revoked certificate it signed, without the certificate itself
   * (the PEM of every revoked certificate would cross the wire for nothing while the publication lock is held).
   */
  revocations(issuerSerial: string): RevocationEntry[] {
    const rows = this.run(() =>
      this.statement(
        `SELECT serial, name, revoked_at, revocation_reason FROM certificates WHERE status = 'revoked' AND issuer_serial = ? ORDER BY revoked_at, id`,
      ).all(issuerSerial),
    ) as { serial: string; name: string; revoked_at: string; revocation_reason: string }[];
    return rows.map((row) => ({
      serial: row.serial,
      name: row.name,
      revokedAt: row.revoked_at,
      revocationReason: row.revocation_reason,
    }));
  }

  /** The highest number stored for a CA (one indexed row, no PEM): what a follower polls. */
  newestNumber(ca: string): bigint | undefined {
    const row = this.run(() =>
      this.statement(
        'SELECT CAST(number AS TEXT) AS number_text FROM crls WHERE ca = ? ORDER BY crls.number DESC LIMIT 1',
      ).get(ca),
    ) as { number_text: string } | undefined;
    return row ? BigInt(row.number_text) : undefined;
  }

  /** The stored CRL with the highest number for a CA. */
  newest(ca: string): StoredCrl | undefined {
    const row = this.run(() =>
      this.statement(
        `SELECT ca, CAST(number AS TEXT) AS number_text, issuer, this_update, next_update, pem, published_by, created_at
           FROM crls WHERE ca = ? ORDER BY crls.number DESC LIMIT 1`,
      ).get(ca),
    ) as CrlRow | undefined;
    if (!row) return undefined;
    return {
      ca: row.ca,
      number: BigInt(row.number_text),
      issuer: row.issuer,
      thisUpdate: row.this_update,
      nextUpdate: row.next_update,
      pem: row.pem,
      publishedBy: row.published_by,
      createdAt: row.created_at,
    };
  }
}
