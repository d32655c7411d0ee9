import { forgetCertificate } from '../../index.js';
import type { Command } from 'commander';
import { action } from '../command.js';
import { color, emit, table, warn } from '../output.js';

export function registerForget(program: Command): void {
  program
    .command('forget <name-or-serial>')
    .description(
      'drop a certificate from the inventory (every certificate of a name, or one serial); files are left in place',
    )
    .addHelpText(
      'after',
      `
A revoked certificate stays in the CRL: "mcpki crl" keeps listing its serial. A certificate that is neither
revoked nor expired is still trusted by clients after it is forgotten: revoke it first when its key is not safe.
Examples:
  mcpki forget old-api
  mcpki forget 5F3A…C1          one certificate, by serial (as "mcpki list --all" shows it)`,
    )
    .action(
      action(async ({ context, out }, nameOrSerial: string) => {
        const result = forgetCertificate(context, nameOrSerial);
        if (result.stillTrusted.length > 0) {
          warn(
            out,
            `${result.stillTrusted.length} forgotten certificate(s) were not revoked and are still trusted until they expire (${result.stillTrusted.join(', ')}); "mcpki revoke" them before forgetting when their keys are not safe`,
          );
        }
        emit(out, result, () =>
          [
            table(
              ['NAME', 'SERIAL', 'STATUS', 'NOT AFTER', 'CRL'],
              result.forgotten.map((f) => [
                f.name,
                f.serial,
                f.status,
                f.notAfter.slice(0, 10),
                f.keptInCrl ? 'still listed' : '-',
              ]),
            ),
            `${color.green('forgot')} ${result.forgotten.length} certificate(s); their files were left in place`,
          ].join('\n'),
        );
      }),
    );
}
