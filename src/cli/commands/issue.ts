import {
  DEFAULT_KEY_TYPE,
  KEY_TYPE_DESCRIPTION,
  INPUT_LIMITS,
  McpkiError,
  classifySan,
  issueBatch,
  issueCertificate,
  parseBatch,
  readInputText,
} from '../../index.js';
import type { IssuedCertificate } from '../../index.js';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { action, collect } from '../command.js';
import { color, emit, formatDate, table, withProgress } from '../output.js';
import { readSecretFile } from '../passphrase.js';
import { tierForLongLoops } from '../tiering.js';

function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number.');
  return Number(value);
}

interface IssueFlags {
  days?: number;
  key?: string;
  out?: string;
  p12?: boolean;
  p12PasswordFile?: string;
  p12Legacy?: boolean;
  allowGit?: boolean;
  spiffe?: string;
  email?: string[];
}

function p12Password(flags: IssueFlags): string | undefined {
  if (flags.p12PasswordFile) return readSecretFile(flags.p12PasswordFile, 'PKCS#12 password');
  return process.env.MCPKI_P12_PASSWORD || undefined;
}

/** Where the PKCS#12 password came from, never the password itself (unless it is the documented default). */
interface P12PasswordSource {
  source: 'default' | 'file' | 'env';
  file?: string;
}

function p12PasswordSource(flags: IssueFlags): P12PasswordSource {
  if (flags.p12PasswordFile) return { source: 'file', file: flags.p12PasswordFile };
  if (process.env.MCPKI_P12_PASSWORD) return { source: 'env' };
  return { source: 'default' };
}

function describeP12Password(password: P12PasswordSource): string {
  if (password.source === 'file') return `password from ${password.file}`;
  if (password.source === 'env') return 'password from MCPKI_P12_PASSWORD';
  return 'password "changeit", the default: give --p12-password-file or MCPKI_P12_PASSWORD for another';
}

/** The batch file, or standard input for "-": size-capped, and a regular file (or a pipe) only. */
async function readBatchFile(file: string): Promise<string> {
  if (file !== '-')
    return readInputText(file, {
      what: 'batch file',
      maxBytes: INPUT_LIMITS.batch,
      hint: 'give a readable file of requests, or - to read them from standard input',
    });
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > INPUT_LIMITS.batch) {
      process.stdin.destroy();
      throw new McpkiError(
        'INVALID_INPUT',
        `the batch from standard input is over ${INPUT_LIMITS.batch} bytes`,
        'split the requests into several batches',
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

/**
 * `issue server localhost`: with no names after NAME, NAME itself is the name when it is a host name or an IP
 * address (as mkcert does). Anything else is left to the "has no names" error.
 */
function namesOf(kind: 'server' | 'client', name: string, sans: string[]): { sans: string[]; fromName: boolean } {
  if (kind !== 'server' || sans.length > 0) return { sans, fromName: false };
  try {
    const san = classifySan(name);
    if (san.type === 'dns' || san.type === 'ip') return { sans: [name], fromName: true };
  } catch {
    // not a host name: the core says the certificate has no names
  }
  return { sans, fromName: false };
}

function renderIssued(issued: IssuedCertificate, password?: P12PasswordSource): string {
  const c = issued.certificate;
  const lines = [
    `${color.green('issued')} ${c.kind} certificate ${color.bold(c.name)} for ${c.sans.map((s) => s.value).join(', ') || c.subject}`,
    `  serial      ${c.serial}`,
    `  valid until ${formatDate(c.notAfter)}`,
    `  certificate ${issued.paths.cert}`,
    `  key         ${issued.paths.key}`,
    `  full chain  ${issued.paths.fullchain}`,
    `  root CA     ${issued.paths.ca}`,
  ];
  if (issued.paths.p12)
    lines.push(
      `  PKCS#12     ${issued.paths.p12}`,
      ...(password ? [`              ${describeP12Password(password)}`] : []),
    );
  return lines.join('\n');
}

function addIssueOptions(command: Command): Command {
  return command
    .option('--days <n>', 'validity in days, at most 398', wholeNumber)
    .option('--key <type>', KEY_TYPE_DESCRIPTION, DEFAULT_KEY_TYPE)
    .option('--out <dir>', 'write NAME.crt, NAME.key, NAME.fullchain.pem and ca.crt here (default: HOME/certs/NAME)')
    .option('--p12', 'also write NAME.p12 (AES-256, SHA-256 MAC; password "changeit" unless given)')
    .option('--p12-password-file <file>', 'PKCS#12 password from this file (or MCPKI_P12_PASSWORD)')
    .option('--p12-legacy', 'PKCS#12 with 3DES and a SHA-1 MAC, for old Java and Windows')
    .option('--allow-git', 'write the key inside a git work tree even when git does not ignore it');
}

export function registerIssue(program: Command): void {
  const issue = program.command('issue').description('issue certificates from the development CA');
  for (const kind of ['server', 'client'] as const) {
    const command = addIssueOptions(
      issue
        .command(`${kind} <name> [san...]`)
        .description(
          kind === 'server'
            ? 'issue a TLS server certificate (serverAuth)'
            : 'issue a TLS client certificate for mTLS (clientAuth)',
        ),
    );
    if (kind === 'client') {
      command
        .option(
          '--spiffe <id>',
          "the client's SPIFFE ID (spiffe://trust.domain/path): its one URI name, what MCP servers see as its identity",
        )
        .option(
          '--email <address>',
          'an e-mail address for the client (the person or mailbox it acts for); may be repeated',
          collect,
        );
    }
    command
      .addHelpText(
        'after',
        kind === 'server'
          ? `
With no names after NAME, NAME is the name when it is a host name or IP address (mcpki issue server localhost).
Names are classified automatically: DNS names (IDN allowed), IP addresses, URIs (spiffe://…), e-mail addresses.
Examples:
  mcpki issue server my-mcp localhost 127.0.0.1 ::1
  mcpki issue server api '*.api.test' --days 30 --out ./certs
  mcpki issue server legacy legacy.internal --key rsa-2048 --p12`
          : `
The identity an mTLS server sees is the SPIFFE ID (--spiffe), else the first e-mail (--email), else NAME
(the common name). Names after NAME are classified as for server certificates.
Examples:
  mcpki issue client agent --spiffe spiffe://example.test/agent/1
  mcpki issue client alice --email alice@example.test --p12
  mcpki issue client ci-bot --spiffe spiffe://example.test/ci --email ci@example.test`,
      )
      .action(
        action(async ({ context, out }, name: string, given: string[], flags: IssueFlags) => {
          const { sans, fromName } = namesOf(kind, name, given);
          const request = {
            kind,
            name,
            sans,
            spiffe: flags.spiffe,
            emails: flags.email,
            keyType: flags.key,
            days: flags.days,
            outDir: flags.out,
            p12: flags.p12,
            p12Password: p12Password(flags),
            p12Legacy: flags.p12Legacy,
            allowGit: flags.allowGit,
          };
          let issued: IssuedCertificate;
          try {
            issued = issueCertificate(context, request);
          } catch (error) {
            // NAME alone was taken as the name, and the CA may not sign for it: say what was missing first
            if (fromName && error instanceof McpkiError && error.code === 'NAME_NOT_PERMITTED') {
              throw new McpkiError(
                'INVALID_NAME',
                `server certificate "${name}" has no names, and "${name}" itself is outside this CA's name constraints`,
                `list the names clients connect to, e.g. mcpki issue server ${name} localhost 127.0.0.1 (mcpki ca show lists what this CA may sign)`,
                { cause: error },
              );
            }
            throw error;
          }
          const password = issued.paths.p12 ? p12PasswordSource(flags) : undefined;
          emit(out, { ...issued, ...(password ? { p12Password: password } : {}) }, () =>
            renderIssued(issued, password),
          );
        }),
      );
  }
  addIssueOptions(
    issue.command('batch <file>').description('issue many certificates in one process from a file ("-" for stdin)'),
  )
    .addHelpText(
      'after',
      `
The file is either lines of "server|client NAME [SAN...]" or a JSON array of
{"kind": "server", "name": "api-1", "sans": ["api-1.localhost"], "key": "ec-p256", "days": 30, "out": "DIR"}.
--out DIR writes every NAME.crt, NAME.key and NAME.fullchain.pem into DIR, with one DIR/ca.crt;
without it each certificate gets HOME/certs/NAME/. Every request is checked before the first is signed.
Example:
  printf 'server api-%s api-%s.localhost\\n' 1 1 2 2 | mcpki issue batch -`,
    )
    .action(
      action(async ({ context, out }, file: string, flags: IssueFlags) => {
        const text = await readBatchFile(file);
        const requests = parseBatch(text, {
          keyType: flags.key,
          days: flags.days,
          allowGit: flags.allowGit,
          p12: flags.p12,
          p12Legacy: flags.p12Legacy,
          p12Password: p12Password(flags),
          outDir: flags.out,
        });
        if (requests.length === 0) {
          throw new McpkiError(
            'INVALID_INPUT',
            `the batch ${file === '-' ? 'from standard input' : `file ${file}`} holds no requests`,
            'write one request a line ("server NAME SAN...") or a JSON array of requests; see "mcpki issue batch --help"',
          );
        }
        // before the worker threads start: they take the flag with them
        tierForLongLoops();
        const issued = await withProgress(out, `issuing ${requests.length} certificates`, () =>
          issueBatch(context, requests),
        );
        const password = issued.some((i) => i.paths.p12) ? p12PasswordSource(flags) : undefined;
        emit(out, { issued, ...(password ? { p12Password: password } : {}) }, () =>
          [
            table(
              ['NAME', 'KIND', 'SERIAL', 'NOT AFTER', 'CERTIFICATE'],
              issued.map((i) => [
                i.certificate.name,
                i.certificate.kind,
                i.certificate.serial,
                formatDate(i.certificate.notAfter),
                i.paths.cert ?? '',
              ]),
            ),
            `${color.green('issued')} ${issued.length} certificates`,
            ...(password ? [`PKCS#12 files: ${describeP12Password(password)}`] : []),
          ].join('\n'),
        );
      }),
    );
}
