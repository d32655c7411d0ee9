// Hostile cases: the CA's own files (swapped, replaced, garbage, empty, special files), the inventory
// (emptied, deleted, a FIFO, a symlink, restored from a hostile copy) and the CRL's --out path.
import assert from 'node:assert/strict';
import {
  copyFileSync,
  linkSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { mcpki, run, tempDir } from '../helpers.js';
import { EXIT, PASSPHRASE, asNobody, lit } from './harness.js';
import { crlKeyIdOf } from '../../dist/pki/crl.js';
import { generateKey, signatureAlgorithmFor } from '../../dist/pki/keys.js';
import { readCertificate, signCrl } from '../../dist/pki/x509.js';

const pemDer = (pem) => Buffer.from(pem.replace(/-----[^-]+-----|\s+/g, ''), 'base64');
const derPem = (label, der) =>
  `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)
    .join('\n')}\n-----END ${label}-----\n`;

// A second, unrelated CA whose files are swapped in (made once, on first use).
let other;
function otherCa(name) {
  if (!other) {
    other = tempDir('mcpki-hostile-other-');
    process.on('exit', other.cleanup);
    const made = mcpki(['--home', join(other.dir, 'home'), 'init']);
    assert.equal(made.status, 0, made.stderr);
  }
  return join(other.dir, 'home', name);
}

const ca = (ctx, name) => join(ctx.home, 'ca', name);
const swap =
  (name, from = name) =>
  (ctx) =>
    copyFileSync(otherCa(join('ca', from)), ca(ctx, name));
const put = (name, content) => (ctx) => writeFileSync(ca(ctx, name), content);
const replaceWith = (name, make) => (ctx) => {
  rmSync(ca(ctx, name));
  make(ca(ctx, name));
};
const mkfifo = (path) => assert.equal(run('mkfifo', [path]).status, 0);
const sqlite = (db, sql) => {
  const result = run('python3', [
    '-c',
    'import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(sys.argv[2])\nc.commit()',
    db,
    sql,
  ]);
  assert.equal(result.status, 0, result.stderr);
};
const removeInventory = (ctx) => {
  for (const suffix of ['', '-wal', '-shm']) rmSync(join(ctx.home, `mcpki.db${suffix}`), { force: true });
};

const RESTORE_HINT = /restore the CA files from a backup/;
const STORE_HINT = /mcpki inventory restore/;

export const CASES = [
  // --- CA material (item 2, 18) ----------------------------------------------------------------------
  {
    title: "ca: intermediate.crt swapped for another CA's (issue server)",
    setup: swap('intermediate.crt'),
    args: ['issue', 'server', 'web', 'web.localhost'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: [/intermediate .*intermediate\.crt was not issued by the root/, /mcpki development root/],
    hint: RESTORE_HINT,
    json: true,
  },
  {
    title: 'ca: intermediate.crt and intermediate.key both from another CA (issue client)',
    setup: (ctx) => {
      swap('intermediate.crt')(ctx);
      swap('intermediate.key')(ctx);
    },
    args: ['issue', 'client', 'agent', 'agent@x.localhost'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /was not issued by the root/,
    hint: RESTORE_HINT,
    json: true,
  },
  {
    title: "ca: root.crt replaced by another CA's root (crl)",
    setup: swap('root.crt'),
    args: ['crl'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /was not issued by the root .*root\.crt/,
    hint: RESTORE_HINT,
    json: true,
  },
  {
    title: 'ca: intermediate.key of another CA (crl)',
    setup: swap('intermediate.key'),
    args: ['crl'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /intermediate key .*intermediate\.key does not match .*intermediate\.crt/,
    hint: RESTORE_HINT,
  },
  {
    title: 'ca: empty intermediate.crt (issue server)',
    setup: put('intermediate.crt', ''),
    args: ['issue', 'server', 'web', 'web.localhost'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /intermediate certificate .*intermediate\.crt is empty/,
    hint: RESTORE_HINT,
    json: true,
  },
  {
    title: 'ca: empty root.crt (ca show)',
    setup: put('root.crt', '\n'),
    args: ['ca', 'show'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /root certificate .*root\.crt is empty/,
    hint: RESTORE_HINT,
  },
  {
    title: 'ca: garbage root.crt (issue server)',
    setup: put('root.crt', 'hello, I am not a certificate\n'),
    args: ['issue', 'server', 'web', 'web.localhost'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /root\.crt holds no PEM certificate/,
    hint: RESTORE_HINT,
  },
  {
    title: 'ca: a damaged PEM block in intermediate.crt (crl)',
    setup: put('intermediate.crt', '-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n'),
    args: ['crl'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /intermediate\.crt is not a valid certificate/,
    hint: RESTORE_HINT,
  },
  {
    title: 'ca: two certificates in intermediate.crt (issue server)',
    setup: (ctx) =>
      writeFileSync(
        ca(ctx, 'intermediate.crt'),
        readFileSync(ca(ctx, 'intermediate.crt'), 'utf8') + readFileSync(otherCa('ca/intermediate.crt'), 'utf8'),
      ),
    args: ['issue', 'server', 'web', 'web.localhost'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /intermediate\.crt holds 2 certificates, expected one/,
    hint: RESTORE_HINT,
  },
  {
    title: 'ca: a leaf certificate and its key in place of the intermediate (issue server)',
    setup: (ctx) => {
      const leaf = mcpki([
        '--home',
        ctx.home,
        '--json',
        'issue',
        'server',
        'leaf',
        'leaf.localhost',
        '--out',
        join(ctx.work, 'leaf'),
      ]).json;
      copyFileSync(leaf.paths.cert, ca(ctx, 'intermediate.crt'));
      copyFileSync(leaf.paths.key, ca(ctx, 'intermediate.key'));
    },
    args: ['issue', 'server', 'web', 'web.localhost'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /intermediate\.crt is not a CA certificate/,
    hint: RESTORE_HINT,
  },
  {
    title: 'ca: intermediate.crt is a FIFO (issue server does not hang)',
    setup: replaceWith('intermediate.crt', mkfifo),
    args: ['issue', 'server', 'web', 'web.localhost'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /intermediate\.crt is a FIFO, not a regular file/,
    hint: RESTORE_HINT,
    timeout: 20_000,
  },
  {
    title: 'ca: root.crt is a symlink to /dev/zero (ca show does not exhaust memory)',
    setup: replaceWith('root.crt', (path) => symlinkSync('/dev/zero', path)),
    args: ['ca', 'show'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /root\.crt is a character device, not a regular file/,
    hint: RESTORE_HINT,
    timeout: 20_000,
  },
  {
    title: 'ca: intermediate.crt is a folder (crl)',
    setup: replaceWith('intermediate.crt', (path) => mkdirSync(path)),
    args: ['crl'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /intermediate\.crt is a folder/,
    hint: RESTORE_HINT,
  },
  {
    title: "ca: rotate-intermediate with another CA's root key retires nothing",
    setup: swap('root.key'),
    args: ['ca', 'rotate-intermediate'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /root key .*root\.key does not match .*root\.crt/,
    hint: /nothing was changed/,
    json: true,
  },
  {
    title: 'ca: rotate-intermediate of an encrypted root whose key was replaced by a plain foreign one',
    home: 'enc',
    setup: swap('root.key'),
    args: ['ca', 'rotate-intermediate'],
    env: { MCPKI_ROOT_PASSPHRASE: PASSPHRASE },
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /root key .*root\.key does not match/,
    hint: /nothing was changed/,
  },
  {
    title: 'ca: a retired intermediate whose archived key was swapped (crl)',
    setup: (ctx) => {
      assert.equal(mcpki(['--home', ctx.home, 'ca', 'rotate-intermediate']).status, 0);
      const retired = join(ctx.home, 'ca', 'retired');
      const key = run('sh', ['-c', `ls ${retired}/*.key`]).stdout.trim();
      copyFileSync(otherCa('ca/intermediate.key'), key);
    },
    args: ['crl'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /retired intermediate .*intermediate-[0-9A-F]+\.crt is unusable: .*does not match it/,
    hint: /move both out of/,
  },

  // --- the inventory (item 3) ---------------------------------------------------------------------------
  {
    title: 'inventory: mcpki.db emptied (: > mcpki.db), crl refuses instead of starting afresh',
    setup: (ctx) => writeFileSync(join(ctx.home, 'mcpki.db'), ''),
    args: ['crl'],
    status: EXIT.STORE,
    code: 'STORE_MISSING',
    message: [/mcpki\.db is empty \(0 bytes\)/, /holds a CA/],
    hint: STORE_HINT,
    json: true,
  },
  {
    title: 'inventory: mcpki.db deleted, issue refuses instead of starting afresh',
    setup: removeInventory,
    args: ['issue', 'server', 'web', 'web.localhost'],
    status: EXIT.STORE,
    code: 'STORE_MISSING',
    message: /mcpki\.db is missing/,
    hint: STORE_HINT,
    json: true,
  },
  {
    title: 'inventory: mcpki.db deleted, list does not pretend there are no certificates',
    setup: removeInventory,
    args: ['list'],
    status: EXIT.STORE,
    code: 'STORE_MISSING',
    message: /mcpki\.db is missing/,
    hint: STORE_HINT,
  },
  {
    title: 'inventory: mcpki.db emptied, revoke refuses',
    setup: (ctx) => writeFileSync(join(ctx.home, 'mcpki.db'), ''),
    args: ['revoke', 'web'],
    status: EXIT.STORE,
    code: 'STORE_MISSING',
    message: /mcpki\.db is empty/,
    hint: STORE_HINT,
  },
  {
    title: 'inventory: mcpki.db deleted, ca rotate-intermediate refuses before changing the CA',
    setup: removeInventory,
    args: ['ca', 'rotate-intermediate'],
    status: EXIT.STORE,
    code: 'STORE_MISSING',
    message: /mcpki\.db is missing/,
    hint: STORE_HINT,
  },
  {
    title: 'inventory: mcpki.db is a FIFO (list does not hang)',
    setup: (ctx) => {
      removeInventory(ctx);
      mkfifo(join(ctx.home, 'mcpki.db'));
    },
    args: ['list'],
    status: EXIT.STORE,
    code: 'STORE_CORRUPT',
    message: /mcpki\.db is a FIFO, not a regular file/,
    hint: /mcpki inventory restore/,
    timeout: 20_000,
  },
  {
    title: 'inventory: mcpki.db is a symlink to a file another user made',
    world: true,
    setup: (ctx) => {
      asNobody(
        'sh',
        ['-c', `cp ${join(ctx.home, 'mcpki.db')} ${ctx.public}/evil.db 2>/dev/null || : > ${ctx.public}/evil.db`],
        { mayFail: true },
      );
      removeInventory(ctx);
      symlinkSync(join(ctx.public, 'evil.db'), join(ctx.home, 'mcpki.db'));
    },
    args: ['list'],
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
    message: /mcpki\.db: .*is a symlink/,
  },
  {
    title: 'inventory restore: a garbage file',
    setup: (ctx) => writeFileSync(join(ctx.work, 'copy.db'), Buffer.alloc(8192, 0xa5)),
    args: (ctx) => ['inventory', 'restore', join(ctx.work, 'copy.db')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: [lit('copy.db'), /is not a usable mcpki inventory/],
    json: true,
  },
  {
    title: 'inventory restore: a FIFO (does not hang)',
    setup: (ctx) => mkfifo(join(ctx.work, 'copy.db')),
    args: (ctx) => ['inventory', 'restore', join(ctx.work, 'copy.db')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: /copy\.db is a FIFO, not a regular file/,
    timeout: 20_000,
  },
  {
    title: "inventory restore: an intact copy of another CA's inventory",
    setup: (ctx) => copyFileSync(otherCa('mcpki.db'), join(ctx.work, 'copy.db')),
    args: (ctx) => ['inventory', 'restore', join(ctx.work, 'copy.db')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: /copy\.db is not a usable mcpki inventory: it belongs to another CA/,
  },
  {
    title: 'inventory restore: a copy another user planted',
    world: true,
    setup: (ctx) => {
      copyFileSync(join(ctx.home, 'mcpki.db'), join(ctx.work, 'mine.db'));
      run('chmod', ['644', join(ctx.work, 'mine.db')]);
      asNobody('cp', [join(ctx.work, 'mine.db'), join(ctx.public, 'copy.db')]);
      rmSync(join(ctx.work, 'mine.db'));
    },
    args: (ctx) => ['inventory', 'restore', join(ctx.public, 'copy.db')],
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
    message: /copy\.db: it is owned by uid \d+/,
    json: true,
  },
  {
    title: 'inventory restore: a hard link to the inventory itself',
    setup: (ctx) => linkSync(join(ctx.home, 'mcpki.db'), join(ctx.work, 'copy.db')),
    args: (ctx) => ['inventory', 'restore', join(ctx.work, 'copy.db')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: /copy\.db is the inventory itself \(a hard link/,
    json: true,
  },
  {
    title: 'inventory restore: a sparse 3 GB file is refused at once, never copied into the home',
    setup: (ctx) => {
      // outside the case folder, whose snapshot would read it
      const outside = tempDir('mcpki-hostile-huge-');
      process.on('exit', outside.cleanup);
      ctx.huge = join(outside.dir, 'huge.db');
      writeFileSync(ctx.huge, '');
      truncateSync(ctx.huge, 3 * 1024 ** 3);
    },
    args: (ctx) => ['inventory', 'restore', ctx.huge],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: /huge\.db is 3221225472 bytes; the limit for an inventory is/,
    timeout: 20_000,
  },
  {
    title: 'inventory restore: a FIFO in place of root.crt does not hang the match with this CA',
    setup: (ctx) => {
      copyFileSync(join(ctx.home, 'mcpki.db'), join(ctx.work, 'copy.db'));
      rmSync(ca(ctx, 'root.crt'));
      mkfifo(ca(ctx, 'root.crt'));
    },
    args: (ctx) => ['inventory', 'restore', join(ctx.work, 'copy.db')],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /root\.crt is a FIFO, not a regular file/,
    timeout: 20_000,
  },
  {
    title: 'inventory restore: a symlink instead of the copy',
    setup: (ctx) => symlinkSync(join(ctx.home, 'mcpki.db'), join(ctx.work, 'copy.db')),
    args: (ctx) => ['inventory', 'restore', join(ctx.work, 'copy.db')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: /copy\.db is a symlink, not a regular file/,
  },
  {
    title: 'inventory restore: no copy in HOME/backups',
    home: 'empty',
    args: ['inventory', 'restore'],
    status: EXIT.NOT_FOUND,
    code: 'NOT_FOUND',
    message: /no copy of the inventory in .*backups/,
    hint: /inventory restore FILE/,
  },
  {
    title: 'inventory restore: refused while an apply holds the home',
    setup: (ctx) =>
      sqlite(
        join(ctx.home, 'mcpki.db'),
        `INSERT INTO locks (name, pid, host, acquired_at) VALUES ('apply', ${process.pid}, '${hostname()}', '2030-01-01T00:00:00Z')`,
      ),
    args: ['inventory', 'restore'],
    status: EXIT.SERVICE,
    code: 'SERVICE_RUNNING',
    message: /mcpki apply \(pid \d+ .*holds the lock/,
    hint: /wait for it to finish or stop it/,
  },

  {
    title: 'crl: a FIFO in place of the published crl.pem is replaced, never read (no hang)',
    setup: (ctx) => mkfifo(ca(ctx, 'crl.pem')),
    args: ['--json', 'crl'],
    status: 0,
    timeout: 20_000,
    check: (ctx, result) => {
      assert.equal(JSON.parse(result.stdout).number, '1');
      assert.ok(statSync(ca(ctx, 'crl.pem')).isFile());
    },
  },
  {
    title: 'crl: a garbage root-crl.pem is signed again instead of being published',
    setup: put('root-crl.pem', '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'),
    args: ['--json', 'crl'],
    status: 0,
    check: (ctx, result) => {
      const out = JSON.parse(result.stdout);
      assert.equal(out.includesRoot, true);
      const text = run('openssl', ['crl', '-in', ca(ctx, 'root-crl.pem'), '-noout', '-issuer']);
      assert.equal(text.status, 0, text.stderr);
      assert.match(text.stdout, /mcpki development root/);
    },
  },

  {
    title: 'crl: a root-crl.pem of this root whose signature does not verify is signed again, never published',
    setup: (ctx) => {
      const der = pemDer(readFileSync(ca(ctx, 'root-crl.pem'), 'utf8'));
      der[der.length - 1] ^= 0x01; // the last byte of the signature
      writeFileSync(ca(ctx, 'root-crl.pem'), derPem('X509 CRL', der));
      ctx.forged = readFileSync(ca(ctx, 'root-crl.pem'), 'utf8');
    },
    args: ['--json', 'crl'],
    status: 0,
    check: (ctx, result) => {
      assert.equal(JSON.parse(result.stdout).includesRoot, true);
      assert.notEqual(readFileSync(ca(ctx, 'root-crl.pem'), 'utf8'), ctx.forged);
      assert.ok(!readFileSync(ca(ctx, 'crl.pem'), 'utf8').includes(ctx.forged.trim()), 'the forged CRL was published');
      const verified = run('openssl', [
        'crl',
        '-in',
        ca(ctx, 'root-crl.pem'),
        '-CAfile',
        ca(ctx, 'root.crt'),
        '-noout',
      ]);
      assert.match(verified.stdout + verified.stderr, /verify OK/);
    },
  },
  {
    title: "crl: a forged crl.pem (this intermediate's name and key id, another key) cannot push the CRL number up",
    setup: (ctx) => {
      const intermediate = pemDer(readFileSync(ca(ctx, 'intermediate.crt'), 'utf8'));
      const parts = readCertificate(intermediate);
      const forger = generateKey('ec-p256');
      const der = signCrl(
        {
          issuer: parts.subject,
          authorityKeyId: Buffer.from(crlKeyIdOf(intermediate), 'hex'),
          number: 1_000_000n,
          thisUpdate: new Date(),
          nextUpdate: new Date(Date.now() + 86_400_000),
          revoked: [],
        },
        signatureAlgorithmFor(forger.privateKey),
      );
      writeFileSync(ca(ctx, 'crl.pem'), derPem('X509 CRL', der));
    },
    args: ['--json', 'crl'],
    status: 0,
    check: (ctx, result) => assert.equal(JSON.parse(result.stdout).number, '1'),
  },

  // --- the root as check, trust and the templates read it: through the CA loader --------------------
  {
    title: 'check: a garbage root.crt is CA_CORRUPT, not a missing trust anchor',
    setup: put('root.crt', 'not a certificate\n'),
    args: (ctx) => ['check', ca(ctx, 'intermediate.crt')],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /root certificate .*root\.crt holds no PEM certificate/,
    hint: RESTORE_HINT,
    json: true,
  },
  {
    title: "check: root.crt replaced by another CA's root",
    setup: swap('root.crt'),
    args: (ctx) => ['check', ca(ctx, 'intermediate.crt')],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /was not issued by the root .*root\.crt/,
    hint: RESTORE_HINT,
  },
  {
    title: "trust status: root.crt replaced by another CA's root",
    setup: swap('root.crt'),
    args: ['trust', 'status'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /was not issued by the root .*root\.crt/,
    hint: RESTORE_HINT,
    json: true,
  },
  {
    title: 'trust status: an empty root.crt',
    setup: put('root.crt', ''),
    args: ['trust', 'status'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /root\.crt is empty/,
    hint: RESTORE_HINT,
  },
  {
    title: "template render (a template that trusts ca): root.crt replaced by another CA's root",
    setup: (ctx) => {
      const issued = mcpki(['--home', ctx.home, 'issue', 'server', 'web', 'web.localhost']);
      assert.equal(issued.status, 0, issued.stderr);
      assert.equal(mcpki(['--home', ctx.home, 'crl']).status, 0);
      swap('root.crt')(ctx);
    },
    args: ['template', 'render', 'nginx/mcp-mtls.conf', '--cert', 'web'],
    status: EXIT.CA_MISSING,
    code: 'CA_CORRUPT',
    message: /was not issued by the root .*root\.crt/,
    hint: RESTORE_HINT,
    json: true,
  },

  // --- crl --out (item 13) ---------------------------------------------------------------------------
  {
    title: 'crl --out a folder',
    setup: (ctx) => mkdirSync(join(ctx.work, 'crl-dir')),
    args: (ctx) => ['crl', '--out', join(ctx.work, 'crl-dir')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: /--out .*crl-dir is a folder, not a file/,
    hint: /crl\.pem/,
    json: true,
  },
  {
    title: 'crl --out in a folder that does not exist',
    args: (ctx) => ['crl', '--out', join(ctx.work, 'missing', 'crl.pem')],
    status: EXIT.FILESYSTEM,
    code: 'WRITE_FAILED',
    message: /its folder .*missing does not exist/,
    hint: /mkdir -p/,
    json: true,
  },
  {
    title: 'crl --out a character device (a null device made in the case folder, never the real /dev/null)',
    setup: (ctx) => assert.equal(run('mknod', ['-m', '666', join(ctx.work, 'null'), 'c', '1', '3']).status, 0),
    args: (ctx) => ['crl', '--out', join(ctx.work, 'null')],
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: /--out .*null is a special file/,
  },
  {
    title: 'crl --out in a folder another user owns',
    world: true,
    setup: (ctx) => asNobody('mkdir', [join(ctx.public, 'crls')]),
    args: (ctx) => ['crl', '--out', join(ctx.public, 'crls', 'crl.pem')],
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
    message: /crls: the --out folder is owned by uid \d+/,
  },
  {
    title: 'crl --out through a symlink another user planted',
    world: true,
    setup: (ctx) => asNobody('ln', ['-s', ctx.work, join(ctx.public, 'link')]),
    args: (ctx) => ['crl', '--out', join(ctx.public, 'link', 'crl.pem')],
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
    message: /link: it is a symlink owned by uid \d+/,
  },
  {
    title: 'crl --out below a regular file',
    setup: (ctx) => writeFileSync(join(ctx.work, 'file'), 'x'),
    args: (ctx) => ['crl', '--out', join(ctx.work, 'file', 'crl.pem')],
    status: EXIT.FILESYSTEM,
    code: 'WRITE_FAILED',
    message: /--out .*work\/file is not a folder/,
  },
];
