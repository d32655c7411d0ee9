// One apply (or serve) per home at a time. The lock lives in the inventory, taken under SQLite's write
// lock, so taking it is atomic; a lock left by a process that died (same host, PID gone) is taken over.
import { hostname } from 'node:os';
import type { Context } from '../context.js';
import { McpkiError } from '../errors.js';
import type { LockHolder } from '../store/store.js';
import { isAlive } from '../process/alive.js';

export { isAlive } from '../process/alive.js';

export interface LockOptions {
  /** how long to wait for another holder; 0: fail at once */
  waitMs?: number;
  pollMs?: number;
}

export async function withHomeLock<T>(
  context: Context,
  name: string,
  work: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const store = context.store();
  const me: LockHolder = { pid: process.pid, host: hostname(), acquiredAt: new Date().toISOString() };
  const deadline = Date.now() + (options.waitMs ?? 15 * 60_000);
  for (;;) {
    const holder = store.tryLock(name, me, isAlive);
    if (!holder) break;
    if (Date.now() >= deadline) {
      throw new McpkiError(
        'STORE_BUSY',
        `another mcpki ${name} (pid ${holder.pid} on ${holder.host}, since ${holder.acquiredAt}) holds the lock of ${context.home}`,
        'wait for it to finish, or stop it',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 200));
  }
  try {
    return await work();
  } finally {
    store.unlock(name, me);
  }
}
