// Versioned schema. Each entry moves the database from version i to i+1 (PRAGMA user_version); never edit a
// released migration, add a new one.
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  CREATE TABLE authorities (
    id INTEGER PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('root', 'intermediate')),
    serial TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    key_type TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    pem TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE certificates (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    serial TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    sans TEXT NOT NULL,
    issuer TEXT NOT NULL,
    issuer_serial TEXT,
    profile TEXT,
    key_type TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'superseded', 'revoked')),
    revoked_at TEXT,
    revocation_reason TEXT,
    pem TEXT NOT NULL,
    paths TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
  );
  CREATE INDEX certificates_by_name ON certificates (name, id);
  CREATE INDEX certificates_by_not_after ON certificates (not_after);
  CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    type TEXT NOT NULL,
    name TEXT,
    serial TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX events_by_at ON events (at);
  `,
  `
  CREATE TABLE acme_accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    directory_url TEXT NOT NULL,
    account_url TEXT NOT NULL,
    email TEXT,
    key_path TEXT NOT NULL,
    environment TEXT NOT NULL CHECK (environment IN ('production', 'staging')),
    eab_kid TEXT,
    ca_bundle TEXT,
    status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'deactivated')),
    created_at TEXT NOT NULL
  );
  ALTER TABLE certificates ADD COLUMN order_url TEXT;
  ALTER TABLE certificates ADD COLUMN ari_cert_id TEXT;
  ALTER TABLE certificates ADD COLUMN environment TEXT;
  ALTER TABLE certificates ADD COLUMN ari_window_start TEXT;
  ALTER TABLE certificates ADD COLUMN ari_window_end TEXT;
  ALTER TABLE certificates ADD COLUMN ari_next_check TEXT;
  ALTER TABLE certificates ADD COLUMN ari_explanation_url TEXT;
  `,
  `
  CREATE TABLE renewal_state (
    name TEXT PRIMARY KEY,
    code TEXT,
    reason TEXT,
    next_check TEXT,
    ari_time TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    last_attempt TEXT,
    last_success TEXT,
    last_failure TEXT,
    last_error TEXT,
    deployed TEXT
  );
  CREATE TABLE locks (
    name TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    acquired_at TEXT NOT NULL
  );
  `,
  // `mcpki forget`: a forgotten certificate that was revoked stays (hidden) so that CRLs keep listing its serial
  `
  ALTER TABLE certificates ADD COLUMN forgotten_at TEXT;
  `,
  // the ACME server (issue 11): its accounts, orders, authorizations and challenges as JSON documents keyed by
  // id (the columns are what is looked up by), the certificates it issued with their ARI identifier and any
  // window moved earlier by renew-early, and the external account (EAB) keys, sealed with AES-256-GCM
  `
  CREATE TABLE acme_server_accounts (
    id TEXT PRIMARY KEY,
    thumbprint TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
  );
  CREATE TABLE acme_server_orders (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES acme_server_accounts (id),
    data TEXT NOT NULL
  );
  CREATE INDEX acme_server_orders_by_account ON acme_server_orders (account_id);
  CREATE TABLE acme_server_authorizations (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
  );
  CREATE TABLE acme_server_challenges (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
  );
  CREATE TABLE acme_server_certificates (
    serial TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES acme_server_accounts (id),
    order_id TEXT NOT NULL REFERENCES acme_server_orders (id),
    ari_cert_id TEXT UNIQUE,
    chain_pem TEXT NOT NULL,
    window_start TEXT,
    window_end TEXT,
    created_at TEXT NOT NULL
  );
  CREATE TABLE acme_server_eab_keys (
    kid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sealed_key TEXT NOT NULL,
    sealed_by TEXT NOT NULL,
    allow TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
    created_at TEXT NOT NULL,
    revoked_at TEXT
  );
  `,
  // RFC 8705 x5t#S256 of each certificate, for certificate-bound tokens; existing rows are filled from their
  // PEM by the x5t_s256() function the store registers before migrating
  `
  ALTER TABLE certificates ADD COLUMN thumbprint TEXT;
  UPDATE certificates SET thumbprint = x5t_s256(pem);
  `,
  // the private keys of certificates that several hosts share through one PostgreSQL inventory, sealed
  // (src/renewal/shared.ts): one row per certificate, written by the host that issued it
  `
  CREATE TABLE shared_keys (
    serial TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sealed TEXT NOT NULL,
    sealed_by TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  `,
  // several ACME-server instances on one inventory (issue 12): the nonces they hand out (one row each, deleted
  // when used: single use across instances) and the orders each account placed in the last hour (rate limit)
  `
  CREATE TABLE IF NOT EXISTS acme_server_nonces (
    nonce TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS acme_server_nonces_by_expiry ON acme_server_nonces (expires_at);
  CREATE TABLE IF NOT EXISTS acme_server_order_slots (
    account_id TEXT NOT NULL,
    at TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS acme_server_order_slots_by_account ON acme_server_order_slots (account_id, at);
  `,
  // renewal state per home (issue 12): several homes (hosts) share one PostgreSQL inventory, each with its own
  // deployed fingerprint, failures and next check for a certificate they all declare; the key is (scope, name).
  // A SQLite file is one home: its rows keep scope '' (src/store/store.ts, renewal state)
  `
  CREATE TABLE renewal_state_scoped (
    name TEXT NOT NULL,
    code TEXT,
    reason TEXT,
    next_check TEXT,
    ari_time TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    last_attempt TEXT,
    last_success TEXT,
    last_failure TEXT,
    last_error TEXT,
    deployed TEXT,
    scope TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (scope, name)
  );
  INSERT INTO renewal_state_scoped (name, code, reason, next_check, ari_time, failures, last_attempt, last_success, last_failure, last_error, deployed, scope)
    SELECT name, code, reason, next_check, ari_time, failures, last_attempt, last_success, last_failure, last_error, deployed, '' FROM renewal_state;
  DROP TABLE renewal_state;
  ALTER TABLE renewal_state_scoped RENAME TO renewal_state;
  `,
  // the CRLs published on an inventory several homes share (issue 12): the whole file each one wrote (the
  // intermediates' CRLs, then the root's), so every home can serve the newest after checking its signatures.
  // CRLs are public; ca is the root's key identifier (hex), issuer the serial of the intermediate that signed it
  `
  CREATE TABLE IF NOT EXISTS crls (
    ca TEXT NOT NULL,
    number INTEGER NOT NULL,
    issuer TEXT NOT NULL,
    this_update TEXT NOT NULL,
    next_update TEXT NOT NULL,
    pem TEXT NOT NULL,
    published_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (ca, number)
  );
  `,
];
