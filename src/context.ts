import { lstatSync, type Stats } from 'node:fs';
import { McpkiError, fix } from './errors.js';
import { assertSafeHome, ensurePrivateDir, layoutOf, resolveHome, type HomeLayout } from './home.js';
import { parseStoreLocation, type StoreLocation } from './store/location.js';
import { Store } from './store/store.js';

export type Clock = () => Date;

/** What every core operation needs: where state lives, what time it is, and the inventory. */
export interface Context {
  readonly home: string;
  readonly layout: HomeLayout;
  readonly now: Clock;
  /**
   * Opens (creating and migrating) the inventory on first use. In a home that holds a CA the inventory must
   * exist: a missing or empty one is refused (STORE_MISSING), never silently started afresh.
   */
  store(): Store;
  /** The inventory if it exists; read-only commands use this so they never create a database. */
  existingStore(): Store | undefined;
  /** Where the inventory lives: the home's SQLite file, or PostgreSQL (--store, MCPKI_STORE, `store:`). */
  readonly storeLocation: StoreLocation;
  /**
   * mcpki.yaml's `store:`, used when neither --store nor MCPKI_STORE said where the inventory is; called before
   * the inventory is first opened.
   */
  useConfiguredStore(value: string | undefined): void;
  close(): void;
}

export interface ContextOptions {
  /** --home; falls back to MCPKI_HOME, XDG_DATA_HOME, ~/.local/share/mcpki */
  home?: string;
  now?: Clock;
  env?: NodeJS.ProcessEnv;
  /** --store: `sqlite` or a postgres:// URL; falls back to MCPKI_STORE, then mcpki.yaml's `store:` */
  store?: string;
}

export function createContext(options: ContextOptions = {}): Context {
  const home = resolveHome(options.home, options.env ?? process.env);
  const layout = layoutOf(home);
  const now = options.now ?? (() => new Date());
  const env = options.env ?? process.env;
  const given = options.store ?? env.MCPKI_STORE;
  let location: StoreLocation = parseStoreLocation(given, env);
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
    get storeLocation() {
      return location;
    },
    useConfiguredStore(value) {
      if (given === undefined && value !== undefined && !store) location = parseStoreLocation(value, env);
    },
    store() {
      if (!store) {
        safeLayout();
        ensurePrivateDir(home);
        if (location.kind === 'postgres') {
          const opened = Store.openPostgres(location, home, now);
          try {
            checkSharedInventory(layout, opened, location.label);
          } catch (error) {
            opened.close();
            throw error;
          }
          store = opened;
        } else {
          checkInventoryFile(layout);
          store = Store.open(layout.database, now);
        }
      }
      return store;
    },
    existingStore() {
      if (store || location.kind === 'postgres' || lstatOrNull(layout.database) || lstatOrNull(layout.rootCert))
        return this.store();
      safeLayout(); // an unusable home is still an error, not an empty inventory; a missing one is not created
      return undefined;
    },
    close() {
      store?.close();
      store = undefined;
    },
  };
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/**
 * The inventory is a regular file (a FIFO would hang SQLite's open, a symlink could point anywhere), and a
 * home that holds a CA has one that is not empty: a new inventory next to an existing CA would forget every
 * revocation and reuse CRL numbers.
 */
/**
 * A home that holds a CA must find that CA's records in a PostgreSQL inventory: an empty one (a new database,
 * a mistyped schema=) would forget every revocation, as a deleted mcpki.db would (STORE_MISSING there too).
 */
function checkSharedInventory(layout: HomeLayout, store: Store, label: string): void {
  if (!lstatOrNull(layout.rootCert)) return;
  if (store.listAuthorities().length > 0) return;
  throw new McpkiError(
    'STORE_MISSING',
    `the inventory ${label} holds no CA, but ${layout.root} holds one (${layout.rootCert}): a new inventory would forget its revocations`,
    fix(
      `check the URL's database and schema=; to move this home's SQLite inventory there, run "mcpki store migrate {--to URL}" without {--store URL|store: URL}`,
    ),
  );
}

function checkInventoryFile(layout: HomeLayout): void {
  const db = lstatOrNull(layout.database);
  if (db?.isSymbolicLink()) {
    throw new McpkiError(
      'UNSAFE_PATH',
      `refusing the inventory ${layout.database}: it is a symlink`,
      `replace ${layout.database} with the file itself (mv it, or restore it with "mcpki inventory restore")`,
    );
  }
  if (db && !db.isFile()) {
    const type = db.isDirectory()
      ? 'a folder'
      : db.isFIFO()
        ? 'a FIFO'
        : db.isSocket()
          ? 'a socket'
          : 'a device or special file';
    throw new McpkiError(
      'STORE_CORRUPT',
      `the inventory ${layout.database} is ${type}, not a regular file`,
      `move it aside (mv ${layout.database} ${layout.database}.broken) and restore the inventory with "mcpki inventory restore"`,
    );
  }
  if (db && db.size > 0) return;
  if (!lstatOrNull(layout.rootCert)) return; // no CA yet: a first run creates the inventory
  const what = db ? 'is empty (0 bytes)' : 'is missing';
  throw new McpkiError(
    'STORE_MISSING',
    `the inventory ${layout.database} ${what}, but ${layout.root} holds a CA (${layout.rootCert}): a new inventory would forget its revocations`,
    `restore it with "mcpki inventory restore" (the newest copy in ${layout.root}/backups), or from your own backup; to start over with a new CA, move ${layout.caDir} aside first`,
  );
}
