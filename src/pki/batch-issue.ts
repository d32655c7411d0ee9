// Batch issuance after planning (issueBatch in issue.ts plans and checks every request first): worker threads
// make the chunks (keys, certificates, temp files); this thread makes a group of chunks durable, records it in
// one inventory transaction, renames its files into place and makes the renames durable before the commit.
import { availableParallelism } from 'node:os';
import { fsyncPath, tryUnlink } from '../fs/atomic.js';
import { foldersOf, renameTemps } from '../fs/batch-files.js';
import { FileSystemSyncer, syncFileSystems } from '../fs/sync-batch.js';
import type { CertificatePaths, CertificateRecord, NewCertificate, NewEvent, Store } from '../store/store.js';
import { McpkiError } from '../errors.js';
import { makeLeaves, type ChunkCa, type ChunkPlan, type MadeLeaf } from './batch-leaf.js';
import { SigningPool } from './batch-pool.js';

/** Below this many certificates, signing in this thread costs less than starting worker threads. */
const WORKER_THRESHOLD = 128;

/** One planned certificate: what a worker signs, and what the inventory records once it is signed. */
export interface BatchEntry {
  plan: ChunkPlan;
  paths: CertificatePaths;
  record(leaf: MadeLeaf): { certificate: NewCertificate; events: NewEvent[] };
}

export interface BatchIssued {
  certificate: CertificateRecord;
  paths: CertificatePaths;
}

/**
 * Small chunks, so that this thread starts recording early; when the workers get ahead, it takes every chunk
 * made by then at once (one sync and one transaction for all of them).
 */
function chunkSize(count: number, workers: number): number {
  return Math.max(32, Math.min(128, Math.ceil(count / (workers * 8))));
}

/**
 * The threads of one batch, started before the requests are planned so that they load while this thread
 * checks the requests: the signing workers (for `count` ≥ WORKER_THRESHOLD) and the syncfs relay.
 */
export class BatchThreads {
  private constructor(
    readonly ca: ChunkCa,
    readonly pool: SigningPool | undefined,
    readonly threads: number,
    private readonly syncer: FileSystemSyncer | undefined,
  ) {}

  static start(ca: ChunkCa, count: number): BatchThreads {
    const threads = Math.min(availableParallelism(), 4);
    const pool = count >= WORKER_THRESHOLD ? SigningPool.start(ca, threads) : undefined;
    return new BatchThreads(ca, pool, threads, pool ? FileSystemSyncer.start() : undefined);
  }

  /**
   * Starts making temp files durable (one syncfs per file system) and returns what finishes it: the caller
   * records meanwhile, and calls it before the first rename. Without the shell, each temp file is fsynced.
   */
  syncTemps(temps: readonly string[]): () => void {
    const dirs = foldersOf(temps);
    const pending = this.syncer?.begin(dirs);
    return () => {
      if (pending ? this.syncer!.end(pending) : syncFileSystems(dirs)) return;
      temps.forEach(fsyncPath);
    };
  }

  /** What was renamed in these folders made durable (inside the inventory transaction). */
  syncFolders(dirs: readonly string[]): void {
    if (this.syncer ? this.syncer.syncNow(dirs) : syncFileSystems(dirs)) return;
    dirs.forEach(fsyncPath);
  }

  async close(): Promise<void> {
    this.syncer?.close();
    await this.pool?.close();
  }
}

/**
 * Issues planned certificates chunk by chunk. Worker threads (one per core) generate the keys, sign and write
 * each file to an unsynced temp name; this thread makes a group's temp files durable at once, and in one
 * inventory transaction records the group, renames its files into place and makes the renames durable before
 * the commit. A certificate is recorded only once its files are on disk; a crash leaves every file whole (old
 * or new) and no record without its files. Closes `run`'s threads.
 */
export async function issueChunks(
  run: BatchThreads,
  store: Store,
  entries: readonly BatchEntry[],
  now: number,
): Promise<BatchIssued[]> {
  const { pool, threads } = run;
  const size = pool ? chunkSize(entries.length, threads) : entries.length;
  const chunks: BatchEntry[][] = [];
  for (let i = 0; i < entries.length; i += size) chunks.push(entries.slice(i, i + size));
  // the workers stay up to `ahead` chunks ahead of this thread (bounded memory and temp files)
  const ahead = threads * 4;
  const made: (MadeLeaf[] | undefined)[] = chunks.map(() => undefined);
  const pending: Promise<MadeLeaf[]>[] = [];
  const send = (upTo: number) => {
    for (let k = pending.length; pool && k < Math.min(upTo, chunks.length); k++) {
      pending[k] = pool
        .sign(
          k,
          chunks[k]!.map((entry) => entry.plan),
          now,
        )
        .then((leaves) => (made[k] = leaves));
      pending[k]!.catch(() => undefined); // each is awaited (or cleaned up) below
    }
  };
  send(ahead);
  // chunks whose temp files were all written before a syncfs that has since finished
  const synced = new Set<number>();
  const issued: BatchIssued[] = [];
  let temps: string[] = [];
  let next = 0;
  try {
    while (next < chunks.length) {
      // the next chunk, and every chunk after it that is already made: one sync and one transaction
      const group = [next];
      if (pool) await pending[next];
      else
        made[next] = await makeLeavesYielding(
          run.ca,
          chunks[next]!.map((entry) => entry.plan),
          now,
        );
      // when the first is already synced, the group stops before the first that is not: no sync before the
      // renames (that one's sync comes with this group's)
      const stop = (k: number) => !made[k] || (synced.has(next) && !synced.has(k));
      while (pool && next + group.length < chunks.length && !stop(next + group.length)) group.push(next + group.length);
      next += group.length;
      send(next + ahead);
      const leaves = group.flatMap((k) => made[k]!);
      const groupEntries = group.flatMap((k) => chunks[k]!);
      const targets = leaves.flatMap((leaf) => leaf.targets);
      temps = leaves.flatMap((leaf) => leaf.temps);
      // the temp files' sync runs while the rows are made and inserted; it ends before the first rename
      const tempsSynced = group.some((k) => !synced.has(k)) ? run.syncTemps(temps) : undefined;
      const items = groupEntries.map((entry, i) => {
        const { certificate, events } = entry.record(leaves[i]!);
        return { certificate, events, thumbprint: leaves[i]!.thumbprint };
      });
      // renamed while the inventory's write lock is held, as issueCertificate does, and committed only once the
      // renames are durable
      const records = store.transaction(() => {
        const saved = store.addIssuedCertificates(items);
        tempsSynced?.();
        renameTemps(targets, temps);
        // this syncfs also makes durable the temp files of the chunks made by now
        made.forEach((leaves, k) => leaves && k >= next && synced.add(k));
        run.syncFolders(foldersOf(targets));
        return saved;
      });
      temps = [];
      records.forEach((certificate, i) => issued.push({ certificate, paths: groupEntries[i]!.paths }));
    }
  } catch (error) {
    temps.forEach(tryUnlink);
    // the chunks made ahead are not recorded: their temp files go
    const unrecorded = await Promise.allSettled(pending.slice(next));
    for (const result of unrecorded)
      if (result.status === 'fulfilled') result.value.forEach((leaf) => leaf.temps.forEach(tryUnlink));
    if (issued.length > 0 && error instanceof McpkiError)
      throw new McpkiError(
        error.code,
        `${error.message} (the first ${issued.length} of ${entries.length} certificates were issued and recorded)`,
        error.fix ?? error.hint,
        { cause: error },
      );
    throw error;
  } finally {
    await run.close();
  }
  return issued;
}

/**
 * makeLeaves in this thread one certificate at a time, with the event loop let run between them: a few RSA-4096
 * keys take seconds, and a progress line or an interrupt must not wait for all of them.
 */
async function makeLeavesYielding(ca: ChunkCa, plans: readonly ChunkPlan[], now: number): Promise<MadeLeaf[]> {
  const made: MadeLeaf[] = [];
  try {
    for (const plan of plans) {
      made.push(...makeLeaves(ca, [plan], now));
      await new Promise((resolve) => setImmediate(resolve));
    }
  } catch (error) {
    made.forEach((leaf) => leaf.temps.forEach(tryUnlink));
    throw error;
  }
  return made;
}
