// What several ACME-server instances on one inventory must share beyond its objects (issue 12): the nonces
// they hand out (a client may take one from instance A and use it at B, once), the orders each account placed
// in the last hour (the rate limit counts them all), and the one step of an order that two instances must not
// both take (ready → valid at finalize). The SQL runs unchanged on SQLite and PostgreSQL.
import type { SqlStatement } from './connection.js';
import type { Document } from './acme-server.js';

type Statement = (sql: string) => SqlStatement;
type Run = <T>(fn: () => T) => T;
type Transaction = <T>(fn: () => T) => T;

export class AcmeServerShared {
  constructor(
    private readonly statement: Statement,
    private readonly run: Run,
    private readonly transaction: Transaction,
    private readonly now: () => Date,
  ) {}

  // --- nonces ---------------------------------------------------------------------------------------

  /** Records a nonce handed out, valid until `expiresAt`. */
  addNonce(nonce: string, expiresAt: Date): void {
    this.run(() =>
      this.statement('INSERT INTO acme_server_nonces (nonce, expires_at) VALUES (?, ?)').run(
        nonce,
        expiresAt.toISOString(),
      ),
    );
  }

  /** true once for a recorded nonce not expired at `at`: the row is deleted, so no other instance takes it. */
  takeNonce(nonce: string, at: Date = this.now()): boolean {
    return this.run(
      () =>
        this.statement('DELETE FROM acme_server_nonces WHERE nonce = ? AND expires_at > ?').run(nonce, at.toISOString())
          .changes === 1,
    );
  }

  /** Deletes the nonces expired at `at`; returns how many. */
  purgeNonces(at: Date = this.now()): number {
    return this.run(
      () => this.statement('DELETE FROM acme_server_nonces WHERE expires_at <= ?').run(at.toISOString()).changes,
    );
  }

  // --- the order rate limit -------------------------------------------------------------------------

  /**
   * One order for `accountId` if it placed fewer than `limit` in the last `windowMs`: recorded and undefined.
   * Otherwise nothing is recorded and the time the oldest of them leaves the window is returned. One
   * transaction, so instances counting at the same time never both take the last slot.
   */
  takeOrderSlot(accountId: string, limit: number, windowMs: number): Date | undefined {
    const now = this.now();
    const since = new Date(now.getTime() - windowMs).toISOString();
    return this.transaction(() => {
      this.statement('DELETE FROM acme_server_order_slots WHERE account_id = ? AND at <= ?').run(accountId, since);
      const row = this.statement(
        'SELECT count(*) AS n, min(at) AS oldest FROM acme_server_order_slots WHERE account_id = ?',
      ).get(accountId) as { n: number; oldest: string | null };
      if (Number(row.n) >= limit && row.oldest) return new Date(new Date(row.oldest).getTime() + windowMs);
      this.statement('INSERT INTO acme_server_order_slots (account_id, at) VALUES (?, ?)').run(
        accountId,
        now.toISOString(),
      );
      return undefined;
    });
  }

  // --- orders ---------------------------------------------------------------------------------------

  /** Replaces an order's document only while its status is still `status`; false when another got there first. */
  updateOrderIf(id: string, status: string, data: Document): boolean {
    return this.run(
      () =>
        this.statement(
          "UPDATE acme_server_orders SET data = ? WHERE id = ? AND json_extract(data, '$.status') = ?",
        ).run(JSON.stringify(data), id, status).changes === 1,
    );
  }
}
