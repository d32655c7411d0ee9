// The sealed private keys of certificates shared by several hosts through one PostgreSQL inventory (issue 12).
// This file stores and reads opaque sealed text; sealing and opening are src/renewal/shared.ts's.
import type { SqlStatement } from './connection.js';

export interface SharedKeyRow {
  serial: string;
  name: string;
  /** base64url(iv | ciphertext | tag), AES-256-GCM */
  sealed: string;
  /** serial of the intermediate whose key the sealing key was derived from */
  sealedBy: string;
  createdAt: string;
}

type Statement = (sql: string) => SqlStatement;
type Run = <T>(fn: () => T) => T;

export class SharedKeyTables {
  constructor(
    private readonly statement: Statement,
    private readonly run: Run,
    private readonly now: () => Date,
  ) {}

  /** Records the sealed key of a certificate; a second one for the same serial keeps the first. */
  put(row: Omit<SharedKeyRow, 'createdAt'>): void {
    this.run(() =>
      this.statement(
        'INSERT INTO shared_keys (serial, name, sealed, sealed_by, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (serial) DO NOTHING',
      ).run(row.serial, row.name, row.sealed, row.sealedBy, this.now().toISOString()),
    );
  }

  get(serial: string): SharedKeyRow | undefined {
    const row = this.run(() =>
      this.statement('SELECT serial, name, sealed, sealed_by, created_at FROM shared_keys WHERE serial = ?').get(
        serial,
      ),
    ) as { serial: string; name: string; sealed: string; sealed_by: string; created_at: string } | undefined;
    return row
      ? { serial: row.serial, name: row.name, sealed: row.sealed, sealedBy: row.sealed_by, createdAt: row.created_at }
      : undefined;
  }

  /** Drops the sealed keys of a name except the given serials (superseded certificates' keys). */
  prune(name: string, keep: readonly string[]): number {
    return this.run(() => {
      const rows = this.statement('SELECT serial FROM shared_keys WHERE name = ?').all(name) as { serial: string }[];
      let removed = 0;
      for (const { serial } of rows) {
        if (keep.includes(serial)) continue;
        removed += Number(this.statement('DELETE FROM shared_keys WHERE serial = ?').run(serial).changes);
      }
      return removed;
    });
  }
}
