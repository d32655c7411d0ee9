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
//
// SQLITE is better-sqlite3's package folder; its addon is loaded with process.dlopen, as mcpki loads it (the
// package's own loader looks in a dozen places first).

function openDatabase(dir, sqlite, options) {
  const { join } = require('node:path');
  const addon = { exports: {} };
  process.dlopen(addon, join(sqlite, 'build', 'Release', 'better_sqlite3.node'));
  const Database = require(join(sqlite, 'lib', 'database.js'));
  return new Database(join(dir, 'floor.db'), { ...options, nativeBinding: addon.exports });
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
  new crypto.X509Certificate(caPem);
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
else {
  process.stderr.write(
    'usage: node bench/floor.cjs print | prepare DIR SQLITE | issue DIR SQLITE CA NAME | list DIR SQLITE\n',
  );
  process.exitCode = 2;
}
