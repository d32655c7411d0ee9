// CRLs on an inventory several homes share (issue 12): one publisher at a time (a PostgreSQL advisory lock
// around number, signature, files and record), and every home serving the newest CRL another one published,
// after checking its signatures. Two homes with the same CA files on a real PostgreSQL (test/postgres.js);
// CRLs read back with openssl.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { BIN, mcpki, mcpkiAsync, run, tempDir } from './helpers.js';
import { startPostgres, hasPostgres, postgresMissingReason } from './postgres.js';
import { freePorts } from './pebble.js';
import pgClient from 'pg';
import { createContext, generateCrl } from '../dist/index.js';
import { lockKey } from '../dist/store/postgres.js';

const skip = hasPostgres() ? false : postgresMissingReason();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function openssl(args, input) {
  const r = run('openssl', args, input === undefined ? {} : { input });
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** The cRLNumber of the first CRL in a PEM file (the intermediate's), as openssl reads it, in decimal. */
function crlNumber(path) {
  const text = openssl(['crl', '-in', path, '-noout', '-crlnumber']);
  const hex = /crlNumber=(?:0x)?([0-9A-Fa-f]+)/.exec(text)?.[1];
  assert.ok(hex, text);
  return BigInt(`0x${hex}`);
}

/** The serials (upper-case hex) the first CRL of a PEM file lists, as openssl reads them. */
function crlSerials(path) {
  const text = openssl(['crl', '-in', path, '-noout', '-text']);
  return [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1].replace(/^0+/, ''));
}

/** The serial (upper-case hex, no leading zeros) of a certificate in the inventory. */
function serialOf(home, name) {
  const r = mcpki(['--home', home.home, 'show', name, '--json'], { env: home.env });
  assert.equal(r.status, 0, r.stderr);
  return r.json.certificate.serial.toUpperCase().replace(/^0+/, '');
}

/** Issues NAME on a home and revokes it; returns its serial. */
function issueAndRevoke(home, name) {
  const issued = mcpki(['--home', home.home, 'issue', 'server', name, `${name}.localhost`], { env: home.env });
  assert.equal(issued.status, 0, issued.stderr);
  const serial = serialOf(home, name);
  const revoked = mcpki(['--home', home.home, 'revoke', name], { env: home.env });
  assert.equal(revoked.status, 0, revoked.stderr);
  return serial;
}

async function waitFor(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Two homes (a, b) with the same CA files, on one inventory. */
function twoHomes(dir, store) {
  const env = { MCPKI_STORE: store };
  const homes = ['a', 'b'].map((id) => ({ id, home: join(dir, id), env }));
  const init = mcpki(['--home', homes[0].home, 'init'], { env });
  assert.equal(init.status, 0, init.stderr);
  mkdirSync(homes[1].home, { mode: 0o700 });
  cpSync(join(homes[0].home, 'ca'), join(homes[1].home, 'ca'), { recursive: true });
  return homes;
}

describe('CRLs on a shared PostgreSQL inventory', { skip }, () => {
  let pg;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  test('20 concurrent "mcpki crl" across two homes: the shared --out file never goes back', async (t) => {
    const temp = tempDir('mcpki-crl-shared-');
    t.after(temp.cleanup);
    const url = await pg.createDatabase('crl_concurrent');
    const homes = twoHomes(temp.dir, url);
    // some revocations, so each CRL takes a little signing
    for (let i = 0; i < 6; i++) {
      const home = homes[i % 2];
      const issued = mcpki(['--home', home.home, 'issue', 'server', `r${i}`, `r${i}.localhost`], { env: home.env });
      assert.equal(issued.status, 0, issued.stderr);
      assert.equal(mcpki(['--home', home.home, 'revoke', `r${i}`], { env: home.env }).status, 0);
    }
    // and 5,000 more, made in SQL: the CRL of a CA that has revoked much (signing and writing take a while)
    await pg.query(
      `INSERT INTO certificates (name, kind, serial, subject, sans, issuer, issuer_serial, profile, key_type, not_before,
         not_after, fingerprint, status, revoked_at, revocation_reason, pem, paths, created_at)
       SELECT 'bulk-' || g, kind, '7' || substr(upper(md5(g::text)), 2), subject, sans, issuer, issuer_serial, profile,
         key_type, not_before, not_after, fingerprint, status, revoked_at, revocation_reason, pem, paths, created_at
       FROM certificates, generate_series(1, 5000) g WHERE name = 'r0'`,
      [],
      'crl_concurrent',
    );
    const shared = join(temp.dir, 'shared-crl.pem');
    // every change of the shared file, read as it happens (renames are atomic: each read is a whole file)
    const seen = [];
    let watching = true;
    const watcher = (async () => {
      let last = '';
      while (watching) {
        if (existsSync(shared)) {
          const text = readFileSync(shared, 'utf8');
          if (text !== last) {
            last = text;
            seen.push(text);
          }
        }
        await sleep(1);
      }
    })();
    const afterEach = [];
    const times = [];
    const runs = Array.from({ length: 20 }, (_, i) => {
      const home = homes[i % 2];
      const started = Date.now();
      return mcpkiAsync(['--home', home.home, 'crl', '--out', shared, '--json'], { env: home.env }).then((r) => {
        times.push(Date.now() - started);
        // after each publication: the file holds a number at least as high as any seen before
        afterEach.push(crlNumber(shared));
        return r;
      });
    });
    const results = await Promise.all(runs);
    watching = false;
    await watcher;
    for (const r of results) assert.equal(r.status, 0, r.stderr + r.stdout);
    const outcomes = results.map((r) => JSON.parse(r.stdout));
    const signed = outcomes.filter((o) => o.source === 'signed').map((o) => BigInt(o.number));
    assert.ok(signed.length >= 1);
    assert.equal(new Set(signed).size, signed.length, `each signed number once: ${signed}`);
    // a copied CRL is one that another home signed
    for (const o of outcomes.filter((o) => o.source === 'copied')) assert.ok(signed.includes(BigInt(o.number)));
    const highest = signed.reduce((a, b) => (b > a ? b : a));
    for (let i = 1; i < afterEach.length; i++)
      assert.ok(afterEach[i] >= afterEach[i - 1], `went back after a publication: ${afterEach.join(', ')}`);
    // every version of the file seen, in order, had a higher number than the one before
    const numbers = seen.map((text) => {
      const path = join(temp.dir, 'seen.pem');
      writeFileSync(path, text);
      return crlNumber(path);
    });
    for (let i = 1; i < numbers.length; i++)
      assert.ok(numbers[i] > numbers[i - 1], `the shared file went from #${numbers[i - 1]} to #${numbers[i]}`);
    assert.equal(crlNumber(shared), highest);
    for (const home of homes) assert.ok(crlNumber(join(home.home, 'ca', 'crl.pem')) <= highest);
    // the file lists all 5,006 revocations, signed by the CA (openssl checks the signature with -CAfile)
    assert.equal(crlSerials(shared).length, 5_006);
    const chain = join(temp.dir, 'chain.pem');
    writeFileSync(
      chain,
      readFileSync(join(homes[0].home, 'ca', 'intermediate.crt'), 'utf8') +
        readFileSync(join(homes[0].home, 'ca', 'root.crt'), 'utf8'),
    );
    assert.match(run('openssl', ['crl', '-in', shared, '-noout', '-CAfile', chain]).stderr, /verify OK/);
    t.diagnostic(
      `longest run ${Math.max(...times)} ms; signed ${signed.length}, copied ${outcomes.length - signed.length}, versions seen ${numbers.length}`,
    );
  });

  test('a revocation published on home a is served by home b at its next check without a number of its own; a forged row is refused', async (t) => {
    const temp = tempDir('mcpki-crl-follow-');
    t.after(temp.cleanup);
    const db = 'crl_follow';
    const url = await pg.createDatabase(db);
    const [a, b] = twoHomes(temp.dir, url);
    const counter = async () =>
      (await pg.query(`SELECT value FROM settings WHERE key = 'crl_number'`, [], db)).rows[0]?.value;
    // home b keeps the CRL published per its mcpki.yaml: a copy and a reload hook
    const copy = join(temp.dir, 'b-deploy', 'crl.pem');
    const log = join(temp.dir, 'b-reloads.log');
    const hook = join(temp.dir, 'b-reload.sh');
    writeFileSync(hook, `#!/bin/sh\necho "$MCPKI_CRL_NUMBER" >> ${log}\n`);
    chmodSync(hook, 0o755);
    const config = join(temp.dir, 'b.yaml');
    writeFileSync(
      config,
      `version: 1\ncertificates: []\ncrl:\n  targets:\n    - { path: ${copy} }\n  hooks:\n    reload: [[${hook}]]\n`,
    );
    const check = () => {
      const r = mcpki(['--home', b.home, 'apply', '--config', config, '--json'], { env: b.env });
      assert.ok(r.json, r.stderr + r.stdout);
      return r.json.crl;
    };
    const bCrl = join(b.home, 'ca', 'crl.pem');

    const first = mcpki(['--home', a.home, 'crl', '--json'], { env: a.env });
    assert.equal(first.status, 0, first.stderr);
    assert.deepEqual([first.json.number, first.json.source, first.json.shared], ['1', 'signed', true]);
    let crl = check();
    assert.equal(crl.action, 'deployed', JSON.stringify(crl));
    assert.deepEqual(crl.copied, { number: '1', previous: '0' });
    assert.equal(crlNumber(bCrl), 1n);

    // revoked and published on a: b's next check serves it, and signs nothing
    const x = issueAndRevoke(a, 'x');
    const second = mcpki(['--home', a.home, 'crl'], { env: a.env });
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /wrote CRL #2 .*: signed here, a new number/);
    assert.equal(await counter(), '2');
    // the dry run says what the check will do, and does nothing
    const dry = mcpki(['--home', b.home, 'renew', '--dry-run', '--config', config, '--json'], { env: b.env });
    assert.equal(dry.json?.crl?.code, 'newer', dry.stdout + dry.stderr);
    assert.match(dry.json.crl.reason, /CRL #2, stored by another home of the inventory, is newer than this home's #1/);
    assert.equal(crlNumber(bCrl), 1n);
    crl = check();
    assert.equal(crl.action, 'deployed', JSON.stringify(crl));
    assert.equal(crl.code, 'newer');
    assert.deepEqual(crl.copied, { number: '2', previous: '1' });
    assert.equal(crlNumber(bCrl), 2n);
    assert.deepEqual(crlSerials(bCrl), [x]);
    assert.equal(readFileSync(copy, 'utf8'), readFileSync(bCrl, 'utf8'));
    assert.equal(readFileSync(copy, 'utf8'), readFileSync(join(a.home, 'ca', 'crl.pem'), 'utf8'));
    assert.equal(await counter(), '2', 'no number signed on b');
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['1', '2']);
    // checked again: nothing to do
    assert.equal(check().action, 'unchanged');

    // revoked on a but not published: the newest stored CRL does not list it, so b's check signs #3
    const y = issueAndRevoke(a, 'y');
    crl = check();
    assert.equal(crl.action, 'published', JSON.stringify(crl));
    assert.equal(crl.number, '3');
    assert.deepEqual(crlSerials(bCrl).sort(), [x, y].sort());

    // a CRL row edited in the inventory (its signature no longer verifies) is refused; b keeps its good file
    const fourth = mcpki(['--home', a.home, 'crl'], { env: a.env });
    assert.equal(fourth.status, 0, fourth.stderr);
    const { pem } = (await pg.query('SELECT pem FROM crls WHERE number = 4', [], db)).rows[0];
    const der = Buffer.from(pem.split('-----')[2].replace(/\s+/g, ''), 'base64');
    der[der.length - 1] ^= 0x01; // the last byte of the signature
    const edited = `-----BEGIN X509 CRL-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END X509 CRL-----\n${pem
      .split(/-----END X509 CRL-----\n/)
      .slice(1)
      .join('-----END X509 CRL-----\n')}`;
    await pg.query('UPDATE crls SET pem = $1 WHERE number = 4', [edited], db);
    const good = readFileSync(bCrl);
    crl = check();
    assert.equal(crl.action, 'failed', JSON.stringify(crl));
    assert.equal(crl.error.code, 'STORE_CORRUPT');
    assert.match(crl.error.message, /the newest CRL in the inventory \(#4\) is refused: .*wrong signature/);
    assert.deepEqual(readFileSync(bCrl), good);
    assert.equal(crlNumber(bCrl), 3n);
    const refused = mcpki(['--home', b.home, 'crl'], { env: b.env });
    assert.equal(refused.status, 7, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /#4\) is refused/);
    assert.deepEqual(readFileSync(bCrl), good);
  });

  test('mcpki acme-server on home b follows the CRL home a publishes within seconds, and serves it at GET /crl', async (t) => {
    const temp = tempDir('mcpki-crl-acme-');
    t.after(temp.cleanup);
    const db = 'crl_acme';
    const url = await pg.createDatabase(db);
    const [a, b] = twoHomes(temp.dir, url);
    const [port, httpPort] = await freePorts(2);
    const child = spawn(
      process.execPath,
      [
        BIN,
        '--home',
        b.home,
        '--json',
        'acme-server',
        '--listen',
        `127.0.0.1:${port}`,
        '--http-port',
        String(httpPort),
      ],
      { env: { ...process.env, NO_COLOR: '1', ...b.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    t.after(async () => {
      child.kill('SIGTERM');
      await exited;
    });
    await waitFor('the ACME server to start', () => /director/.test(output));
    const root = readFileSync(join(b.home, 'ca', 'root.crt'));
    const get = (method = 'GET') =>
      new Promise((resolve, reject) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port, path: '/crl', method, servername: 'localhost', ca: root, agent: false },
          (res) => {
            const chunks = [];
            res.on('data', (d) => chunks.push(d));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    assert.equal((await get()).status, 404, 'nothing published yet');

    const z = issueAndRevoke(a, 'z');
    const published = mcpki(['--home', a.home, 'crl', '--json'], { env: a.env });
    assert.equal(published.status, 0, published.stderr);
    const number = BigInt(published.json.number);
    const bCrl = join(b.home, 'ca', 'crl.pem');
    const started = Date.now();
    await waitFor('home b to serve the new CRL', () => existsSync(bCrl) && crlNumber(bCrl) === number, 20_000);
    t.diagnostic(`followed in ${Date.now() - started} ms`);
    const response = await get();
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-type'], 'application/pkix-crl');
    const derFile = join(temp.dir, 'served.crl');
    writeFileSync(derFile, response.body);
    const text = openssl(['crl', '-inform', 'DER', '-in', derFile, '-noout', '-crlnumber', '-text']);
    assert.match(text, new RegExp(`crlNumber=(0x)?0*${number.toString(16)}\\b`, 'i'));
    assert.match(text, new RegExp(`Serial Number: 0*${z}`));
    const chain = join(temp.dir, 'chain.pem');
    writeFileSync(chain, readFileSync(join(b.home, 'ca', 'intermediate.crt'), 'utf8') + root.toString('utf8'));
    assert.match(
      run('openssl', ['crl', '-inform', 'DER', '-in', derFile, '-noout', '-CAfile', chain]).stderr,
      /verify OK/,
    );
    assert.equal((await get('HEAD')).status, 200);
    // no number was signed on b
    assert.equal(
      (await pg.query(`SELECT value FROM settings WHERE key = 'crl_number'`, [], db)).rows[0].value,
      number.toString(),
    );
  });

  test('a publisher that cannot get the lock in time fails with STORE_BUSY and writes nothing; one that waits publishes once it is free', async (t) => {
    const temp = tempDir('mcpki-crl-lock-');
    t.after(temp.cleanup);
    const db = 'crl_lock';
    const url = await pg.createDatabase(db);
    const [a, b] = twoHomes(temp.dir, url);
    assert.equal(mcpki(['--home', a.home, 'crl'], { env: a.env }).status, 0);
    // another publisher, on another host: the lock of this inventory (schema public), held by its session
    const holder = new pgClient.Client({ connectionString: url });
    await holder.connect();
    t.after(() => holder.end());
    await holder.query('SELECT pg_advisory_lock($1, $2)', [0x6d63706b, lockKey('public:publish:crl')]);
    const aCrl = join(a.home, 'ca', 'crl.pem');
    const before = readFileSync(aCrl);
    const context = createContext({ home: a.home, store: url });
    t.after(() => context.existingStore()?.close());
    const started = Date.now();
    assert.throws(
      () => generateCrl(context, { lockWaitMs: 1000 }),
      (error) =>
        error.code === 'STORE_BUSY' &&
        /another mcpki process kept publishing the CRL of the inventory .* for 1 s/.test(error.message),
    );
    const waited = Date.now() - started;
    assert.ok(waited >= 1000 && waited < 10_000, `waited ${waited} ms`);
    assert.deepEqual(readFileSync(aCrl), before, 'nothing written');
    // the command line waits (up to 60 s) and publishes as soon as the lock is free
    let done = false;
    const waiting = mcpkiAsync(['--home', b.home, 'crl', '--json'], { env: b.env }).then((r) => {
      done = true;
      return r;
    });
    await sleep(3000);
    assert.equal(done, false, 'waits while the lock is held');
    await holder.query('SELECT pg_advisory_unlock($1, $2)', [0x6d63706b, lockKey('public:publish:crl')]);
    const r = await waiting;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).number, '2');
    assert.equal(crlNumber(join(b.home, 'ca', 'crl.pem')), 2n);
  });
});

test('GET /crl on an ACME server whose inventory is the home SQLite file: the CRL "mcpki crl" wrote, DER', async (t) => {
  const temp = tempDir('mcpki-crl-get-');
  t.after(temp.cleanup);
  const home = join(temp.dir, 'home');
  const env = { MCPKI_STORE: 'sqlite' };
  assert.equal(mcpki(['--home', home, 'init'], { env }).status, 0);
  const [port, httpPort] = await freePorts(2);
  const child = spawn(
    process.execPath,
    [BIN, '--home', home, '--json', 'acme-server', '--listen', `127.0.0.1:${port}`, '--http-port', String(httpPort)],
    { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    child.kill('SIGTERM');
    await exited;
  });
  await waitFor('the ACME server to start', () => /director/.test(output));
  const root = readFileSync(join(home, 'ca', 'root.crt'));
  const get = () =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port, path: '/crl', servername: 'localhost', ca: root, agent: false },
        (res) => {
          const chunks = [];
          res.on('data', (d) => chunks.push(d));
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  const none = await get();
  assert.equal(none.status, 404);
  assert.equal(none.headers['content-type'], 'application/problem+json');
  const x = issueAndRevoke({ home, env }, 'x');
  for (const expected of [1n, 2n]) {
    const r = mcpki(['--home', home, 'crl'], { env });
    assert.equal(r.status, 0, r.stderr);
    const response = await get();
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-type'], 'application/pkix-crl');
    const derFile = join(temp.dir, 'served.crl');
    writeFileSync(derFile, response.body);
    const text = openssl(['crl', '-inform', 'DER', '-in', derFile, '-noout', '-crlnumber', '-text']);
    assert.match(text, new RegExp(`crlNumber=(0x)?0*${expected.toString(16)}\\b`, 'i'));
    assert.match(text, new RegExp(`Serial Number: 0*${x}`));
  }
});
