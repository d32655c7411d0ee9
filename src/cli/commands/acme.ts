import {
  ACCOUNT_KEY_TYPES,
  DEFAULT_KEY_TYPE,
  KEY_TYPE_DESCRIPTION,
  McpkiError,
  createChallengeProvider,
  deactivateAccount,
  issueAcmeCertificate,
  listAccounts,
  parseAccountKeyType,
  registerAccount,
  revokeAcmeCertificate,
  rolloverAccountKey,
  showAccount,
  updateAccountEmail,
} from '../../index.js';
import type { AccountKeyType, AccountView, AcmeIssued } from '../../index.js';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { action, collect } from '../command.js';
import { color, emit, formatDate, table } from '../output.js';
import { readSecretFile } from '../passphrase.js';

function port(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535)
    throw new InvalidArgumentError('expected a port number from 1 to 65535.');
  return Number(value);
}

function seconds(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number of seconds.');
  return Number(value);
}

function renderAccount(a: AccountView): string {
  return [
    ['name', a.name],
    ['status', a.status],
    ['directory', `${a.directoryUrl} (${a.environment})`],
    ['account URL', a.accountUrl],
    ['contact', a.email ?? '-'],
    ['EAB key id', a.eabKid ?? '-'],
    ['key file', a.keyPath],
    ['key type', a.keyType ?? 'unreadable'],
    ...(a.keyRolloverPending
      ? [['key rollover', color.yellow(`unfinished: run "mcpki acme account rollover ${a.name}"`)]]
      : []),
    ['created', formatDate(a.createdAt)],
  ]
    .map(([k, v]) => `${color.dim(k!.padEnd(12))} ${v}`)
    .join('\n');
}

function renderIssued(issued: AcmeIssued): string {
  const c = issued.certificate;
  const key =
    issued.key === 'csr'
      ? 'yours (--csr), not written'
      : `${issued.paths.key}${issued.key === 'reused' ? ' (the previous key, kept)' : ''}`;
  const lines = [
    `${color.green('issued')} ${c.name} for ${c.sans.map((s) => s.value).join(', ')} by ${c.issuer}`,
    `  serial      ${c.serial}`,
    `  valid until ${formatDate(c.notAfter)}`,
    `  certificate ${issued.paths.cert}`,
    `  key         ${key}`,
    `  chain       ${issued.paths.chain}${issued.chain.topIssuer ? ` (up to ${issued.chain.topIssuer})` : ''}`,
    `  full chain  ${issued.paths.fullchain}`,
  ];
  if (issued.chain.preferredFound === false) {
    lines.push(
      color.yellow(
        `  note: no chain offered by the CA goes through "${issued.chain.preferred}"; the default chain was written`,
      ),
    );
  }
  return lines.join('\n');
}

interface IssueFlags {
  domain: string[];
  account?: string;
  key?: string;
  csr?: string;
  preferredChain?: string;
  reuseKey?: boolean;
  profile?: string;
  out?: string;
  challenge?: string;
  httpPort?: number;
  httpHost?: string;
  webroot?: string;
  dnsHook?: string;
  dnsTimeout?: number;
  dnsPropagationSeconds?: number;
  dnsResolver?: string;
  dnsPropagationTimeout?: number;
  alpnPort?: number;
  alpnHost?: string;
  allowGit?: boolean;
  force?: boolean;
}

export function registerAcme(program: Command): void {
  const acme = program
    .command('acme')
    .description("certificates from an ACME CA (Let's Encrypt, ZeroSSL, Google, Buypass, step-ca, any RFC 8555 CA)");
  const account = acme.command('account').description('ACME accounts');

  account
    .command('register')
    .description('create an account at an ACME CA; the key stays in HOME/acme/accounts/ (0600)')
    .requiredOption(
      '--directory <name-or-url>',
      'letsencrypt, letsencrypt-staging, zerossl, google, google-staging, buypass, buypass-staging, or an https:// directory URL',
    )
    .option('--email <address>', 'contact address for expiry and policy mail')
    .option('--agree-tos', "agree to the CA's terms of service (required)")
    .option('--name <account>', 'name of the account in mcpki (default: the directory name or host)')
    .option('--eab-kid <id>', 'External Account Binding key id (ZeroSSL, Google, step-ca with EAB)')
    .option(
      '--eab-hmac-file <file>',
      'file holding the base64url EAB HMAC key (or MCPKI_EAB_HMAC); never on the command line',
    )
    .option('--ca-bundle <file>', "trust this PEM for the ACME server's own TLS (Pebble, step-ca)")
    .option('--staging', 'the directory issues untrusted test certificates')
    .option('--key-type <type>', `account key type: ${ACCOUNT_KEY_TYPES.join(', ')}`, 'ec-p256')
    .addHelpText(
      'after',
      `
Examples:
  mcpki acme account register --directory letsencrypt-staging --email ops@example.com --agree-tos
  MCPKI_EAB_HMAC=… mcpki acme account register --directory zerossl --email ops@example.com --agree-tos --eab-kid KID
  mcpki acme account register --directory https://ca.internal:9000/acme/acme/directory --ca-bundle root.pem --agree-tos
  mcpki acme account register --directory letsencrypt --email ops@example.com --agree-tos --key-type rsa-2048`,
    )
    .action(
      action(
        async (
          { context, out },
          flags: {
            directory: string;
            email?: string;
            agreeTos?: boolean;
            name?: string;
            eabKid?: string;
            eabHmacFile?: string;
            caBundle?: string;
            staging?: boolean;
            keyType: string;
          },
        ) => {
          const keyType: AccountKeyType = parseAccountKeyType(flags.keyType);
          let eab: { kid: string; hmacKey: string } | undefined;
          if (flags.eabKid) {
            const hmacKey = flags.eabHmacFile
              ? readSecretFile(flags.eabHmacFile, 'EAB HMAC')
              : process.env.MCPKI_EAB_HMAC;
            if (!hmacKey)
              throw new McpkiError(
                'INVALID_INPUT',
                '--eab-kid needs its HMAC key',
                'pass --eab-hmac-file FILE or set MCPKI_EAB_HMAC',
              );
            eab = { kid: flags.eabKid, hmacKey: hmacKey.trim() };
          } else if (flags.eabHmacFile) {
            throw new McpkiError(
              'INVALID_INPUT',
              '--eab-hmac-file needs --eab-kid',
              "pass both, from the CA's dashboard",
            );
          }
          const view = await registerAccount(context, {
            directory: flags.directory,
            email: flags.email,
            agreeTos: flags.agreeTos === true,
            name: flags.name,
            eab,
            caBundle: flags.caBundle,
            staging: flags.staging,
            keyType,
          });
          emit(
            out,
            { account: view },
            () => `${color.green('registered')} ACME account ${color.bold(view.name)}\n\n${renderAccount(view)}`,
          );
        },
      ),
    );
  account
    .command('list')
    .description('list ACME accounts')
    .action(
      action(async ({ context, out }) => {
        const accounts = listAccounts(context);
        emit(out, { accounts }, () =>
          accounts.length === 0
            ? 'no ACME accounts (register one with: mcpki acme account register --directory … --agree-tos)'
            : table(
                ['NAME', 'STATUS', 'ENV', 'KEY', 'DIRECTORY', 'CONTACT'],
                accounts.map((a) => [a.name, a.status, a.environment, a.keyType ?? '?', a.directoryUrl, a.email ?? '']),
              ),
        );
      }),
    );
  account
    .command('show <name>')
    .description('show an ACME account (never its key)')
    .action(
      action(async ({ context, out }, name: string) => {
        const view = showAccount(context, name);
        emit(out, { account: view }, () => renderAccount(view));
      }),
    );
  account
    .command('update <name>')
    .description("change the account's contact address at its CA (RFC 8555 7.3.2), then in the inventory")
    .requiredOption('--email <address>', 'the new contact address for expiry and policy mail')
    .addHelpText('after', '\nExample:\n  mcpki acme account update letsencrypt --email certs@example.com')
    .action(
      action(async ({ context, out }, name: string, flags: { email: string }) => {
        const view = await updateAccountEmail(context, name, flags.email);
        emit(
          out,
          { account: view },
          () => `${color.green('updated')} ACME account ${color.bold(view.name)}: contact ${view.email}`,
        );
      }),
    );
  account
    .command('rollover <name>')
    .description(
      'replace the account key at its CA (RFC 8555 7.3.5); the old key is kept until the CA has accepted the new one',
    )
    .option(
      '--key-type <type>',
      `the new key's type: ${ACCOUNT_KEY_TYPES.join(', ')} (default: the current key's type)`,
    )
    .addHelpText(
      'after',
      '\nExamples:\n  mcpki acme account rollover letsencrypt\n  mcpki acme account rollover letsencrypt --key-type ec-p384',
    )
    .action(
      action(async ({ context, out }, name: string, flags: { keyType?: string }) => {
        const result = await rolloverAccountKey(
          context,
          name,
          flags.keyType === undefined ? {} : { keyType: parseAccountKeyType(flags.keyType) },
        );
        emit(out, result, () =>
          [
            `${color.green(result.recovered ? 'finished an interrupted key rollover of' : 'rolled over the key of')} ACME account ${color.bold(result.account.name)}`,
            `  old key ${result.previousKeyType} ${result.previousThumbprint}`,
            `  new key ${result.account.keyType ?? '?'} ${result.thumbprint}`,
            `  key file ${result.account.keyPath}`,
          ].join('\n'),
        );
      }),
    );
  account
    .command('deactivate <name>')
    .description('deactivate an ACME account at its CA (it cannot be used again)')
    .action(
      action(async ({ context, out }, name: string) => {
        const view = await deactivateAccount(context, name);
        emit(out, { account: view }, () => `${color.yellow('deactivated')} ACME account ${view.name}`);
      }),
    );

  acme
    .command('issue <name>')
    .description('obtain a certificate from an ACME CA and write it like a local one')
    .option(
      '-d, --domain <name>',
      'a DNS name (or IP) for the certificate; repeatable; *.example.com needs dns-01',
      collect,
    )
    .option('--account <name>', 'ACME account (default: the only one)')
    .option(
      '--key <type>',
      `${KEY_TYPE_DESCRIPTION} (default: "${DEFAULT_KEY_TYPE}"; with --csr, the request's key type)`,
    )
    .option(
      '--csr <file>',
      'order the names of this PKCS#10 request and finalize with it: its key stays yours; writes the certificate and chain only',
    )
    .option(
      '--preferred-chain <issuer-cn>',
      'when the CA offers alternate chains, write the one with a certificate issued by this CN (else the default)',
    )
    .option('--reuse-key', 'keep the private key of the certificate already issued under NAME (default: a new key)')
    .option(
      '--profile <name>',
      "certificate profile offered by the CA (e.g. Let's Encrypt classic, tlsserver, shortlived)",
    )
    .option(
      '--out <dir>',
      'write NAME.crt, NAME.key, NAME.chain.pem, NAME.fullchain.pem here (default: HOME/certs/NAME)',
    )
    .option('--challenge <type>', 'http-01 (default), dns-01 or tls-alpn-01')
    .option('--http-port <port>', 'http-01: port of the built-in responder', port)
    .option('--http-host <address>', 'http-01: address the built-in responder listens on (default: all)')
    .option('--webroot <dir>', 'http-01: write the token under DIR/.well-known/acme-challenge/ instead of listening')
    .option('--dns-hook <command>', 'dns-01: run as argv (no shell) with present|cleanup DOMAIN FQDN VALUE')
    .option('--dns-timeout <seconds>', 'dns-01: how long the hook may run', seconds)
    .option(
      '--dns-propagation-seconds <seconds>',
      'dns-01: wait this long after the hook before asking the CA',
      seconds,
    )
    .option('--dns-resolver <ip[:port]>', 'dns-01: poll this DNS server until the TXT record is visible')
    .option('--dns-propagation-timeout <seconds>', 'dns-01: how long to poll --dns-resolver (default 120)', seconds)
    .option('--alpn-port <port>', 'tls-alpn-01: port of the built-in responder', port)
    .option('--alpn-host <address>', 'tls-alpn-01: address the built-in responder listens on (default: all)')
    .option('--allow-git', 'write the key inside a git work tree even when git does not ignore it')
    .option('--force', 'replace a production certificate with one from a staging directory')
    .addHelpText(
      'after',
      `
Examples:
  mcpki acme issue api -d api.example.com --http-port 80
  mcpki acme issue site -d example.com -d www.example.com --webroot /var/www/html
  mcpki acme issue wild -d '*.example.com' --challenge dns-01 --dns-hook '/usr/local/bin/dns-hook --zone example.com'
  mcpki acme issue api --csr api.csr --webroot /var/www/html
  mcpki acme issue api -d api.example.com --reuse-key --preferred-chain 'ISRG Root X1'`,
    )
    .action(
      action(async ({ context, out }, name: string, flags: IssueFlags) => {
        const challenge = createChallengeProvider({
          type: flags.challenge,
          httpPort: flags.httpPort,
          httpHost: flags.httpHost,
          webroot: flags.webroot,
          dnsHook: flags.dnsHook,
          dnsTimeoutSeconds: flags.dnsTimeout,
          propagationSeconds: flags.dnsPropagationSeconds,
          dnsResolver: flags.dnsResolver,
          propagationTimeoutSeconds: flags.dnsPropagationTimeout,
          alpnPort: flags.alpnPort,
          alpnHost: flags.alpnHost,
        });
        const showProgress = !out.json && process.stderr.isTTY === true;
        // SIGINT/SIGTERM: stop the order, kill a running hook, run every cleanup, deactivate the pending
        // authorizations, then exit 130/143 (a second signal changes nothing: the cleanups have their timeouts)
        const interrupt = new AbortController();
        const onSignal = (signal: NodeJS.Signals): void => {
          if (!interrupt.signal.aborted) interrupt.abort(signal);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        let issued: AcmeIssued;
        try {
          issued = await issueAcmeCertificate(context, {
            name,
            domains: flags.domain ?? [],
            account: flags.account,
            keyType: flags.key,
            csr: flags.csr,
            preferredChain: flags.preferredChain,
            reuseKey: flags.reuseKey,
            profile: flags.profile,
            outDir: flags.out,
            allowGit: flags.allowGit,
            force: flags.force,
            challenge,
            signal: interrupt.signal,
            onProgress: showProgress
              ? (step, detail) => process.stderr.write(`${color.dim(step.padEnd(13), process.stderr)} ${detail}\n`)
              : undefined,
          });
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
        emit(out, issued, () => renderIssued(issued));
      }),
    );

  acme
    .command('revoke <name-or-serial>')
    .description('revoke an ACME certificate at its CA and mark it in the inventory')
    .option(
      '--reason <reason>',
      'unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation',
      'unspecified',
    )
    .action(
      action(async ({ context, out }, nameOrSerial: string, flags: { reason: string }) => {
        const view = await revokeAcmeCertificate(context, nameOrSerial, flags.reason);
        emit(
          out,
          { certificate: view },
          () => `${color.yellow('revoked')} ${view.name} (serial ${view.serial}) at ${view.issuer}`,
        );
      }),
    );
}
