// Many small file operations at once, on libuv's thread pool instead of one after the other on the main
// thread. On a file system mounted with `discard` (this project's VM) unlinking a file whose blocks are on disk
// takes ~2.5 ms when done one at a time and ~0.25 ms each when four run at once; creating files after many
// deletions is slow in the same way. Used for the files of hundreds of certificates (apply, renew).
import { closeSync, fsync, fsyncSync } from 'node:fs';
import { open, rm, unlink } from 'node:fs/promises';

/** At most this many operations in flight: libuv's default pool has 4 threads. */
const IN_FLIGHT = 8;

/** Runs `fn` on every item with up to IN_FLIGHT at once; rejects with the first error once all have settled. */
export async function eachInParallel<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, items.length) }, worker));
  if (failure) throw failure.error;
}

/** A new file (O_EXCL) with its final mode, not synced: the caller syncs (SyncBatch, syncFileSystems). */
export async function writeNewFileAsync(path: string, data: string | Buffer, mode: number): Promise<void> {
  const handle = await open(path, 'wx', mode);
  try {
    await handle.chmod(mode); // explicit, so the umask does not change the mode
    await handle.writeFile(data);
  } finally {
    await handle.close();
  }
}

/** Removes files and folders (with what is in them); missing ones are no error, other failures are ignored. */
export async function removeAll(paths: readonly string[]): Promise<void> {
  await eachInParallel(paths, async (path) => {
    try {
      await unlink(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code === 'EISDIR' || code === 'EPERM') await rm(path, { recursive: true, force: true }).catch(() => {});
    }
  });
}

/**
 * Makes several files durable at about the cost of one fsync, synchronously. Each descriptor is first handed
 * to libuv's thread pool, so the fsyncs run at once and the file system commits them together (ext4: one
 * journal commit instead of one per file); then each is fsynced again on this thread, which returns once that
 * file is on disk (it waits for the pool's fsync in flight, or does the work itself if the pool has not started
 * it). Durability rests on the fsyncs here alone; an error is thrown from them. The descriptors belong to this
 * function from the call on: each is closed by its pool callback (the pool may not have used it yet when this
 * returns), so the caller must not close them. Linux only: elsewhere they are fsynced and closed one by one.
 */
export function fsyncTogether(fds: readonly number[]): void {
  if (process.platform !== 'linux' || fds.length < 2) {
    let failure: { error: unknown } | undefined;
    for (const fd of fds) {
      try {
        if (!failure) fsyncSync(fd);
      } catch (error) {
        failure = { error };
      } finally {
        closeSync(fd);
      }
    }
    if (failure) throw failure.error;
    return;
  }
  for (const fd of fds) fsync(fd, () => closeSync(fd));
  for (const fd of fds) fsyncSync(fd);
}
