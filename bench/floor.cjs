'use strict';
// The floor of each start-up row in bench/run.js: the least a Node program must do for the same durable result,
// with no argument parsing, no checks and no inventory schema. What mcpki takes above this is its own; what this
// takes above `node -e 0` no CLI written for Node can avoid on the machine at hand.
//
//   node bench/floor.cjs print                  one line on stdout (the floor of --version)
//   node bench/floor.cjs prepare DIR SQLITE     the floor's inventory, DIR/floor.db (untimed)
//   node bench/floor.cjs issue DIR SQLITE CA NAME
//       read the CA's key and certificate (CA = a folder with intermediate.key and intermediate.crt, as mcpki's
//       home/ca), make a P-256 key, sign 400 bytes (a certificate's size), write NAME.key, NAME.crt,
//       NAME.fullchain.pem and ca.crt into DIR/certs/NAME (each: temp file, fsync, rename), fsync the folder and
//       its parent, then insert one row into DIR/floor.db in a transaction (WAL, synchronous = FULL, as mcpki's)
//   node bench/floor.cjs list DIR SQLITE        one query over DIR/floor.db, a line per row on stdout
//   node bench/floor.cjs plan HOME YAML SQLITE  the floor of `mcpki --json renew --dry-run` (bench/renewal.js): the
//       declaration's bytes hashed, its parsed form read from mcpki's cache (HOME/cache, trusted as it is: no MAC,
//       no shape check), each declared name's newest certificate and renewal state looked up in HOME/mcpki.db (two
//       indexed lookups, as mcpki makes), a renewal time of 1/3 of the lifetime before expiry, and the plan printed
//       as JSON with the same fields and indentation
//
// SQLITE is better-sqlite3's package folder; its addon is loaded with process.dlopen, as mcpki loads it (the
// package's own loader looks in a dozen places first). The benchmarks run this file bundled with better-sqlite3's
// JavaScript (bundleFloor in bench/common.js), as mcpki's commands are: its dozen files loaded one by one cost
// ~10 ms, which no program has to pay.

/** An SQLite database through better-sqlite3 (in the package folder `sqlite`) with its addon loaded directly. */
function openSqlite(file, sqlite, options) {
  const { resolve } = require('node:path');
  const addon = { exports: {} };
  process.dlopen(addon, resolve(sqlite, 'build', 'Release', 'better_sqlite3.node'));
  const Database = require('better-sqlite3/lib/database.js');
  return new Database(file, { ...options, nativeBinding: addon.exports });
}

function openDatabase(dir, sqlite, options) {
  return openSqlite(require('node:path').join(dir, 'floor.db'), sqlite, options);
}

function writeDurably(path, data, mode) {
  const fs = require('node:fs');
  const temp = `${path}.tmp-${process.pid}`;
  const fd = fs.openSync(temp, 'wx', mode);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, path);
}

function fsyncFolder(path) {
  const fs = require('node:fs');
  const fd = fs.openSync(path, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function issue(dir, sqlite, ca, name) {
  const { join } = require('node:path');
  const { mkdirSync, readFileSync } = require('node:fs');
  const crypto = require('node:crypto');
  const caKey = crypto.createPrivateKey(readFileSync(join(ca, 'intermediate.key')));
  const caPem = readFileSync(join(ca, 'intermediate.crt'), 'utf8');
  new crypto.X509Certificate(caPem); // parsed, as any issuer must before it names the CA as issuer
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const der = crypto.randomBytes(400);
  const signature = crypto.sign('sha256', der, caKey);
  const body = Buffer.concat([der, signature]).toString('base64').replace(/.{64}/g, '$&\n');
  const certPem = `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
  const certs = join(dir, 'certs');
  const folder = join(certs, name);
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  writeDurably(join(folder, `${name}.key`), keyPem, 0o600);
  writeDurably(join(folder, `${name}.crt`), certPem, 0o644);
  writeDurably(join(folder, `${name}.fullchain.pem`), certPem + caPem, 0o644);
  writeDurably(join(folder, 'ca.crt'), caPem, 0o644);
  fsyncFolder(folder);
  fsyncFolder(certs);
  const db = openDatabase(dir, sqlite);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  const insert = db.prepare('INSERT INTO certificates (name, pem, not_after) VALUES (?, ?, ?)');
  db.transaction(() => insert.run(name, certPem, new Date(Date.now() + 30 * 86_400_000).toISOString()))();
  process.stdout.write(`issued ${name}\n`);
}

function list(dir, sqlite) {
  const db = openDatabase(dir, sqlite, { readonly: true });
  const rows = db.prepare('SELECT name, not_after FROM certificates ORDER BY name').all();
  process.stdout.write(rows.map((row) => `${row.name}  ${row.not_after}`).join('\n') + '\n');
}

function plan(home, yaml, sqlite) {
  const { join } = require('node:path');
  const { readdirSync, readFileSync, writeSync } = require('node:fs');
  require('node:crypto').createHash('sha256').update(readFileSync(yaml)).digest('hex');
  const cache = join(home, 'cache');
  const entry = readdirSync(cache).find((name) => /^config-[0-9a-f]+\.json$/.test(name));
  const text = readFileSync(join(cache, entry), 'utf8');
  const config = JSON.parse(text.slice(text.indexOf('\n') + 1));
  const db = openSqlite(join(home, 'mcpki.db'), sqlite, { readonly: true });
  const certificate = db
    .prepare(
      'SELECT serial, not_before, not_after FROM certificates WHERE name = ? AND forgotten_at IS NULL ORDER BY id DESC LIMIT 1',
    )
    .raw();
  // a SQLite inventory holds one home's renewal state, under the scope ''
  const state = db.prepare("SELECT failures, last_error FROM renewal_state WHERE scope = '' AND name = ?").raw();
  const now = Date.now();
  db.exec('BEGIN');
  const items = config.certificates.map(({ name, days }) => {
    const [serial, notBefore, notAfter] = certificate.get(name) ?? [null, null, null];
    const [failures, lastError] = state.get(name) ?? [0, null];
    const end = Date.parse(notAfter);
    const renewAt = new Date(end - (end - Date.parse(notBefore)) / 3).toISOString();
    const due = now >= Date.parse(renewAt);
    return {
      name,
      serial,
      notAfter,
      failures,
      lastError,
      due,
      code: due ? 'due' : 'not-yet',
      reason: `${due ? 'due' : 'not due'}: renews at ${renewAt}, when 1/3 of the ${days}-day lifetime remains`,
      renewAt,
      nextCheck: renewAt,
    };
  });
  db.exec('COMMIT');
  writeSync(1, `${JSON.stringify({ plan: items }, null, 2)}\n`);
}

function prepare(dir, sqlite) {
  require('node:fs').mkdirSync(dir, { recursive: true, mode: 0o700 });
  const db = openDatabase(dir, sqlite);
  db.pragma('journal_mode = WAL');
  db.exec(
    'CREATE TABLE IF NOT EXISTS certificates (name TEXT PRIMARY KEY, pem TEXT NOT NULL, not_after TEXT NOT NULL)',
  );
  db.close();
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'print') process.stdout.write('0.0.0\n');
else if (mode === 'prepare') prepare(args[0], args[1]);
else if (mode === 'issue') issue(args[0], args[1], args[2], args[3]);
else if (mode === 'list') list(args[0], args[1]);
else if (mode === 'plan') plan(args[0], args[1], args[2]);
else {
  process.stderr.write(
    'usage: node bench/floor.cjs print | prepare DIR SQLITE | issue DIR SQLITE CA NAME | list DIR SQLITE | plan HOME YAML SQLITE\n',
  );
  process.exitCode = 2;
}
