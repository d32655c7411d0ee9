// CRLs on an inventory several homes share (issue 12): one publisher at a time (a PostgreSQL advisory lock
// around number, signature, files and record), and every home serving the newest CRL another one published,
// after checking its signatures. Two homes with the same CA files on a real PostgreSQL (test/postgres.js);
// CRLs read back with openssl.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mcpki, mcpkiAsync, run, tempDir } from './helpers.js';
import { startPostgres, hasPostgres, postgresMissingReason } from './postgres.js';

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
});
