// Obtaining a certificate from an ACME CA: order, authorizations through a challenge provider (cleanup
// always runs), finalize with our own CSR (or the user's, --csr), download (the preferred chain), check, then
// write and record like a local certificate.
// A failed order never touches the files of a previous good certificate.
import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Context } from '../context.js';
import { removeStaleTemps, writeFilesAtomic } from '../fs/atomic.js';
import { assertKeyPathOutsideGit } from '../fs/git.js';
import { McpkiError, fix, type Hint } from '../errors.js';
import { INPUT_LIMITS, readInputText } from '../fs/read.js';
import { ensurePrivateDir } from '../home.js';
import { createCsr } from '../pki/csr.js';
import { fromPem, toPem } from '../pki/der.js';
import {
  DEFAULT_KEY_TYPE,
  generateKey,
  keyTypeOf,
  parseKeyType,
  privateKeyPem,
  readPrivateKey,
  type KeyType,
} from '../pki/keys.js';
import { classifySans, validateCertName, type San } from '../pki/names.js';
import type { CertificatePaths, CertificateRecord } from '../store/store.js';
import { clientFor, findAccount } from './accounts.js';
import { ariCertificateId, renewalInfoEndpoint } from './ari.js';
import { refreshRenewalInfo } from './renewal-info.js';
import type { ChallengeProvider, ChallengeTask } from './challenges/provider.js';
import { readExternalCsr, type ExternalCsr } from './external-csr.js';
import { acmeError, getDirectory, releaseConnections, retrying, type AcmeClient } from './client.js';
import { abortable, InterruptedError, throwIfInterrupted } from './interrupt.js';

import { checkProfile, newOrderPayload } from './profiles.js';

export type ProgressStep =
  'account' | 'order' | 'authorization' | 'challenge' | 'finalize' | 'download' | 'write' | 'cleanup';
export type ProgressListener = (step: ProgressStep, detail: string) => void;

export interface AcmeIssueRequest {
  name: string;
  domains: readonly string[];
  /** account name; default: the only registered account */
  account?: string;
  keyType?: KeyType | string;
  profile?: string;
  outDir?: string;
  allowGit?: boolean;
  /** replace a production certificate with one from a staging directory */
  force?: boolean;
  challenge: ChallengeProvider;
  /**
   * a PEM (or DER) PKCS#10 request made elsewhere: its names are ordered (domains, when given, must be the same)
   * and it finalizes the order; its key is never read, and only the certificate and chain are written
   */
  csr?: string;
  /**
   * when the CA offers alternate chains (RFC 8555 §7.4.2), the one with a certificate issued by this common
   * name (certbot's and lego's --preferred-chain); the default chain when none matches
   */
  preferredChain?: string;
  /** keep the private key of the certificate on record under this name (certbot's --reuse-key) */
  reuseKey?: boolean;
  onProgress?: ProgressListener;
  /**
   * aborted (reason: 'SIGINT' / 'SIGTERM') when the command is interrupted: the order stops, a running dns-01
   * hook is killed, every cleanup runs, the pending authorizations are deactivated, then INTERRUPTED is thrown
   */
  signal?: AbortSignal;
}

export interface AcmeIssued {
  certificate: CertificateRecord;
  /** no key with --csr */
  paths: CertificatePaths & { cert: string; fullchain: string; chain: string };
  /** the chain written: the issuer CN of its last certificate; whether --preferred-chain was found */
  chain: { topIssuer: string | null; preferred: string | null; preferredFound: boolean | null };
  /** the key was the previous certificate's (--reuse-key), a new one, or the CSR's */
  key: 'reused' | 'new' | 'csr';
}

function chooseAccount(context: Context, name: string | undefined) {
  if (name) return findAccount(context, name);
  const accounts = (context.existingStore()?.listAcmeAccounts() ?? []).filter((a) => a.status === 'valid');
  if (accounts.length === 1) return accounts[0]!;
  if (accounts.length === 0) {
    throw new McpkiError(
      'ACME_ACCOUNT_MISSING',
      'no ACME account is registered',
      'register one with "mcpki acme account register --directory … --email … --agree-tos"',
    );
  }
  throw new McpkiError(
    'INVALID_INPUT',
    `${accounts.length} ACME accounts are registered; which one?`,
    fix(`pass {--account NAME|issuer: acme:NAME} for one of them: ${accounts.map((a) => a.name).join(', ')}`),
  );
}

function validateDomains(domains: readonly string[], provider: ChallengeProvider): San[] {
  if (domains.length === 0) throw new McpkiError('INVALID_NAME', 'no domain given', 'pass at least one -d DOMAIN');
  const sans = classifySans(domains);
  for (const san of sans) {
    if (san.type !== 'dns' && san.type !== 'ip') {
      throw new McpkiError(
        'INVALID_NAME',
        `ACME certificates carry DNS names and IP addresses, not ${san.type} "${san.value}"`,
        'use the local CA (mcpki issue) for URI and e-mail identities',
      );
    }
    if (san.value.startsWith('*.') && provider.type !== 'dns-01') {
      throw new McpkiError(
        'INVALID_INPUT',
        `wildcard "${san.value}" can only be validated with dns-01`,
        fix('use {--challenge dns-01|challenge.type: dns-01} with {--dns-hook CMD|challenge.hook: [CMD]}'),
      );
    }
  }
  return sans;
}

/** Whether the certificate's SANs are exactly the names asked for. */
function sameNames(cert: X509Certificate, sans: readonly San[]): boolean {
  const got = (cert.subjectAltName ?? '')
    .split(', ')
    .filter(Boolean)
    .map((entry) => entry.replace(/^DNS:/, 'dns:').replace(/^IP Address:/, 'ip:'))
    .sort();
  const wanted = sans.map((s) => `${s.type}:${s.value}`).sort();
  return got.length === wanted.length && got.every((g, i) => g === wanted[i]);
}

/** The names of a --csr request; -d names, when given too, must be the same. */
function csrDomains(csr: ExternalCsr, path: string, domains: readonly string[]): string[] {
  const names = csr.sans.map((s) => s.value);
  if (domains.length > 0) {
    const given = classifySans(domains)
      .map((s) => `${s.type}:${s.value}`)
      .sort();
    const inCsr = csr.sans.map((s) => `${s.type}:${s.value}`).sort();
    if (given.length !== inCsr.length || given.some((g, i) => g !== inCsr[i])) {
      throw new McpkiError(
        'USAGE',
        `-d names (${domains.join(', ')}) differ from the names in --csr ${path} (${names.join(', ')})`,
        fix('leave out -d: with {--csr} the request names the certificate'),
      );
    }
  }
  return names;
}

/**
 * The previous certificate's key for --reuse-key: read as a file that must belong to us or root and that no
 * one else can write (whoever could put a key there would know the certificate's key), of the type asked
 * for, matching the certificate on record, and never a key the certificate was revoked for.
 */
function reusedKey(previous: CertificateRecord, keyType: KeyType): KeyObject {
  const path = previous.paths.key;
  const fresh = fix('leave out {--reuse-key|reuseKey: true} once to make a new key');
  if (!path)
    throw new McpkiError(
      'INVALID_INPUT',
      `--reuse-key: certificate ${previous.name} has no key on record (it was made from a CSR)`,
      fix(`${fresh}, or pass the next CSR with {--csr}`),
    );
  if (previous.status === 'revoked' && previous.revocationReason === 'keyCompromise') {
    throw new McpkiError(
      'INVALID_INPUT',
      `--reuse-key: certificate ${previous.name} was revoked because its key was compromised`,
      fresh,
    );
  }
  let key: KeyObject;
  try {
    key = readPrivateKey(
      readInputText(path, {
        what: `--reuse-key: the key of ${previous.name}`,
        maxBytes: INPUT_LIMITS.secret,
        trusted: true,
        hint: fresh,
      }),
    );
  } catch (error) {
    if (error instanceof McpkiError) throw error;
    throw new McpkiError('INVALID_INPUT', `--reuse-key: ${path} does not hold an unencrypted private key`, fresh, {
      cause: error,
    });
  }
  const found = keyTypeOf(key);
  if (found !== keyType)
    throw new McpkiError(
      'INVALID_INPUT',
      `--reuse-key: the key of ${previous.name} is ${found}, not the ${keyType} asked for`,
      `${fresh} of type ${keyType}, or ask for ${found}`,
    );
  if (!new X509Certificate(previous.pem).checkPrivateKey(key)) {
    throw new McpkiError(
      'INVALID_INPUT',
      `--reuse-key: ${path} is not the key of certificate ${previous.name} (serial ${previous.serial})`,
      `${fresh}, or put the certificate's own key back`,
    );
  }
  return key;
}

/** The common name of a certificate's issuer (what --preferred-chain names). */
function issuerCommonName(der: Buffer): string | null {
  return /^CN=(.*)$/m.exec(new X509Certificate(der).issuer)?.[1] ?? null;
}

/** The account, the previous certificate and the paths: everything decided before the CA is contacted. */
function planOrder(context: Context, request: AcmeIssueRequest, name: string, keyType: KeyType) {
  const account = chooseAccount(context, request.account);
  const store = context.store();
  const previous = store.findCertificate(name);
  if (previous && previous.environment === 'production' && account.environment === 'staging' && !request.force) {
    throw new McpkiError(
      'STAGING_OVER_PRODUCTION',
      `"${name}" holds a production certificate; account "${account.name}" uses a staging directory`,
      fix('use a production account, another name, or {--force} to replace it with an untrusted test certificate'),
    );
  }
  const outDir = resolve(request.outDir ?? join(context.layout.certsDir, name));
  const keyPath = join(outDir, `${name}.key`);
  const paths: AcmeIssued['paths'] = {
    cert: join(outDir, `${name}.crt`),
    ...(request.csr === undefined ? { key: keyPath } : {}),
    fullchain: join(outDir, `${name}.fullchain.pem`),
    chain: join(outDir, `${name}.chain.pem`),
  };
  if (request.csr !== undefined) {
    // the key mcpki made for the previous certificate of this name would stay next to a certificate it does not
    // match (a key of the user's own at that path is left alone: it is not read, and it is the CSR's, or not, as
    // the user made it)
    if (previous?.paths.key === keyPath && existsNoFollow(keyPath)) {
      throw new McpkiError(
        'INVALID_INPUT',
        `${keyPath} holds the key of an earlier certificate "${name}", which the certificate for --csr would not match`,
        fix('choose another name or {--out} folder, or remove that key first'),
      );
    }
  } else if (!request.allowGit) assertKeyPathOutsideGit(keyPath);
  const reused = request.reuseKey && previous ? reusedKey(previous, keyType) : undefined;
  return { account, store, previous, outDir, paths, reused };
}

function existsNoFollow(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

export async function issueAcmeCertificate(context: Context, request: AcmeIssueRequest): Promise<AcmeIssued> {
  const progress: ProgressListener = request.onProgress ?? (() => {});
  const name = validateCertName(request.name);
  if (request.csr !== undefined && request.reuseKey) {
    throw new McpkiError(
      'USAGE',
      '--reuse-key and --csr cannot be combined',
      fix('with {--csr} the key is yours: make the next request with the same key'),
    );
  }
  const preferredChain = checkPreferredChain(request.preferredChain);
  const csr = request.csr !== undefined ? readExternalCsr(request.csr) : undefined;
  const sans = validateDomains(
    csr ? csrDomains(csr, request.csr!, request.domains) : request.domains,
    request.challenge,
  );
  const keyType = csr ? csr.keyType : parseKeyType(request.keyType ?? DEFAULT_KEY_TYPE);
  if (csr && request.keyType !== undefined && parseKeyType(request.keyType) !== csr.keyType) {
    throw new McpkiError(
      'USAGE',
      `--key ${request.keyType} differs from the ${csr.keyType} key of --csr ${request.csr}`,
      fix("leave out {--key}: with {--csr} the request's key is certified"),
    );
  }
  // what can be checked on this machine is checked before anything else, and before the CA hears of an order
  // (a local mistake must not leave pending authorizations behind): the port (which stays bound), the
  // webroot, the hook
  try {
    await request.challenge.prepare?.();
  } catch (error) {
    await request.challenge.close?.();
    throw error;
  }
  let planned;
  try {
    planned = planOrder(context, request, name, keyType);
  } catch (error) {
    await request.challenge.close?.();
    throw error;
  }
  const { account, store, previous, outDir, paths, reused } = planned;

  const signal = request.signal;
  /** an ACME step, retried when transient, abandoned at once on an interrupt */
  const step = <T>(during: string, run: () => Promise<T>): Promise<T> => abortable(retrying(run), signal, during);
  const presented: ChallengeTask[] = [];
  /** the order's authorizations that may still be pending at the CA: deactivated when the order fails */
  const open: { url: string; identifier: string }[] = [];
  let client: AcmeClient | undefined;
  let orderUrl: string | undefined;
  let failure: unknown;
  try {
    throwIfInterrupted(signal, 'the start of the order');
    progress('account', `${account.name} at ${account.directoryUrl}`);
    client = await clientFor(account);
    const acme = client;
    const directory = await step('the directory request', () => getDirectory(acme));
    const profile = checkProfile(request.profile, directory);
    const replaces =
      previous?.ariCertId && directory.renewalInfo && previous.issuer === `acme:${account.name}`
        ? previous.ariCertId
        : undefined;
    const identifiers = sans.map((s) => ({ type: s.type, value: s.value }));
    progress('order', sans.map((s) => s.value).join(', '));
    let order = await step('the new order', () =>
      acme.createOrder(newOrderPayload({ identifiers, profile, replaces }) as Parameters<typeof acme.createOrder>[0]),
    );
    orderUrl = order.url;
    const placed = order;
    for (const url of (placed as { authorizations?: string[] }).authorizations ?? [])
      open.push({ url, identifier: '' });

    const authorizations = await step('the authorization requests', () => acme.getAuthorizations(placed));
    open.length = 0;
    const pending: { task: ChallengeTask; challenge: (typeof authorizations)[number]['challenges'][number] }[] = [];
    for (const authz of authorizations) {
      if (authz.status === 'valid') continue;
      if (authz.url)
        open.push({ url: authz.url, identifier: `${authz.wildcard ? '*.' : ''}${authz.identifier.value}` });
      const challenge = authz.challenges.find((c) => c.type === request.challenge.type);
      if (!challenge) {
        const offered = authz.challenges.map((c) => c.type).join(', ');
        throw new McpkiError(
          'CHALLENGE_FAILED',
          `${request.challenge.type} is not offered for ${authz.identifier.value} (offered: ${offered})`,
          fix('choose one of the offered challenges with {--challenge TYPE|challenge.type: TYPE}'),
        );
      }
      // acme-client returns the finished TXT value for dns-01; providers want token.thumbprint for all types
      const keyAuthorization = await acme.getChallengeKeyAuthorization({ ...challenge, type: 'http-01' });
      pending.push({
        task: {
          type: request.challenge.type,
          identifier: authz.identifier.value,
          wildcard: authz.wildcard === true,
          token: challenge.token,
          keyAuthorization,
        },
        challenge,
      });
    }
    for (const { task } of pending) {
      throwIfInterrupted(signal, `the ${task.type} challenge for ${task.identifier}`);
      progress('authorization', `${task.wildcard ? '*.' : ''}${task.identifier}: ${task.type}`);
      presented.push(task);
      await request.challenge.present(task, signal);
    }
    const localPort = (request.challenge as { port?: number }).port;
    await Promise.all(
      pending.map(async ({ task, challenge }) => {
        try {
          await step(`the ${task.type} challenge for ${task.identifier}`, () => acme.completeChallenge(challenge));
          await step(`the ${task.type} challenge for ${task.identifier}`, () => acme.waitForValidStatus(challenge));
          progress('challenge', `${task.wildcard ? '*.' : ''}${task.identifier}: valid`);
        } catch (error) {
          throw challengeError(error, task, placed.url, localPort);
        }
      }),
    );
    // every authorization is valid now: nothing left to deactivate
    open.length = 0;

    progress(
      'finalize',
      csr ? `the ${keyType} key of ${request.csr}` : `${reused ? 'the previous' : 'a new'} ${keyType} key and CSR`,
    );
    const pair = csr
      ? undefined
      : reused
        ? { privateKey: reused, publicKey: createPublicKey(reused) }
        : generateKey(keyType);
    throwIfInterrupted(signal, 'the finalization of the order');
    order = await acme.finalizeOrder(order, csr ? csr.pem : createCsr(pair!.privateKey, pair!.publicKey, sans));
    progress('download', order.certificate ?? '');
    const finalized = order;
    const pem = await retrying(() => acme.getCertificate(finalized, preferredChain));
    const chain = fromPem(pem, 'CERTIFICATE');
    if (chain.length === 0)
      throw new McpkiError(
        'ACME_PROBLEM',
        'the CA returned no certificate',
        'try again; report it to the CA if it persists',
      );
    const leaf = new X509Certificate(chain[0]!);
    const sameKey = pair
      ? leaf.checkPrivateKey(pair.privateKey)
      : leaf.publicKey
          .export({ type: 'spki', format: 'der' })
          .equals(csr!.publicKey.export({ type: 'spki', format: 'der' }));
    if (!sameKey)
      throw new McpkiError(
        'ACME_PROBLEM',
        'the CA returned a certificate for another key',
        'try again; report it to the CA if it persists',
      );
    const issuers = chain.map(issuerCommonName);
    const chainInfo: AcmeIssued['chain'] = {
      topIssuer: issuers[issuers.length - 1] ?? null,
      preferred: preferredChain ?? null,
      preferredFound: preferredChain === undefined ? null : issuers.includes(preferredChain),
    };
    if (!sameNames(leaf, sans))
      throw new McpkiError(
        'ACME_PROBLEM',
        `the CA returned a certificate for ${leaf.subjectAltName}, not for the names asked`,
        'check the order; report it to the CA',
      );

    const keySource: AcmeIssued['key'] = csr ? 'csr' : reused ? 'reused' : 'new';
    progress('write', outDir);
    const leafPem = toPem('CERTIFICATE', chain[0]!);
    const chainPem = chain
      .slice(1)
      .map((der) => toPem('CERTIFICATE', der))
      .join('');
    ensurePrivateDir(outDir, 'choose a writable folder with --out (or leave it out to use HOME/certs/NAME)');
    const certificate = store.transaction(() => {
      const saved = store.addCertificate({
        name,
        kind: 'server',
        serial: leaf.serialNumber.toUpperCase(),
        subject: leaf.subject.replace(/\n/g, ', '),
        sans,
        issuer: `acme:${account.name}`,
        issuerSerial: null,
        profile: profile ?? null,
        keyType,
        notBefore: new Date(leaf.validFrom).toISOString(),
        notAfter: new Date(leaf.validTo).toISOString(),
        fingerprint: leaf.fingerprint256,
        pem: leafPem,
        paths,
        orderUrl: finalized.url ?? null,
        ariCertId: ariCertIdOrNull(chain[0]!),
        environment: account.environment,
      });
      store.addEvent({
        type: 'certificate.issued',
        name,
        serial: saved.serial,
        detail: {
          issuer: saved.issuer,
          sans: sans.map((s) => s.value),
          order: finalized.url,
          replaces: replaces ?? null,
          profile: profile ?? null,
          paths,
          key: keySource,
          chain: chainInfo,
        },
      });
      removeStaleTemps(outDir);
      writeFilesAtomic([
        ...(pair && paths.key ? [{ path: paths.key, data: privateKeyPem(pair.privateKey), mode: 0o600 }] : []),
        { path: paths.cert, data: leafPem, mode: 0o644 },
        { path: paths.chain, data: chainPem, mode: 0o644 },
        { path: paths.fullchain, data: leafPem + chainPem, mode: 0o644 },
      ]);
      return saved;
    });
    if (renewalInfoEndpoint(directory) && certificate.ariCertId) {
      try {
        const outcome = await refreshRenewalInfo(context, certificate.serial, directory);
        return {
          certificate: { ...certificate, renewalInfo: outcome.renewalInfo },
          paths,
          chain: chainInfo,
          key: keySource,
        };
      } catch (error) {
        // the certificate is good; the window is fetched again by the renewal service
        store.addEvent({
          type: 'acme.renewal-info.failed',
          name,
          serial: certificate.serial,
          detail: { error: (error as Error).message },
        });
      }
    }
    return { certificate, paths, chain: chainInfo, key: keySource };
  } catch (error) {
    failure = acmeError(error, { operation: 'order' });
    throw failure;
  } finally {
    // cleanups run whatever happened, an interrupt included (they are not abortable: each hook has its timeout)
    if (presented.length)
      progress('cleanup', presented.map((t) => `${t.wildcard ? '*.' : ''}${t.identifier}`).join(', '));
    const cleanupErrors: string[] = [];
    for (const task of presented) {
      try {
        await request.challenge.cleanup(task);
      } catch (error) {
        // must not hide the outcome of the order; recorded so that a left-over TXT record can be found
        cleanupErrors.push((error as Error).message);
        safeEvent(store, {
          type: 'acme.challenge.cleanup-failed',
          name,
          detail: { challenge: task.type, identifier: task.identifier, error: (error as Error).message },
        });
      }
    }
    await request.challenge.close?.();
    // RFC 8555 §7.5.2: a failed order's authorizations are deactivated, not left pending at the CA
    const deactivated =
      failure !== undefined && client && open.length
        ? await deactivateAuthorizations(client, open)
        : { done: [], failed: [] };
    // a failure after the CA was contacted is on record (a local check that refused first changed nothing)
    if (failure !== undefined && client !== undefined) {
      const error = failure as McpkiError;
      safeEvent(store, {
        type: 'acme.issue.failed',
        name,
        detail: {
          code: error.code ?? 'INTERNAL',
          message: error.message,
          account: account.name,
          domains: sans.map((s) => s.value),
          order: orderUrl ?? null,
          deactivated: deactivated.done,
          notDeactivated: deactivated.failed,
          cleanupErrors,
          interrupted: error instanceof InterruptedError ? error.signal : null,
        },
      });
    }
    releaseConnections();
  }
}

/** --preferred-chain: an issuer common name (at most 64 characters, no control characters). */
function checkPreferredChain(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  // eslint-disable-next-line no-control-regex
  if (value.trim() === '' || value.length > 64 || /[\u0000-\u001f\u007f-\u009f]/.test(value)) {
    throw new McpkiError(
      'INVALID_INPUT',
      `--preferred-chain ${JSON.stringify(value)} is not an issuer common name`,
      fix('give the CN of a certificate in the chain you want, e.g. {--preferred-chain} "ISRG Root X1"'),
    );
  }
  return value;
}

function safeEvent(
  store: ReturnType<Context['store']>,
  event: Parameters<ReturnType<Context['store']>['addEvent']>[0],
): void {
  try {
    store.addEvent(event);
  } catch {
    // the inventory's own error (if any) is reported by the next command; the order's outcome comes first
  }
}

/** How long deactivating a failed order's authorizations may take in all (the CA may be the problem). */
const DEACTIVATE_BUDGET_MS = 10_000;

/** Deactivates each authorization (RFC 8555 §7.5.2); one that is no longer pending (invalid, expired) is left. */
async function deactivateAuthorizations(
  client: AcmeClient,
  authorizations: readonly { url: string; identifier: string }[],
): Promise<{ done: string[]; failed: string[] }> {
  const done: string[] = [];
  const failed: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  const budget = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, DEACTIVATE_BUDGET_MS);
  });
  const work = Promise.all(
    authorizations.map(async ({ url }) => {
      try {
        const result = (await client.deactivateAuthorization({ url } as Parameters<
          AcmeClient['deactivateAuthorization']
        >[0])) as { status?: string };
        (result.status === 'deactivated' ? done : failed).push(url);
      } catch {
        failed.push(url);
      }
    }),
  );
  await Promise.race([work, budget]);
  clearTimeout(timer);
  return { done, failed };
}

function ariCertIdOrNull(der: Buffer): string | null {
  try {
    return ariCertificateId(der);
  } catch {
    return null;
  }
}

/** A challenge failure as CHALLENGE_FAILED, naming the domain and the challenge (once), with what to check. */
function challengeError(
  error: unknown,
  task: ChallengeTask,
  orderUrl: string | undefined,
  localPort: number | undefined,
): McpkiError {
  if (error instanceof McpkiError) return error;
  const typed = acmeError(error, {
    identifier: task.identifier,
    challengeType: task.type,
    orderUrl,
    operation: 'challenge',
    localPort,
  });
  if (typed.code === 'RATE_LIMITED' || typed.code === 'NETWORK') return typed;
  const name = `${task.wildcard ? '*.' : ''}${task.identifier}`;
  // the problem's own description may already say "http-01 challenge for NAME failed: …"
  const message = typed.message.startsWith(`${task.type} `)
    ? typed.message
    : `${task.type} challenge for ${name} failed: ${typed.message}`;
  return new McpkiError('CHALLENGE_FAILED', message, typed.hint ?? challengeHint(task, localPort), { cause: error });
}

function challengeHint(task: ChallengeTask, localPort: number | undefined): Hint {
  switch (task.type) {
    case 'http-01':
      return `the CA must reach http://${task.identifier}/.well-known/acme-challenge/ on port 80${localPort !== undefined && localPort !== 80 ? `, forwarded to port ${localPort} where the responder listened` : ''}: check DNS, firewalls and port forwarding`;
    case 'dns-01':
      return fix(
        `the CA must see TXT _acme-challenge.${task.identifier}: check the hook and wait longer for propagation ({--dns-propagation-seconds SECONDS|challenge.propagationSeconds: SECONDS})`,
      );
    case 'tls-alpn-01':
      return `the CA must reach ${task.identifier} on port 443 with ALPN acme-tls/1${localPort !== undefined && localPort !== 443 ? `, forwarded to port ${localPort} where the responder listened` : ''}: check DNS, firewalls and port forwarding`;
  }
}
