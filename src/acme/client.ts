// The only module that imports acme-client (~240 ms to load), and only when an ACME command runs.
import { Agent } from 'node:https';
import { createSecureContext, rootCertificates } from 'node:tls';
import { X509Certificate, type KeyObject } from 'node:crypto';
import { McpkiError, fix } from '../errors.js';
import { INPUT_LIMITS, readInputText } from '../fs/read.js';
import { pemBlocks } from '../pki/der.js';
import {
  attachProblemRecorder,
  fromAcmeClientError,
  toAcmeProblemError,
  type AxiosLike,
  type ProblemRecorder,
} from './client-errors.js';
import { isRetryable, type ProblemContext } from './problems.js';

type AcmeModule = typeof import('acme-client');
export type AcmeClient = InstanceType<AcmeModule['Client']>;

let loaded: AcmeModule | undefined;
let recorder: ProblemRecorder | undefined;

/** Polling: quick first, then backing off (acme-client's default waits 5 s before the first poll). */
/**
 * Polling: acme-client polls once at once, then after backoffMin, doubling up to backoffMax (its default
 * waits 5 s). A CA often validates within milliseconds, so the second poll comes quickly too.
 */
const BACKOFF = { backoffAttempts: 22, backoffMin: 20, backoffMax: 4_000 };
/** Pebble's PEBBLE_WFE_NONCEREJECT and busy real CAs reject nonces; acme-client retries badNonce this often. */
const BAD_NONCE_RETRIES = 12;
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

async function loadAcme(): Promise<AcmeModule> {
  if (!loaded) {
    loaded = (await import('acme-client')) as AcmeModule;
    const settings = (loaded.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings;
    // acme-client would silently wait out a rate limit (429) or retry a 5xx; mcpki reports them instead
    settings.retryMaxAttempts = 0;
    loaded.axios.defaults.timeout = REQUEST_TIMEOUT_MS;
    // a CA (or whoever answers in its name) that sends an endless body must not exhaust memory: ACME documents
    // and certificate chains are a few KiB
    loaded.axios.defaults.maxContentLength = MAX_RESPONSE_BYTES;
    loaded.axios.defaults.maxBodyLength = MAX_RESPONSE_BYTES;
    // acme-client drops problem types and network error codes; the recorder keeps them for our errors
    recorder = attachProblemRecorder(loaded.axios as unknown as AxiosLike);
  }
  return loaded;
}

export interface ClientOptions {
  directoryUrl: string;
  accountKey: KeyObject;
  accountUrl?: string;
  /** PEM file with extra roots to trust for the ACME server's own TLS (Pebble, step-ca) */
  caBundle?: string;
  externalAccountBinding?: { kid: string; hmacKey: string };
}

const CA_BUNDLE_HINT =
  "give {--ca-bundle FILE} as the PEM file of the CA that signed the ACME server's TLS certificate (-----BEGIN CERTIFICATE----- blocks)";

/**
 * The --ca-bundle file, checked before anything is sent: a regular file of bounded size that belongs to us or
 * root (it decides which server is trusted), holding one or more PEM certificates and nothing else that
 * looks like PEM (a private key given by mistake is refused, not sent anywhere).
 */
export function readCaBundle(path: string): string {
  const text = readInputText(path, {
    what: '--ca-bundle',
    maxBytes: INPUT_LIMITS.pem,
    trusted: true,
    hint: fix(CA_BUNDLE_HINT),
  });
  const certificates = pemBlocks(text, 'CERTIFICATE');
  const otherLabel = /-----BEGIN ([A-Z0-9 ]+)-----/g;
  for (const match of text.matchAll(otherLabel)) {
    if (match[1] !== 'CERTIFICATE') {
      throw new McpkiError(
        'INVALID_INPUT',
        `--ca-bundle ${path} holds a ${match[1]} block, not only certificates`,
        fix(`${CA_BUNDLE_HINT}; never a key`),
      );
    }
  }
  if (certificates.length === 0)
    throw new McpkiError('INVALID_INPUT', `--ca-bundle ${path} holds no PEM certificate`, fix(CA_BUNDLE_HINT));
  certificates.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch {
      throw new McpkiError(
        'INVALID_INPUT',
        `--ca-bundle ${path}: certificate ${i + 1} of ${certificates.length} cannot be parsed`,
        fix(CA_BUNDLE_HINT),
      );
    }
  });
  return certificates.join('\n') + '\n';
}

export async function createClient(options: ClientOptions): Promise<AcmeClient> {
  const acme = await loadAcme();
  // One secure context for every connection: with `ca` in the agent's options Node rebuilds a trust store of
  // ~145 roots for each new TLS connection (16 ms each, and acme-client opens about nine per certificate).
  const secureContext = options.caBundle
    ? createSecureContext({ ca: [...rootCertificates, readCaBundle(options.caBundle)] })
    : undefined;
  (acme.axios.defaults as { httpsAgent?: Agent }).httpsAgent = new Agent({
    keepAlive: true,
    ...(secureContext ? { secureContext } : {}),
  });
  const client = new acme.Client({
    directoryUrl: options.directoryUrl,
    accountKey: options.accountKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    accountUrl: options.accountUrl,
    externalAccountBinding: options.externalAccountBinding,
    ...BACKOFF,
  });
  (client as unknown as { http: { maxBadNonceRetries: number } }).http.maxBadNonceRetries = BAD_NONCE_RETRIES;
  return client;
}

/** The directory document (for meta.profiles, renewalInfo, externalAccountRequired). */
export async function getDirectory(client: AcmeClient): Promise<Record<string, unknown>> {
  const http = (client as unknown as { http: { getDirectory(): Promise<Record<string, unknown>> } }).http;
  return http.getDirectory();
}

/** Closes keep-alive sockets so the process can exit at once. */
export function releaseConnections(): void {
  const agent = (loaded?.axios.defaults as { httpsAgent?: Agent } | undefined)?.httpsAgent;
  agent?.destroy();
}

/** An McpkiError for anything an ACME step threw, with the problem type acme-client would have dropped. */
export function acmeError(error: unknown, context: ProblemContext = {}): McpkiError {
  return toAcmeProblemError(error, { ...context, recorder });
}

const RETRY_DELAYS_MS = [250, 1_000, 3_000];

/**
 * Runs an ACME step again after a transient failure: a badNonce that outlasted acme-client's own retries,
 * a reset or timed-out connection, a 502/503/504. Rate limits and every other problem fail at once.
 * Only for steps that may safely be repeated (GETs, new orders, challenge responses).
 */
export async function retrying<T>(
  step: () => Promise<T>,
  sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)),
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (attempt >= RETRY_DELAYS_MS.length || !isRetryable(fromAcmeClientError(error, { recorder }))) throw error;
      await sleep(RETRY_DELAYS_MS[attempt]!);
    }
  }
}

/** The account object of RFC 8555 section 7.1.2, as far as mcpki reads it. */
export interface AcmeAccountObject {
  status?: string;
  contact?: string[];
}

/**
 * RFC 8555 section 7.3.2: replaces the account's contact list (an empty list removes every contact). Returns
 * the account object the CA sent back, so the caller can check the CA kept what it was given.
 */
export async function updateAccountContact(client: AcmeClient, contact: string[]): Promise<AcmeAccountObject> {
  return (await client.updateAccount({ contact })) as AcmeAccountObject;
}

/**
 * RFC 8555 section 7.3.1 with onlyReturnExisting: the URL of the account the client's key belongs to, or an
 * accountDoesNotExist problem when the CA knows no account with this key. Creates nothing.
 */
export async function existingAccountUrl(client: AcmeClient): Promise<string> {
  await client.createAccount({ onlyReturnExisting: true });
  return client.getAccountUrl();
}

/**
 * RFC 8555 section 7.3.5 (keyChange): the inner JWS signed with the new key, the outer with the current one.
 * From here on the client signs with the new key. acme-client builds a second HTTP client for the new key,
 * which gets the same badNonce patience as the first.
 */
export async function changeAccountKey(client: AcmeClient, newKey: KeyObject): Promise<void> {
  await client.updateAccountKey(newKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  (client as unknown as { http: { maxBadNonceRetries: number } }).http.maxBadNonceRetries = BAD_NONCE_RETRIES;
}
