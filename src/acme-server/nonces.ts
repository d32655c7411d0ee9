// RFC 8555 §6.5 anti-replay nonces: each is issued once, accepted once, and only while fresh. The store is an
// interface so that several server instances can share one: the in-memory store serves a single instance (and
// an SQLite home, whose instances are one process), the shared one keeps each nonce as a row of the inventory,
// deleted when used, so a nonce from instance A is accepted once at instance B and never again anywhere.
import { randomBytes } from 'node:crypto';
import type { AcmeServerShared } from '../store/acme-server-shared.js';

export interface NonceStore {
  /** a new nonce, valid for one use until it expires */
  issue(): string;
  /** true once for a nonce this store issued and that has not expired; false for anything else */
  consume(nonce: string): boolean;
}

export interface MemoryNonceOptions {
  /** how long a nonce stays valid, ms (default 1 hour) */
  lifetimeMs?: number;
  /** at most this many outstanding nonces; the oldest are dropped first (default 100,000) */
  capacity?: number;
  now?: () => number;
}

const NONCE_FORM = /^[A-Za-z0-9_-]{22}$/;

export function createMemoryNonceStore(options: MemoryNonceOptions = {}): NonceStore {
  const lifetime = options.lifetimeMs ?? 3_600_000;
  const capacity = options.capacity ?? 100_000;
  const now = options.now ?? Date.now;
  // insertion order is issue order, so the first entries are the oldest
  const outstanding = new Map<string, number>();
  return {
    issue() {
      const nonce = randomBytes(16).toString('base64url');
      outstanding.set(nonce, now() + lifetime);
      while (outstanding.size > capacity) outstanding.delete(outstanding.keys().next().value!);
      return nonce;
    },
    consume(nonce) {
      if (typeof nonce !== 'string' || !NONCE_FORM.test(nonce)) return false;
      const expires = outstanding.get(nonce);
      if (expires === undefined) return false;
      outstanding.delete(nonce);
      return expires > now();
    },
  };
}

export interface SharedNonceOptions {
  /** how long a nonce stays valid, ms (default 1 hour) */
  lifetimeMs?: number;
  /** expired rows are deleted at most this often, ms (default 1 minute) */
  purgeEveryMs?: number;
  now?: () => number;
}

/** Nonces in the inventory that several instances share: issue inserts a row, consume deletes it. */
export function createSharedNonceStore(
  tables: Pick<AcmeServerShared, 'addNonce' | 'takeNonce' | 'purgeNonces'>,
  options: SharedNonceOptions = {},
): NonceStore {
  const lifetime = options.lifetimeMs ?? 3_600_000;
  const purgeEvery = options.purgeEveryMs ?? 60_000;
  const now = options.now ?? Date.now;
  let lastPurge = now();
  return {
    issue() {
      const at = now();
      if (at - lastPurge >= purgeEvery) {
        lastPurge = at;
        tables.purgeNonces(new Date(at));
      }
      const nonce = randomBytes(16).toString('base64url');
      tables.addNonce(nonce, new Date(at + lifetime));
      return nonce;
    },
    consume(nonce) {
      if (typeof nonce !== 'string' || !NONCE_FORM.test(nonce)) return false;
      return tables.takeNonce(nonce, new Date(now()));
    },
  };
}
