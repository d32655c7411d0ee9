import { existsSync } from 'node:fs';
import { assertSafeHome, ensurePrivateDir, layoutOf, resolveHome, type HomeLayout } from './home.js';
import { Store } from './store/store.js';

export type Clock = () => Date;

/** What every core operation needs: where state lives, what time it is, and the inventory. */
export interface Context {
  readonly home: string;
  readonly layout: HomeLayout;
  readonly now: Clock;
  /** Opens (creating and migrating) the inventory on first use. */
  store(): Store;
  /** The inventory if it exists; read-only commands use this so they never create a database. */
  existingStore(): Store | undefined;
  close(): void;
}

export interface ContextOptions {
  /** --home; falls back to MCPKI_HOME, XDG_DATA_HOME, ~/.local/share/mcpki */
  home?: string;
  now?: Clock;
  env?: NodeJS.ProcessEnv;
}

export function createContext(options: ContextOptions = {}): Context {
  const home = resolveHome(options.home, options.env ?? process.env);
  const layout = layoutOf(home);
  const now = options.now ?? (() => new Date());
  let store: Store | undefined;
  // the home is checked (owners, modes, CA keys) once, before the first use of anything in it
  let checked = false;
  const safeLayout = (): HomeLayout => {
    if (!checked) {
      assertSafeHome(layout);
      checked = true;
    }
    return layout;
  };
  return {
    home,
    get layout() {
      return safeLayout();
    },
    now,
    store() {
      if (!store) {
        safeLayout();
        ensurePrivateDir(home);
        store = Store.open(layout.database, now);
      }
      return store;
    },
    existingStore() {
      if (store || existsSync(layout.database)) return this.store();
      safeLayout(); // an unusable home is still an error, not an empty inventory; a missing one is not created
      return undefined;
    },
    close() {
      store?.close();
      store = undefined;
    },
  };
}
