// The ACME server's tables (migration 5). Objects are JSON documents keyed by id; the columns beside them are
// what is looked up by. The protocol layer maps these documents to its own types (src/acme-server/model.ts),
// so this file knows nothing of ACME beyond names, and another store (issue 12) implements the same calls.
import type { SqlStatement } from './connection.js';

export type Document = Record<string, unknown>;

export interface AcmeServerCertificateRow {
  serial: string;
  accountId: string;
  orderId: string;
  ariCertId: string | null;
  chainPem: string;
  /** a window set by renew-early; null: the one computed from the validity */
  windowStart: string | null;
  windowEnd: string | null;
  createdAt: string;
  /** from the inventory's certificates table */
  notBefore: string | null;
  notAfter: string | null;
  status: string | null;
}

export interface EabKeyRow {
  kid: string;
  name: string;
  /** base64url(iv | ciphertext | tag) */
  sealedKey: string;
  /** serial of the intermediate whose key sealed it */
  sealedBy: string;
  allow: string[];
  status: 'valid' | 'revoked';
  createdAt: string;
  revokedAt: string | null;
}

type Statement = (sql: string) => SqlStatement;
type Run = <T>(fn: () => T) => T;
type Transaction = <T>(fn: () => T) => T;

export class AcmeServerTables {
  constructor(
    private readonly statement: Statement,
    private readonly run: Run,
    private readonly transaction: Transaction,
    private readonly now: () => Date,
  ) {}

  private getDoc(table: string, id: string): Document | undefined {
    const row = this.run(() => this.statement(`SELECT data FROM ${table} WHERE id = ?`).get(id)) as
      { data: string } | undefined;
    return row ? (JSON.parse(row.data) as Document) : undefined;
  }

  private putDoc(table: string, id: string, data: Document): void {
    const changed = this.run(() =>
      this.statement(`UPDATE ${table} SET data = ? WHERE id = ?`).run(JSON.stringify(data), id),
    );
    if (changed.changes !== 1) throw new Error(`no ${table} row ${id}`);
  }

  // --- accounts -------------------------------------------------------------------------------------

  /** false when another account already has this thumbprint */
  addAccount(id: string, thumbprint: string, data: Document): boolean {
    return this.run(
      () =>
        this.statement(
          'INSERT INTO acme_server_accounts (id, thumbprint, data) VALUES (?, ?, ?) ON CONFLICT (thumbprint) DO NOTHING',
        ).run(id, thumbprint, JSON.stringify(data)).changes === 1,
    );
  }

  getAccount(id: string): Document | undefined {
    return this.getDoc('acme_server_accounts', id);
  }

  accountByThumbprint(thumbprint: string): Document | undefined {
    const row = this.run(() =>
      this.statement('SELECT data FROM acme_server_accounts WHERE thumbprint = ?').get(thumbprint),
    ) as { data: string } | undefined;
    return row ? (JSON.parse(row.data) as Document) : undefined;
  }

  /** false when another account already has the new thumbprint */
  updateAccount(id: string, thumbprint: string, data: Document): boolean {
    return this.run(() => {
      const holder = this.statement('SELECT id FROM acme_server_accounts WHERE thumbprint = ?').get(thumbprint) as
        { id: string } | undefined;
      if (holder && holder.id !== id) return false;
      const changed = this.statement('UPDATE acme_server_accounts SET thumbprint = ?, data = ? WHERE id = ?').run(
        thumbprint,
        JSON.stringify(data),
        id,
      );
      if (changed.changes !== 1) throw new Error(`no account ${id}`);
      return true;
    });
  }

  // --- orders, authorizations, challenges -----------------------------------------------------------

  addOrder(
    order: { id: string; accountId: string; data: Document },
    authorizations: { id: string; data: Document }[],
    challenges: { id: string; data: Document }[],
  ): void {
    this.transaction(() => {
      this.statement('INSERT INTO acme_server_orders (id, account_id, data) VALUES (?, ?, ?)').run(
        order.id,
        order.accountId,
        JSON.stringify(order.data),
      );
      const authz = this.statement('INSERT INTO acme_server_authorizations (id, data) VALUES (?, ?)');
      for (const a of authorizations) authz.run(a.id, JSON.stringify(a.data));
      const chall = this.statement('INSERT INTO acme_server_challenges (id, data) VALUES (?, ?)');
      for (const c of challenges) chall.run(c.id, JSON.stringify(c.data));
    });
  }

  getOrder(id: string): Document | undefined {
    return this.getDoc('acme_server_orders', id);
  }

  updateOrder(id: string, data: Document): void {
    this.putDoc('acme_server_orders', id, data);
  }

  /** an account's orders, oldest first, at most `limit` */
  listOrders(accountId: string, limit: number): Document[] {
    const rows = this.run(() =>
      this.statement('SELECT data FROM acme_server_orders WHERE account_id = ? ORDER BY rowid LIMIT ?').all(
        accountId,
        limit,
      ),
    ) as { data: string }[];
    return rows.map((row) => JSON.parse(row.data) as Document);
  }

  getAuthorization(id: string): Document | undefined {
    return this.getDoc('acme_server_authorizations', id);
  }

  updateAuthorization(id: string, data: Document): void {
    this.putDoc('acme_server_authorizations', id, data);
  }

  getChallenge(id: string): Document | undefined {
    return this.getDoc('acme_server_challenges', id);
  }

  updateChallenge(id: string, data: Document): void {
    this.putDoc('acme_server_challenges', id, data);
  }

  // --- issued certificates --------------------------------------------------------------------------

  addCertificate(serial: string, accountId: string, orderId: string, chainPem: string, ariCertId: string | null): void {
    this.run(() =>
      this.statement(
        'INSERT INTO acme_server_certificates (serial, account_id, order_id, ari_cert_id, chain_pem, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      ).run(serial, accountId, orderId, ariCertId, chainPem, this.now().toISOString()),
    );
  }

  private static readonly CERT_SELECT = `SELECT a.serial, a.account_id, a.order_id, a.ari_cert_id, a.chain_pem, a.window_start, a.window_end, a.created_at,
      c.not_before, c.not_after, c.status
    FROM acme_server_certificates a LEFT JOIN certificates c ON c.serial = a.serial`;

  getCertificate(serial: string): AcmeServerCertificateRow | undefined {
    const row = this.run(() => this.statement(`${AcmeServerTables.CERT_SELECT} WHERE a.serial = ?`).get(serial)) as
      CertRow | undefined;
    return row ? toCertificate(row) : undefined;
  }

  certificateByAriId(ariCertId: string): AcmeServerCertificateRow | undefined {
    const row = this.run(() =>
      this.statement(`${AcmeServerTables.CERT_SELECT} WHERE a.ari_cert_id = ?`).get(ariCertId),
    ) as CertRow | undefined;
    return row ? toCertificate(row) : undefined;
  }

  /**
   * Sets the renewal window of the ACME-issued certificates that are still valid and unexpired at `now`,
   * chosen by serial and/or issued (notBefore) before `before`; returns their serials.
   */
  setRenewalWindows(select: { serial?: string; before?: string }, start: string, end: string): string[] {
    return this.transaction(() => {
      const where = ["c.status = 'valid'", 'c.not_after > ?'];
      const params: unknown[] = [this.now().toISOString()];
      if (select.serial !== undefined) {
        where.push('a.serial = ?');
        params.push(select.serial);
      }
      if (select.before !== undefined) {
        where.push('c.not_before < ?');
        params.push(select.before);
      }
      const rows = this.statement(
        `SELECT a.serial FROM acme_server_certificates a JOIN certificates c ON c.serial = a.serial WHERE ${where.join(' AND ')} ORDER BY a.serial`,
      ).all(...params) as { serial: string }[];
      const update = this.statement(
        'UPDATE acme_server_certificates SET window_start = ?, window_end = ? WHERE serial = ?',
      );
      for (const { serial } of rows) update.run(start, end, serial);
      return rows.map((r) => r.serial);
    });
  }

  // --- external account keys ------------------------------------------------------------------------

  addEabKey(key: { kid: string; name: string; sealedKey: string; sealedBy: string; allow: string[] }): void {
    this.run(() =>
      this.statement(
        'INSERT INTO acme_server_eab_keys (kid, name, sealed_key, sealed_by, allow, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      ).run(key.kid, key.name, key.sealedKey, key.sealedBy, JSON.stringify(key.allow), this.now().toISOString()),
    );
  }

  getEabKey(kid: string): EabKeyRow | undefined {
    const row = this.run(() => this.statement('SELECT * FROM acme_server_eab_keys WHERE kid = ?').get(kid)) as
      EabRow | undefined;
    return row ? toEabKey(row) : undefined;
  }

  listEabKeys(): EabKeyRow[] {
    const rows = this.run(() =>
      this.statement('SELECT * FROM acme_server_eab_keys ORDER BY created_at, kid').all(),
    ) as EabRow[];
    return rows.map(toEabKey);
  }

  /** false when there is no such key or it was already revoked */
  revokeEabKey(kid: string): boolean {
    return this.run(
      () =>
        this.statement(
          "UPDATE acme_server_eab_keys SET status = 'revoked', revoked_at = ? WHERE kid = ? AND status = 'valid'",
        ).run(this.now().toISOString(), kid).changes === 1,
    );
  }

  /** how many accounts were bound with each key */
  accountsPerEabKey(): Map<string, number> {
    // counted here rather than with SQLite's json_extract, so the same statement runs on PostgreSQL
    const rows = this.run(() => this.statement('SELECT data FROM acme_server_accounts').all()) as { data: string }[];
    const counts = new Map<string, number>();
    for (const row of rows) {
      const kid = (JSON.parse(row.data) as { eabKid?: unknown }).eabKid;
      if (typeof kid === 'string') counts.set(kid, (counts.get(kid) ?? 0) + 1);
    }
    return counts;
  }
}

interface CertRow {
  serial: string;
  account_id: string;
  order_id: string;
  ari_cert_id: string | null;
  chain_pem: string;
  window_start: string | null;
  window_end: string | null;
  created_at: string;
  not_before: string | null;
  not_after: string | null;
  status: string | null;
}

function toCertificate(row: CertRow): AcmeServerCertificateRow {
  return {
    serial: row.serial,
    accountId: row.account_id,
    orderId: row.order_id,
    ariCertId: row.ari_cert_id,
    chainPem: row.chain_pem,
    windowStart: row.window_start,
    windowEnd: row.window_end,
    createdAt: row.created_at,
    notBefore: row.not_before,
    notAfter: row.not_after,
    status: row.status,
  };
}

interface EabRow {
  kid: string;
  name: string;
  sealed_key: string;
  sealed_by: string;
  allow: string;
  status: 'valid' | 'revoked';
  created_at: string;
  revoked_at: string | null;
}

function toEabKey(row: EabRow): EabKeyRow {
  return {
    kid: row.kid,
    name: row.name,
    sealedKey: row.sealed_key,
    sealedBy: row.sealed_by,
    allow: JSON.parse(row.allow) as string[],
    status: row.status,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}
