import { KEY_TYPES, signCsr } from '../../index.js';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { action } from '../command.js';
import { color, emit } from '../output.js';
import { writeStdout } from '../stdout.js';

function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number.');
  return Number(value);
}

export function registerSign(program: Command): void {
  program
    .command('sign <csr-file>')
    .description(
      'sign an external certificate request (PKCS#10) with the development CA: key, names and constraints checked',
    )
    .option('--profile <kind>', 'server (serverAuth) or client (clientAuth)', 'server')
    .option('--days <n>', 'validity in days, at most 398', wholeNumber)
    .option('--name <name>', "the name in the inventory (default: the request's CN, else its first DNS name)")
    .option('--out <file>', 'write the certificate followed by the intermediate here (default: print it)')
    .addHelpText(
      'after',
      `
Only the names (subjectAltName; a lone CN that is a host name for a server) are taken from the request; its other
subject fields and extensions are ignored and listed. The key must be one mcpki issues (${KEY_TYPES.join(', ')})
and the names inside the CA's name constraints.
Examples:
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout app.key -subj /CN=app \\
    -addext "subjectAltName=DNS:app.localhost,IP:127.0.0.1" -out app.csr
  mcpki sign app.csr --out app.crt
  mcpki sign agent.csr --profile client --days 30 --out agent.crt`,
    )
    .action(
      action(
        async (
          { context, out },
          csrFile: string,
          flags: { profile: string; days?: number; name?: string; out?: string },
        ) => {
          const signed = signCsr(context, {
            csrPath: csrFile,
            profile: flags.profile,
            days: flags.days,
            name: flags.name,
            out: flags.out,
          });
          if (!out.json && !signed.path) {
            // the chain alone on stdout, so it can be redirected; what was signed goes to stderr
            writeStdout(signed.fullchain);
          }
          const c = signed.certificate;
          const summary = [
            `${color.green('signed')} ${c.kind} certificate ${color.bold(c.name)} for ${c.sans.map((s) => s.value).join(', ') || c.subject} (${c.keyType})`,
            `  serial      ${c.serial}`,
            `  valid until ${c.notAfter}`,
            ...(signed.path ? [`  full chain  ${signed.path}`] : []),
            ...(signed.ignored.length
              ? [`  ignored     ${signed.ignored.join(', ')} (not in the ${c.kind} profile)`]
              : []),
          ].join('\n');
          if (out.json) emit(out, signed, () => summary);
          else if (signed.path) writeStdout(summary + '\n');
          else process.stderr.write(summary + '\n');
        },
      ),
    );
}
