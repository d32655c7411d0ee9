// Trust stores and `mcpki env`, against the real tools: certutil on throwaway NSS databases, the Debian system
// store (only as root, always restored), and real TLS clients (Node, curl, Python) talking to a local server.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { mcpki, tempDir, run, hasCommand, BIN, testStore } from './helpers.js';
import { formatEnv } from '../dist/trust/env.js';

const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const HAS_CERTUTIL = hasCommand('certutil');
const DEBIAN_ANCHORS = '/usr/local/share/ca-certificates';
const DEBIAN_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const IS_DEBIAN =
  existsSync(DEBIAN_ANCHORS) &&
  existsSync(DEBIAN_BUNDLE) &&
  (hasCommand('update-ca-certificates') || existsSync('/usr/sbin/update-ca-certificates'));
const TRUST_VARS = ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE'];

/** The test runner's environment without any CA-bundle variable, so "without the env" really means without. */
function cleanEnv(extra = {}) {
  const env = { ...process.env, NO_COLOR: '1' };
  for (const name of TRUST_VARS) delete env[name];
  return { ...env, ...extra };
}

/** A fresh mcpki home with a CA; `root` describes its root certificate as the trust stores see it. */
function makeCa(t, home) {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const dir = home ? join(tmp.dir, home) : tmp.dir;
  const init = mcpki(['--home', dir, 'init']);
  assert.equal(init.status, 0, init.stderr);
  const pem = readFileSync(join(dir, 'ca', 'root.crt'), 'utf8');
  const cert = new X509Certificate(pem);
  const id = cert.fingerprint256.replace(/:/g, '').slice(0, 16).toLowerCase();
  return {
    home: dir,
    tmp: tmp.dir,
    rootPath: join(dir, 'ca', 'root.crt'),
    fingerprint: cert.fingerprint256,
    id,
    base64: cert.raw.toString('base64'),
    nickname: `mcpki development CA ${id}`,
  };
}

function newNssDb(dir) {
  mkdirSync(dir, { recursive: true });
  const made = run('certutil', ['-N', '-d', `sql:${dir}`, '--empty-password']);
  assert.equal(made.status, 0, made.stderr);
  return dir;
}

/** nickname → trust flags, from `certutil -L` */
function nssList(dir) {
  const listed = run('certutil', ['-L', '-d', `sql:${dir}`]);
  assert.equal(listed.status, 0, listed.stderr);
  const entries = new Map();
  for (const line of listed.stdout.split('\n')) {
    const match = /^(.*\S)\s+([A-Za-z]*,[A-Za-z]*,[A-Za-z]*)\s*$/.exec(line);
    if (match) entries.set(match[1], match[2]);
  }
  return entries;
}

function bundleHas(base64, path = DEBIAN_BUNDLE) {
  const text = readFileSync(path, 'utf8');
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].some(
    (m) => m[1].replace(/\s+/g, '') === base64,
  );
}

/** Links in /etc/ssl/certs whose target (or the target's target: hash link → .pem link) mentions `part`. */
function linksTo(part) {
  return readdirSync('/etc/ssl/certs').filter((name) => {
    let path = join('/etc/ssl/certs', name);
    for (let hop = 0; hop < 2; hop++) {
      let target;
      try {
        target = readlinkSync(path);
      } catch {
        return false;
      }
      if (target.includes(part)) return true;
      path = join('/etc/ssl/certs', target);
    }
    return false;
  });
}

/** Runs a program without blocking the event loop (the TLS server under test lives in this process). */
function runAsync(cmd, args, options = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeout ?? 30_000);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe(
  'trust: NSS databases',
  { skip: !HAS_CERTUTIL && 'certutil is not installed (apt-get install libnss3-tools)' },
  () => {
    test('install adds the root with C,, trust; status, a second install, uninstall and events agree with certutil', (t) => {
      const ca = makeCa(t);
      const db = newNssDb(join(ca.tmp, 'nssdb'));

      const installed = mcpki(['--home', ca.home, '--json', 'trust', 'install', '--store', 'nss', '--nss-db', db]);
      assert.equal(installed.status, 0, installed.stdout + installed.stderr);
      assert.deepEqual(installed.json.stores, [{ store: 'nss', location: db, state: 'installed' }]);
      assert.equal(installed.json.root.fingerprint, ca.fingerprint);
      assert.equal(installed.json.root.path, ca.rootPath);
      assert.equal(nssList(db).get(ca.nickname), 'C,,');
      // what certutil holds under that nickname is our root, byte for byte
      const exported = spawnSync('certutil', ['-L', '-d', `sql:${db}`, '-n', ca.nickname, '-r']);
      assert.equal(exported.status, 0, String(exported.stderr));
      assert.equal(exported.stdout.toString('base64'), ca.base64);

      const status = mcpki(['--home', ca.home, '--json', 'trust', 'status', '--store', 'nss', '--nss-db', db]);
      assert.equal(status.status, 0, status.stderr);
      assert.equal(status.json.stores.length, 1);
      assert.equal(status.json.stores[0].state, 'trusted');

      const again = mcpki(['--home', ca.home, '--json', 'trust', 'install', '--store', 'nss', '--nss-db', db]);
      assert.equal(again.status, 0, again.stderr);
      assert.equal(again.json.stores[0].state, 'already-installed');
      assert.equal([...nssList(db).keys()].filter((n) => n === ca.nickname).length, 1);

      const removed = mcpki(['--home', ca.home, '--json', 'trust', 'uninstall', '--store', 'nss', '--nss-db', db]);
      assert.equal(removed.status, 0, removed.stderr);
      assert.deepEqual(removed.json.stores, [{ store: 'nss', location: db, state: 'removed' }]);
      assert.equal(nssList(db).has(ca.nickname), false);

      const after = mcpki(['--home', ca.home, '--json', 'trust', 'status', '--store', 'nss', '--nss-db', db]);
      assert.equal(after.json.stores[0].state, 'not-installed');
      const twice = mcpki(['--home', ca.home, '--json', 'trust', 'uninstall', '--store', 'nss', '--nss-db', db]);
      assert.equal(twice.json.stores[0].state, 'not-installed');

      // one event per change, none for the no-ops
      const events = mcpki(['--home', ca.home, '--json', 'events']);
      const trustEvents = events.json.events.filter((e) => e.type.startsWith('trust.'));
      assert.deepEqual(trustEvents.map((e) => e.type).sort(), ['trust.installed', 'trust.removed']);
      for (const e of trustEvents)
        assert.deepEqual(e.detail, { store: 'nss', location: db, fingerprint: ca.fingerprint });
    });

    test('human output is an aligned STORE / LOCATION / STATE table', (t) => {
      const ca = makeCa(t);
      const db = newNssDb(join(ca.tmp, 'nssdb'));
      const installed = mcpki(['--home', ca.home, 'trust', 'install', '--store', 'nss', '--nss-db', db]);
      assert.equal(installed.status, 0, installed.stderr);
      const lines = installed.stdout.trimEnd().split('\n');
      const header = lines.findIndex((l) => /^STORE\s+LOCATION\s+STATE$/.test(l));
      assert.ok(header >= 0, installed.stdout);
      assert.match(lines[header + 1], new RegExp(`^nss\\s+${db.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+installed$`));
      assert.equal(lines[header + 1].indexOf(db), lines[header].indexOf('LOCATION'));
      assert.match(installed.stdout, new RegExp(ca.fingerprint));
      const status = mcpki(['--home', ca.home, 'trust', 'status', '--store', 'nss', '--nss-db', db]);
      assert.match(status.stdout, /^nss\s+\S+\s+trusted/m);
    });

    test('two CAs share one database; uninstall removes exactly ours', (t) => {
      const a = makeCa(t);
      const b = makeCa(t);
      assert.notEqual(a.nickname, b.nickname);
      const db = newNssDb(join(a.tmp, 'nssdb'));
      for (const ca of [a, b])
        assert.equal(mcpki(['--home', ca.home, 'trust', 'install', '--store', 'nss', '--nss-db', db]).status, 0);
      assert.equal(nssList(db).get(a.nickname), 'C,,');
      assert.equal(nssList(db).get(b.nickname), 'C,,');
      const removed = mcpki(['--home', a.home, '--json', 'trust', 'uninstall', '--store', 'nss', '--nss-db', db]);
      assert.equal(removed.json.stores[0].state, 'removed');
      assert.equal(nssList(db).has(a.nickname), false);
      assert.equal(nssList(db).get(b.nickname), 'C,,');
      assert.equal(
        mcpki(['--home', b.home, '--json', 'trust', 'status', '--store', 'nss', '--nss-db', db]).json.stores[0].state,
        'trusted',
      );
    });

    test('a root present without the C flag is untrusted, and install restores C,,', (t) => {
      const ca = makeCa(t);
      const db = newNssDb(join(ca.tmp, 'nssdb'));
      assert.equal(mcpki(['--home', ca.home, 'trust', 'install', '--store', 'nss', '--nss-db', db]).status, 0);
      assert.equal(run('certutil', ['-M', '-d', `sql:${db}`, '-n', ca.nickname, '-t', ',,']).status, 0);
      const status = mcpki(['--home', ca.home, '--json', 'trust', 'status', '--store', 'nss', '--nss-db', db]);
      assert.equal(status.json.stores[0].state, 'untrusted');
      const repaired = mcpki(['--home', ca.home, '--json', 'trust', 'install', '--store', 'nss', '--nss-db', db]);
      assert.equal(repaired.json.stores[0].state, 'installed');
      assert.equal(nssList(db).get(ca.nickname), 'C,,');
    });

    test('without --nss-db, finds ~/.pki/nssdb and Firefox profiles (also the snap) that hold cert9.db', (t) => {
      const ca = makeCa(t);
      const fakeHome = join(ca.tmp, 'user');
      const dbs = [
        newNssDb(join(fakeHome, '.pki', 'nssdb')),
        newNssDb(join(fakeHome, '.mozilla', 'firefox', 'abcd1234.default-release')),
        newNssDb(join(fakeHome, 'snap', 'firefox', 'common', '.mozilla', 'firefox', 'wxyz9876.default')),
      ];
      mkdirSync(join(fakeHome, '.mozilla', 'firefox', 'Crash Reports'), { recursive: true }); // no cert9.db: not a profile
      const env = { HOME: fakeHome };

      const installed = mcpki(['--home', ca.home, '--json', 'trust', 'install', '--store', 'nss'], { env });
      assert.equal(installed.status, 0, installed.stdout + installed.stderr);
      assert.deepEqual(
        installed.json.stores.map((s) => [s.store, s.location, s.state]),
        dbs.map((db) => ['nss', db, 'installed']),
      );
      for (const db of dbs) assert.equal(nssList(db).get(ca.nickname), 'C,,');
      assert.equal(existsSync(join(fakeHome, '.mozilla', 'firefox', 'Crash Reports', 'cert9.db')), false);

      const removed = mcpki(['--home', ca.home, '--json', 'trust', 'uninstall', '--store', 'nss'], { env });
      assert.deepEqual(
        removed.json.stores.map((s) => s.state),
        ['removed', 'removed', 'removed'],
      );
      for (const db of dbs) assert.equal(nssList(db).has(ca.nickname), false);

      // nothing to find: reported as skipped, not an error
      const empty = join(ca.tmp, 'nobody');
      mkdirSync(empty);
      const none = mcpki(['--home', ca.home, '--json', 'trust', 'status', '--store', 'nss'], { env: { HOME: empty } });
      assert.equal(none.status, 0, none.stderr);
      assert.equal(none.json.stores.length, 1);
      assert.equal(none.json.stores[0].state, 'skipped');
      assert.match(none.json.stores[0].detail, /no NSS database/);
    });

    test('--nss-db must be an existing NSS database; no new database is created by mistake', (t) => {
      const ca = makeCa(t);
      const missing = mcpki([
        '--home',
        ca.home,
        '--json',
        'trust',
        'install',
        '--store',
        'nss',
        '--nss-db',
        join(ca.tmp, 'nope'),
      ]);
      assert.equal(missing.status, 3);
      assert.equal(missing.json.error.code, 'INVALID_INPUT');
      const emptyDir = join(ca.tmp, 'empty');
      mkdirSync(emptyDir);
      const empty = mcpki(['--home', ca.home, '--json', 'trust', 'install', '--store', 'nss', '--nss-db', emptyDir]);
      assert.equal(empty.status, 3);
      assert.match(empty.json.error.hint, /certutil -N/);
      assert.deepEqual(readdirSync(emptyDir), []);
    });

    test('explicit --nss-db without certutil on PATH is TRUST_TOOL_MISSING with the package to install', (t) => {
      const ca = makeCa(t);
      const db = newNssDb(join(ca.tmp, 'nssdb'));
      const result = mcpki(['--home', ca.home, '--json', 'trust', 'install', '--store', 'nss', '--nss-db', db], {
        env: { PATH: join(ca.tmp, 'no-tools') },
      });
      assert.equal(result.status, 11, result.stdout + result.stderr);
      assert.equal(result.json.error.code, 'TRUST_TOOL_MISSING');
      assert.match(result.json.error.hint, /apt-get install libnss3-tools/);
      assert.equal(nssList(db).has(ca.nickname), false);
    });
  },
);

describe(
  'trust: init --force replaces a CA whose root is trusted',
  { skip: !HAS_CERTUTIL && 'certutil is not installed (apt-get install libnss3-tools)' },
  () => {
    test('the old root is removed from the NSS database mcpki put it in; its certificates show as orphaned', (t) => {
      const ca = makeCa(t);
      const db = newNssDb(join(ca.tmp, 'nssdb'));
      assert.equal(mcpki(['--home', ca.home, 'trust', 'install', '--store', 'nss', '--nss-db', db]).status, 0);
      assert.equal(nssList(db).get(ca.nickname), 'C,,');
      const old = mcpki([
        '--home',
        ca.home,
        '--json',
        'issue',
        'server',
        'old-web',
        'localhost',
        '--out',
        join(ca.tmp, 'old'),
      ]);
      assert.equal(old.status, 0, old.stderr);

      const forced = mcpki(['--home', ca.home, 'init', '--force']);
      assert.equal(forced.status, 0, forced.stderr);
      assert.equal(nssList(db).has(ca.nickname), false, 'the replaced root is no longer in the NSS database');
      assert.match(
        forced.stderr,
        new RegExp(`removed the old root from nss \\(${db.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`),
      );
      const newRoot = new X509Certificate(readFileSync(ca.rootPath, 'utf8'));
      assert.notEqual(newRoot.fingerprint256, ca.fingerprint);

      const status = mcpki(['--home', ca.home, '--json', 'trust', 'status', '--store', 'nss', '--nss-db', db]);
      assert.equal(
        status.json.stores[0].state,
        'not-installed',
        "the new root was not installed behind the user's back",
      );
      const events = mcpki(['--home', ca.home, '--json', 'events']).json.events;
      const removal = events.find((e) => e.type === 'trust.removed');
      assert.deepEqual(removal?.detail, { store: 'nss', location: db, fingerprint: ca.fingerprint });

      const fresh = mcpki([
        '--home',
        ca.home,
        '--json',
        'issue',
        'server',
        'new-web',
        'localhost',
        '--out',
        join(ca.tmp, 'new'),
      ]);
      assert.equal(fresh.status, 0, fresh.stderr);
      const listed = mcpki(['--home', ca.home, '--json', 'list']).json.certificates;
      assert.equal(listed.find((c) => c.name === 'old-web')?.state, 'orphaned');
      assert.equal(listed.find((c) => c.name === 'new-web')?.state, 'valid');
      assert.equal(mcpki(['--home', ca.home, '--json', 'show', 'old-web']).json.certificate.state, 'orphaned');
      const table = mcpki(['--home', ca.home, 'list']);
      assert.match(table.stdout, /old-web.*orphaned/);
    });

    test('without certutil to remove it, init --force refuses (exit 11) and changes nothing', (t) => {
      const ca = makeCa(t);
      const db = newNssDb(join(ca.tmp, 'nssdb'));
      assert.equal(mcpki(['--home', ca.home, 'trust', 'install', '--store', 'nss', '--nss-db', db]).status, 0);
      const before = readFileSync(ca.rootPath, 'utf8');
      const bin = join(ca.tmp, 'bin');
      mkdirSync(bin);
      const refused = mcpki(['--home', ca.home, '--json', 'init', '--force'], { env: { PATH: bin } });
      assert.equal(refused.status, 11, refused.stdout + refused.stderr);
      assert.equal(refused.json.error.code, 'TRUST_TOOL_MISSING');
      assert.match(
        refused.json.error.message,
        new RegExp(`installed in NSS databases \\(${db.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`),
      );
      assert.match(refused.json.error.hint, /mcpki trust uninstall/);
      assert.equal(readFileSync(ca.rootPath, 'utf8'), before, 'the CA was not replaced');
      assert.equal(nssList(db).get(ca.nickname), 'C,,');
    });
  },
);

describe('trust: command line', () => {
  test('an unknown --store is a usage error that lists the choices', (t) => {
    const ca = makeCa(t);
    const result = mcpki(['--home', ca.home, 'trust', 'install', '--store', 'browser']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /unknown trust store "browser"/);
    assert.match(result.stderr, /hint: .*system, nss, all/);
    const json = mcpki(['--home', ca.home, '--json', 'trust', 'status', '--store', 'everything']);
    assert.equal(json.json.error.code, 'USAGE');
  });

  test('--nss-db with --store system is a usage error', (t) => {
    const ca = makeCa(t);
    const result = mcpki(['--home', ca.home, '--json', 'trust', 'install', '--store', 'system', '--nss-db', ca.tmp]);
    assert.equal(result.status, 2);
    assert.equal(result.json.error.code, 'USAGE');
  });

  test('without a CA, trust and env fail with CA_MISSING and point at mcpki init', () => {
    const tmp = tempDir();
    try {
      for (const args of [['trust', 'status'], ['trust', 'install', '--store', 'nss'], ['env']]) {
        const result = mcpki(['--home', tmp.dir, '--json', ...args]);
        assert.equal(result.status, 4, `${args.join(' ')}: ${result.stdout}`);
        assert.equal(result.json.error.code, 'CA_MISSING');
        assert.match(result.json.error.hint, /mcpki init/);
      }
      assert.equal(existsSync(join(tmp.dir, 'ca', 'bundle.pem')), false);
    } finally {
      tmp.cleanup();
    }
  });

  test('help shows the stores and examples', () => {
    const help = mcpki(['trust', 'install', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--store <store>/);
    assert.match(help.stdout, /--nss-db <dir>/);
    assert.match(help.stdout, /Examples:\n\s+mcpki trust install/);
    const env = mcpki(['env', '--help']);
    assert.match(env.stdout, /eval "\$\(mcpki env\)"/);
  });
});

describe(
  'trust: Debian system store',
  { skip: (!IS_ROOT && 'needs root') || (!IS_DEBIAN && 'not a Debian-style system') },
  () => {
    test('install puts the root in the bundle (a leaf then verifies); uninstall takes it out and leaves no links', (t) => {
      const ca = makeCa(t);
      const anchor = join(DEBIAN_ANCHORS, `mcpki-${ca.id}.crt`);
      assert.equal(existsSync(anchor), false);
      assert.equal(bundleHas(ca.base64), false);
      const issued = mcpki(['--home', ca.home, '--json', 'issue', 'server', 's', 'localhost', '127.0.0.1']);
      assert.equal(issued.status, 0, issued.stdout + issued.stderr);
      const leaf = issued.json.paths.cert;
      const verify = () =>
        run('openssl', [
          'verify',
          '-CAfile',
          DEBIAN_BUNDLE,
          '-untrusted',
          join(ca.home, 'ca', 'intermediate.crt'),
          leaf,
        ]);
      assert.notEqual(verify().status, 0, 'the leaf must not verify before install');

      t.after(() => {
        // whatever happened above (even with a broken uninstall), leave the machine as it was
        mcpki(['--home', ca.home, 'trust', 'uninstall', '--store', 'system']);
        const leftovers = existsSync(anchor) || linksTo(`mcpki-${ca.id}`).length > 0 || bundleHas(ca.base64);
        if (leftovers) {
          if (existsSync(anchor)) unlinkSync(anchor);
          run('update-ca-certificates', ['--fresh'], {
            env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` },
          });
        }
      });

      const installed = mcpki(['--home', ca.home, '--json', 'trust', 'install', '--store', 'system']);
      assert.equal(installed.status, 0, installed.stdout + installed.stderr);
      assert.deepEqual(installed.json.stores, [{ store: 'system:debian', location: anchor, state: 'installed' }]);
      assert.equal(statSync(anchor).mode & 0o777, 0o644);
      assert.equal(bundleHas(ca.base64), true);
      const ok = verify();
      assert.equal(ok.status, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /: OK/);

      assert.equal(
        mcpki(['--home', ca.home, '--json', 'trust', 'status', '--store', 'system']).json.stores[0].state,
        'trusted',
      );
      assert.equal(
        mcpki(['--home', ca.home, '--json', 'trust', 'install', '--store', 'system']).json.stores[0].state,
        'already-installed',
      );

      const removed = mcpki(['--home', ca.home, '--json', 'trust', 'uninstall', '--store', 'system']);
      assert.equal(removed.status, 0, removed.stdout + removed.stderr);
      assert.equal(removed.json.stores[0].state, 'removed');
      assert.equal(existsSync(anchor), false);
      assert.equal(bundleHas(ca.base64), false);
      assert.notEqual(verify().status, 0, 'the leaf must not verify after uninstall');
      // update-ca-certificates without --fresh would leave /etc/ssl/certs/mcpki-….pem and its hash link dangling
      assert.deepEqual(linksTo(`mcpki-${ca.id}`), []);
      assert.equal(
        mcpki(['--home', ca.home, '--json', 'trust', 'status', '--store', 'system']).json.stores[0].state,
        'not-installed',
      );

      const events = mcpki(['--home', ca.home, '--json', 'events', '--type', 'trust.installed']);
      assert.deepEqual(
        events.json.events.map((e) => e.detail),
        [{ store: 'system:debian', location: anchor, fingerprint: ca.fingerprint }],
      );
    });

    test('a normal user gets TRUST_PERMISSION with a sudo hint; with --store all the system store is skipped', (t) => {
      const ca = makeCa(t);
      // let the unprivileged user read the root certificate (and nothing is written)
      chmodSync(ca.tmp, 0o755);
      chmodSync(join(ca.home, 'ca'), 0o755);
      const userHome = join(ca.tmp, 'nobody-home');
      mkdirSync(userHome);
      const asNobody = (args) => {
        const result = spawnSync(process.execPath, [BIN, '--home', ca.home, '--json', ...args], {
          encoding: 'utf8',
          uid: 65534,
          gid: 65534,
          cwd: '/',
          env: { ...cleanEnv(), HOME: userHome },
          timeout: 60_000,
        });
        return { status: result.status, stdout: result.stdout, stderr: result.stderr, json: JSON.parse(result.stdout) };
      };
      const system = asNobody(['trust', 'install', '--store', 'system']);
      assert.equal(system.status, 11, system.stdout + system.stderr);
      assert.equal(system.json.error.code, 'TRUST_PERMISSION');
      // sudo does not search the user's PATH: the hint names this mcpki by its full path
      assert.equal(system.json.error.hint, `run: sudo ${BIN} trust install --store system --home ${ca.home}`);

      // with --store all, nothing changed (no NSS database either): an error with the same command, every store listed
      const all = asNobody(['trust', 'install']);
      assert.equal(all.status, 11, all.stdout + all.stderr);
      assert.equal(all.json.error.code, 'TRUST_PERMISSION');
      assert.ok(
        all.json.error.hint.endsWith(`sudo ${BIN} trust install --store system --home ${ca.home}`),
        all.json.error.hint,
      );
      assert.match(all.json.error.details[0], /^system:debian .*needs root/);
      assert.equal(existsSync(join(DEBIAN_ANCHORS, `mcpki-${ca.id}.crt`)), false);
    });
  },
);

describe('env', () => {
  /** A home whose path needs quoting in every shell: a space and a single quote. */
  const HOME_NAME = "it's home";
  let ca;
  let server;
  let port;
  let cleanup;

  before(async () => {
    const tmp = tempDir();
    cleanup = tmp.cleanup;
    const home = join(tmp.dir, HOME_NAME);
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const issued = mcpki(['--home', home, '--json', 'issue', 'server', 's', 'localhost', '127.0.0.1']);
    assert.equal(issued.status, 0, issued.stdout + issued.stderr);
    ca = { home, tmp: tmp.dir, rootPath: join(home, 'ca', 'root.crt'), bundlePath: join(home, 'ca', 'bundle.pem') };
    server = createServer(
      { key: readFileSync(issued.json.paths.key), cert: readFileSync(issued.json.paths.fullchain) },
      (req, res) => res.end('hello from mcpki\n'),
    );
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = server.address().port;
  });

  after(async () => {
    if (server) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    cleanup?.();
  });

  /** Evaluates `mcpki env` output in a real sh (when withEnv), then runs the client. */
  function throughSh(envText, withEnv, command) {
    const script = withEnv ? `eval "$MCPKI_ENV_TEXT" && ${command}` : command;
    return runAsync('sh', ['-c', script], { env: cleanEnv({ MCPKI_ENV_TEXT: envText }) });
  }

  test('sh output, evaluated by sh, makes Node trust a server certificate from the CA; without it Node refuses', async () => {
    const result = mcpki(['--home', ca.home, 'env']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '');
    const client = `node -e "require('https').get('https://localhost:${port}/', (r) => { r.pipe(process.stdout); }).on('error', (e) => { console.error(e.code || e.message); process.exit(1); })"`;
    const trusted = await throughSh(result.stdout, true, client);
    assert.equal(trusted.status, 0, trusted.stderr);
    assert.equal(trusted.stdout, 'hello from mcpki\n');
    const refused = await throughSh(result.stdout, false, client);
    assert.equal(refused.status, 1);
    assert.match(
      refused.stderr,
      /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/,
    );
  });

  test(
    'curl trusts the server through CURL_CA_BUNDLE, and fails without it',
    { skip: !hasCommand('curl') && 'curl is not installed' },
    async () => {
      const text = mcpki(['--home', ca.home, 'env']).stdout;
      const client = `curl -sS --max-time 20 https://localhost:${port}/`;
      const trusted = await throughSh(text, true, client);
      assert.equal(trusted.status, 0, trusted.stderr);
      assert.equal(trusted.stdout, 'hello from mcpki\n');
      const refused = await throughSh(text, false, client);
      assert.equal(refused.status, 60, refused.stderr); // CURLE_PEER_FAILED_VERIFICATION
    },
  );

  test(
    'Python ssl.create_default_context() trusts the server through SSL_CERT_FILE, and fails without it',
    { skip: !hasCommand('python3') && 'python3 is not installed' },
    async () => {
      const text = mcpki(['--home', ca.home, 'env']).stdout;
      const client = `python3 -c "import ssl, urllib.request, sys; sys.stdout.write(urllib.request.urlopen('https://localhost:${port}/', context=ssl.create_default_context(), timeout=20).read().decode())"`;
      const trusted = await throughSh(text, true, client);
      assert.equal(trusted.status, 0, trusted.stderr);
      assert.equal(trusted.stdout, 'hello from mcpki\n');
      const refused = await throughSh(text, false, client);
      assert.notEqual(refused.status, 0);
      assert.match(refused.stderr, /CERTIFICATE_VERIFY_FAILED/);
    },
  );

  test('bundle.pem holds the system roots followed by ours, mode 0644', () => {
    const report = mcpki(['--home', ca.home, '--json', 'env']);
    assert.equal(report.status, 0, report.stderr);
    assert.equal(report.json.bundlePath, ca.bundlePath);
    const bundle = readFileSync(ca.bundlePath, 'utf8');
    const blocks = [...bundle.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map((m) =>
      m[1].replace(/\s+/g, ''),
    );
    const root = new X509Certificate(readFileSync(ca.rootPath)).raw.toString('base64');
    assert.equal(blocks.at(-1), root);
    assert.equal(statSync(ca.bundlePath).mode & 0o777, 0o644);
    if (existsSync(DEBIAN_BUNDLE)) {
      const system = readFileSync(DEBIAN_BUNDLE, 'utf8');
      const systemCount = (system.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;
      assert.ok(systemCount > 0);
      assert.equal(blocks.length, systemCount + 1);
      assert.ok(bundle.startsWith(system), 'the system bundle comes first, unchanged');
      assert.equal(report.json.systemBundle, DEBIAN_BUNDLE);
    }
  });

  test('--json lists the four variables: NODE_EXTRA_CA_CERTS is the root alone, the others the bundle', () => {
    const report = mcpki(['--home', ca.home, '--json', 'env']).json;
    assert.deepEqual(
      report.variables.map((v) => [v.name, v.value]),
      [
        ['NODE_EXTRA_CA_CERTS', ca.rootPath],
        ['SSL_CERT_FILE', ca.bundlePath],
        ['REQUESTS_CA_BUNDLE', ca.bundlePath],
        ['CURL_CA_BUNDLE', ca.bundlePath],
      ],
    );
    for (const v of report.variables) assert.ok(v.purpose.length > 0);
  });

  test('sh quoting survives a quote in the path; fish, powershell and dotenv lines are exact', () => {
    const root = ca.rootPath;
    const bundle = ca.bundlePath;
    const sh = mcpki(['--home', ca.home, 'env', '--shell', 'sh']).stdout;
    assert.equal(sh.split('\n')[0], `export NODE_EXTRA_CA_CERTS='${root.replace("'", `'\\''`)}'`);
    const printed = run(
      'sh',
      [
        '-c',
        'eval "$T"; printf "%s\\n" "$NODE_EXTRA_CA_CERTS" "$SSL_CERT_FILE" "$REQUESTS_CA_BUNDLE" "$CURL_CA_BUNDLE"',
      ],
      { env: cleanEnv({ T: sh }) },
    );
    assert.equal(printed.status, 0, printed.stderr);
    assert.equal(printed.stdout, `${root}\n${bundle}\n${bundle}\n${bundle}\n`);
    assert.equal(mcpki(['--home', ca.home, 'env', '--shell', 'zsh']).stdout, sh);

    const fishRoot = root.replace(/[\\']/g, (c) => `\\${c}`);
    const fishBundle = bundle.replace(/[\\']/g, (c) => `\\${c}`);
    assert.equal(
      mcpki(['--home', ca.home, 'env', '--shell', 'fish']).stdout,
      `set -gx NODE_EXTRA_CA_CERTS '${fishRoot}'\nset -gx SSL_CERT_FILE '${fishBundle}'\nset -gx REQUESTS_CA_BUNDLE '${fishBundle}'\nset -gx CURL_CA_BUNDLE '${fishBundle}'\n`,
    );
    const psRoot = root.replace(/'/g, "''");
    const psBundle = bundle.replace(/'/g, "''");
    assert.equal(
      mcpki(['--home', ca.home, 'env', '--shell', 'powershell']).stdout,
      `$env:NODE_EXTRA_CA_CERTS = '${psRoot}'\n$env:SSL_CERT_FILE = '${psBundle}'\n$env:REQUESTS_CA_BUNDLE = '${psBundle}'\n$env:CURL_CA_BUNDLE = '${psBundle}'\n`,
    );
    assert.equal(
      mcpki(['--home', ca.home, 'env', '--shell', 'dotenv']).stdout,
      `NODE_EXTRA_CA_CERTS="${root}"\nSSL_CERT_FILE="${bundle}"\nREQUESTS_CA_BUNDLE="${bundle}"\nCURL_CA_BUNDLE="${bundle}"\n`,
    );
  });

  test('formatEnv quotes what each shell needs and refuses what a .env file cannot carry', () => {
    const value = `/tmp/a 'b' "c" $HOME \\ \`d\``;
    const report = { bundlePath: value, systemBundle: null, variables: [{ name: 'X_TEST', value, purpose: 'test' }] };
    const sh = formatEnv(report, 'sh');
    const printed = run('sh', ['-c', 'eval "$T"; printf "%s" "$X_TEST"'], { env: cleanEnv({ T: sh }) });
    assert.equal(printed.stdout, value);
    assert.equal(formatEnv(report, 'fish'), `set -gx X_TEST '/tmp/a \\'b\\' "c" $HOME \\\\ \`d\`'\n`);
    assert.equal(formatEnv(report, 'powershell'), `$env:X_TEST = '/tmp/a ''b'' "c" $HOME \\ \`d\`'\n`);
    assert.throws(
      () => formatEnv(report, 'dotenv'),
      (error) => error.code === 'INVALID_INPUT',
    );
    assert.equal(
      formatEnv({ ...report, variables: [{ name: 'Y', value: "/it's fine", purpose: '' }] }, 'dotenv'),
      `Y="/it's fine"\n`,
    );
  });

  test('an unknown --shell is a usage error that lists the choices', () => {
    const result = mcpki(['--home', ca.home, 'env', '--shell', 'tcsh']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /unknown shell "tcsh"/);
    assert.match(result.stderr, /sh, fish, powershell, dotenv/);
    assert.equal(result.stdout, '');
  });
});

describe('system store folders', () => {
  test('an anchors folder reached through a world-writable folder is refused before anything is written; a FIFO anchor is not read', async (t) => {
    const { AnchorDirStore } = await import('../dist/trust/system.js');
    const { loadRoot } = await import('../dist/trust/common.js');
    const { createContext } = await import('../dist/index.js');
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const home = join(dir, 'home');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const context = createContext({ ...testStore(home), home });
    const root = loadRoot(context);
    context.close();
    const open = join(dir, 'open');
    mkdirSync(join(open, 'anchors'), { recursive: true });
    chmodSync(open, 0o777);
    const layout = {
      name: 'system:test',
      anchorDir: join(open, 'anchors'),
      tool: 'true',
      toolArgs: [],
      bundles: [join(dir, 'bundle.crt')],
      installHint: '-',
    };
    const store = new AnchorDirStore(layout, home);
    assert.throws(
      () => store.install(root),
      (e) => e.code === 'UNSAFE_PATH' && /writable by everyone/.test(e.message),
    );
    assert.deepEqual(readdirSync(join(open, 'anchors')), []);
    chmodSync(open, 0o755);
    spawnSync('mkfifo', [join(open, 'anchors', `mcpki-${root.id}.crt`)]);
    assert.throws(
      () => store.status(root),
      (e) => e.code === 'INVALID_INPUT' && /not a regular file/.test(e.message),
    );
  });
});
