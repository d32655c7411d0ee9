import {
  createEabKey,
  DEFAULT_ACME_LISTEN,
  listEabKeys,
  loadConfig,
  renewEarly,
  revokeEabKey,
  runAcmeServer,
  type AcmeServerSettings,
} from '../../index.js';
import type { Command } from 'commander';
import { action, collect } from '../command.js';
import { color, emit, formatDate, table } from '../output.js';

interface ServerFlags {
  config?: string;
  listen?: string[];
  httpPort?: string;
  tlsPort?: string;
  dnsResolver?: string;
  requireEab?: boolean;
  profile?: string[];
  ordersPerHour?: string;
  publicUrl?: string;
  serverName?: string[];
}

export function registerAcmeServer(program: Command): void {
  const command = program
    .command('acme-server')
    .description(
      'serve ACME (RFC 8555, with EAB, profiles and ARI) for this CA: certbot, lego, Caddy, Traefik and cert-manager get mcpki certificates',
    )
    .option(
      '-c, --config <file>',
      'take settings from the acmeServer: section of this mcpki.yaml (flags given override them)',
    )
    .option(
      '--listen <host:port>',
      `where to listen, repeatable (default ${DEFAULT_ACME_LISTEN}: loopback only)`,
      collect,
    )
    .option('--http-port <port>', 'the port http-01 challenges are fetched from (default 80)')
    .option('--tls-port <port>', 'the port tls-alpn-01 challenges connect to (default 443)')
    .option('--dns-resolver <host:port>', "the DNS server for dns-01 (default: the system's resolver)")
    .option('--require-eab', 'accounts need an external account binding (mcpki acme-server eab create)')
    .option(
      '--profile <NAME=server|client:DAYS>',
      'add or change a profile (default, shortlived, client exist), repeatable',
      collect,
    )
    .option('--orders-per-hour <n>', 'orders each account may place per hour (default 300)')
    .option(
      '--public-url <url>',
      'https://HOST[:PORT][/PREFIX] clients reach the server by (a load balancer on another name or port): every URL handed out uses it',
    )
    .option(
      '--server-name <name>',
      "an extra DNS name or IP address on the server's own certificate (the public URL's host is added by itself), repeatable",
      collect,
    )
    .addHelpText(
      'after',
      `
Prints the directory URL of each listener, then serves until SIGTERM or SIGINT, which let requests and
validations in flight finish and exit 0. Accounts, orders and certificates are kept in the inventory, so a
restarted server knows them, and it can run beside "mcpki serve" on the same home. See docs/acme-server.md.
Examples:
  mcpki acme-server --listen 127.0.0.1:8443
  mcpki acme-server -c /etc/mcpki/mcpki.yaml      settings from its acmeServer: section
  mcpki acme-server --listen 10.0.0.5:443 --require-eab --profile agents=client:7
  mcpki acme-server --listen 10.0.0.5:14000 --public-url https://acme.example.internal
                                                  behind a load balancer on another name and port
  mcpki acme-server eab create --name team-agents --allow '*.agents.internal'
  mcpki acme-server eab create --name agent-x --allow-identity spiffe://corp.internal/agent/x
  mcpki acme-server renew-early --before 2026-12-01`,
    )
    .action(
      action(async ({ context, out }, flags: ServerFlags) => {
        const config = flags.config !== undefined ? loadConfig(flags.config) : undefined;
        context.useConfiguredStore(config?.store);
        const settings: AcmeServerSettings = {
          ...config?.acmeServer,
          ...(flags.listen ? { listen: flags.listen } : {}),
          ...(flags.httpPort !== undefined ? { httpPort: flags.httpPort } : {}),
          ...(flags.tlsPort !== undefined ? { tlsPort: flags.tlsPort } : {}),
          ...(flags.dnsResolver !== undefined ? { dnsResolver: flags.dnsResolver } : {}),
          ...(flags.requireEab ? { requireEab: true } : {}),
          ...(flags.profile ? { profile: flags.profile } : {}),
          ...(flags.ordersPerHour !== undefined ? { ordersPerHour: flags.ordersPerHour } : {}),
          ...(flags.publicUrl !== undefined ? { publicUrl: flags.publicUrl } : {}),
          ...(flags.serverName ? { serverName: flags.serverName } : {}),
        };
        const server = await runAcmeServer(context, settings);
        const profiles = Object.entries(server.settings.profiles).map(([name, p]) => ({
          name,
          kind: p.kind,
          days: p.days,
        }));
        emit(
          out,
          {
            directories: server.directories,
            addresses: server.addresses,
            requireEab: server.settings.requireEab,
            profiles,
          },
          () =>
            [
              ...server.directories.map((url) => `${color.green('ACME directory')} ${url}`),
              ...(server.settings.publicUrl !== undefined ? [`listening on ${server.addresses.join(', ')}`] : []),
              `profiles: ${profiles.map((p) => `${p.name} (${p.kind}, ${p.days} d)`).join(', ')}${server.settings.requireEab ? '; external account binding required' : ''}`,
            ].join('\n'),
        );
        await new Promise<void>((resolve) => {
          let stopping = false;
          const stop = () => {
            if (stopping) return;
            stopping = true;
            void server.close().then(resolve, resolve);
          };
          process.once('SIGTERM', stop);
          process.once('SIGINT', stop);
        });
      }),
    );

  const eab = command
    .command('eab')
    .description('external account binding keys: who may register, and for which names');
  eab
    .command('create')
    .description('make a key; its HMAC key is printed once and never again')
    .requiredOption('--name <name>', 'what the key is for, e.g. team-agents')
    .option(
      '--allow <name>',
      'a name its accounts may order: host.internal, *.zone (names below it) or an IP; repeatable (default: anything the CA permits)',
      collect,
    )
    .option(
      '--allow-identity <id>',
      'a SPIFFE ID (spiffe://td/agent) or e-mail address its accounts may put in client certificates (profile client); repeatable',
      collect,
    )
    .action(
      action(async ({ context, out }, flags: { name: string; allow?: string[]; allowIdentity?: string[] }) => {
        const key = createEabKey(context, {
          name: flags.name,
          allow: flags.allow ?? [],
          allowIdentity: flags.allowIdentity ?? [],
        });
        emit(out, key, () =>
          [
            `${color.green('created')} EAB key ${key.name}${key.allow.length ? ` for ${key.allow.join(', ')}` : ''}`,
            ...(key.identities.length ? [`identities: ${key.identities.join(', ')}`] : []),
            `kid:      ${key.kid}`,
            `hmac key: ${key.hmacKey}`,
            'The HMAC key is shown only now: give both to the client (certbot --eab-kid/--eab-hmac-key, lego --kid/--hmac).',
          ].join('\n'),
        );
      }),
    );
  eab
    .command('list')
    .description('the keys, without their secrets')
    .action(
      action(async ({ context, out }) => {
        const keys = listEabKeys(context);
        emit(out, { keys }, () =>
          keys.length === 0
            ? 'no EAB keys (make one with: mcpki acme-server eab create --name NAME)'
            : table(
                ['KID', 'NAME', 'STATUS', 'ACCOUNTS', 'ALLOW', 'IDENTITIES', 'CREATED'],
                keys.map((k) => [
                  k.kid,
                  k.name,
                  k.status,
                  String(k.accounts),
                  k.allow.join(', ') || '(any)',
                  k.identities.join(', ') || '-',
                  formatDate(k.createdAt),
                ]),
              ),
        );
      }),
    );
  eab
    .command('revoke <kid>')
    .description('revoke a key: accounts bound with it can no longer order')
    .action(
      action(async ({ context, out }, kid: string) => {
        const key = revokeEabKey(context, kid);
        emit(
          out,
          key,
          () =>
            `${color.green('revoked')} EAB key ${key.kid} (${key.name}); ${key.accounts} account(s) bound with it can no longer order`,
        );
      }),
    );

  command
    .command('renew-early')
    .description(
      'move the ARI renewal window of ACME-issued certificates to now, so their clients renew at their next check',
    )
    .option('--before <date>', 'only certificates issued before this date or time (ISO 8601)')
    .option('--serial <serial>', 'only this certificate')
    .action(
      action(async ({ context, out }, flags: { before?: string; serial?: string }) => {
        const result = renewEarly(context, flags);
        emit(
          out,
          result,
          () =>
            `${color.green('moved')} the renewal window of ${result.serials.length} certificate(s) to ${result.window.start}; clients that ask for renewal information renew at their next check`,
        );
      }),
    );
}
