import type { Command } from 'commander';
import { migrateInventory } from '../../index.js';
import { action } from '../command.js';
import { color, emit, table } from '../output.js';

export function registerStore(program: Command): void {
  const store = program
    .command('store')
    .description('where the inventory lives: the home (SQLite) or a PostgreSQL database several hosts share');
  store
    .command('migrate')
    .description("copy this home's SQLite inventory into an empty PostgreSQL database, then compare every row")
    .requiredOption('--to <url>', 'postgres://USER@HOST:5432/DB?sslmode=verify-full&sslrootcert=CA.pem')
    .addHelpText(
      'after',
      `
Copies certificates, events, ACME accounts, renewal state, the ACME server's accounts, orders and EAB keys and
the CRL numbers, then checks row counts and a SHA-256 of every table on both sides. mcpki.db is opened read-only
and left as it was. The PostgreSQL database (or the schema named by ?schema=) must be empty. Then point every
host at it with --store URL, MCPKI_STORE=URL or "store: URL" in mcpki.yaml; the password comes from the URL,
PGPASSWORD or ~/.pgpass.
Examples:
  mcpki store migrate --to 'postgres://mcpki@db.internal:5432/mcpki?sslmode=verify-full&sslrootcert=/etc/mcpki/db-ca.pem'
  MCPKI_STORE='postgres://mcpki@db.internal/mcpki?sslmode=verify-full&sslrootcert=/etc/mcpki/db-ca.pem' mcpki list`,
    )
    .action(
      action(async ({ context, out }, options: { to: string }) => {
        const result = migrateInventory(context, options.to);
        emit(out, result, () =>
          [
            table(
              ['TABLE', 'ROWS', 'SHA-256'],
              result.tables.map((t) => [t.table, String(t.rows), t.sha256.slice(0, 16)]),
            ),
            `${color.green('copied')} ${result.from} to ${result.to} (schema version ${result.schemaVersion}); every table compared equal`,
          ].join('\n'),
        );
      }),
    );
}
