import { DURATION_LIMITS, checkTarget, parseDuration } from '../../index.js';
import type { CheckReport, Severity } from '../../index.js';
import type { Command } from 'commander';
import { action, collect } from '../command.js';
import { color, emit, safeText } from '../output.js';

interface CheckFlags {
  servername?: string;
  key?: string;
  cert?: string;
  clientCert?: string;
  ca?: string[];
  timeout?: string;
  strict?: boolean;
  record?: boolean;
}

/** "500", "500ms", "2s" → milliseconds, at most 10 minutes per probe. */
function parseTimeout(text: string): number {
  return parseDuration(text, {
    what: '--timeout',
    units: ['ms', 's', 'm'],
    bareUnit: 'ms',
    maxMs: DURATION_LIMITS.probe,
    example: '--timeout 2s',
  });
}

const PAINT: Record<Severity, (text: string) => string> = {
  ok: color.green,
  info: color.dim,
  warning: color.yellow,
  failure: color.red,
  alarm: (text) => color.bold(color.red(text)),
};

function renderReport(report: CheckReport): string {
  const t = report.target;
  const about: string[] = [];
  if (report.tls?.address) about.push(report.tls.address);
  if (report.tls?.protocol) about.push(`${report.tls.protocol} ${report.tls.cipher ?? ''}`.trim());
  if (t.kind === 'name') about.push(t.path ?? '');
  // findings quote what a server sent (subjects, names): made safe for the terminal like error messages
  const lines = [
    `${color.bold(`mcpki check ${safeText(t.input)}`)}${about.length ? color.dim(` (${safeText(about.join(', '))})`) : ''}`,
  ];
  const idWidth = Math.max(...report.findings.map((f) => f.id.length));
  const pad = (text: string, width: number) => text + ' '.repeat(Math.max(0, width - text.length));
  for (const finding of report.findings) {
    lines.push(
      `  ${PAINT[finding.severity](pad(finding.severity, 7))}  ${pad(finding.id, idWidth)}  ${safeText(finding.message)}`,
    );
    if (finding.fix && finding.severity !== 'ok')
      lines.push(`  ${' '.repeat(7)}  ${' '.repeat(idWidth)}  ${color.dim('fix:')} ${safeText(finding.fix)}`);
  }
  const verdict = {
    ok: color.green('healthy'),
    warning: color.yellow('warnings'),
    failure: color.red('failures'),
    alarm: PAINT.alarm('ALARM: unexpected certificate'),
  }[report.status];
  lines.push(`result: ${verdict} (exit ${report.exitCode}, ${report.elapsedMs} ms)`);
  return lines.join('\n');
}

export function registerCheck(program: Command): void {
  program
    .command('check <target>')
    .description(
      'check a TLS server (host:port, https://host) or a certificate file/name: expiry, chain, names, key, protocols, ciphers, client certificates, and whether the certificate is the one mcpki issued',
    )
    .option(
      '--servername <name>',
      'the name to ask for (SNI) and to check the certificate against (default: the host; files: none)',
    )
    .option('--key <file>', 'certificate files: the private key, to check that it matches')
    .option(
      '--cert <name>',
      'host:port: the inventory certificate the server should present (default: any recorded for the name)',
    )
    .option(
      '--client-cert <name>',
      'host:port: present this inventory client certificate and report whether the server accepts it',
    )
    .option('--ca <file>', 'also trust the CA certificates in this PEM file; repeatable', collect)
    .option('--timeout <ms>', 'per probe, in milliseconds (or 2s); at most 10m', '3000')
    .option(
      '--strict',
      'weak cipher suites that current clients never negotiate (CBC, RSA key exchange) count as warnings',
    )
    .option('--no-record', 'do not record an unexpected certificate as an event')
    .addHelpText(
      'after',
      `
TARGET is host:port, [v6]:port, https://host[:port], a certificate file (PEM or DER; leaf or fullchain;
a combined cert+key file), or the name of a certificate in the inventory (its recorded files).

Examples:
  mcpki check localhost:8443
  mcpki check https://mcp.test:8443 --client-cert agent
  mcpki check 127.0.0.1:8443 --servername api.localhost --json
  mcpki check ./server.fullchain.pem --key ./server.key --servername api.localhost
  mcpki check my-mcp

Exit codes: 0 healthy (only ok and info findings), 19 warnings, 20 failures, 21 unexpected certificate
(a certificate mcpki never issued or recorded, for a name it manages; recorded as an event).
When several apply, the highest wins: 21 over 20 over 19. A TARGET or option that cannot be used exits 2/3/10.`,
    )
    .action(
      action(async ({ context, out }, target: string, flags: CheckFlags) => {
        const report = await checkTarget(context, target, {
          servername: flags.servername,
          key: flags.key,
          cert: flags.cert,
          clientCert: flags.clientCert,
          ca: flags.ca,
          timeoutMs: parseTimeout(flags.timeout ?? '3000'),
          strict: flags.strict === true,
          record: flags.record !== false,
        });
        emit(out, report, () => renderReport(report));
        return report.exitCode;
      }),
    );
}
