// The per-account order rate limit (orders per hour). In memory for one instance; in the inventory when
// several instances share it, so that an account spreading its orders over them still gets `limit` in all.
import type { AcmeServerShared } from '../store/acme-server-shared.js';

export interface OrderRate {
  /** Takes one order for the account: undefined when allowed, else the seconds until one is. */
  take(accountId: string): number | undefined;
}

const HOUR_MS = 3_600_000;

export function createMemoryOrderRate(limit: number, now: () => number): OrderRate {
  const orderTimes = new Map<string, number[]>();
  return {
    take(accountId) {
      const at = now();
      const times = (orderTimes.get(accountId) ?? []).filter((t) => t > at - HOUR_MS);
      if (times.length >= limit) {
        orderTimes.set(accountId, times);
        return Math.max(1, Math.ceil((times[0]! + HOUR_MS - at) / 1000));
      }
      times.push(at);
      orderTimes.set(accountId, times);
      return undefined;
    },
  };
}

export function createSharedOrderRate(
  tables: Pick<AcmeServerShared, 'takeOrderSlot'>,
  limit: number,
  now: () => number,
): OrderRate {
  return {
    take(accountId) {
      const free = tables.takeOrderSlot(accountId, limit, HOUR_MS);
      return free === undefined ? undefined : Math.max(1, Math.ceil((free.getTime() - now()) / 1000));
    },
  };
}
