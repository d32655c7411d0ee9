// ACME accounts: the key lives in HOME/acme/accounts/NAME.key (0600, never printed); the account URL,
// directory and contact are in the inventory.
import { readFileSync } from 'node:fs';
import { assertPrivateFile } from '../fs/safe-path.js';
import { join, resolve } from 'node:path';
import type { Context } from '../context.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { McpkiError, fix } from '../errors.js';
import { ensurePrivateDir } from '../home.js';
import { generateKey, privateKeyPem, readPrivateKey } from '../pki/keys.js';
import { validateCertName } from '../pki/names.js';
import type { AcmeAccountRecord } from '../store/store.js';
import { acmeError, createClient, getDirectory, readCaBundle, releaseConnections, type AcmeClient } from './client.js';
import { resolveDirectory } from './directories.js';


export interface RegisterOptions {
  /** a name from DIRECTORIES or an https URL */
  directory: string;
  email?: string;
  agreeTos: boolean;
  /** account name in mcpki; default: the directory name, or the URL's host */
  name?: string;
  eab?: { kid: string; hmacKey: string };
  caBundle?: string;
  /** mark a directory not in the table as issuing test certificates */
  staging?: boolean;
}

export type AccountView = Omit<AcmeAccountRecord, 'id'>;

function viewOf(record: AcmeAccountRecord): AccountView {
  const { id: _id, ...rest } = record;
  return rest;
}

function defaultName(directory: string): string {
  try {
    return new URL(directory).host.replace(/[^A-Za-z0-9._-]/g, '-');
  } catch {
    return directory;
  }
}

function validateEmail(email: string): string {
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
    throw new McpkiError('INVALID_INPUT', `invalid e-mail address "${email}"`, 'give the address the CA should write to about expiring certificates, e.g. ops@example.com');
  }
  return email;
}

export async function registerAccount(context: Context, options: RegisterOptions): Promise<AccountView> {
  const directory = resolveDirectory(options.directory, options.staging);
  const name = validateCertName(options.name ?? defaultName(options.directory));
  const email = options.email === undefined ? undefined : validateEmail(options.email);
  // the bundle first: it is checked before anything is sent (and the terms' link is fetched with it)
  const caBundle = options.caBundle !== undefined ? resolve(options.caBundle) : undefined;
  if (caBundle !== undefined) readCaBundle(caBundle);
  if (!options.agreeTos) {
    const link = await termsOfServiceLink(directory.url, caBundle);
    throw new McpkiError(
      'INVALID_INPUT',
      `the terms of service of ${directory.url} were not agreed to`,
      fix(link ? `read them at ${link}, then pass {--agree-tos}` : `read the CA's terms of service (${link === null ? 'its directory gives no link' : 'its directory could not be fetched for the link'}), then pass {--agree-tos}`),
    );
  }
  const store = context.store();
  if (store.findAcmeAccount(name)) {
    throw new McpkiError('ACME_ACCOUNT_EXISTS', `an ACME account named "${name}" already exists`, fix('use it, or pass {--name NAME} to register another one'));
  }
  const key = generateKey('ec-p256');
  const client = await createClient({
    directoryUrl: directory.url,
    accountKey: key.privateKey,
    caBundle,
    externalAccountBinding: options.eab,
  });
  try {
    const meta = ((await getDirectory(client)).meta ?? {}) as { externalAccountRequired?: boolean };
    if (meta.externalAccountRequired && !options.eab) {
      throw new McpkiError('EAB_REQUIRED', `${directory.url} requires External Account Binding`, fix('pass {--eab-kid ID} and {--eab-hmac-file FILE} (or MCPKI_EAB_HMAC) from your CA\'s dashboard'));
    }
    await client.createAccount({ termsOfServiceAgreed: true, ...(email ? { contact: [`mailto:${email}`] } : {}) });
    const accountUrl = client.getAccountUrl();
    const dir = join(context.home, 'acme', 'accounts');
    ensurePrivateDir(join(context.home, 'acme'));
    ensurePrivateDir(dir);
    const keyPath = join(dir, `${name}.key`);
    return store.transaction(() => {
      const record = store.addAcmeAccount({
        name,
        directoryUrl: directory.url,
        accountUrl,
        email: email ?? null,
        keyPath,
        environment: directory.environment,
        eabKid: options.eab?.kid ?? null,
        caBundle: caBundle ?? null,
      });
      store.addEvent({ type: 'acme.account.registered', name, detail: { directory: directory.url, accountUrl, environment: directory.environment, eab: Boolean(options.eab) } });
      writeFileAtomic(keyPath, privateKeyPem(key.privateKey), 0o600);
      return viewOf(record);
    });
  } catch (error) {
    throw acmeError(error, { operation: 'account' });
  } finally {
    releaseConnections();
  }
}

/**
 * The directory's meta.termsOfService link, for the hint of a registration without --agree-tos: a string, null
 * when the directory has none, undefined when it could not be fetched (the refusal never waits on the CA long).
 */
async function termsOfServiceLink(directoryUrl: string, caBundle: string | undefined): Promise<string | null | undefined> {
  try {
    const client = await createClient({ directoryUrl, accountKey: generateKey('ec-p256').privateKey, caBundle });
    let timer: NodeJS.Timeout | undefined;
    const directory = await Promise.race([
      getDirectory(client),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), 10_000);
      }),
    ]);
    clearTimeout(timer);
    if (!directory) return undefined;
    const link = (directory.meta as { termsOfService?: unknown } | undefined)?.termsOfService;
    // printed as is: only a plain link (no spaces or control characters, bounded) is shown
    return typeof link === 'string' && /^(?:https?:\/\/|data:)[\x21-\x7e]+$/.test(link) && link.length <= 2000 ? link : null;
  } catch {
    return undefined;
  } finally {
    releaseConnections();
  }
}

export function findAccount(context: Context, name: string): AcmeAccountRecord {
  const account = context.existingStore()?.findAcmeAccount(name);
  if (!account) {
    throw new McpkiError('ACME_ACCOUNT_MISSING', `no ACME account named "${name}"`, 'register one with "mcpki acme account register --directory … --email … --agree-tos", or see "mcpki acme account list"');
  }
  return account;
}

export function listAccounts(context: Context): AccountView[] {
  return (context.existingStore()?.listAcmeAccounts() ?? []).map(viewOf);
}

export function showAccount(context: Context, name: string): AccountView {
  return viewOf(findAccount(context, name));
}

/** A client logged in as the account (its key read from disk). */
export async function clientFor(account: AcmeAccountRecord): Promise<AcmeClient> {
  if (account.status !== 'valid') {
    throw new McpkiError('INVALID_INPUT', `ACME account "${account.name}" is ${account.status}`, 'register a new account');
  }
  let pem: string;
  // the key proves who we are to the CA (it can revoke our certificates): a regular file, ours, 0600
  if (!assertPrivateFile(account.keyPath, `key of ACME account "${account.name}"`, true)) {
    throw new McpkiError('ACME_ACCOUNT_MISSING', `the key of ACME account "${account.name}" at ${account.keyPath} does not exist`, 'restore it from a backup, or register a new account');
  }
  try {
    pem = readFileSync(account.keyPath, 'utf8');
  } catch (error) {
    throw new McpkiError('ACME_ACCOUNT_MISSING', `cannot read the key of ACME account "${account.name}" at ${account.keyPath} (${(error as NodeJS.ErrnoException).code})`, 'restore it from a backup, or register a new account');
  }
  return createClient({ directoryUrl: account.directoryUrl, accountKey: readPrivateKey(pem), accountUrl: account.accountUrl, caBundle: account.caBundle ?? undefined });
}

export async function deactivateAccount(context: Context, name: string): Promise<AccountView> {
  const account = findAccount(context, name);
  const client = await clientFor(account);
  try {
    await client.updateAccount({ status: 'deactivated' });
  } catch (error) {
    throw acmeError(error, { operation: 'account' });
  } finally {
    releaseConnections();
  }
  const store = context.store();
  store.transaction(() => {
    store.setAcmeAccountStatus(name, 'deactivated');
    store.addEvent({ type: 'acme.account.deactivated', name, detail: { accountUrl: account.accountUrl } });
  });
  return viewOf(findAccount(context, name));
}
