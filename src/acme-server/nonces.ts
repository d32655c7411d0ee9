// RFC 8555 §6.5 anti-replay nonces: each is issued once, accepted once, and only while fresh. The store is an
// interface so that several server instances can share one (the inventory's database); this in-memory one
// serves a single instance.
import { randomBytes } from 'node:crypto';

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
