import {
  DEFAULT_KEY_TYPE,
  KEY_TYPE_DESCRIPTION,
  McpkiError,
  broadPermits,
  initCa,
  parseKeyType,
  rotateIntermediate,
  showCa,
} from '../../index.js';
import type { CaInfo } from '../../index.js';
import type { Command } from 'commander';
import { action, collect } from '../command.js';
import { color, emit, formatDate, table, warn } from '../output.js';
import { resolveRootPassphrase } from '../passphrase.js';

function renderCa(info: CaInfo): string {
  const rows = [
    [
      'root',
      info.root.subject,
      info.root.keyType,
      formatDate(info.root.notAfter),
      info.root.fingerprint.slice(0, 23) + '…',
    ],
    [
      'intermediate',
      info.intermediate.subject,
      info.intermediate.keyType,
      formatDate(info.intermediate.notAfter),
      info.intermediate.fingerprint.slice(0, 23) + '…',
    ],
  ];
  const p = info.permitted;
  const constraints = p
    ? [
        `name constraints: ${[...p.dns, ...p.ip].map((s) => s || '(any name)').join(', ')}`,
        p.uri?.length || p.email?.length
          ? `  URI hosts: ${(p.uri ?? []).map((s) => s || '(any)').join(', ') || '(any)'}; e-mail: ${(p.email ?? []).map((s) => s || '(any)').join(', ') || '(any)'}`
          : color.yellow(
              '  URI and e-mail names: not constrained (a CA made before mcpki constrained them; "mcpki init --force" makes a new one)',
            ),
      ].join('\n')
    : color.yellow('name constraints: none (this CA can sign for any name)');
  return [
    table(['ROLE', 'SUBJECT', 'KEY', 'NOT AFTER', 'SHA-256'], rows),
    '',
    constraints,
    `root key: ${info.root.keyPath}${info.root.keyEncrypted ? ' (encrypted)' : ''}`,
    `root certificate: ${info.root.certPath}`,
  ].join('\n');
}

export function registerCa(program: Command): void {
  program
    .command('init')
    .description('create the development CA: a name-constrained root and an issuing intermediate')
    .option('--key <type>', KEY_TYPE_DESCRIPTION, DEFAULT_KEY_TYPE)
    .option(
      '--permit <name-or-cidr>',
      'also permit this DNS name (.suffix for subdomains) or network; repeatable',
      collect,
    )
    .option(
      '--allow-broad-permit',
      'accept a --permit that covers a whole TLD (com), every name (.) or most of the IP space (0.0.0.0/0)',
    )
    .option('--no-name-constraints', 'no name constraints at all: the CA can sign for any name (not recommended)')
    .option(
      '--no-ip-constraints',
      'leave IP ranges out of the name constraints (DNS names, URIs and e-mail stay constrained): for TLS clients that refuse IP subtrees, such as Claude Code',
    )
    .option(
      '--encrypt-root',
      'encrypt the root key at rest (passphrase from MCPKI_ROOT_PASSPHRASE, --passphrase-file or a prompt)',
    )
    .option('--passphrase-file <file>', 'file whose first line is the root key passphrase')
    .option('--force', 'replace an existing CA (certificates it issued stop being trusted)')
    .addHelpText(
      'after',
      `
Examples:
  mcpki init
  mcpki init --key ec-p384 --permit .corp.example --permit 10.0.0.0/8
  mcpki init --permit spiffe://prod.corp.example      a SPIFFE trust domain (URI SANs spiffe://prod.corp.example/…)
  MCPKI_ROOT_PASSPHRASE=… mcpki init --encrypt-root`,
    )
    .action(
      action(
        async (
          { context, out },
          options: {
            key: string;
            permit?: string[];
            allowBroadPermit?: boolean;
            nameConstraints: boolean;
            ipConstraints: boolean;
            encryptRoot?: boolean;
            passphraseFile?: string;
            force?: boolean;
          },
        ) => {
          let rootPassphrase: string | undefined;
          if (options.encryptRoot || options.passphraseFile) {
            rootPassphrase = await resolveRootPassphrase({ file: options.passphraseFile, confirm: true });
            if (rootPassphrase === undefined) {
              throw new McpkiError(
                'PASSPHRASE_MISSING',
                '--encrypt-root needs a passphrase and there is no terminal to ask for one',
                'set MCPKI_ROOT_PASSPHRASE or pass --passphrase-file FILE',
              );
            }
          }
          const info = initCa(context, {
            keyType: parseKeyType(options.key),
            permit: options.permit,
            allowBroadPermit: options.allowBroadPermit,
            nameConstraints: options.nameConstraints,
            ipConstraints: options.ipConstraints,
            rootPassphrase,
            force: options.force,
          });
          if (options.allowBroadPermit) {
            const broad = broadPermits(options.permit ?? []);
            if (broad.length > 0)
              warn(
                out,
                `--permit ${broad.join(', ')} barely limits what this CA can sign: anyone who trusts it can be intercepted for those names`,
              );
          }
          if (!options.nameConstraints)
            warn(
              out,
              'this CA has no name constraints: it can sign a certificate for any domain, and anyone who trusts it can be intercepted with one',
            );
          if (options.force) {
            const removed = info.oldRootRemovedFrom ?? [];
            if (removed.length > 0)
              warn(
                out,
                `replaced the CA: removed the old root from ${removed.map((row) => `${row.store} (${row.location})`).join(', ')}; run "mcpki trust install" to trust the new one`,
              );
            else
              warn(
                out,
                'replaced the CA: certificates the old CA issued are now orphaned (no longer trusted); reissue them',
              );
          }
          if (info.existing) {
            emit(
              out,
              info,
              () =>
                `the development CA in ${info.home} already matches these options: nothing changed\n\n${renderCa(info)}`,
            );
            return;
          }
          emit(
            out,
            info,
            () =>
              `${color.green('created')} the development CA in ${info.home}\n\n${renderCa(info)}\n\nnext: mcpki issue server my-mcp localhost 127.0.0.1   (and "mcpki trust install" so clients trust it)`,
          );
        },
      ),
    );

  const ca = program.command('ca').description('inspect or maintain the development CA');
  ca.command('show')
    .description('show the root and intermediate certificates and the name constraints')
    .action(
      action(async ({ context, out }) => {
        const info = showCa(context);
        emit(out, info, () => renderCa(info));
      }),
    );
  ca.command('rotate-intermediate')
    .description('issue a new intermediate under the same root (needs the root key); the old one keeps signing CRLs')
    .option('--passphrase-file <file>', 'file whose first line is the root key passphrase')
    .action(
      action(async ({ context, out }, options: { passphraseFile?: string }) => {
        const rootPassphrase = await resolveRootPassphrase({ file: options.passphraseFile });
        const info = rotateIntermediate(context, { rootPassphrase });
        emit(
          out,
          info,
          () =>
            `${color.green('rotated')} the intermediate; new leaves are signed by ${info.intermediate.subject}\n\n${renderCa(info)}`,
        );
      }),
    );
}
