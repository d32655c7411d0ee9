// ACME accounts: the key lives in HOME/acme/accounts/NAME.key (0600, never printed); the account URL,
// directory and contact are in the inventory. The key's type is read from the key file itself, so it cannot
// disagree with the key the CA knows (a rollover may change it).
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { assertPrivateFile, assertSafeDir, assertSafeFolder, lstatOrNull } from '../fs/safe-path.js';
import { dirname, join, resolve } from 'node:path';
import type { Context } from '../context.js';
import { fsyncPath, tryUnlink, writeFileAtomic } from '../fs/atomic.js';
import { hostname } from 'node:os';
import { isAlive } from '../process/alive.js';
import { McpkiError, fix } from '../errors.js';
import { ensurePrivateDir } from '../home.js';
import {
  KEY_TYPES,
  generateKey,
  jwkThumbprint,
  keyTypeOf,
  privateKeyPem,
  readPrivateKey,
  type KeyType,
} from '../pki/keys.js';
import { validateCertName } from '../pki/names.js';
import type { AcmeAccountRecord } from '../store/store.js';
import {
  acmeError,
  changeAccountKey,
  createClient,
  existingAccountUrl,
  getDirectory,
  readCaBundle,
  releaseConnections,
  updateAccountContact,
  type AcmeClient,
} from './client.js';
import { resolveDirectory } from './directories.js';
import { AcmeProblemError } from './problem-text.js';

/** Account key types: what JWS (ES256, ES384, RS256) every ACME CA and acme-client accept. Ed25519 is not among them. */
export type AccountKeyType = Exclude<KeyType, 'ed25519'>;
export const ACCOUNT_KEY_TYPES: readonly AccountKeyType[] = KEY_TYPES.filter(
  (type): type is AccountKeyType => type !== 'ed25519',
);
export const DEFAULT_ACCOUNT_KEY_TYPE: AccountKeyType = 'ec-p256';

export function parseAccountKeyType(value: string): AccountKeyType {
  if ((ACCOUNT_KEY_TYPES as readonly string[]).includes(value)) return value as AccountKeyType;
  throw new McpkiError(
    'INVALID_KEY_TYPE',
    `"${value.replace(/[\x00-\x1f\x7f]/g, '?')}" is not an ACME account key type`,
    `use one of: ${ACCOUNT_KEY_TYPES.join(', ')} (ACME CAs sign account requests with ES256, ES384 or RS256; ed25519 is not accepted)`,
  );
}

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
  /** the account key's type; default ec-p256 */
  keyType?: AccountKeyType;
}

export interface AccountView extends Omit<AcmeAccountRecord, 'id'> {
  /** the type of the key in the key file; null when the file cannot be read safely (missing, not ours, not 0600) */
  keyType: KeyType | null;
  /** a key rollover was interrupted (NAME.key.rollover exists): "mcpki acme account rollover NAME" finishes or discards it */
  keyRolloverPending: boolean;
}

function viewOf(record: AcmeAccountRecord): AccountView {
  const { id: _id, ...rest } = record;
  let keyType: KeyType | null = null;
  try {
    keyType = keyTypeOf(readAccountKey(record));
  } catch {
    keyType = null;
  }
  return { ...rest, keyType, keyRolloverPending: lstatOrNull(pendingKeyPath(record)) !== null };
}

function defaultName(directory: string): string {
  try {
    return new URL(directory).host.replace(/[^A-Za-z0-9._-]/g, '-');
  } catch {
    return directory;
  }
}

function validateEmail(email: string): string {
  if (!/^[^\s@\x00-\x1f\x7f]+@[^\s@\x00-\x1f\x7f]+\.[^\s@\x00-\x1f\x7f]+$/.test(email)) {
    throw new McpkiError(
      'INVALID_INPUT',
      `invalid e-mail address ${JSON.stringify(email)}`,
      'give the address the CA should write to about expiring certificates, e.g. ops@example.com',
    );
  }
  return email;
}

export async function registerAccount(context: Context, options: RegisterOptions): Promise<AccountView> {
  const directory = resolveDirectory(options.directory, options.staging);
  const name = validateCertName(options.name ?? defaultName(options.directory));
  const email = options.email === undefined ? undefined : validateEmail(options.email);
  const keyType = parseAccountKeyType(options.keyType ?? DEFAULT_ACCOUNT_KEY_TYPE);
  // the bundle first: it is checked before anything is sent (and the terms' link is fetched with it)
  const caBundle = options.caBundle !== undefined ? resolve(options.caBundle) : undefined;
  if (caBundle !== undefined) readCaBundle(caBundle);
  if (!options.agreeTos) {
    const link = await termsOfServiceLink(directory.url, caBundle);
    throw new McpkiError(
      'INVALID_INPUT',
      `the terms of service of ${directory.url} were not agreed to`,
      fix(
        link
          ? `read them at ${link}, then pass {--agree-tos}`
          : `read the CA's terms of service (${link === null ? 'its directory gives no link' : 'its directory could not be fetched for the link'}), then pass {--agree-tos}`,
      ),
    );
  }
  const store = context.store();
  if (store.findAcmeAccount(name)) {
    throw new McpkiError(
      'ACME_ACCOUNT_EXISTS',
      `an ACME account named "${name}" already exists`,
      fix('use it, or pass {--name NAME} to register another one'),
    );
  }
  const key = generateKey(keyType);
  const client = await createClient({
    directoryUrl: directory.url,
    accountKey: key.privateKey,
    caBundle,
    externalAccountBinding: options.eab,
  });
  try {
    const meta = ((await getDirectory(client)).meta ?? {}) as { externalAccountRequired?: boolean };
    if (meta.externalAccountRequired && !options.eab) {
      throw new McpkiError(
        'EAB_REQUIRED',
        `${directory.url} requires External Account Binding`,
        fix("pass {--eab-kid ID} and {--eab-hmac-file FILE} (or MCPKI_EAB_HMAC) from your CA's dashboard"),
      );
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
      store.addEvent({
        type: 'acme.account.registered',
        name,
        detail: {
          directory: directory.url,
          accountUrl,
          environment: directory.environment,
          eab: Boolean(options.eab),
          keyType,
        },
      });
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
async function termsOfServiceLink(
  directoryUrl: string,
  caBundle: string | undefined,
): Promise<string | null | undefined> {
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
    return typeof link === 'string' && /^(?:https?:\/\/|data:)[\x21-\x7e]+$/.test(link) && link.length <= 2000
      ? link
      : null;
  } catch {
    return undefined;
  } finally {
    releaseConnections();
  }
}

export function findAccount(context: Context, name: string): AcmeAccountRecord {
  const account = context.existingStore()?.findAcmeAccount(name);
  if (!account) {
    throw new McpkiError(
      'ACME_ACCOUNT_MISSING',
      `no ACME account named "${name}"`,
      'register one with "mcpki acme account register --directory … --email … --agree-tos", or see "mcpki acme account list"',
    );
  }
  return account;
}

export function listAccounts(context: Context): AccountView[] {
  return (context.existingStore()?.listAcmeAccounts() ?? []).map(viewOf);
}

export function showAccount(context: Context, name: string): AccountView {
  return viewOf(findAccount(context, name));
}

/** The account's key from its file: a regular file, ours, 0600 (it proves who we are to the CA and can revoke our certificates). */
function readAccountKey(account: AcmeAccountRecord): KeyObject {
  return readKeyFile(account, account.keyPath);
}

function readKeyFile(account: AcmeAccountRecord, path: string): KeyObject {
  // the folder too, as ca/ is checked: a rollover writes the new key beside this one, and another user who
  // owns, can write or redirects the folder could swap the key files under us
  const folder = assertSafeDir(dirname(path), 'a folder on the way to the ACME account keys');
  const folderStat = lstatOrNull(folder);
  if (folderStat?.isDirectory()) assertSafeFolder(dirname(path), folderStat, 'the ACME accounts folder', true);
  if (!assertPrivateFile(path, `key of ACME account "${account.name}"`, true)) {
    throw new McpkiError(
      'ACME_ACCOUNT_MISSING',
      `the key of ACME account "${account.name}" at ${path} does not exist`,
      'restore it from a backup, or register a new account',
    );
  }
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    throw new McpkiError(
      'ACME_ACCOUNT_MISSING',
      `cannot read the key of ACME account "${account.name}" at ${path} (${(error as NodeJS.ErrnoException).code})`,
      'restore it from a backup, or register a new account',
    );
  }
  return readPrivateKey(pem);
}

function assertValid(account: AcmeAccountRecord): void {
  if (account.status !== 'valid') {
    throw new McpkiError(
      'INVALID_INPUT',
      `ACME account "${account.name}" is ${account.status}`,
      'register a new account',
    );
  }
}

/** A client logged in as the account (its key read from disk). */
export async function clientFor(account: AcmeAccountRecord): Promise<AcmeClient> {
  assertValid(account);
  if (lstatOrNull(pendingKeyPath(account))) {
    // the CA may know only the new key by now: using the old one could fail half-way, or hide the unfinished change
    throw new McpkiError(
      'ACME_PROBLEM',
      `the key of ACME account "${account.name}" is in the middle of a rollover (${pendingKeyPath(account)} exists)`,
      `run "mcpki acme account rollover ${account.name}": it asks the CA which key it knows and finishes or discards the change`,
    );
  }
  const accountKey = readAccountKey(account);
  return createClient({
    directoryUrl: account.directoryUrl,
    accountKey,
    accountUrl: account.accountUrl,
    caBundle: account.caBundle ?? undefined,
  });
}

/**
 * RFC 8555 section 7.3.2: changes the account's contact address at the CA, then in the inventory. The CA's
 * answer must carry the new address (a CA that ignores the update leaves the inventory as it was).
 */
export async function updateAccountEmail(context: Context, name: string, email: string): Promise<AccountView> {
  const address = validateEmail(email);
  const account = findAccount(context, name);
  const client = await clientFor(account);
  let contact: string[] | undefined;
  try {
    contact = (await updateAccountContact(client, [`mailto:${address}`])).contact;
  } catch (error) {
    throw acmeError(error, { operation: 'account' });
  } finally {
    releaseConnections();
  }
  if (!Array.isArray(contact) || !contact.includes(`mailto:${address}`)) {
    throw new McpkiError(
      'ACME_PROBLEM',
      `${account.directoryUrl} accepted the update of account "${name}" but its contact is ${JSON.stringify(contact ?? [])}, not mailto:${address}`,
      fix('the CA may not allow changing the contact: ask the CA, or register a new account with {--email}'),
    );
  }
  const store = context.store();
  store.transaction(() => {
    store.setAcmeAccountEmail(name, address);
    store.addEvent({
      type: 'acme.account.updated',
      name,
      detail: { accountUrl: account.accountUrl, previousEmail: account.email, email: address },
    });
  });
  return viewOf(findAccount(context, name));
}

export interface RolloverOptions {
  /** the new key's type; default: the current key's type */
  keyType?: AccountKeyType;
}

export interface RolloverResult {
  account: AccountView;
  previousKeyType: KeyType;
  /** RFC 7638 thumbprints of the old and the new key */
  previousThumbprint: string;
  thumbprint: string;
  /** a rollover an earlier run left unfinished (the CA already had the new key) was completed instead */
  recovered: boolean;
}

/** Where a rollover keeps the new key until the CA has accepted it: beside the key, 0600. */
function pendingKeyPath(account: AcmeAccountRecord): string {
  return `${account.keyPath}.rollover`;
}

/** The key the CA accepted becomes NAME.key (written from memory, atomically), then the pending copy goes. */
function installKey(account: AcmeAccountRecord, key: KeyObject, pending: string): void {
  writeFileAtomic(account.keyPath, privateKeyPem(key), 0o600);
  tryUnlink(pending);
  fsyncPath(dirname(pending));
}

/**
 * RFC 8555 section 7.3.5: replaces the account key. The new key is written first (NAME.key.rollover, 0600,
 * atomically and fsynced), the CA is asked to switch (keyChange), and only after it accepted does the new key
 * become NAME.key. If the CA refuses, the new key is removed and NAME.key is untouched; if the answer is lost
 * (network, crash), NAME.key.rollover stays, the account is not used (clientFor refuses), and the next rollover
 * asks the CA which key it knows and finishes or discards it. One rollover per account at a time (a lock in
 * the inventory).
 */
export async function rolloverAccountKey(
  context: Context,
  name: string,
  options: RolloverOptions = {},
): Promise<RolloverResult> {
  const account = findAccount(context, name);
  assertValid(account);
  const oldKey = readAccountKey(account);
  const previousKeyType = keyTypeOf(oldKey);
  const previousThumbprint = jwkThumbprint(oldKey);
  const pending = pendingKeyPath(account);
  // a rollover key that is a symlink or not ours is refused before the lock is taken (nothing written); it is
  // checked again under the lock, where it is read
  assertPrivateFile(pending, `unfinished rollover key of ACME account "${name}"`, true);
  const store = context.store();
  const ca = account.caBundle ?? undefined;
  // one rollover per account at a time: a second one would discard the first one's key before the CA answers
  const lock = `acme-account-rollover:${name}`;
  const me = { pid: process.pid, host: hostname(), acquiredAt: new Date().toISOString() };
  const holder = store.tryLock(lock, me, isAlive);
  if (holder) {
    throw new McpkiError(
      'STORE_BUSY',
      `a key rollover of ACME account "${name}" is already running (pid ${holder.pid} on ${holder.host}, since ${holder.acquiredAt})`,
      'wait for it to finish, then check the account with "mcpki acme account show"',
    );
  }
  /** The CA knows `newKey` for the account: it becomes NAME.key, and the event and result say so. */
  const finish = (newKey: KeyObject, recovered: boolean): RolloverResult => {
    installKey(account, newKey, pending);
    const thumbprint = jwkThumbprint(newKey);
    const keyType = keyTypeOf(newKey);
    store.addEvent({
      type: 'acme.account.key-rollover',
      name,
      detail: { accountUrl: account.accountUrl, previousKeyType, keyType, previousThumbprint, thumbprint, recovered },
    });
    return { account: viewOf(findAccount(context, name)), previousKeyType, previousThumbprint, thumbprint, recovered };
  };
  try {
    if (assertPrivateFile(pending, `unfinished rollover key of ACME account "${name}"`, true)) {
      // an earlier rollover was interrupted: does the CA know the new key for this account already?
      const newKey = readKeyFile(account, pending);
      let url: string | undefined;
      try {
        url = await existingAccountUrl(
          await createClient({ directoryUrl: account.directoryUrl, accountKey: newKey, caBundle: ca }),
        );
      } catch (error) {
        const problem = acmeError(error, { operation: 'account' });
        if (!(problem instanceof AcmeProblemError) || problem.problem.name !== 'accountDoesNotExist') throw problem;
      }
      if (url === account.accountUrl) return finish(newKey, true);
      // the CA never took it: the current key is still the account's
      tryUnlink(pending);
    }
    const keyType: AccountKeyType =
      options.keyType ??
      ((ACCOUNT_KEY_TYPES as readonly string[]).includes(previousKeyType)
        ? (previousKeyType as AccountKeyType)
        : DEFAULT_ACCOUNT_KEY_TYPE);
    const newKey = generateKey(parseAccountKeyType(keyType)).privateKey;
    // complete or absent, fsynced with its folder, before the CA hears of it
    writeFileAtomic(pending, privateKeyPem(newKey), 0o600);
    const client = await createClient({
      directoryUrl: account.directoryUrl,
      accountKey: oldKey,
      accountUrl: account.accountUrl,
      caBundle: ca,
    });
    try {
      await changeAccountKey(client, newKey);
    } catch (error) {
      const problem = acmeError(error, { operation: 'account' });
      // a refusal from the CA (4xx) means the old key is still the account's; anything else may have reached it
      if (
        problem instanceof AcmeProblemError &&
        problem.problem.origin === 'server' &&
        (problem.problem.status ?? 0) >= 400 &&
        (problem.problem.status ?? 0) < 500
      ) {
        tryUnlink(pending);
        throw problem;
      }
      throw new McpkiError(
        problem.code,
        `${problem.message} (the CA may or may not have switched account "${name}" to the new key, kept in ${pending})`,
        `run "mcpki acme account rollover ${name}" again: it asks the CA which key it knows and finishes or discards the new one`,
        { cause: error },
      );
    }
    return finish(newKey, false);
  } finally {
    releaseConnections();
    store.unlock(lock, me);
  }
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
