// The ACME server's web front end (RFC 8555 §7): one `handle` per HTTP request, with no node:http in it, so
// the protocol can be exercised without sockets. Every POST is authenticated here (jws.ts) before any state is
// read for it; policy (name constraints, EAB allow lists, rate limits) is applied at newOrder, before any
// validation work; issuance is the CA's (pki) and validation the VA's (va.ts).
import { randomBytes, X509Certificate, type JsonWebKey, type KeyObject } from 'node:crypto';
import { statSync } from 'node:fs';
import type { Context } from '../context.js';
import { McpkiError } from '../errors.js';
import { loadIssuingCa, type IssuingCa } from '../pki/ca.js';
import { assertPermitted, checkPermitted } from '../pki/constraints.js';
import { generateCrl } from '../pki/crl.js';
import { fromPem, toPem } from '../pki/der.js';
import { fingerprintOf, signLeaf } from '../pki/issue.js';
import { revokeCertificate } from '../pki/revoke.js';
import type { RevocationReason } from '../pki/x509.js';
import { findCertificate } from '../inventory.js';
import { assertOneSpiffeId, classifySan, type San } from '../pki/names.js';
import { parseCsr } from '../pki/csr.js';
import { jwkThumbprint } from '../pki/keys.js';
import {
  decodeBase64url,
  importAccountKey,
  parseJws,
  publicJwk,
  verifyEabBinding,
  verifyJws,
  type ParsedJws,
} from './jws.js';
import type {
  Account,
  AcmeState,
  Authorization,
  Challenge,
  ChallengeType,
  Identifier,
  IdentifierType,
  Order,
} from './model.js';
import type { NonceStore } from './nonces.js';
import { createMemoryOrderRate, type OrderRate } from './rate.js';
import { checkReplaces, renewalInfoFor } from './ari.js';
import { AcmeProblem, problem } from './problem.js';
import { validateChallenge, type ValidationSettings } from './va.js';

export interface ProfileSettings {
  kind: 'server' | 'client';
  days: number;
  description: string;
}

export interface EabKey {
  kid: string;
  /** what the operator called it (eab create --name), shown as the issuer of its accounts' certificates */
  name: string;
  key: Buffer;
  /** DNS and IP identifiers this key's accounts may order: exact names, "*.x" for names below x, IPs; [] any */
  allow: string[];
  /** SPIFFE IDs and e-mail addresses its accounts may hold in clientAuth certificates; [] none */
  identities: string[];
}

export interface WfeOptions {
  context: Context;
  /** https://HOST:PORT, or the public URL (with its path prefix), no trailing slash */
  baseUrl: string;
  state: AcmeState;
  nonces: NonceStore;
  validation: ValidationSettings;
  profiles: Record<string, ProfileSettings>;
  requireEab: boolean;
  findEabKey(kid: string): EabKey | undefined;
  /** orders per account per hour */
  ordersPerHour: number;
  /** the counter of ordersPerHour (shared by instances on one inventory); default: in memory, this WFE's */
  orderRate?: OrderRate;
  /** compare-and-set of an order's status, where instances share the state (default: state.updateOrder) */
  updateOrderIf?(order: Order, status: Order['status']): boolean;
  /** runs a validation in the background; the server tracks it so SIGTERM can wait */
  track?(work: Promise<void>): void;
}

export interface AcmeRequest {
  method: string;
  /** the path, e.g. /acme/new-order (no query) */
  path: string;
  contentType: string | undefined;
  body: Buffer;
}

export interface AcmeResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const PREFIX = '/acme';
/** fields of an order object that only the server sets (RFC 8555 §7.1.3) */
const SERVER_ORDER_FIELDS = ['status', 'expires', 'authorizations', 'finalize', 'certificate', 'error'];
const MAX_IDENTIFIERS = 100;
const ORDER_LIFETIME_MS = 7 * 86_400_000;
const CHALLENGES_FOR: Record<'dns' | 'wildcard' | 'ip', ChallengeType[]> = {
  dns: ['http-01', 'dns-01', 'tls-alpn-01'],
  wildcard: ['dns-01'],
  ip: ['http-01', 'tls-alpn-01'],
};

/** A field a client left empty: absent, null, "" or Go's zero time (what acmez sends for an unset time). */
function isUnset(value: unknown): boolean {
  return value === undefined || value === null || value === '' || value === '0001-01-01T00:00:00Z';
}

function newId(): string {
  return randomBytes(12).toString('base64url');
}

export function createWfe(options: WfeOptions): { handle(request: AcmeRequest): Promise<AcmeResponse> } {
  const { context, state, nonces, baseUrl } = options;
  const url = (path: string) => `${baseUrl}${PREFIX}${path}`;
  const accountUrl = (id: string) => url(`/account/${id}`);
  const orderRate = options.orderRate ?? createMemoryOrderRate(options.ordersPerHour, () => context.now().getTime());

  // The CA as loaded and checked by loadIssuingCa, kept while its files are unchanged (device, inode, size,
  // mtime and ctime of each): reading and checking them took a third of the server's time per order, and a
  // rotate-intermediate, a restore or a mode change is seen at the next request.
  let caCache: { signature: string; ca: IssuingCa } | undefined;
  function issuingCa(): IssuingCa {
    let signature: string;
    try {
      signature = [context.layout.rootCert, context.layout.intermediateCert, context.layout.intermediateKey]
        .map((path) => {
          const s = statSync(path, { bigint: true });
          return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
        })
        .join('|');
    } catch {
      return loadIssuingCa(context); // says what is missing
    }
    if (caCache?.signature !== signature) caCache = { signature, ca: loadIssuingCa(context) };
    return caCache.ca;
  }

  // account public keys, imported once per account key (a key change makes a new entry)
  const accountKeys = new Map<string, KeyObject>();
  function accountKey(account: Account): KeyObject {
    const id = `${account.id}:${account.thumbprint}`;
    let key = accountKeys.get(id);
    if (!key) {
      key = importAccountKey(account.jwk);
      if (accountKeys.size >= 10_000) accountKeys.clear();
      accountKeys.set(id, key);
    }
    return key;
  }

  function json(status: number, value: unknown, headers: Record<string, string> = {}): AcmeResponse {
    return {
      status,
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(value, null, 2),
    };
  }

  function directory(): AcmeResponse {
    const profiles = Object.fromEntries(Object.entries(options.profiles).map(([name, p]) => [name, p.description]));
    return json(200, {
      newNonce: url('/new-nonce'),
      newAccount: url('/new-account'),
      newOrder: url('/new-order'),
      revokeCert: url('/revoke-cert'),
      keyChange: url('/key-change'),
      renewalInfo: url('/renewal-info'),
      meta: { externalAccountRequired: options.requireEab, profiles, caaIdentities: [] },
    });
  }

  // --- authentication ------------------------------------------------------------------------------------

  interface Authenticated {
    jws: ParsedJws;
    account: Account | undefined;
    /** the key that signed (the account's, or the jwk in the header) */
    jwk: JsonWebKey;
  }

  function authenticate(request: AcmeRequest, allowJwk: boolean): Authenticated {
    if (request.contentType?.split(';')[0]?.trim().toLowerCase() !== 'application/jose+json') {
      throw problem('malformed', 'the Content-Type of an ACME POST must be application/jose+json', { status: 415 });
    }
    const jws = parseJws(request.body);
    if (jws.header.nonce === undefined || !nonces.consume(jws.header.nonce)) {
      throw problem(
        'badNonce',
        jws.header.nonce === undefined
          ? 'the protected header has no nonce'
          : 'the nonce was already used, has expired or was never issued; use the fresh one in Replay-Nonce',
      );
    }
    if (jws.header.url !== baseUrl + request.path)
      throw problem(
        'unauthorized',
        `the protected header's url ${JSON.stringify(jws.header.url.slice(0, 200))} is not this request's URL`,
      );
    if (jws.header.jwk) {
      if (!allowJwk)
        throw problem('malformed', 'this request must be signed with the account key by "kid", not with "jwk"');
      const key = importAccountKey(jws.header.jwk);
      verifyJws(jws, key);
      return { jws, account: state.findAccountByThumbprint(jwkThumbprint(key)), jwk: publicJwk(key) };
    }
    const prefix = url('/account/');
    const kid = jws.header.kid!;
    const id = kid.startsWith(prefix) ? kid.slice(prefix.length) : undefined;
    const account = id && /^[A-Za-z0-9_-]{1,64}$/.test(id) ? state.getAccount(id) : undefined;
    if (!account)
      throw problem('accountDoesNotExist', `no account ${JSON.stringify(kid.slice(0, 200))} on this server`);
    verifyJws(jws, accountKey(account));
    if (account.status !== 'valid') throw problem('unauthorized', `account ${account.id} is ${account.status}`);
    return { jws, account, jwk: account.jwk };
  }

  function payloadObject(jws: ParsedJws, what: string): Record<string, unknown> {
    if (typeof jws.payload !== 'object' || jws.payload === null || Array.isArray(jws.payload))
      throw problem('malformed', `the ${what} payload must be a JSON object`);
    return jws.payload as Record<string, unknown>;
  }

  function requirePostAsGet(jws: ParsedJws): void {
    if (jws.payload !== undefined)
      throw problem('malformed', 'this resource is read by POST-as-GET: the payload must be empty');
  }

  // --- views -----------------------------------------------------------------------------------------------

  function accountView(account: Account): Record<string, unknown> {
    return {
      status: account.status,
      contact: account.contact,
      orders: url(`/account/${account.id}/orders`),
      ...(account.eabKid ? { externalAccountBinding: { kid: account.eabKid } } : {}),
    };
  }

  /** The order as it is now: pending orders become ready or invalid from their authorizations, or expire. */
  function refreshOrder(order: Order): Order {
    if (order.status === 'pending' || order.status === 'ready') {
      const authzs = order.authorizationIds.map((id) => refreshAuthorization(state.getAuthorization(id)!));
      let status: Order['status'] = order.status;
      if (authzs.some((a) => a.status !== 'pending' && a.status !== 'valid')) status = 'invalid';
      else if (authzs.every((a) => a.status === 'valid')) status = 'ready';
      if (Date.parse(order.expires) <= context.now().getTime()) status = 'invalid';
      if (status !== order.status) {
        const was = order.status;
        order = { ...order, status };
        if (status === 'invalid' && !order.error) {
          const failed = authzs.find((a) => a.status === 'invalid');
          const error = failed
            ? failed.challengeIds.map((id) => state.getChallenge(id)!).find((c) => c.error)?.error
            : undefined;
          order.error = error ?? {
            type: 'urn:ietf:params:acme:error:malformed',
            detail: 'the order expired or an authorization failed',
          };
        }
        // only from the status read: another instance may have finalized the order meanwhile
        if (!options.updateOrderIf) state.updateOrder(order);
        else if (!options.updateOrderIf(order, was)) return state.getOrder(order.id) ?? order;
      }
    }
    return order;
  }

  function refreshAuthorization(authz: Authorization): Authorization {
    if (authz.status === 'pending' && Date.parse(authz.expires) <= context.now().getTime()) {
      authz = { ...authz, status: 'expired' };
      state.updateAuthorization(authz);
    }
    return authz;
  }

  function orderView(order: Order): Record<string, unknown> {
    return {
      status: order.status,
      expires: order.expires,
      identifiers: order.identifiers,
      profile: order.profile,
      authorizations: order.authorizationIds.map((id) => url(`/authz/${id}`)),
      finalize: url(`/order/${order.id}/finalize`),
      ...(order.replaces ? { replaces: order.replaces } : {}),
      ...(order.certificateSerial ? { certificate: url(`/cert/${order.certificateSerial}`) } : {}),
      ...(order.error ? { error: order.error } : {}),
    };
  }

  function challengeView(challenge: Challenge): Record<string, unknown> {
    return {
      type: challenge.type,
      url: url(`/chall/${challenge.id}`),
      status: challenge.status,
      token: challenge.token,
      ...(challenge.validated ? { validated: challenge.validated } : {}),
      ...(challenge.error ? { error: challenge.error } : {}),
    };
  }

  function authorizationView(authz: Authorization): Record<string, unknown> {
    return {
      status: authz.status,
      expires: authz.expires,
      identifier: authz.identifier,
      challenges: authz.challengeIds.map((id) => challengeView(state.getChallenge(id)!)),
      ...(authz.wildcard ? { wildcard: true } : {}),
    };
  }

  // --- resources -------------------------------------------------------------------------------------------

  function newAccount(request: AcmeRequest): AcmeResponse {
    const { jws, account, jwk } = authenticate(request, true);
    const payload = payloadObject(jws, 'newAccount');
    for (const key of Object.keys(payload)) {
      if (
        ![
          'contact',
          'termsOfServiceAgreed',
          'onlyReturnExisting',
          'externalAccountBinding',
          'status',
          'orders',
        ].includes(key)
      )
        throw problem('malformed', `newAccount has an unknown field "${key.slice(0, 40)}"`);
    }
    // Caddy (acmez) sends its whole account object, with "status" and "orders": the server's to set, so only
    // the values a new account has are let through
    if (payload.status !== undefined && payload.status !== '' && payload.status !== 'valid')
      throw problem(
        'malformed',
        `a new account cannot ask for status ${JSON.stringify(String(payload.status).slice(0, 20))}`,
      );
    if (payload.orders !== undefined && typeof payload.orders !== 'string')
      throw problem('malformed', 'newAccount "orders" is set by the server');
    if (account) {
      if (account.status !== 'valid') throw problem('unauthorized', `the account for this key is ${account.status}`);
      return json(200, accountView(account), { location: accountUrl(account.id) });
    }
    if (payload.onlyReturnExisting === true) throw problem('accountDoesNotExist', 'no account exists for this key');
    const contact = checkContact(payload.contact);
    let eabKid: string | null = null;
    if (payload.externalAccountBinding !== undefined) {
      eabKid = verifyEabBinding(
        payload.externalAccountBinding,
        jwk,
        url('/new-account'),
        (kid) => options.findEabKey(kid)?.key,
      );
    } else if (options.requireEab) {
      throw problem(
        'externalAccountRequired',
        'this server requires an external account binding: ask its operator for a key (mcpki acme-server eab create) and register with --eab-kid and --eab-hmac-key',
      );
    }
    const created: Account = {
      id: newId(),
      jwk,
      thumbprint: jwkThumbprint(importAccountKey(jwk)),
      contact,
      status: 'valid',
      eabKid,
      createdAt: context.now().toISOString(),
    };
    state.addAccount(created);
    context.store().addEvent({
      type: 'acme-server.account.created',
      detail: { account: created.id, contact, ...(eabKid ? { eabKid } : {}) },
    });
    return json(201, accountView(created), { location: accountUrl(created.id) });
  }

  function checkContact(value: unknown): string[] {
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.length > 10)
      throw problem('invalidContact', 'contact must be a list of at most 10 mailto: URLs');
    return value.map((item) => {
      if (typeof item !== 'string' || !/^mailto:[^\s@,?/]{1,64}@[A-Za-z0-9.-]{1,253}$/.test(item)) {
        throw problem(
          typeof item === 'string' && !item.startsWith('mailto:') ? 'unsupportedContact' : 'invalidContact',
          `contact ${JSON.stringify(String(item).slice(0, 80))} is not a mailto: URL with one address`,
        );
      }
      return item;
    });
  }

  function accountResource(request: AcmeRequest, id: string): AcmeResponse {
    const { jws, account } = authenticate(request, false);
    if (account!.id !== id) throw problem('unauthorized', 'an account can only read or change itself');
    if (jws.payload === undefined) return json(200, accountView(account!), { location: accountUrl(id) });
    const payload = payloadObject(jws, 'account update');
    const updated = { ...account! };
    if (payload.contact !== undefined) updated.contact = checkContact(payload.contact);
    if (payload.status !== undefined) {
      if (payload.status !== 'deactivated')
        throw problem('malformed', 'an account can only set its status to "deactivated"');
      updated.status = 'deactivated';
    }
    state.updateAccount(updated);
    context.store().addEvent({
      type: updated.status === 'deactivated' ? 'acme-server.account.deactivated' : 'acme-server.account.updated',
      detail: { account: id, contact: updated.contact },
    });
    return json(200, accountView(updated), { location: accountUrl(id) });
  }

  /** RFC 8555 §7.1.2.1: the account's orders that are not expired (POST-as-GET, only by the account itself). */
  function accountOrders(request: AcmeRequest, id: string): AcmeResponse {
    const { jws, account } = authenticate(request, false);
    requirePostAsGet(jws);
    if (account!.id !== id) throw problem('unauthorized', 'an account can only list its own orders');
    const now = context.now().getTime();
    const orders = state
      .listOrders(id, 1000)
      .filter((o) => Date.parse(o.expires) > now)
      .map((o) => url(`/order/${o.id}`));
    return json(200, { orders });
  }

  function keyChange(request: AcmeRequest): AcmeResponse {
    const { jws, account } = authenticate(request, false);
    // RFC 8555 §7.3.5: the payload is a JWS signed by the new key, over {account, oldKey}
    const inner = parseJws(JSON.stringify(jws.payload ?? null));
    if (!inner.header.jwk || inner.header.kid !== undefined)
      throw problem('malformed', 'the inner keyChange JWS must carry the new key as "jwk"');
    if (inner.header.url !== jws.header.url)
      throw problem('malformed', 'the inner keyChange JWS url differs from the outer one');
    if (inner.header.nonce !== undefined) throw problem('malformed', 'the inner keyChange JWS must not have a nonce');
    const newKey = importAccountKey(inner.header.jwk);
    verifyJws(inner, newKey);
    const body = inner.payload as Record<string, unknown> | undefined;
    if (!body || body.account !== accountUrl(account!.id))
      throw problem('malformed', 'the inner keyChange payload names another account');
    let oldKey;
    try {
      oldKey = importAccountKey(body.oldKey as JsonWebKey);
    } catch {
      throw problem('malformed', 'the inner keyChange payload has no valid oldKey');
    }
    if (jwkThumbprint(oldKey) !== account!.thumbprint)
      throw problem('malformed', "oldKey is not the account's current key");
    const thumbprint = jwkThumbprint(newKey);
    const holder = state.findAccountByThumbprint(thumbprint);
    if (holder)
      return {
        ...json(409, problem('malformed', 'another account already uses the new key').toDocument()),
        headers: { 'content-type': 'application/problem+json', location: accountUrl(holder.id) },
      };
    const updated = { ...account!, jwk: publicJwk(newKey), thumbprint };
    state.updateAccount(updated);
    context.store().addEvent({ type: 'acme-server.account.key-changed', detail: { account: account!.id, thumbprint } });
    return json(200, accountView(updated), { location: accountUrl(account!.id) });
  }

  function parseIdentifiers(value: unknown, profileName: string): { identifiers: Identifier[]; sans: San[] } {
    const client = options.profiles[profileName]!.kind === 'client';
    if (!Array.isArray(value) || value.length === 0)
      throw problem('malformed', 'newOrder needs a non-empty "identifiers" list');
    if (value.length > MAX_IDENTIFIERS)
      throw problem('rejectedIdentifier', `an order may name at most ${MAX_IDENTIFIERS} identifiers`);
    const identifiers: Identifier[] = [];
    const sans: San[] = [];
    const seen = new Set<string>();
    for (const item of value) {
      const { type, value: text } = (item ?? {}) as { type?: unknown; value?: unknown };
      if ((type !== 'dns' && type !== 'ip' && type !== 'email') || typeof text !== 'string')
        throw problem(
          'unsupportedIdentifier',
          `identifier ${JSON.stringify(item).slice(0, 100)} is not of type "dns", "ip" or "email" with a string value`,
        );
      if (type === 'email' && !client)
        throw problem(
          'rejectedIdentifier',
          `e-mail identifier ${JSON.stringify(text.slice(0, 100))}: e-mail addresses go only in clientAuth certificates; order with profile ${clientProfiles().join(' or ') || '"client"'}`,
        );
      if (/[\u0000-\u001f\u007f]/.test(text))
        throw problem('rejectedIdentifier', `identifier ${JSON.stringify(text.slice(0, 100))} has a control character`);
      let san: San;
      try {
        san = classifySan(text);
      } catch (error) {
        throw problem(
          'rejectedIdentifier',
          `identifier ${JSON.stringify(text.slice(0, 100))}: ${(error as Error).message}`,
        );
      }
      if (san.type !== type)
        throw problem('malformed', `identifier ${JSON.stringify(text.slice(0, 100))} is not of type ${type}`);
      if (type === 'ip' && san.value !== text)
        throw problem(
          'malformed',
          `IP identifier ${JSON.stringify(text)} must be in canonical form (${san.value}), RFC 8738 §3`,
        );
      const key = `${san.type}:${san.value}`;
      if (seen.has(key)) continue;
      seen.add(key);
      identifiers.push({ type: type as IdentifierType, value: san.value });
      sans.push(san);
    }
    return { identifiers, sans };
  }

  function checkPolicy(account: Account, sans: San[]): void {
    const ca = issuingCa();
    const subproblems: NonNullable<AcmeProblem['subproblems']> = [];
    for (const san of sans) {
      try {
        assertPermitted([san], ca.permitted);
      } catch (error) {
        if (!(error instanceof McpkiError)) throw error;
        subproblems.push({
          type: 'urn:ietf:params:acme:error:rejectedIdentifier',
          detail: error.message,
          identifier: { type: san.type, value: san.value },
        });
        continue;
      }
      if (san.type === 'email') {
        const refused = identityRefusal(account, san);
        if (refused)
          subproblems.push({
            type: 'urn:ietf:params:acme:error:rejectedIdentifier',
            detail: refused,
            identifier: { type: san.type, value: san.value },
          });
        continue;
      }
      if (account.eabKid) {
        const key = options.findEabKey(account.eabKid);
        if (!key)
          throw problem('unauthorized', `the external account key ${account.eabKid} of this account was revoked`);
        if (key.allow.length > 0 && !key.allow.some((pattern) => allowedBy(pattern, san))) {
          subproblems.push({
            type: 'urn:ietf:params:acme:error:rejectedIdentifier',
            detail: `"${san.value}" is outside what external account key ${account.eabKid} allows (${key.allow.join(', ')})`,
            identifier: { type: san.type, value: san.value },
          });
        }
      }
    }
    if (subproblems.length > 0) {
      throw problem(
        'rejectedIdentifier',
        subproblems.length === 1
          ? subproblems[0]!.detail
          : `${subproblems.length} identifiers are refused: ${subproblems.map((s) => s.identifier!.value).join(', ')}`,
        { subproblems },
      );
    }
  }

  /** Why an account may not hold this SPIFFE ID or e-mail address in a certificate, or null when it may. */
  function identityRefusal(account: Account, san: San): string | null {
    const what = san.type === 'email' ? 'e-mail address' : 'SPIFFE ID';
    const grant = `ask the operator to allow it: mcpki acme-server eab create --name NAME --allow-identity ${san.value}`;
    if (!account.eabKid)
      return `the ${what} "${san.value}" needs an account bound with an external account key that allows it; ${grant}`;
    const key = options.findEabKey(account.eabKid);
    if (!key) throw problem('unauthorized', `the external account key ${account.eabKid} of this account was revoked`);
    if (!key.identities.includes(san.value))
      return `the ${what} "${san.value}" is not one of the identities external account key ${key.name} (${account.eabKid}) allows (${key.identities.join(', ') || 'none'}); ${grant}`;
    return null;
  }

  function clientProfiles(): string[] {
    return Object.entries(options.profiles)
      .filter(([, p]) => p.kind === 'client')
      .map(([name]) => `"${name}"`);
  }

  /** RFC 8555 has no standard limit; this server's: orders per account per hour (ordersPerHour). */
  function checkRate(account: Account): void {
    const retry = orderRate.take(account.id);
    if (retry !== undefined) {
      throw problem(
        'rateLimited',
        `account ${account.id} placed ${options.ordersPerHour} orders in the last hour (limit ${options.ordersPerHour}); retry after ${retry} s`,
        { retryAfter: retry },
      );
    }
  }

  function newOrder(request: AcmeRequest): AcmeResponse {
    const { jws, account } = authenticate(request, false);
    const payload = payloadObject(jws, 'newOrder');
    for (const key of Object.keys(payload)) {
      if (!['identifiers', 'notBefore', 'notAfter', 'profile', 'replaces', ...SERVER_ORDER_FIELDS].includes(key))
        throw problem('malformed', `newOrder has an unknown field "${key.slice(0, 40)}"`);
    }
    // Caddy (acmez) sends its whole order object: the fields the server sets are let through only empty
    for (const key of SERVER_ORDER_FIELDS) {
      const value = payload[key];
      if (!(
        isUnset(value) ||
        (Array.isArray(value) && value.length === 0) ||
        (key === 'status' && value === 'pending')
      )) {
        throw problem('malformed', `newOrder "${key}" is set by the server, not the client`);
      }
    }
    if (!isUnset(payload.notBefore) || !isUnset(payload.notAfter))
      throw problem(
        'malformed',
        'this server sets the validity itself from the profile: leave out notBefore and notAfter',
      );
    const profileName = payload.profile === undefined ? 'default' : payload.profile;
    if (typeof profileName !== 'string' || !Object.hasOwn(options.profiles, profileName)) {
      throw problem(
        'malformed',
        `unknown profile ${JSON.stringify(String(profileName).slice(0, 40))}; this server offers ${Object.keys(options.profiles).join(', ')}`,
      );
    }
    if (
      payload.replaces !== undefined &&
      (typeof payload.replaces !== 'string' || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(payload.replaces))
    )
      throw problem('malformed', '"replaces" must be an ARI certificate identifier');
    const { identifiers, sans } = parseIdentifiers(payload.identifiers, profileName);
    checkPolicy(account!, sans);
    if (typeof payload.replaces === 'string') checkReplaces(state, account!.id, payload.replaces);
    checkRate(account!);
    const now = context.now();
    const expires = new Date(now.getTime() + ORDER_LIFETIME_MS).toISOString();
    const authorizations: Authorization[] = [];
    const challenges: Challenge[] = [];
    for (const identifier of identifiers) {
      if (identifier.type === 'email') {
        // RFC 8823 would validate by e-mail; here the account's external account key allowed it (checkPolicy)
        authorizations.push({
          id: newId(),
          accountId: account!.id,
          identifier,
          wildcard: false,
          status: 'valid',
          expires,
          challengeIds: [],
        });
        continue;
      }
      const wildcard = identifier.value.startsWith('*.');
      const authz: Authorization = {
        id: newId(),
        accountId: account!.id,
        identifier: wildcard ? { type: 'dns', value: identifier.value.slice(2) } : identifier,
        wildcard,
        status: 'pending',
        expires,
        challengeIds: [],
      };
      for (const type of CHALLENGES_FOR[identifier.type === 'ip' ? 'ip' : wildcard ? 'wildcard' : 'dns']) {
        const challenge: Challenge = {
          id: newId(),
          authorizationId: authz.id,
          type,
          token: randomBytes(32).toString('base64url'),
          status: 'pending',
          validated: null,
          error: null,
        };
        challenges.push(challenge);
        authz.challengeIds.push(challenge.id);
      }
      authorizations.push(authz);
    }
    const order: Order = {
      id: newId(),
      accountId: account!.id,
      status: authorizations.every((a) => a.status === 'valid') ? 'ready' : 'pending',
      identifiers,
      profile: profileName,
      authorizationIds: authorizations.map((a) => a.id),
      expires,
      notBefore: null,
      notAfter: null,
      replaces: (payload.replaces as string | undefined) ?? null,
      certificateSerial: null,
      error: null,
      createdAt: now.toISOString(),
    };
    state.addOrder(order, authorizations, challenges);
    context.store().addEvent({
      type: 'acme-server.order.created',
      detail: {
        account: account!.id,
        order: order.id,
        identifiers: identifiers.map((i) => i.value),
        profile: profileName,
      },
    });
    return json(201, orderView(order), { location: url(`/order/${order.id}`) });
  }

  function ownedOrder(account: Account, id: string): Order {
    const order = state.getOrder(id);
    if (!order || order.accountId !== account.id)
      throw problem('unauthorized', `order ${id.slice(0, 64)} does not exist or belongs to another account`, {
        status: 404,
      });
    return refreshOrder(order);
  }

  function orderResource(request: AcmeRequest, id: string): AcmeResponse {
    const { jws, account } = authenticate(request, false);
    requirePostAsGet(jws);
    const order = ownedOrder(account!, id);
    return json(200, orderView(order), order.status === 'processing' ? { 'retry-after': '1' } : {});
  }

  function authorizationResource(request: AcmeRequest, id: string): AcmeResponse {
    const { jws, account } = authenticate(request, false);
    let authz = state.getAuthorization(id);
    if (!authz || authz.accountId !== account!.id)
      throw problem('unauthorized', `authorization ${id.slice(0, 64)} does not exist or belongs to another account`, {
        status: 404,
      });
    authz = refreshAuthorization(authz);
    if (jws.payload === undefined && authz.status === 'pending') {
      for (const challengeId of authz.challengeIds) {
        const challenge = state.getChallenge(challengeId);
        if (challenge && abandoned(challenge, authz)) startValidation(challenge, authz, account!);
      }
    }
    if (jws.payload !== undefined) {
      const payload = payloadObject(jws, 'authorization');
      if (payload.status !== 'deactivated' || Object.keys(payload).length !== 1)
        throw problem('malformed', 'an authorization can only be updated to {"status": "deactivated"}');
      if (authz.status !== 'pending' && authz.status !== 'valid')
        throw problem(
          'malformed',
          `the authorization is ${authz.status}; only a pending or valid one can be deactivated`,
        );
      authz = { ...authz, status: 'deactivated' };
      state.updateAuthorization(authz);
    }
    return json(200, authorizationView(authz));
  }

  function challengeResource(request: AcmeRequest, id: string): AcmeResponse {
    const { jws, account } = authenticate(request, false);
    let challenge = state.getChallenge(id);
    const authz = challenge ? refreshAuthorization(state.getAuthorization(challenge.authorizationId)!) : undefined;
    if (!challenge || !authz || authz.accountId !== account!.id)
      throw problem('unauthorized', `challenge ${id.slice(0, 64)} does not exist or belongs to another account`, {
        status: 404,
      });
    const headers = { link: `<${url(`/authz/${authz.id}`)}>;rel="up"` };
    if (jws.payload === undefined) {
      if (abandoned(challenge, authz)) challenge = startValidation(challenge, authz, account!);
      return json(200, challengeView(challenge), headers);
    }
    payloadObject(jws, 'challenge response');
    if (challenge.status !== 'pending' || authz.status !== 'pending')
      return json(200, challengeView(challenge), headers);
    challenge = startValidation(challenge, authz, account!);
    return json(200, challengeView(challenge), { ...headers, 'retry-after': '1' });
  }

  /**
   * A validation left "processing" by an instance that died (or was stopped) before it wrote the outcome:
   * older than any validation may take. Whichever instance the client polls next starts it again.
   */
  function abandoned(challenge: Challenge, authz: Authorization): boolean {
    if (challenge.status !== 'processing' || authz.status !== 'pending') return false;
    const since = Date.parse(challenge.processingSince ?? '');
    const stale = Math.max(STALE_VALIDATION_MS, 3 * (options.validation.timeoutMs ?? 10_000));
    return !Number.isFinite(since) || since + stale < context.now().getTime();
  }

  function startValidation(challenge: Challenge, authz: Authorization, account: Account): Challenge {
    challenge = { ...challenge, status: 'processing', processingSince: context.now().toISOString() };
    state.updateChallenge(challenge);
    const keyAuthorization = `${challenge.token}.${account.thumbprint}`;
    const started = challenge;
    const work = validateChallenge(options.validation, {
      type: challenge.type,
      identifier: authz.identifier,
      token: challenge.token,
      keyAuthorization,
    }).then(
      () => recordValidation(started, authz, null),
      (error: unknown) =>
        recordValidation(
          started,
          authz,
          error instanceof AcmeProblem ? error : problem('serverInternal', String(error)),
        ),
    );
    options.track?.(work);
    return challenge;
  }

  /**
   * The outcome of a validation, written even when the inventory is away at that moment (retried for up to a
   * minute), so the challenge does not stay "processing"; any other failure is an event, never a crash.
   */
  async function recordValidation(
    challenge: Challenge,
    authz: Authorization,
    failure: AcmeProblem | null,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        finishValidation(challenge, authz, failure);
        return;
      } catch (error) {
        if (storeUnavailable(error) && attempt < 60) {
          await new Promise((resolve) => setTimeout(resolve, 1000));
          continue;
        }
        try {
          context.store().addEvent({
            type: 'acme-server.error',
            detail: {
              path: `/acme/chall/${challenge.id}`,
              error: String((error as Error)?.message ?? error).slice(0, 500),
            },
          });
        } catch {
          // the inventory is still away: the challenge stays processing, the client orders again
        }
        return;
      }
    }
  }

  function finishValidation(challenge: Challenge, authz: Authorization, failure: AcmeProblem | null): void {
    const at = context.now().toISOString();
    const store = context.store();
    // the challenge, its authorization and the event together: never a valid challenge of a pending authorization
    store.transaction(() => {
      state.updateChallenge({
        ...challenge,
        status: failure ? 'invalid' : 'valid',
        validated: failure ? null : at,
        error: failure ? failure.toDocument() : null,
      });
      state.updateAuthorization({ ...authz, status: failure ? 'invalid' : 'valid' });
      store.addEvent({
        type: failure ? 'acme-server.challenge.failed' : 'acme-server.challenge.valid',
        detail: {
          account: authz.accountId,
          identifier: authz.identifier.value,
          challenge: challenge.type,
          ...(failure ? { error: failure.message } : {}),
        },
      });
    });
  }

  /**
   * The names the certificate gets from a finalize CSR. Its DNS names and IPs must be exactly the order's, and
   * so must its e-mail addresses in a server profile. In a clientAuth profile the CSR may add e-mail addresses
   * and one SPIFFE ID (the X509-SVID rule) that the account's external account key allows, inside the CA's
   * name constraints: the identity an MCP agent authenticates with.
   */
  function csrNames(account: Account, order: Order, profile: ProfileSettings, asked: San[]): San[] {
    const key = (s: { type: string; value: string }) => `${s.type}:${s.value}`;
    const wanted = new Set(order.identifiers.map(key));
    const extra = asked.filter((s) => !wanted.has(key(s)));
    const missing = order.identifiers.filter((i) => !asked.some((s) => key(s) === key(i)));
    const identities = profile.kind === 'client' ? extra.filter((s) => s.type === 'uri' || s.type === 'email') : [];
    const unexpected = extra.filter((s) => !identities.includes(s));
    if (missing.length > 0 || unexpected.length > 0) {
      const names = (list: { value: string }[]) => list.map((s) => s.value).join(', ');
      throw problem(
        'badCSR',
        `the CSR names ${names(asked) || 'nothing'}, not the order's identifiers ${names(order.identifiers)}${missing.length ? `: ${names(missing)} missing` : ''}${unexpected.length ? `${missing.length ? ',' : ':'} ${names(unexpected)} not in the order` : ''}${profile.kind === 'server' && extra.some((s) => s.type === 'uri' || s.type === 'email') ? ` (URIs and e-mail addresses only in a clientAuth profile: ${clientProfiles().join(', ') || 'none here'})` : ''}`,
      );
    }
    for (const san of identities) {
      if (san.type === 'uri' && !san.value.startsWith('spiffe://'))
        throw problem(
          'badCSR',
          `the CSR's URI ${JSON.stringify(san.value.slice(0, 100))} is not a SPIFFE ID: a client certificate carries only spiffe://trust.domain/path URIs`,
        );
    }
    try {
      assertOneSpiffeId(asked);
    } catch (error) {
      throw problem('badCSR', error instanceof McpkiError ? `${error.message} (${error.hint})` : String(error));
    }
    const ca = issuingCa();
    const subproblems: NonNullable<AcmeProblem['subproblems']> = [];
    for (const san of identities) {
      const outside = checkPermitted(san, ca.permitted);
      const refused =
        outside !== null
          ? `"${san.value}" is outside the CA's name constraints: ${outside}`
          : identityRefusal(account, san);
      if (refused)
        subproblems.push({
          type: 'urn:ietf:params:acme:error:rejectedIdentifier',
          detail: refused,
          identifier: { type: san.type, value: san.value },
        });
    }
    if (subproblems.length > 0)
      throw problem(
        'rejectedIdentifier',
        subproblems.length === 1
          ? subproblems[0]!.detail
          : `${subproblems.length} identities are refused: ${subproblems.map((s) => s.identifier!.value).join(', ')}`,
        { subproblems },
      );
    return asked;
  }

  /** The issuer recorded in the inventory: the account's external account key by name, else the account. */
  function issuerOf(account: Account): string {
    const key = account.eabKid ? options.findEabKey(account.eabKid) : undefined;
    return `acme-server:${key ? key.name : account.id}`;
  }

  function finalize(request: AcmeRequest, id: string): AcmeResponse {
    const { jws, account } = authenticate(request, false);
    let order = ownedOrder(account!, id);
    if (account!.eabKid && !options.findEabKey(account!.eabKid))
      throw problem('unauthorized', `the external account key ${account!.eabKid} of this account was revoked`);
    if (order.status !== 'ready')
      throw problem(
        'orderNotReady',
        `order ${order.id} is ${order.status}, not ready: ${order.status === 'pending' ? 'complete its challenges first' : 'it cannot be finalized'}`,
      );
    const payload = payloadObject(jws, 'finalize');
    if (typeof payload.csr !== 'string') throw problem('malformed', 'finalize needs a "csr" (base64url DER)');
    let der: Buffer;
    try {
      der = Buffer.from(payload.csr, 'base64url');
    } catch {
      throw problem('badCSR', 'the csr is not base64url');
    }
    let csr;
    try {
      csr = parseCsr(der, 'the finalize CSR');
    } catch (error) {
      throw problem('badCSR', error instanceof McpkiError ? error.message : 'the CSR cannot be read');
    }
    const profile = options.profiles[order.profile]!;
    const sans = csrNames(account!, order, profile, csr.sans);
    const cn = csr.subject.find((a) => a.type === 'CN')?.value;
    if (cn !== undefined) {
      let inCsr = false;
      try {
        const san = classifySan(cn);
        inCsr = sans.some((s) => s.type === san.type && s.value === san.value);
      } catch {
        // not a name at all
      }
      if (!inCsr)
        throw problem(
          'badCSR',
          `the CSR's CN ${JSON.stringify(cn.slice(0, 100))} is not one of the names the certificate gets (${sans.map((s) => s.value).join(', ')}); leave out the CN or make it one of them`,
        );
    }
    const ca = issuingCa();
    const name = inventoryName(order.identifiers[0]!.value);
    const signed = signLeaf(
      ca,
      { kind: profile.kind, name, sans, keyType: csr.keyType, days: profile.days },
      { spki: csr.publicKey.export({ type: 'spki', format: 'der' }) },
      context.now(),
    );
    const certPem = toPem('CERTIFICATE', signed.der);
    const serial = signed.serial.toString('hex').toUpperCase();
    const store = context.store();
    const issued: Order = { ...order, status: 'valid', certificateSerial: serial };
    const claim = options.updateOrderIf;
    // One transaction: the order turns valid only if it is still ready (another instance may be finalizing it
    // too), with its certificate in the inventory and linked to it; all of it or nothing. The loser's signed
    // certificate was never recorded nor sent: it does not exist.
    const claimed = store.transaction(() => {
      if (claim && !claim(issued, 'ready')) return false;
      store.addCertificate({
        name,
        kind: profile.kind,
        serial,
        subject: signed.subject.map((a) => `${a.type}=${a.value}`).join(', '),
        sans,
        issuer: issuerOf(account!),
        issuerSerial: ca.cert.serialNumber.toUpperCase(),
        profile: order.profile,
        keyType: csr.keyType,
        notBefore: signed.notBefore.toISOString(),
        notAfter: signed.notAfter.toISOString(),
        fingerprint: fingerprintOf(signed.der),
        pem: certPem,
        paths: {},
      });
      store.addEvent({
        type: 'acme-server.certificate.issued',
        name,
        serial,
        detail: {
          account: account!.id,
          order: order.id,
          profile: order.profile,
          identifiers: order.identifiers.map((i) => i.value),
          ...(order.replaces ? { replaces: order.replaces } : {}),
        },
      });
      state.addCertificate(serial, account!.id, order.id, certPem + ca.pem);
      return true;
    });
    if (!claimed)
      throw problem(
        'orderNotReady',
        `order ${order.id} was finalized by another request meanwhile; fetch the order for its certificate`,
      );
    if (!claim) state.updateOrder(issued);
    order = issued;
    return json(200, orderView(order), { location: url(`/order/${order.id}`) });
  }

  function certificateResource(request: AcmeRequest, serial: string): AcmeResponse {
    const { jws, account } = authenticate(request, false);
    requirePostAsGet(jws);
    const certificate = state.getCertificate(serial);
    if (!certificate || certificate.accountId !== account!.id)
      throw problem('unauthorized', `certificate ${serial.slice(0, 64)} does not exist or belongs to another account`, {
        status: 404,
      });
    return {
      status: 200,
      headers: { 'content-type': 'application/pem-certificate-chain' },
      body: certificate.chainPem,
    };
  }

  /**
   * RFC 8555 §7.6: revoked by the account that ordered the certificate (kid), by an account that holds valid
   * authorizations for every name in it (kid), or by anyone holding the certificate's private key (jwk: the
   * certificate's public key signed the request). The inventory marks it
   * revoked and the CRL is published again, as `mcpki crl` does.
   */
  function revokeCert(request: AcmeRequest): AcmeResponse {
    const { jws, account, jwk } = authenticate(request, true);
    const payload = payloadObject(jws, 'revokeCert');
    for (const key of Object.keys(payload)) {
      if (key !== 'certificate' && key !== 'reason')
        throw problem('malformed', `revokeCert has an unknown field "${key.slice(0, 40)}"`);
    }
    if (typeof payload.certificate !== 'string' || payload.certificate === '')
      throw problem('malformed', 'revokeCert needs a "certificate" (base64url DER)');
    const der = decodeBase64url(payload.certificate, 'the certificate');
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch {
      throw problem('malformed', 'the "certificate" of revokeCert is not a DER certificate');
    }
    const reason = revocationReason(payload.reason);
    const serial = cert.serialNumber.toUpperCase();
    const issued = state.getCertificate(serial);
    // the same bytes as what this server issued: a look-alike with a copied serial revokes nothing
    const issuedDer = issued ? fromPem(issued.chainPem, 'CERTIFICATE')[0] : undefined;
    if (!issued || !issuedDer || !issuedDer.equals(der))
      throw problem('unauthorized', `certificate ${serial.slice(0, 64)} was not issued by this ACME server`, {
        status: 404,
      });
    if (jws.header.jwk) {
      if (jwkThumbprint(importAccountKey(jwk)) !== jwkThumbprint(cert.publicKey)) {
        throw problem(
          'unauthorized',
          `the request is signed with a jwk that is not certificate ${serial}'s key: sign with the certificate's private key, or with the key of the account that ordered it (kid)`,
        );
      }
    }
    const record = findCertificate(context, serial);
    if (record.serial !== serial)
      throw problem('serverInternal', `the inventory has another certificate under ${serial}`);
    let by = jws.header.jwk ? 'certificate-key' : `account ${account!.id}`;
    if (!jws.header.jwk && issued.accountId !== account!.id) {
      // the third way: an account holding valid authorizations for every name of the certificate
      const held = new Set(
        state
          .validAuthorizations(account!.id, context.now())
          .map((a) => `${a.identifier.type}:${a.wildcard ? '*.' : ''}${a.identifier.value}`),
      );
      const uncovered = record.sans.filter((san) => !held.has(`${san.type}:${san.value}`));
      if (uncovered.length > 0)
        throw problem(
          'unauthorized',
          `certificate ${serial} was ordered by another account, and this account holds no valid authorization for ${uncovered.map((s) => s.value).join(', ')}: revoke with the ordering account, with the certificate's key, or after completing an order's challenges for every name in it (RFC 8555 §7.6)`,
        );
      by = `account ${account!.id} (authorized for every name)`;
    }
    if (record.status === 'revoked')
      throw problem(
        'alreadyRevoked',
        `certificate ${serial} was already revoked at ${record.revokedAt} (${record.revocationReason})`,
      );
    revokeCertificate(context, serial, reason);
    context.store().addEvent({
      type: 'acme-server.certificate.revoked',
      name: record.name,
      serial,
      detail: { by, reason },
    });
    try {
      generateCrl(context);
    } catch (error) {
      // the revocation is recorded; the next `mcpki crl` (or apply's crl: section) publishes it
      context.store().addEvent({
        type: 'acme-server.error',
        serial,
        detail: {
          path: request.path,
          error: `the CRL was not published after revoking ${serial}: ${String((error as Error)?.message ?? error).slice(0, 400)}`,
        },
      });
    }
    return { status: 200, headers: {}, body: '' };
  }

  async function route(request: AcmeRequest): Promise<AcmeResponse> {
    const path = request.path;
    if (!path.startsWith(PREFIX + '/'))
      throw problem('malformed', `no resource at ${path.slice(0, 100)}`, { status: 404 });
    const parts = path.slice(PREFIX.length + 1).split('/');
    const [resource, id, sub] = parts;
    if (request.method === 'GET' || request.method === 'HEAD') {
      if (resource === 'directory' && parts.length === 1) return directory();
      if (resource === 'renewal-info' && parts.length === 2) {
        const info = renewalInfoFor(context, state, id!);
        return json(200, info.body, { 'retry-after': String(info.retryAfter) });
      }
      if (resource === 'new-nonce' && parts.length === 1)
        return { status: request.method === 'HEAD' ? 200 : 204, headers: { 'cache-control': 'no-store' }, body: '' };
      throw problem(
        'malformed',
        `${request.method} is not allowed here: ACME resources other than the directory and newNonce are read by POST-as-GET`,
        { status: 405 },
      );
    }
    if (request.method !== 'POST')
      throw problem('malformed', `method ${request.method.slice(0, 10)} is not allowed`, { status: 405 });
    if (parts.length === 1 && resource === 'new-account') return newAccount(request);
    if (parts.length === 1 && resource === 'new-order') return newOrder(request);
    if (parts.length === 1 && resource === 'key-change') return keyChange(request);
    if (parts.length === 1 && resource === 'revoke-cert') return revokeCert(request);
    if (parts.length === 2 && resource === 'account') return accountResource(request, id!);
    if (parts.length === 3 && resource === 'account' && sub === 'orders') return accountOrders(request, id!);
    if (parts.length === 2 && resource === 'order') return orderResource(request, id!);
    if (parts.length === 3 && resource === 'order' && sub === 'finalize') return finalize(request, id!);
    if (parts.length === 2 && resource === 'authz') return authorizationResource(request, id!);
    if (parts.length === 2 && resource === 'chall') return challengeResource(request, id!);
    if (parts.length === 2 && resource === 'cert') return certificateResource(request, id!);
    throw problem('malformed', `no resource at ${path.slice(0, 100)}`, { status: 404 });
  }

  return {
    async handle(request) {
      let response: AcmeResponse;
      try {
        response = await route(request);
      } catch (error) {
        const failure =
          error instanceof AcmeProblem
            ? error
            : storeUnavailable(error)
              ? unavailableProblem()
              : problem('serverInternal', 'the server failed to handle this request; see its log');
        if (!(error instanceof AcmeProblem) && !storeUnavailable(error)) {
          try {
            context.store().addEvent({
              type: 'acme-server.error',
              detail: {
                path: request.path.slice(0, 200),
                error: String((error as Error)?.message ?? error).slice(0, 500),
              },
            });
          } catch {
            // the inventory is failing too: the answer below still goes out
          }
        }
        response = problemResponse(failure);
      }
      // RFC 8555 §6.5: a fresh nonce on every response, success or error; §7.1: a link to the directory. With
      // the nonces in an inventory that cannot be reached, the answer is a 503 without one.
      try {
        response.headers['replay-nonce'] = nonces.issue();
      } catch (error) {
        if (!storeUnavailable(error)) throw error;
        if (response.status < 400) response = problemResponse(unavailableProblem());
      }
      response.headers.link = [response.headers.link, `<${url('/directory')}>;rel="index"`].filter(Boolean).join(', ');
      return response;
    },
  };
}

/**
 * A challenge "processing" for longer than this (or three times the validation timeout, if longer) was
 * abandoned: its instance died before it wrote the outcome.
 */
const STALE_VALIDATION_MS = 30_000;

/** How long a client should wait before retrying while the inventory cannot be reached, seconds. */
export const UNAVAILABLE_RETRY_AFTER = 3;

/** The inventory (PostgreSQL) cannot be reached or stayed locked: the request may succeed if retried. */
export function storeUnavailable(error: unknown): boolean {
  return error instanceof McpkiError && (error.code === 'STORE_UNAVAILABLE' || error.code === 'STORE_BUSY');
}

export function unavailableProblem(): AcmeProblem {
  return problem(
    'serverInternal',
    `the server's database cannot be reached at the moment; retry in ${UNAVAILABLE_RETRY_AFTER} s`,
    { status: 503, retryAfter: UNAVAILABLE_RETRY_AFTER },
  );
}

export function problemResponse(failure: AcmeProblem): AcmeResponse {
  return {
    status: failure.status,
    headers: {
      'content-type': 'application/problem+json',
      ...(failure.retryAfter ? { 'retry-after': String(failure.retryAfter) } : {}),
    },
    body: JSON.stringify(failure.toDocument(), null, 2),
  };
}

/**
 * RFC 5280 CRLReason codes a subscriber may give (RFC 8555 §7.6). certificateHold is temporary and
 * cACompromise is not the subscriber's to claim; removeFromCRL and aACompromise have no place here.
 */
const ACME_REVOCATION_REASONS: Record<number, RevocationReason> = {
  0: 'unspecified',
  1: 'keyCompromise',
  3: 'affiliationChanged',
  4: 'superseded',
  5: 'cessationOfOperation',
  9: 'privilegeWithdrawn',
};

function revocationReason(value: unknown): RevocationReason {
  if (value === undefined) return 'unspecified';
  if (typeof value === 'number' && Object.hasOwn(ACME_REVOCATION_REASONS, value))
    return ACME_REVOCATION_REASONS[value]!;
  throw problem(
    'badRevocationReason',
    `revocation reason ${JSON.stringify(value).slice(0, 20)} is not accepted; use one of ${Object.entries(
      ACME_REVOCATION_REASONS,
    )
      .map(([code, name]) => `${code} (${name})`)
      .join(', ')}`,
  );
}

/** The inventory name of an ACME-issued certificate: its first identifier, made a valid name. */
function inventoryName(identifier: string): string {
  const name = identifier
    .replace(/^\*\./, 'wildcard.')
    .replace(/:/g, '-')
    .replace(/[^A-Za-z0-9._-]/g, '-');
  return /^[A-Za-z0-9]/.test(name) ? name.slice(0, 100) : `acme-${name}`.slice(0, 100);
}

/** An EAB allow-list entry: "name" exactly, "*.zone" for names below zone, or an IP. */
function allowedBy(pattern: string, san: San): boolean {
  if (pattern.startsWith('*.'))
    return san.type === 'dns' && san.value.endsWith(pattern.slice(1)) && san.value.length > pattern.length - 1;
  return san.value === pattern.toLowerCase();
}
