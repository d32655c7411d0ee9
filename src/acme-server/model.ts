// The ACME server's objects (RFC 8555 §7.1) and the state interface they live behind. The protocol layer
// (wfe.ts) and the validation authority (va.ts) use only this interface, so the same server can run on the
// in-memory state here (one instance) or on the inventory's database.
import type { JsonWebKey } from 'node:crypto';
import { ariCertificateId } from '../acme/ari.js';
import type { AcmeServerTables, Document } from '../store/acme-server.js';

/** dns and ip (RFC 8738); email (RFC 8823's type) only in orders of a clientAuth profile, authorized by EAB */
export type IdentifierType = 'dns' | 'ip' | 'email';
export interface Identifier {
  type: IdentifierType;
  value: string;
}

export type AccountStatus = 'valid' | 'deactivated' | 'revoked';
export interface Account {
  id: string;
  /** the public key, canonical members only */
  jwk: JsonWebKey;
  /** RFC 7638 thumbprint of jwk: unique per account */
  thumbprint: string;
  contact: string[];
  status: AccountStatus;
  /** the external account key this account was bound with, if any */
  eabKid: string | null;
  createdAt: string;
}

export type OrderStatus = 'pending' | 'ready' | 'processing' | 'valid' | 'invalid';
export interface Order {
  id: string;
  accountId: string;
  status: OrderStatus;
  identifiers: Identifier[];
  profile: string;
  authorizationIds: string[];
  expires: string;
  notBefore: string | null;
  notAfter: string | null;
  /** RFC 9773: the certificate this order replaces (its ARI CertID) */
  replaces: string | null;
  /** the issued certificate's serial (upper-case hex) once valid */
  certificateSerial: string | null;
  error: ProblemJson | null;
  createdAt: string;
}

export type AuthorizationStatus = 'pending' | 'valid' | 'invalid' | 'deactivated' | 'expired' | 'revoked';
export interface Authorization {
  id: string;
  accountId: string;
  identifier: Identifier;
  wildcard: boolean;
  status: AuthorizationStatus;
  expires: string;
  challengeIds: string[];
}

export type ChallengeType = 'http-01' | 'dns-01' | 'tls-alpn-01';
export type ChallengeStatus = 'pending' | 'processing' | 'valid' | 'invalid';
export interface Challenge {
  id: string;
  authorizationId: string;
  type: ChallengeType;
  token: string;
  status: ChallengeStatus;
  validated: string | null;
  error: ProblemJson | null;
  /** when its validation started: one left processing longer than a validation takes was abandoned */
  processingSince?: string | null;
}

export interface ProblemJson {
  type: string;
  detail: string;
  status?: number;
}

/** Everything the server keeps. Methods are synchronous for the in-memory state and SQLite. */
export interface AcmeState {
  addAccount(account: Account): void;
  getAccount(id: string): Account | undefined;
  findAccountByThumbprint(thumbprint: string): Account | undefined;
  updateAccount(account: Account): void;
  addOrder(order: Order, authorizations: Authorization[], challenges: Challenge[]): void;
  getOrder(id: string): Order | undefined;
  /** the account's orders, oldest first, at most `limit` (RFC 8555 §7.1.2.1) */
  listOrders(accountId: string, limit: number): Order[];
  updateOrder(order: Order): void;
  getAuthorization(id: string): Authorization | undefined;
  updateAuthorization(authorization: Authorization): void;
  getChallenge(id: string): Challenge | undefined;
  updateChallenge(challenge: Challenge): void;
  /** the certificate's chain PEM by serial, and the account that ordered it */
  addCertificate(serial: string, accountId: string, orderId: string, chainPem: string): void;
  getCertificate(serial: string): IssuedCertificate | undefined;
  /** by its RFC 9773 identifier, base64url(AKI keyIdentifier) "." base64url(serial) */
  findCertificateByAriId(ariCertId: string): IssuedCertificate | undefined;
  /**
   * The account's authorizations that are valid and unexpired at `now` (RFC 8555 §7.6: they let it revoke a
   * certificate for their identifiers).
   */
  validAuthorizations(accountId: string, now: Date): Authorization[];
}

export interface IssuedCertificate {
  serial: string;
  accountId: string;
  orderId: string;
  chainPem: string;
  ariCertId: string | null;
  /** a renewal window moved earlier by the operator (renew-early), else null */
  window: { start: string; end: string } | null;
  /** the inventory's status ('valid', 'revoked', …), when the inventory has it */
  status: string | null;
}

function ariIdOf(chainPem: string): string | null {
  try {
    return ariCertificateId(chainPem);
  } catch {
    return null;
  }
}

export function createMemoryState(): AcmeState {
  const accounts = new Map<string, Account>();
  const byThumbprint = new Map<string, string>();
  const orders = new Map<string, Order>();
  const authorizations = new Map<string, Authorization>();
  const challenges = new Map<string, Challenge>();
  const certificates = new Map<string, IssuedCertificate>();
  // stored copies, so a caller mutating what it got back changes nothing until it calls update*
  const copy = <T>(value: T): T => structuredClone(value);
  return {
    validAuthorizations: (accountId, now) =>
      [...authorizations.values()].filter((a) => a.accountId === accountId && authorizationIsValid(a, now)).map(copy),
    addAccount(account) {
      if (byThumbprint.has(account.thumbprint)) throw new Error('an account with this key exists');
      accounts.set(account.id, copy(account));
      byThumbprint.set(account.thumbprint, account.id);
    },
    getAccount: (id) => (accounts.has(id) ? copy(accounts.get(id)!) : undefined),
    findAccountByThumbprint(thumbprint) {
      const id = byThumbprint.get(thumbprint);
      return id === undefined ? undefined : copy(accounts.get(id)!);
    },
    updateAccount(account) {
      const old = accounts.get(account.id);
      if (!old) throw new Error(`no account ${account.id}`);
      if (old.thumbprint !== account.thumbprint) {
        if (byThumbprint.has(account.thumbprint)) throw new Error('an account with this key exists');
        byThumbprint.delete(old.thumbprint);
        byThumbprint.set(account.thumbprint, account.id);
      }
      accounts.set(account.id, copy(account));
    },
    addOrder(order, authzs, challs) {
      orders.set(order.id, copy(order));
      for (const a of authzs) authorizations.set(a.id, copy(a));
      for (const c of challs) challenges.set(c.id, copy(c));
    },
    getOrder: (id) => (orders.has(id) ? copy(orders.get(id)!) : undefined),
    listOrders: (accountId, limit) =>
      [...orders.values()]
        .filter((o) => o.accountId === accountId)
        .slice(0, limit)
        .map(copy),
    updateOrder: (order) => void orders.set(order.id, copy(order)),
    getAuthorization: (id) => (authorizations.has(id) ? copy(authorizations.get(id)!) : undefined),
    updateAuthorization: (authz) => void authorizations.set(authz.id, copy(authz)),
    getChallenge: (id) => (challenges.has(id) ? copy(challenges.get(id)!) : undefined),
    updateChallenge: (challenge) => void challenges.set(challenge.id, copy(challenge)),
    addCertificate: (serial, accountId, orderId, chainPem) =>
      void certificates.set(serial, {
        serial,
        accountId,
        orderId,
        chainPem,
        ariCertId: ariIdOf(chainPem),
        window: null,
        status: null,
      }),
    getCertificate: (serial) => (certificates.has(serial) ? copy(certificates.get(serial)!) : undefined),
    findCertificateByAriId(ariCertId) {
      for (const certificate of certificates.values())
        if (certificate.ariCertId === ariCertId) return copy(certificate);
      return undefined;
    },
  };
}

/**
 * The state in the inventory (SQLite): a server restarted on the same home knows its accounts, orders and
 * certificates, and several servers on one home share them. Objects are stored whole as JSON documents.
 */
export function createStoreState(tables: AcmeServerTables): AcmeState {
  const doc = (value: object): Document => value as unknown as Document;
  const issued = (row: ReturnType<AcmeServerTables['getCertificate']>): IssuedCertificate | undefined =>
    row && {
      serial: row.serial,
      accountId: row.accountId,
      orderId: row.orderId,
      chainPem: row.chainPem,
      ariCertId: row.ariCertId,
      window: row.windowStart && row.windowEnd ? { start: row.windowStart, end: row.windowEnd } : null,
      status: row.status,
    };
  // the counters stay in this process for now: a shared store (issue 12) keeps them in its tables
  return {
    validAuthorizations(accountId, now) {
      // through the account's orders (indexed by account), since authorizations are keyed by id only
      const ids = new Set<string>();
      for (const order of tables.listOrders(accountId, MAX_ORDERS_SCANNED) as unknown as Order[])
        for (const id of order.authorizationIds) ids.add(id);
      const out: Authorization[] = [];
      for (const id of ids) {
        const authz = tables.getAuthorization(id) as Authorization | undefined;
        if (authz && authz.accountId === accountId && authorizationIsValid(authz, now)) out.push(authz);
      }
      return out;
    },
    addAccount(account) {
      if (!tables.addAccount(account.id, account.thumbprint, doc(account)))
        throw new Error('an account with this key exists');
    },
    getAccount: (id) => tables.getAccount(id) as Account | undefined,
    findAccountByThumbprint: (thumbprint) => tables.accountByThumbprint(thumbprint) as Account | undefined,
    updateAccount(account) {
      if (!tables.updateAccount(account.id, account.thumbprint, doc(account)))
        throw new Error('an account with this key exists');
    },
    addOrder: (order, authzs, challs) =>
      tables.addOrder(
        { id: order.id, accountId: order.accountId, data: doc(order) },
        authzs.map((a) => ({ id: a.id, data: doc(a) })),
        challs.map((c) => ({ id: c.id, data: doc(c) })),
      ),
    getOrder: (id) => tables.getOrder(id) as Order | undefined,
    listOrders: (accountId, limit) => tables.listOrders(accountId, limit) as unknown as Order[],
    updateOrder: (order) => tables.updateOrder(order.id, doc(order)),
    getAuthorization: (id) => tables.getAuthorization(id) as Authorization | undefined,
    updateAuthorization: (authz) => tables.updateAuthorization(authz.id, doc(authz)),
    getChallenge: (id) => tables.getChallenge(id) as Challenge | undefined,
    updateChallenge: (challenge) => tables.updateChallenge(challenge.id, doc(challenge)),
    addCertificate: (serial, accountId, orderId, chainPem) =>
      tables.addCertificate(serial, accountId, orderId, chainPem, ariIdOf(chainPem)),
    getCertificate: (serial) => issued(tables.getCertificate(serial)),
    findCertificateByAriId: (ariCertId) => issued(tables.certificateByAriId(ariCertId)),
  };
}

/** How many of an account's orders revocation looks through for its authorizations (newest matter most). */
const MAX_ORDERS_SCANNED = 100_000;

function authorizationIsValid(authz: Authorization, now: Date): boolean {
  return authz.status === 'valid' && Date.parse(authz.expires) > now.getTime();
}
