import {
  DURATION_LIMITS,
  EXIT_CODES,
  backupInventory,
  findCertificate,
  generateCrl,
  listCertificates,
  listEvents,
  parseDuration,
  restoreInventory,
  revokeCertificate,
} from '../../index.js';
import type { CertificateView } from '../../index.js';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { action } from '../command.js';
import { color, emit, formatDate, formatTimeLeft, lifetimeBar, table, warn, withProgress } from '../output.js';
import { readSecretFile } from '../passphrase.js';

function stateText(view: CertificateView): string {
  switch (view.state) {
    case 'valid':
      return color.green('valid');
    case 'expired':
    case 'revoked':
      return color.red(view.state);
    default:
      return color.dim(view.state);
  }
}

function renderList(views: CertificateView[]): string {
  if (views.length === 0) return 'no certificates (issue one with: mcpki issue server NAME SAN...)';
  const declared = views.some((v) => v.renewal);
  const renewal = (v: CertificateView): string[] => {
    if (!declared) return [];
    if (!v.renewal) return ['-'];
    const next = formatDate(v.renewal.nextCheck);
    return [
      v.renewal.failures ? color.red(`${next} (${v.renewal.failures} failed: ${v.renewal.lastError ?? ''})`) : next,
    ];
  };
  return table(
    ['NAME', 'KIND', 'STATE', 'LEFT', '', 'NOT AFTER', ...(declared ? ['NEXT CHECK'] : []), 'ISSUER', 'NAMES'],
    views.map((v) => [
      v.name,
      v.kind,
      stateText(v),
      formatTimeLeft(v.secondsLeft),
      lifetimeBar(v.state === 'valid' ? v.fractionLeft : 0),
      formatDate(v.notAfter),
      ...renewal(v),
      v.issuer,
      v.sans.map((s) => s.value).join(', '),
    ]),
    { wrap: declared ? [6, 7, 8] : [6, 7] },
  );
}

function renderShow(v: CertificateView): string {
  const rows: [string, string][] = [
    ['name', v.name],
    ['kind', v.kind],
    ['state', stateText(v) + (v.revokedAt ? ` (${v.revocationReason} at ${formatDate(v.revokedAt)})` : '')],
    ['serial', v.serial],
    ['subject', v.subject],
    ['names', v.sans.map((s) => `${s.type}:${s.value}`).join(', ') || '-'],
    ...(v.identity !== null ? [['identity', v.identity] as [string, string]] : []),
    ['issuer', `${v.issuer}${v.issuerSerial ? ` (intermediate ${v.issuerSerial})` : ''}`],
    ['key', v.keyType],
    ['not before', formatDate(v.notBefore)],
    ['not after', `${formatDate(v.notAfter)} (${formatTimeLeft(v.secondsLeft)})`],
    ['sha-256', v.fingerprint],
    ['x5t#S256', v.thumbprint],
    ...Object.entries(v.paths).map(([kind, path]) => [`file ${kind}`, path ?? ''] as [string, string]),
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, value]) => `${color.dim(k.padEnd(width))}  ${value}`).join('\n');
}

/** The most events one `events` lists (a larger --limit overflowed the inventory's integer). */
const MAX_EVENTS = 1_000_000;

function count(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number.');
  return Number(value);
}

function eventCount(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_EVENTS)
    throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_EVENTS}.`);
  return Number(value);
}

export function registerInventory(program: Command): void {
  program
    .command('list')
    .description('list certificates (the newest of each name) with the time they have left')
    .option(
      '--expiring <duration>',
      `only those expiring within this time, e.g. 30d, 12h; at most 36500d; exits 24 when any is listed`,
    )
    .option('--all', 'every certificate ever issued, superseded and revoked ones too')
    .action(
      action(async ({ context, out }, options: { expiring?: string; all?: boolean }) => {
        const expiringWithinMs =
          options.expiring !== undefined
            ? parseDuration(options.expiring, { what: '--expiring', maxMs: DURATION_LIMITS.expiring, example: '30d' })
            : undefined;
        const views = listCertificates(context, { all: options.all, expiringWithinMs });
        emit(out, { certificates: views.map(({ pem: _pem, ...rest }) => rest) }, () => renderList(views));
        // scripts alert on it: `mcpki list --expiring 30d || notify`
        return expiringWithinMs !== undefined && views.length > 0 ? EXIT_CODES.EXPIRING : undefined;
      }),
    );

  program
    .command('show <name-or-serial>')
    .description('show one certificate from the inventory')
    .option('--pem', 'print the certificate PEM only')
    .action(
      action(async ({ context, out }, nameOrSerial: string, options: { pem?: boolean }) => {
        const view = findCertificate(context, nameOrSerial);
        emit(out, { certificate: view }, () => (options.pem ? view.pem : renderShow(view)));
      }),
    );

  program
    .command('revoke <name-or-serial>')
    .description('revoke a certificate issued by the local CA (then publish with "mcpki crl")')
    .option(
      '--reason <reason>',
      'unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn',
      'unspecified',
    )
    .action(
      action(async ({ context, out }, nameOrSerial: string, options: { reason: string }) => {
        const view = revokeCertificate(context, nameOrSerial, options.reason);
        const backup = context.store().lastBackup;
        if (backup?.error)
          warn(out, `the revocation is recorded, but the inventory could not be copied: ${backup.error}`);
        emit(
          out,
          { certificate: view },
          () =>
            `${color.yellow('revoked')} ${view.name} (serial ${view.serial}, reason ${view.revocationReason}); publish it with: mcpki crl`,
        );
      }),
    );

  program
    .command('crl')
    .description(
      "write the CRLs of the whole chain (the intermediate's, then the root's) to HOME/ca/crl.pem (and --out)",
    )
    .option('--out <file>', 'also write the CRL file here')
    .option('--days <n>', "days until the intermediate CRL's nextUpdate", count, 7)
    .option(
      '--passphrase-file <file>',
      'root key passphrase, needed once for a home made before root CRLs (or MCPKI_ROOT_PASSPHRASE)',
    )
    .addHelpText(
      'after',
      `
The file serves full-chain revocation checks: nginx ssl_crl, Node's tls "crl" option, openssl verify -crl_check_all.
Publish it again after each "mcpki revoke", and before nextUpdate (a CRL past nextUpdate makes checks fail).
Examples:
  mcpki revoke old-client && mcpki crl
  mcpki crl --out /etc/nginx/mcpki-crl.pem --days 30`,
    )
    .action(
      action(async ({ context, out }, options: { out?: string; days: number; passphraseFile?: string }) => {
        const rootPassphrase = options.passphraseFile
          ? readSecretFile(options.passphraseFile, 'passphrase')
          : process.env.MCPKI_ROOT_PASSPHRASE || undefined;
        // signing blocks until done: the line is drawn first, and erased as soon as the CRL is written
        const crl = await withProgress(
          out,
          'signing the CRL',
          () => generateCrl(context, { out: options.out, days: options.days, rootPassphrase }),
          { immediate: true },
        );
        for (const warning of crl.warnings) warn(out, warning);
        emit(
          out,
          crl,
          () =>
            `${color.green('wrote')} CRL #${crl.number} with ${crl.revoked.length} revoked certificate(s), next update ${formatDate(crl.nextUpdate)}${crl.source === 'copied' ? ': copied, the newest CRL another home of the inventory published while this one waited (no new number signed)' : crl.shared ? ': signed here, a new number' : ''}\n${crl.paths.map((p) => `  ${p}`).join('\n')}`,
        );
      }),
    );

  const inventory = program
    .command('inventory')
    .description('copies of the inventory (mcpki.db): make one, put one back');
  inventory
    .command('backup')
    .description(
      'copy the inventory now to HOME/backups (also done after every revocation and CA change; the newest 5 are kept)',
    )
    .action(
      action(async ({ context, out }) => {
        const result = backupInventory(context);
        emit(
          out,
          result,
          () => `${color.green('copied')} the inventory to ${result.path} (${result.backups.length} copies kept)`,
        );
      }),
    );
  inventory
    .command('restore [file]')
    .description(
      'put a copy of the inventory back (default: the newest in HOME/backups); the replaced one is kept as mcpki.db.replaced-TIME',
    )
    .addHelpText(
      'after',
      `
The copy must be an intact mcpki inventory of this home's CA. Refused while "mcpki serve" or "mcpki apply" runs.
Examples:
  mcpki inventory restore
  mcpki inventory restore /srv/backup/mcpki.db`,
    )
    .action(
      action(async ({ context, out }, file: string | undefined) => {
        const result = restoreInventory(context, file);
        emit(
          out,
          result,
          () =>
            `${color.green('restored')} ${result.path} from ${result.from}: ${result.certificates} certificate(s), ${result.revoked} revoked` +
            (result.replaced ? `\nthe inventory it replaced is kept as ${result.replaced}` : ''),
        );
      }),
    );

  program
    .command('events')
    .description('the audit log: CA creation, issuance, revocation, export, trust changes')
    .option('--limit <n>', 'the newest N events (at most 1000000)', eventCount, 50)
    .option('--name <name>', 'only events of this certificate')
    .option('--type <type>', 'only events of this type, e.g. certificate.issued')
    .action(
      action(async ({ context, out }, options: { limit: number; name?: string; type?: string }) => {
        const events = listEvents(context, options);
        emit(out, { events }, () =>
          events.length === 0
            ? 'no events'
            : table(
                ['TIME', 'EVENT', 'NAME', 'SERIAL'],
                events.map((e) => [formatDate(e.at), e.type, e.name ?? '', e.serial ?? '']),
              ),
        );
      }),
    );
}
