// Noticing that a set of files changed, including files replaced by rename and files reached through symlinks
// whose targets are swapped (the Kubernetes "..data" pattern: cert.pem -> current/cert.pem, and `current` is
// renamed over). fs.watch on every folder along the way gives quick notice; a periodic stat of the resolved
// paths catches what fs.watch misses (network file systems, folders created later). Timers and watchers are
// unref()'d so they never keep a process alive.
import { lstatSync, readlinkSync, realpathSync, statSync, watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** A string that changes whenever any file's content may have changed: where it resolves to and its stat. */
export function signatureOf(paths: readonly string[]): string {
  return paths
    .map((path) => {
      try {
        const real = realpathSync(path);
        const s = statSync(real, { bigint: true });
        return `${real}|${s.dev}|${s.ino}|${s.size}|${s.mtimeNs}|${s.ctimeNs}`;
      } catch (error) {
        return `${path}|${(error as NodeJS.ErrnoException).code ?? 'error'}`;
      }
    })
    .join('\n');
}

/** Every folder whose entries decide what `path` resolves to: the folder of each symlink hop, and the parent
 * of each symlinked folder on the way (…/current/cert.pem, where `current` is swapped). */
export function foldersOf(path: string): string[] {
  const folders = new Set<string>();
  let current = resolve(path);
  for (let hops = 0; hops < 40; hops++) {
    for (let dir = dirname(current); dir !== dirname(dir); dir = dirname(dir)) {
      try {
        if (lstatSync(dir).isSymbolicLink()) folders.add(dirname(dir));
      } catch {
        // a missing folder on the way: the periodic check notices when it appears
      }
    }
    folders.add(dirname(current));
    try {
      if (!lstatSync(current).isSymbolicLink()) break;
      current = resolve(dirname(current), readlinkSync(current));
    } catch {
      break;
    }
  }
  return [...folders];
}

export interface FileWatcher {
  /** re-derive the watched folders (after a symlink swap the folders on the way may differ) */
  refresh(): void;
  close(): void;
}

/**
 * Calls `onNotice` when something in a folder that matters changed, and every `intervalMs` (the caller compares
 * signatures, so spurious calls are cheap).
 */
export function watchFiles(
  paths: readonly string[],
  onNotice: () => void,
  intervalMs: number,
  useFsWatch = true,
): FileWatcher {
  const watchers = new Map<string, FSWatcher>();
  let closed = false;
  const refresh = () => {
    if (closed || !useFsWatch) return;
    // keyed by real path: a watcher follows the folder it was opened on, not a symlink swapped later
    const wanted = new Set(
      paths.flatMap(foldersOf).flatMap((folder) => {
        try {
          return [realpathSync(folder)];
        } catch {
          return [];
        }
      }),
    );
    for (const [folder, watcher] of watchers) {
      if (!wanted.has(folder)) {
        watcher.close();
        watchers.delete(folder);
      }
    }
    for (const folder of wanted) {
      if (watchers.has(folder)) continue;
      try {
        const watcher = watch(folder, { persistent: false }, () => onNotice());
        // a watched folder that disappears reports an error; the periodic check covers it until refresh
        watcher.on('error', () => {
          watcher.close();
          if (watchers.get(folder) === watcher) watchers.delete(folder);
        });
        watchers.set(folder, watcher);
      } catch {
        // missing or unreadable folder: polling still covers it
      }
    }
  };
  refresh();
  const timer = setInterval(onNotice, intervalMs);
  timer.unref();
  return {
    refresh,
    close() {
      closed = true;
      clearInterval(timer);
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}
