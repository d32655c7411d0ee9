// What `mcpki acme-server` shares with the other instances on its inventory (issue 12). On PostgreSQL, where
// several instances (hosts) serve one inventory behind a load balancer: the nonces and the order rate counter
// live in the inventory, so a nonce taken from one instance is good once at any of them. On SQLite (one host)
// the nonces stay in memory, as fast as before (a nonce from another process on the home is a badNonce, which
// clients retry). On both, the order rate limit counts every process's orders, and an order changes status
// only from the status it was read with, so two processes never both finalize it.
import type { Context } from '../context.js';
import type { Order } from './model.js';
import { createSharedNonceStore, type NonceStore } from './nonces.js';
import { createSharedOrderRate, type OrderRate } from './rate.js';

export interface SharedServerOptions {
  nonces?: NonceStore;
  orderRate?: OrderRate;
  updateOrderIf(order: Order, status: Order['status']): boolean;
}

export function sharedServerOptions(context: Context, ordersPerHour: number): SharedServerOptions {
  const store = context.store();
  const shared = store.acmeServerShared();
  const now = () => context.now().getTime();
  const updateOrderIf = (order: Order, status: Order['status']) =>
    shared.updateOrderIf(order.id, status, order as unknown as Record<string, unknown>);
  // the counter in the inventory on both: two processes on one SQLite home must not double an account's limit
  const orderRate = createSharedOrderRate(shared, ordersPerHour, now);
  if (store.dialect !== 'postgres') return { orderRate, updateOrderIf };
  return { nonces: createSharedNonceStore(shared, { now }), orderRate, updateOrderIf };
}
