// Deploying a certificate to its targets as a set: every target form read back by openssl, modes, owners,
// idempotency, reload hooks (env, failure, timeout) with rollback, and the verify probe against node:tls.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { spawn } from 'node:child_process';
import { mcpki, mcpkiAsync, run, tempDir } from './helpers.js';
import { deployTargets, deployWithHooks, repairCheck, DeployError } from '../dist/deploy/deploy.js';
import { renderTarget } from '../dist/deploy/targets.js';
import { runHook } from '../dist/deploy/hooks.js';
import { verifyServedSerial } from '../dist/deploy/verify.js';

let tmp;
let home;
let oldMaterial;
let newMaterial;

function material(name, label) {
  const result = mcpki(['--home', home, '--json', 'issue', 'server', name, 'localhost', '127.0.0.1']);
  assert.equal(result.status, 0, result.stderr + result.stdout);
  const { paths, serial } = result.json.certificate;
  const certPem = readFileSync(paths.cert, 'utf8');
  const fullchain = readFileSync(paths.fullchain, 'utf8');
  const blocks = fullchain.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/g);
  return { name: label, serial, certPem, chainPem: blocks.slice(1).join(''), keyPem: readFileSync(paths.key, 'utf8') };
}

let counter = 0;
function freshDir() {
  const dir = join(tmp.dir, `case-${++counter}`);
  mkdirSync(dir);
  return dir;
}

function pairTargets(dir) {
  return [
    { type: 'cert', path: join(dir, 'web.crt') },
    { type: 'key', path: join(dir, 'web.key') },
    { type: 'fullchain', path: join(dir, 'web.fullchain.pem') },
  ];
}

function snapshot(targets) {
  return Object.fromEntries(targets.map((t) => [t.path, existsSync(t.path) ? readFileSync(t.path) : null]));
}

/** What a deploy must not leave: temp files, `-prev-` links, and in a set folder anything but `current` and its version. */
function leftovers(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.mcpki-set-')) {
      let version = null;
      try {
        version = readlinkSync(join(dir, name, 'current'));
      } catch {
        found.push(`${name}/current is missing`);
      }
      found.push(
        ...readdirSync(join(dir, name))
          .filter((entry) => entry !== 'current' && entry !== version)
          .map((entry) => `${name}/${entry}`),
      );
    } else if (name.includes('.mcpki-')) {
      found.push(name);
    }
  }
  return found;
}

function openssl(args) {
  const result = run('openssl', args);
  assert.equal(result.status, 0, `openssl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/** 'dead' when the process is gone or a zombie (killed; some container init processes do not reap). */
function processState(pid) {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
    return state === 'Z' || state === 'X' ? 'dead' : state;
  } catch {
    return 'dead';
  }
}

function script(dir, name, body) {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

before(() => {
  tmp = tempDir('mcpki-deploy-');
  home = join(tmp.dir, 'home');
  assert.equal(mcpki(['--home', home, 'init']).status, 0);
  oldMaterial = material('web-old', 'web');
  newMaterial = material('web-new', 'web');
});

after(() => tmp.cleanup());

describe('targets', () => {
  test('every target type is written, readable by openssl, with the right modes', () => {
    const dir = freshDir();
    const out = join(dir, 'nested', 'tls'); // missing folders are created 0700
    writeFileSync(join(dir, 'p12pass'), 's3cret-pw\n');
    const targets = [
      { type: 'cert', path: join(out, 'web.crt') },
      { type: 'key', path: join(out, 'web.key') },
      { type: 'chain', path: join(out, 'chain.pem') },
      { type: 'fullchain', path: join(out, 'fullchain.pem'), mode: 0o640 },
      { type: 'combined', path: join(out, 'haproxy.pem') },
      { type: 'p12', path: join(out, 'web.p12'), passwordFile: join(dir, 'p12pass') },
      { type: 'k8s-secret', path: join(out, 'secret.yaml'), namespace: 'edge', secretName: 'web-tls' },
    ];
    const result = deployTargets(targets, newMaterial);
    assert.deepEqual(
      result.changed,
      targets.map((t) => t.path),
    );
    assert.deepEqual(result.created, result.changed);
    assert.equal(statSync(join(dir, 'nested')).mode & 0o777, 0o700);
    assert.equal(statSync(out).mode & 0o777, 0o700);
    const modes = Object.fromEntries(targets.map((t) => [t.type, statSync(t.path).mode & 0o777]));
    assert.deepEqual(modes, {
      cert: 0o644,
      key: 0o600,
      chain: 0o644,
      fullchain: 0o640,
      combined: 0o600,
      p12: 0o600,
      'k8s-secret': 0o600,
    });
    assert.deepEqual(leftovers(out), []);

    const serial = `serial=${newMaterial.serial}\n`;
    assert.equal(openssl(['x509', '-in', targets[0].path, '-noout', '-serial']), serial);
    const certPub = openssl(['x509', '-in', targets[0].path, '-noout', '-pubkey']);
    assert.match(readFileSync(targets[1].path, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/); // PKCS#8
    assert.equal(openssl(['pkey', '-in', targets[1].path, '-pubout']), certPub);
    // chain: the intermediate only; fullchain: leaf then intermediate
    assert.match(openssl(['x509', '-in', targets[2].path, '-noout', '-subject']), /mcpki intermediate/);
    assert.equal(
      readFileSync(targets[3].path, 'utf8'),
      readFileSync(targets[0].path, 'utf8') + readFileSync(targets[2].path, 'utf8'),
    );
    assert.equal(
      openssl(['verify', '-CAfile', join(home, 'ca', 'root.crt'), '-untrusted', targets[2].path, targets[0].path])
        .trim()
        .endsWith('OK'),
      true,
    );
    // combined: openssl finds both the key and the leaf in the one file, and they match
    assert.equal(openssl(['pkey', '-in', targets[4].path, '-pubout']), certPub);
    assert.equal(openssl(['x509', '-in', targets[4].path, '-noout', '-serial']), serial);
    // p12
    openssl(['pkcs12', '-in', targets[5].path, '-info', '-noout', '-passin', `file:${join(dir, 'p12pass')}`]);
    const p12Cert = openssl([
      'pkcs12',
      '-in',
      targets[5].path,
      '-nokeys',
      '-clcerts',
      '-passin',
      `file:${join(dir, 'p12pass')}`,
    ]);
    const p12CertFile = join(dir, 'p12-leaf.pem');
    writeFileSync(p12CertFile, p12Cert);
    assert.equal(openssl(['x509', '-in', p12CertFile, '-noout', '-serial']), serial);
    assert.notEqual(
      run('openssl', ['pkcs12', '-in', targets[5].path, '-info', '-noout', '-passin', 'pass:wrong']).status,
      0,
    );
    // k8s Secret manifest
    const yaml = readFileSync(targets[6].path, 'utf8');
    const manifest =
      /^apiVersion: v1\nkind: Secret\ntype: kubernetes\.io\/tls\nmetadata:\n {2}name: "web-tls"\n {2}namespace: "edge"\ndata:\n {2}tls\.crt: ([A-Za-z0-9+/=]+)\n {2}tls\.key: ([A-Za-z0-9+/=]+)\n$/.exec(
        yaml,
      );
    assert.ok(manifest, yaml);
    assert.equal(Buffer.from(manifest[1], 'base64').toString(), readFileSync(targets[3].path, 'utf8'));
    assert.equal(Buffer.from(manifest[2], 'base64').toString(), readFileSync(targets[1].path, 'utf8'));

    assert.deepEqual(repairCheck(targets), { ok: true, problems: [], interrupted: [] });

    // a second run changes nothing: same bytes, same mtimes (the p12 too, though its encoding is randomized)
    const mtimes = targets.map((t) => statSync(t.path).mtimeMs);
    const again = deployTargets(targets, newMaterial);
    assert.deepEqual(again.changed, []);
    assert.deepEqual(
      again.unchanged,
      targets.map((t) => t.path),
    );
    assert.deepEqual(
      targets.map((t) => statSync(t.path).mtimeMs),
      mtimes,
    );

    // a mode change alone is a change; a different password makes the p12 a change
    chmodSync(targets[0].path, 0o600);
    writeFileSync(join(dir, 'p12pass'), 'another-pw\n');
    assert.deepEqual(deployTargets(targets, newMaterial).changed, [targets[0].path, targets[5].path]);
    assert.equal(statSync(targets[0].path).mode & 0o777, 0o644);
    openssl(['pkcs12', '-in', targets[5].path, '-info', '-noout', '-passin', 'pass:another-pw']);
  });

  test('k8s-secret without a namespace uses the certificate name', () => {
    const { data, mode } = renderTarget({ type: 'k8s-secret', path: '/x/s.yaml' }, newMaterial);
    assert.equal(mode, 0o600);
    assert.match(data.toString(), /^metadata:\n {2}name: "web"\ndata:\n/m);
    assert.doesNotMatch(data.toString(), /namespace/);
  });

  test('bad targets are refused before anything is written', () => {
    const dir = freshDir();
    const bad = [
      [{ type: 'pem', path: join(dir, 'a') }, /unknown target type/],
      [{ type: 'cert', path: 'relative.crt' }, /must be absolute/],
      [{ type: 'cert', path: join(dir, 'a'), mode: 0o10000 }, /not a file mode/],
      [{ type: 'p12', path: join(dir, 'a.p12') }, /needs passwordFile/],
      [{ type: 'k8s-secret', path: join(dir, 's.yaml'), secretName: 'Web_TLS' }, /not a valid Kubernetes name/],
      [{ type: 'cert', path: join(dir, 'a'), owner: 'no-such-user-mcpki' }, /no such user/],
    ];
    for (const [target, message] of bad) {
      assert.throws(
        () => deployTargets([{ type: 'key', path: join(dir, 'ok.key') }, target], newMaterial),
        (error) => error.code === 'INVALID_INPUT' && message.test(error.message) && !!error.hint,
      );
    }
    assert.throws(
      () =>
        deployTargets(
          [
            { type: 'cert', path: join(dir, 'same') },
            { type: 'key', path: join(dir, 'same') },
          ],
          newMaterial,
        ),
      /two targets write/,
    );
    assert.deepEqual(readdirSync(dir), []);
  });

  test(
    'owner and group are applied with chown when running as root',
    { skip: process.getuid() !== 0 && 'needs root' },
    () => {
      const dir = freshDir();
      const targets = [
        { type: 'key', path: join(dir, 'web.key'), owner: 'nobody', group: 65534, mode: 0o640 },
        { type: 'cert', path: join(dir, 'web.crt'), owner: 65534 },
      ];
      deployTargets(targets, newMaterial);
      for (const t of targets) assert.equal(statSync(t.path).uid, 65534);
      assert.equal(statSync(targets[0].path).gid, 65534);
      assert.equal(statSync(targets[0].path).mode & 0o777, 0o640);
      assert.deepEqual(deployTargets(targets, newMaterial).changed, []);
    },
  );

  test('split folders: repairCheck reports a mismatched pair and the `-prev-` links of a killed deploy; the next deploy repairs', () => {
    const dir = freshDir();
    // cert and key in different folders are single files, renamed one after the other
    const targets = [
      { type: 'cert', path: join(dir, 'certs', 'web.crt') },
      { type: 'key', path: join(dir, 'private', 'web.key') },
    ];
    deployTargets(targets, newMaterial);
    assert.equal(lstatSync(targets[0].path).isFile(), true);
    assert.equal(existsSync(join(dir, 'certs', '.mcpki-set-web')), false);
    // what a kill between the renames of key and cert could leave: the old key next to the new cert
    writeFileSync(targets[1].path, oldMaterial.keyPem);
    writeFileSync(join(dir, 'certs', '.web.crt.mcpki-prev-deadbeef0000'), oldMaterial.certPem); // the killed run's link
    const report = repairCheck(targets);
    assert.equal(report.ok, false);
    assert.deepEqual(report.interrupted, [targets[0].path]);
    assert.ok(
      report.problems.some(
        (p) => p.path === targets[1].path && /does not match the certificate in .*web\.crt/.test(p.problem),
      ),
      JSON.stringify(report),
    );
    // the next deploy repairs it: the interrupted target counts as changed although its bytes are current
    const result = deployTargets(targets, newMaterial);
    assert.deepEqual(result.changed, [targets[0].path, targets[1].path]);
    assert.deepEqual(result.recovered, [targets[0].path]);
    assert.deepEqual([...leftovers(join(dir, 'certs')), ...leftovers(join(dir, 'private'))], []);
    assert.deepEqual(repairCheck(targets), { ok: true, problems: [], interrupted: [] });
    assert.deepEqual(repairCheck([...targets, { type: 'chain', path: join(dir, 'nope') }]).problems, [
      { path: join(dir, 'nope'), problem: 'missing' },
    ]);
  });
});

/** The set folder of certificate `web` in `dir`, the version `current` points at, and that version's folder. */
function setOf(dir, name = 'web') {
  const path = join(dir, `.mcpki-set-${name}`);
  const version = readlinkSync(join(path, 'current'));
  return { path, version, folder: join(path, version) };
}

function pubkeysMatch(certPath, keyPath) {
  return openssl(['x509', '-in', certPath, '-noout', '-pubkey']) === openssl(['pkey', '-in', keyPath, '-pubout']);
}

describe('file sets (cert, key, chain, fullchain in one folder)', () => {
  test('each target is a relative symlink into one version; openssl and node read through them; modes apply to the real files', () => {
    const dir = freshDir();
    const targets = [
      ...pairTargets(dir),
      { type: 'chain', path: join(dir, 'chain.pem') },
      { type: 'combined', path: join(dir, 'haproxy.pem') },
    ];
    targets[1].mode = 0o640;
    const result = deployTargets(targets, newMaterial);
    assert.deepEqual(
      result.created,
      targets.map((t) => t.path),
    );
    const set = setOf(dir);
    assert.match(set.version, /^v-[0-9a-f]{1,16}-[0-9a-f]{12}$/);
    for (const t of targets.slice(0, 4)) {
      assert.equal(lstatSync(t.path).isSymbolicLink(), true, t.path);
      assert.equal(readlinkSync(t.path), `.mcpki-set-web/current/${t.path.split('/').pop()}`);
      assert.equal(lstatSync(join(set.folder, t.path.split('/').pop())).isFile(), true);
    }
    assert.equal(lstatSync(targets[4].path).isFile(), true, 'a combined file stays a plain file');
    assert.deepEqual(readdirSync(set.folder).sort(), ['chain.pem', 'web.crt', 'web.fullchain.pem', 'web.key']);
    assert.deepEqual(
      targets.slice(0, 4).map((t) => statSync(t.path).mode & 0o777),
      [0o644, 0o640, 0o644, 0o644],
    );
    // readers pass the folders without listing them; nothing there is world-readable
    assert.equal(statSync(set.path).mode & 0o777, 0o711);
    assert.equal(statSync(set.folder).mode & 0o777, 0o711);
    assert.equal(openssl(['x509', '-in', targets[0].path, '-noout', '-serial']), `serial=${newMaterial.serial}\n`);
    assert.ok(pubkeysMatch(targets[0].path, targets[1].path));
    assert.ok(pubkeysMatch(targets[2].path, targets[1].path));
    assert.equal(
      readFileSync(targets[2].path, 'utf8'),
      readFileSync(targets[0].path, 'utf8') + readFileSync(targets[3].path, 'utf8'),
    );
    assert.deepEqual(leftovers(dir), []);

    // idempotent: nothing changes, no new version, every mtime (links and files) kept
    const times = () => targets.map((t) => [lstatSync(t.path).mtimeMs, statSync(t.path).mtimeMs, statSync(t.path).ino]);
    const before = times();
    const again = deployTargets(targets, newMaterial);
    assert.deepEqual(again.changed, []);
    assert.equal(setOf(dir).version, set.version);
    assert.deepEqual(times(), before);

    // a new certificate: a new version holds every file at once, the previous version is gone
    const renewed = deployTargets(targets, oldMaterial);
    assert.deepEqual(
      renewed.changed,
      targets.filter((t) => t.type !== 'chain').map((t) => t.path),
      'the chain is the same intermediate',
    );
    const next = setOf(dir);
    assert.notEqual(next.version, set.version);
    assert.equal(existsSync(set.folder), false);
    assert.equal(statSync(targets[3].path).ino, before[3][2], 'an unchanged member keeps its inode (hard link)');
    assert.equal(statSync(targets[3].path).mtimeMs, before[3][1]);
    assert.ok(pubkeysMatch(targets[0].path, targets[1].path));
    assert.equal(openssl(['x509', '-in', targets[0].path, '-noout', '-serial']), `serial=${oldMaterial.serial}\n`);
    assert.deepEqual(leftovers(dir), []);
  });

  test('private files only: the set folders are closed (0700)', () => {
    const dir = freshDir();
    deployTargets(
      [
        { type: 'key', path: join(dir, 'a.key') },
        { type: 'cert', path: join(dir, 'a.crt'), mode: 0o600 },
      ],
      newMaterial,
    );
    assert.equal(statSync(setOf(dir).path).mode & 0o777, 0o700);
    assert.equal(statSync(setOf(dir).folder).mode & 0o777, 0o700);
    // a wider mode later opens the folders for passing (0711), never for listing
    deployTargets(
      [
        { type: 'key', path: join(dir, 'a.key') },
        { type: 'cert', path: join(dir, 'a.crt') },
      ],
      newMaterial,
    );
    assert.equal(statSync(setOf(dir).path).mode & 0o777, 0o711);
    assert.equal(statSync(setOf(dir).folder).mode & 0o777, 0o711);
  });

  test(
    'another user reads what its mode allows through the symlinks, and cannot list the set',
    { skip: process.getuid() !== 0 && 'needs root' },
    () => {
      const dir = freshDir();
      chmodSync(tmp.dir, 0o711);
      chmodSync(dir, 0o711);
      const targets = [
        { type: 'cert', path: join(dir, 'web.crt') },
        { type: 'key', path: join(dir, 'web.key'), group: 'nogroup', mode: 0o640 },
      ];
      deployTargets(targets, newMaterial);
      assert.equal(statSync(targets[1].path).gid, 65534);
      const as = (user, args) => run('runuser', ['-u', user, '--', ...args]);
      const pub = as('nobody', ['openssl', 'pkey', '-in', targets[1].path, '-pubout']);
      assert.equal(pub.status, 0, pub.stderr);
      assert.equal(pub.stdout, as('nobody', ['openssl', 'x509', '-in', targets[0].path, '-noout', '-pubkey']).stdout);
      assert.notEqual(as('daemon', ['cat', targets[1].path]).status, 0, 'a user outside the group cannot read the key');
      assert.equal(as('daemon', ['cat', targets[0].path]).status, 0, 'but can read the certificate');
      assert.notEqual(as('nobody', ['ls', setOf(dir).folder]).status, 0, 'the version folder cannot be listed');
    },
  );

  test('two certificates in one folder get separate sets; unrelated files are not touched', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'notes.txt'), 'mine\n');
    writeFileSync(join(dir, '.hidden'), 'mine too\n');
    const web = pairTargets(dir);
    const api = [
      { type: 'cert', path: join(dir, 'api.crt') },
      { type: 'key', path: join(dir, 'api.key') },
    ];
    deployTargets(web, newMaterial);
    deployTargets(api, { ...oldMaterial, name: 'api' });
    assert.deepEqual(readdirSync(dir).sort(), [
      '.hidden',
      '.mcpki-set-api',
      '.mcpki-set-web',
      'api.crt',
      'api.key',
      'notes.txt',
      'web.crt',
      'web.fullchain.pem',
      'web.key',
    ]);
    assert.equal(readlinkSync(api[0].path), '.mcpki-set-api/current/api.crt');
    assert.ok(pubkeysMatch(api[0].path, api[1].path));
    assert.ok(pubkeysMatch(web[0].path, web[1].path));
    assert.notEqual(
      openssl(['x509', '-in', api[0].path, '-noout', '-serial']),
      openssl(['x509', '-in', web[0].path, '-noout', '-serial']),
    );
    assert.equal(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine\n');
    assert.deepEqual(leftovers(dir), []);
  });

  test('migration: plain files become symlinks showing the same bytes (same inodes); a symlink replaced by hand comes back', () => {
    const dir = freshDir();
    const targets = pairTargets(dir);
    // what an earlier mcpki (or anyone) left: plain files
    writeFileSync(targets[0].path, oldMaterial.certPem, { mode: 0o644 });
    writeFileSync(targets[1].path, oldMaterial.keyPem, { mode: 0o600 });
    const inodes = [statSync(targets[0].path).ino, statSync(targets[1].path).ino];
    const keyPem = readFileSync(targets[1].path, 'utf8');
    const material = { ...oldMaterial, keyPem };
    const result = deployTargets(targets, material);
    assert.deepEqual(
      result.changed,
      targets.map((t) => t.path),
      'converted to symlinks (and the fullchain created)',
    );
    assert.deepEqual(result.created, [targets[2].path]);
    assert.ok(targets.every((t) => lstatSync(t.path).isSymbolicLink()));
    assert.deepEqual(
      [statSync(targets[0].path).ino, statSync(targets[1].path).ino],
      inodes,
      'the very files readers saw, now reached through the set',
    );
    assert.equal(readFileSync(targets[1].path, 'utf8'), keyPem);
    assert.deepEqual(leftovers(dir), []);
    assert.deepEqual(deployTargets(targets, material).changed, []);

    // plain files with other content: converted, then swapped to the new pair
    const dir2 = freshDir();
    const targets2 = pairTargets(dir2);
    writeFileSync(targets2[0].path, oldMaterial.certPem);
    writeFileSync(targets2[1].path, oldMaterial.keyPem, { mode: 0o600 });
    deployTargets(targets2, newMaterial);
    assert.ok(targets2.every((t) => lstatSync(t.path).isSymbolicLink()));
    assert.equal(openssl(['x509', '-in', targets2[0].path, '-noout', '-serial']), `serial=${newMaterial.serial}\n`);
    assert.ok(pubkeysMatch(targets2[0].path, targets2[1].path));
    assert.deepEqual(leftovers(dir2), []);

    // someone replaces our symlink with a plain copy, and another one with a symlink of their own
    const outside = join(dir2, 'elsewhere.pem');
    writeFileSync(outside, readFileSync(targets2[2].path));
    rmSync(targets2[0].path);
    writeFileSync(
      targets2[0].path,
      readFileSync(targets2[2].path, 'utf8').split(/(?<=-----END CERTIFICATE-----\n)/)[0],
    );
    rmSync(targets2[2].path);
    symlinkSync(outside, targets2[2].path);
    const back = deployTargets(targets2, newMaterial);
    assert.deepEqual(back.changed, [targets2[0].path, targets2[2].path]);
    assert.equal(readlinkSync(targets2[0].path), '.mcpki-set-web/current/web.crt');
    assert.equal(readlinkSync(targets2[2].path), '.mcpki-set-web/current/web.fullchain.pem');
    assert.equal(
      readFileSync(outside, 'utf8'),
      readFileSync(targets2[2].path, 'utf8'),
      'the outside file is untouched',
    );
    assert.notEqual(statSync(outside).ino, statSync(targets2[2].path).ino, 'and shares no inode with the set');
    assert.deepEqual(deployTargets(targets2, newMaterial).changed, []);
    assert.deepEqual(leftovers(dir2), []);
  });

  test('a killed deploy: leftover versions and temp links are reported, recovered (all members rewritten) and removed', () => {
    const dir = freshDir();
    const targets = pairTargets(dir);
    deployTargets(targets, newMaterial);
    const set = setOf(dir);
    // a version written by a run killed before its swap, and its temp symlink
    mkdirSync(join(set.path, 'v-0123-deadbeef0000'));
    writeFileSync(join(set.path, 'v-0123-deadbeef0000', 'web.key'), oldMaterial.keyPem);
    symlinkSync('v-0123-deadbeef0000', join(set.path, '.current.mcpki-tmp-deadbeef0000'));
    symlinkSync('.mcpki-set-web/current/web.key', join(dir, '.web.key.mcpki-tmp-deadbeef0000'));
    const report = repairCheck(targets);
    assert.deepEqual(report, { ok: false, problems: [], interrupted: targets.map((t) => t.path) });
    const result = deployTargets(targets, newMaterial);
    assert.deepEqual(
      result.changed,
      targets.map((t) => t.path),
    );
    assert.deepEqual(
      result.recovered,
      targets.map((t) => t.path),
    );
    assert.notEqual(setOf(dir).version, set.version);
    assert.deepEqual(leftovers(dir), []);
    assert.deepEqual(repairCheck(targets), { ok: true, problems: [], interrupted: [] });
    // a key that does not match, inside the set (edited through the symlink): reported and repaired
    writeFileSync(targets[1].path, oldMaterial.keyPem);
    assert.ok(
      repairCheck(targets).problems.some(
        (p) => p.path === targets[1].path && /does not match the certificate in .*web\.crt/.test(p.problem),
      ),
    );
    assert.deepEqual(deployTargets(targets, newMaterial).changed, [targets[1].path]);
    assert.ok(pubkeysMatch(targets[0].path, targets[1].path));
  });

  test('a target dropped from the set keeps its last content as a plain file; a dissolved set is removed', () => {
    const dir = freshDir();
    const targets = pairTargets(dir);
    deployTargets(targets, oldMaterial);
    const fullchain = readFileSync(targets[2].path, 'utf8');
    // the fullchain is no longer declared: the renewal leaves it as it was, as a plain file
    deployTargets(targets.slice(0, 2), newMaterial);
    assert.equal(lstatSync(targets[2].path).isFile(), true);
    assert.equal(readFileSync(targets[2].path, 'utf8'), fullchain);
    assert.ok(pubkeysMatch(targets[0].path, targets[1].path));
    assert.equal(statSync(targets[1].path).mode & 0o777, 0o600);
    // the key moves to another folder: the cert alone is a plain file again, and the set folder goes
    const moved = [targets[0], { type: 'key', path: join(dir, 'private', 'web.key') }];
    const result = deployTargets(moved, oldMaterial);
    assert.deepEqual(
      result.changed,
      moved.map((t) => t.path),
    );
    assert.equal(lstatSync(targets[0].path).isFile(), true);
    assert.equal(lstatSync(targets[1].path).isFile(), true, 'the old key path keeps its last content as a plain file');
    assert.equal(existsSync(join(dir, '.mcpki-set-web')), false);
    assert.ok(pubkeysMatch(moved[0].path, moved[1].path));
    assert.deepEqual(leftovers(dir), []);
  });
});

describe('hooks', () => {
  test('a reload hook runs once, with the paths and serial in its environment', async () => {
    const dir = freshDir();
    const targets = pairTargets(dir);
    const log = join(dir, 'hook.log');
    const hook = script(
      dir,
      'reload.sh',
      `printf '%s|%s|%s|%s|%s|%s|%s|%s\\n' "$1" "$MCPKI_CERT_NAME" "$MCPKI_SERIAL" "$MCPKI_CERT_PATH" "$MCPKI_KEY_PATH" "$MCPKI_FULLCHAIN_PATH" "$MCPKI_ROLLBACK" "$EXTRA" >> '${log}'\nprintf '%s' "$MCPKI_TARGETS" > '${log}.targets'`,
    );
    const outcome = await deployWithHooks(targets, newMaterial, { reload: [[hook, 'arg one']] }, { EXTRA: 'x' });
    assert.equal(outcome.rolledBack, false);
    assert.equal(outcome.hooks.length, 1);
    assert.equal(outcome.hooks[0].exitCode, 0);
    assert.deepEqual(
      outcome.deploy.changed,
      targets.map((t) => t.path),
    );
    assert.equal(
      readFileSync(log, 'utf8'),
      `arg one|web|${newMaterial.serial}|${targets[0].path}|${targets[1].path}|${targets[2].path}|0|x\n`,
    );
    assert.deepEqual(
      JSON.parse(readFileSync(`${log}.targets`, 'utf8')),
      targets.map((t) => ({ type: t.type, path: t.path })),
    );
    // nothing changed: no hook
    const second = await deployWithHooks(targets, newMaterial, { reload: [[hook]] });
    assert.deepEqual(second.deploy.changed, []);
    assert.deepEqual(second.hooks, []);
    assert.equal(readFileSync(log, 'utf8').split('\n').length, 2);
    assert.deepEqual(leftovers(dir), []);
  });

  test('a run killed after the swap, before its hooks: the next deploy reports it recovered and runs the hooks', async () => {
    const dir = freshDir();
    const targets = pairTargets(dir);
    deployTargets(targets, oldMaterial);
    // what a process killed between the swap and the hooks leaves: the new files in place, the previous version kept
    const killed = deployTargets(targets, newMaterial, { keepBackup: true });
    assert.ok(killed.backup);
    assert.equal(leftovers(dir).length, 1, 'the previous version is still there');
    const log = join(dir, 'hook.log');
    const hook = script(dir, 'reload.sh', `echo "$MCPKI_SERIAL" >> '${log}'`);
    const next = await deployWithHooks(targets, newMaterial, { reload: [[hook]] });
    assert.deepEqual(
      next.deploy.recovered,
      targets.map((t) => t.path),
    );
    assert.equal(readFileSync(log, 'utf8'), `${newMaterial.serial}\n`);
    assert.deepEqual(leftovers(dir), []);
    assert.ok(pubkeysMatch(targets[0].path, targets[1].path));
    assert.deepEqual((await deployWithHooks(targets, newMaterial, { reload: [[hook]] })).hooks, [], 'and only once');
  });

  test('a failing hook restores the previous files byte for byte and runs the hooks again', async () => {
    const dir = freshDir();
    const targets = [...pairTargets(dir), { type: 'combined', path: join(dir, 'haproxy.pem') }];
    deployTargets(targets.slice(0, 3), oldMaterial); // the combined file does not exist yet
    const before = snapshot(targets);
    const version = setOf(dir).version;
    const log = join(dir, 'hook.log');
    const hook = script(
      dir,
      'reload.sh',
      `echo "$MCPKI_ROLLBACK $MCPKI_SERIAL" >> '${log}'\nif [ "$MCPKI_ROLLBACK" = 0 ]; then echo 'nginx: [emerg] cannot load certificate' >&2; exit 3; fi`,
    );
    const error = await deployWithHooks(targets, newMaterial, { reload: [[hook]] }).then(
      () => assert.fail('deploy should fail'),
      (e) => e,
    );
    assert.ok(error instanceof DeployError);
    assert.equal(error.code, 'DEPLOY_HOOK_FAILED');
    assert.equal(error.exitCode, 16);
    assert.match(
      error.message,
      new RegExp(
        `reload hook "${hook}" for web failed: exit 3: nginx: \\[emerg\\] cannot load certificate \\(rolled back\\)`,
      ),
    );
    assert.doesNotMatch(error.message, /\n/);
    assert.ok(error.hint);
    assert.equal(error.details.rolledBack, true);
    assert.equal(error.details.reason, 'DEPLOY_HOOK_FAILED');
    assert.equal(error.details.hooks[0].exitCode, 3);
    assert.equal(error.details.rollbackHooks[0].exitCode, 0);
    assert.deepEqual(snapshot(targets), before); // byte for byte, and the new combined file is gone
    assert.equal(setOf(dir).version, version, '`current` points at the previous version again');
    assert.equal(existsSync(targets[3].path), false);
    assert.equal(readFileSync(log, 'utf8'), `0 ${newMaterial.serial}\n1 ${oldMaterial.serial}\n`);
    assert.deepEqual(leftovers(dir), []);
    assert.equal(openssl(['x509', '-in', targets[0].path, '-noout', '-serial']), `serial=${oldMaterial.serial}\n`);
  });

  test('a hook that outlives its timeout is killed with its process group', async () => {
    const dir = freshDir();
    const pidFile = join(dir, 'sleep.pid');
    const hook = script(dir, 'slow.sh', `sleep 30 &\necho $! > '${pidFile}'\nwait`);
    const started = Date.now();
    const result = await runHook([hook], {}, 400);
    assert.equal(result.timedOut, true);
    assert.ok(Date.now() - started < 5_000);
    const sleeper = Number(readFileSync(pidFile, 'utf8'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(processState(sleeper), 'dead');

    // through deployWithHooks: rolled back, and the message says so
    const targets = pairTargets(dir);
    deployTargets(targets, oldMaterial);
    const before = snapshot(targets);
    const slow = script(dir, 'slow2.sh', 'if [ "$MCPKI_ROLLBACK" = 0 ]; then exec sleep 30; fi');
    await assert.rejects(
      deployWithHooks(targets, newMaterial, { reload: [[slow]], timeoutMs: 300 }),
      (e) => /timed out after \d+ ms and was killed \(rolled back\)/.test(e.message) && e.details.rolledBack === true,
    );
    assert.deepEqual(snapshot(targets), before);
  });

  test('a hook that cannot start fails the deploy', async () => {
    const result = await runHook(['/nonexistent/mcpki-hook'], {}, 1000);
    assert.equal(result.spawnError, 'ENOENT');
    assert.equal(result.exitCode, null);
    const dir = freshDir();
    await assert.rejects(
      deployWithHooks(pairTargets(dir), newMaterial, { reload: [['/nonexistent/mcpki-hook']] }),
      /could not start \(ENOENT\)/,
    );
    assert.deepEqual(readdirSync(dir), []);
  });
});

describe('verify probe', () => {
  const servers = [];
  after(() => Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve)))));

  /** A TLS server that reads the deployed files on every handshake (what a reload would do). */
  function serveFromDisk(certPath, keyPath) {
    const context = () => tls.createSecureContext({ cert: readFileSync(certPath), key: readFileSync(keyPath) });
    return listen({
      SNICallback: (_name, cb) => cb(null, context()),
      ...{ cert: readFileSync(certPath), key: readFileSync(keyPath) },
    });
  }

  function listen(options) {
    return new Promise((resolve) => {
      const server = tls.createServer(options, (socket) => socket.end());
      server.on('tlsClientError', () => {});
      servers.push(server);
      server.listen(0, '127.0.0.1', () => resolve(server));
    });
  }

  test('confirms the new serial served after the reload', async () => {
    const dir = freshDir();
    const targets = pairTargets(dir);
    deployTargets(targets, oldMaterial);
    const server = await serveFromDisk(targets[2].path, targets[1].path);
    const hostPort = `127.0.0.1:${server.address().port}`;
    const probe = await verifyServedSerial(hostPort, oldMaterial.serial, { servername: 'localhost', timeoutMs: 2000 });
    assert.equal(probe.ok, true);
    assert.equal(probe.servedSerial, oldMaterial.serial);

    const outcome = await deployWithHooks(targets, newMaterial, {
      reload: [['true']],
      verify: hostPort,
      verifyServername: 'localhost',
      verifyTimeoutMs: 3000,
    });
    assert.equal(outcome.rolledBack, false);
    assert.equal(outcome.verified.ok, true);
    assert.equal(outcome.verified.servedSerial, newMaterial.serial);
  });

  test('a server still serving the old certificate makes the deploy roll back', async () => {
    const dir = freshDir();
    const targets = pairTargets(dir);
    deployTargets(targets, oldMaterial);
    const before = snapshot(targets);
    // a service whose reload does nothing: it keeps the certificate it loaded at start
    const server = await listen({ cert: readFileSync(targets[2].path), key: readFileSync(targets[1].path) });
    const hostPort = `127.0.0.1:${server.address().port}`;
    const error = await deployWithHooks(targets, newMaterial, {
      reload: [['true']],
      verify: hostPort,
      verifyTimeoutMs: 800,
    }).then(
      () => assert.fail('deploy should fail'),
      (e) => e,
    );
    assert.equal(error.details.reason, 'DEPLOY_VERIFY_FAILED');
    assert.equal(error.code, 'DEPLOY_VERIFY_FAILED');
    assert.equal(error.exitCode, 16);
    assert.equal(error.details.rolledBack, true);
    assert.equal(error.details.rollbackHooks.length, 1);
    assert.match(
      error.message,
      new RegExp(
        `verify ${hostPort} for web failed: .* serves serial ${oldMaterial.serial}, expected ${newMaterial.serial} \\(rolled back\\)`,
      ),
    );
    assert.deepEqual(snapshot(targets), before);
    assert.deepEqual(leftovers(dir), []);
  });

  test('nothing listening: a clear error, no exception', async () => {
    const server = await listen({ cert: oldMaterial.certPem, key: oldMaterial.keyPem });
    const port = server.address().port;
    await new Promise((resolve) => server.close(resolve));
    servers.splice(servers.indexOf(server), 1);
    const probe = await verifyServedSerial(`127.0.0.1:${port}`, newMaterial.serial, {
      timeoutMs: 300,
      intervalMs: 100,
    });
    assert.equal(probe.ok, false);
    assert.match(probe.error, /ECONNREFUSED/);
    await assert.rejects(verifyServedSerial('no-port', 'AB'), /not host:port/);
  });
});

// ---- hardening: folders others own or can write, set folders, modes, all-or-nothing issue writes ---------

/** Runs a shell command as nobody (the attacker). */
function asNobody(command) {
  const result = run('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', 'sh', '-c', command]);
  assert.equal(result.status, 0, `as nobody: ${command}: ${result.stderr}`);
  return result;
}

/** A folder like /tmp that nobody can reach: WORLD/pub is 01777 owned by root. */
function worldDir() {
  const dir = freshDir();
  chmodSync(tmp.dir, 0o755);
  chmodSync(dir, 0o755);
  const pub = join(dir, 'pub');
  mkdirSync(pub);
  chmodSync(pub, 0o1777);
  return { dir, pub };
}

function unsafeError(pattern) {
  return (error) =>
    error.code === 'UNSAFE_PATH' && error.exitCode === 22 && pattern.test(error.message) && !!error.hint;
}

describe(
  'folders others own or can write (run as root, attacker steps as nobody)',
  { skip: process.getuid() !== 0 && 'needs root' },
  () => {
    test('a .mcpki-set-web nobody created in a sticky world-writable folder before the first deploy is refused; nothing is written', () => {
      const { pub } = worldDir();
      asNobody(`mkdir ${pub}/.mcpki-set-web`);
      const targets = pairTargets(pub);
      assert.throws(
        () => deployTargets(targets, newMaterial),
        unsafeError(/\.mcpki-set-web: the set folder is owned by uid 65534/),
      );
      assert.deepEqual(readdirSync(pub), ['.mcpki-set-web']);
      assert.deepEqual(readdirSync(join(pub, '.mcpki-set-web')), []);
    });

    test('shared/tls -> /victim planted by nobody: apply refuses (UNSAFE_PATH), the victim is untouched', () => {
      const { dir, pub } = worldDir();
      const victim = join(dir, 'victim');
      mkdirSync(victim);
      writeFileSync(join(victim, 'web.pem'), 'victim\n');
      asNobody(`mkdir ${pub}/shared && ln -s ${victim} ${pub}/shared/tls`);
      assert.throws(
        () => deployTargets([{ type: 'combined', path: join(pub, 'shared', 'tls', 'web.pem') }], newMaterial),
        unsafeError(/shared: .*owned by uid 65534/),
      );
      // the same through the CLI: the certificate's deploy fails with UNSAFE_PATH
      const config = join(dir, 'mcpki.yaml');
      writeFileSync(
        config,
        `version: 1\ncertificates:\n  - name: web\n    names: [web.localhost]\n    targets:\n      - { type: combined, path: ${pub}/shared/tls/web.pem }\n      - { type: key, path: ${pub}/shared/tls/web.key }\n      - { type: cert, path: ${pub}/shared/tls/web.crt }\n`,
      );
      const applied = mcpki(['--home', home, '--json', 'apply', '-c', config]);
      assert.notEqual(applied.status, 0, applied.stdout + applied.stderr);
      assert.equal(applied.json.items[0].error.code, 'UNSAFE_PATH', applied.stdout);
      assert.match(applied.json.items[0].error.message, /owned by uid 65534/);
      assert.deepEqual(readdirSync(victim), ['web.pem']);
      assert.equal(readFileSync(join(victim, 'web.pem'), 'utf8'), 'victim\n');
    });

    test('apply: a refused target folder fails the certificate before it is issued: nothing issued, recorded or written', () => {
      const { dir, pub } = worldDir();
      const applyHome = join(dir, 'home');
      assert.equal(mcpki(['--home', applyHome, 'init']).status, 0);
      asNobody(`mkdir ${pub}/tls ${pub}/.mcpki-set-api`);
      const config = join(dir, 'mcpki.yaml');
      writeFileSync(
        config,
        `version: 1\ncertificates:\n  - name: web\n    names: [web.localhost]\n    targets:\n      - { type: cert, path: ${pub}/tls/web.crt }\n      - { type: key, path: ${pub}/tls/web.key }\n` +
          `  - name: api\n    names: [api.localhost]\n    targets:\n      - { type: cert, path: ${pub}/api.crt }\n      - { type: key, path: ${pub}/api.key }\n`,
      );
      const applied = mcpki(['--home', applyHome, '--json', 'apply', '-c', config]);
      assert.equal(applied.status, 17, applied.stdout + applied.stderr);
      assert.deepEqual(
        applied.json.items.map((item) => [item.name, item.action, item.error?.code, item.serial]),
        [
          ['web', 'failed', 'UNSAFE_PATH', null],
          ['api', 'failed', 'UNSAFE_PATH', null],
        ],
      );
      assert.match(applied.json.items[0].error.message, /tls: .*owned by uid 65534/);
      assert.match(applied.json.items[1].error.message, /\.mcpki-set-api: the set folder is owned by uid 65534/);
      assert.ok(!existsSync(join(applyHome, 'certs')), 'no certificate files in the home');
      const listed = mcpki(['--home', applyHome, '--json', 'list', '--all']);
      assert.equal(listed.status, 0, listed.stderr);
      assert.deepEqual(listed.json.certificates, [], 'no certificate recorded');
      assert.deepEqual(readdirSync(pub).sort(), ['.mcpki-set-api', 'tls']);
      assert.deepEqual(readdirSync(join(pub, 'tls')), []);
    });

    test('a target symlink nobody planted in a sticky folder is refused, not followed or adopted', () => {
      const { dir, pub } = worldDir();
      writeFileSync(join(dir, 'secret'), 'root only\n', { mode: 0o600 });
      asNobody(`ln -s ${dir}/secret ${pub}/web.key`);
      assert.throws(
        () => deployTargets(pairTargets(pub), newMaterial),
        unsafeError(/web\.key: target is a symlink owned by uid 65534/),
      );
      assert.deepEqual(readdirSync(pub), ['web.key']);
      assert.equal(readFileSync(join(dir, 'secret'), 'utf8'), 'root only\n');
    });

    test('after the first deploy in a sticky folder nobody cannot swap `current`; a `current`, version or set folder that is not ours is refused', () => {
      const { pub } = worldDir();
      const targets = pairTargets(pub);
      deployTargets(targets, oldMaterial);
      const set = join(pub, '.mcpki-set-web');
      const swap = run('setpriv', [
        '--reuid=nobody',
        '--regid=nogroup',
        '--clear-groups',
        '--',
        'sh',
        '-c',
        `ln -sfn /etc ${set}/current || mv ${pub}/web.key ${pub}/x`,
      ]);
      assert.notEqual(swap.status, 0, 'nobody could change the set');
      const version = readlinkSync(join(set, 'current'));
      run('chown', ['-h', 'nobody', join(set, 'current')]);
      assert.throws(
        () => deployTargets(targets, newMaterial),
        unsafeError(/current: the link to the current version is owned by uid 65534/),
      );
      run('chown', ['-h', 'root', join(set, 'current')]);
      run('chown', ['nobody', join(set, version)]);
      assert.throws(() => deployTargets(targets, newMaterial), unsafeError(/a version folder is owned by uid 65534/));
      run('chown', ['root', join(set, version)]);
      chmodSync(set, 0o777);
      assert.throws(
        () => deployTargets(targets, newMaterial),
        unsafeError(/the set folder is writable by everyone \(mode 0777\)/),
      );
      chmodSync(set, 0o700);
      assert.equal(deployTargets(targets, newMaterial).changed.length, 3);
      assert.equal(
        openssl(['x509', '-in', targets[0].path, '-noout', '-serial']).trim().replace('serial=', ''),
        newMaterial.serial,
      );
    });

    test('folders created for a target owned by another user belong to us (0711), so the next deploy accepts them', () => {
      const dir = freshDir();
      const targets = [{ type: 'key', path: join(dir, 'a', 'b', 'web.key'), owner: 'nobody', mode: 0o600 }];
      deployTargets(targets, newMaterial);
      for (const folder of [join(dir, 'a'), join(dir, 'a', 'b')]) {
        assert.equal(statSync(folder).uid, 0);
        assert.equal(statSync(folder).mode & 0o7777, 0o711);
      }
      assert.equal(statSync(targets[0].path).uid, 65534);
      assert.equal(
        run('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', 'cat', targets[0].path]).status,
        0,
        'the owner reads its key',
      );
      assert.deepEqual(deployTargets(targets, newMaterial).changed, []);
    });
  },
);

describe('target modes', () => {
  test('a key writable by its group, and setuid/setgid/sticky bits anywhere, are refused (exit 3); 0640 keys and 0644 certificates pass', () => {
    const dir = freshDir();
    const refused = [
      [{ type: 'key', mode: 0o660 }, /mode 0660 lets the group write the private key/],
      [{ type: 'combined', mode: 0o620 }, /group write the private key/],
      [{ type: 'key', mode: 0o604 }, /others read the private key/],
      [{ type: 'cert', mode: 0o4755 }, /setuid/],
      [{ type: 'fullchain', mode: 0o2644 }, /setgid/],
      [{ type: 'chain', mode: 0o1644 }, /sticky/],
      [{ type: 'cert', mode: 0o666 }, /everyone write/],
    ];
    for (const [fields, pattern] of refused) {
      const target = { ...fields, path: join(dir, `t.${fields.type}`) };
      assert.throws(
        () => deployTargets([target], newMaterial),
        (e) => e.code === 'INVALID_INPUT' && e.exitCode === 3 && pattern.test(e.message) && !!e.hint,
        `${fields.type} ${fields.mode.toString(8)}`,
      );
    }
    assert.deepEqual(readdirSync(dir), []);
    deployTargets(
      [
        { type: 'key', path: join(dir, 'k.key'), mode: 0o640 },
        { type: 'cert', path: join(dir, 'c.crt'), mode: 0o644 },
      ],
      newMaterial,
    );
    assert.equal(statSync(join(dir, 'k.key')).mode & 0o7777, 0o640);
  });
});

describe('issue --out: all-or-nothing writes, the real path, no traces', () => {
  const pubkey = (args) => openssl(args);

  test('a re-issue whose second rename fails (a folder in the way of x.crt) exits 8 naming x.crt; x.key still matches the old full chain; no temp files', () => {
    const out = freshDir();
    const first = mcpki(['--home', home, 'issue', 'server', 'x', 'x.localhost', '--out', out]);
    assert.equal(first.status, 0, first.stderr);
    const oldKey = readFileSync(join(out, 'x.key'));
    rmSync(join(out, 'x.crt'));
    mkdirSync(join(out, 'x.crt'));
    const again = mcpki(['--home', home, '--json', 'issue', 'server', 'x', 'x.localhost', '--out', out]);
    assert.equal(again.status, 8, again.stdout + again.stderr);
    assert.equal(again.json.error.code, 'WRITE_FAILED');
    assert.match(again.json.error.message, /x\.crt/);
    assert.deepEqual(readFileSync(join(out, 'x.key')), oldKey);
    assert.equal(
      pubkey(['pkey', '-in', join(out, 'x.key'), '-pubout']),
      pubkey(['x509', '-in', join(out, 'x.fullchain.pem'), '-noout', '-pubkey']),
    );
    assert.deepEqual(readdirSync(out).sort(), ['ca.crt', 'x.crt', 'x.fullchain.pem', 'x.key']);
    const shown = mcpki(['--home', home, '--json', 'show', 'x']);
    assert.equal(
      shown.json.certificate.serial,
      openssl(['x509', '-in', join(out, 'x.fullchain.pem'), '-noout', '-serial'])
        .trim()
        .replace('serial=', ''),
      'the inventory still records the certificate on disk',
    );
  });

  test('--out a symlink into a git work tree is refused by the git guard (exit 9)', () => {
    const dir = freshDir();
    mkdirSync(join(dir, 'repo', 'tls'), { recursive: true });
    assert.equal(run('git', ['init', '-q', join(dir, 'repo')]).status, 0);
    symlinkSync(join(dir, 'repo', 'tls'), join(dir, 'link'));
    const result = mcpki(['--home', home, 'issue', 'server', 'g', 'g.localhost', '--out', join(dir, 'link')]);
    assert.equal(result.status, 9, result.stderr);
    assert.match(result.stderr, /really .*repo\/tls\/g\.key/);
    assert.deepEqual(readdirSync(join(dir, 'repo', 'tls')), []);
  });

  test(
    'an issue that fails after signing (the inventory stays locked by another process) leaves no empty certs/NAME folder',
    { timeout: 120_000 },
    async () => {
      const dir = freshDir();
      const h = join(dir, 'home');
      assert.equal(mcpki(['--home', h, 'init']).status, 0);
      // Python's sqlite3 holds the write lock longer than mcpki's 30 s busy timeout
      const holder = spawn('python3', [
        '-c',
        'import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1],isolation_level=None)\nc.execute("BEGIN IMMEDIATE")\nprint("locked",flush=True)\ntime.sleep(60)',
        join(h, 'mcpki.db'),
      ]);
      try {
        await new Promise((resolve, reject) => {
          holder.stdout.on('data', (data) => String(data).includes('locked') && resolve());
          holder.on('exit', reject);
        });
        const result = await mcpkiAsync(['--home', h, 'issue', 'server', 'locked-out', 'locked-out.localhost']);
        assert.equal(result.status, 7, result.stderr);
        assert.equal(existsSync(join(h, 'certs', 'locked-out')), false, 'certs/locked-out was left behind');
        assert.equal(existsSync(join(h, 'certs')), false, 'certs/ was left behind');
      } finally {
        holder.kill();
      }
    },
  );

  test('--home "" is a usage error (exit 2); list with a missing home does not create it', () => {
    const empty = mcpki(['--home', '', 'list']);
    assert.equal(empty.status, 2, empty.stderr);
    assert.match(empty.stderr, /--home is empty/);
    const missing = join(freshDir(), 'nothing-here');
    const list = mcpki(['--home', missing, 'list']);
    assert.equal(list.status, 0, list.stderr);
    assert.equal(existsSync(missing), false);
  });
});

describe('homes others own or can write', () => {
  for (const [title, breakIt, pattern] of [
    ['a 0777 home', (h) => chmodSync(h, 0o777), /mcpki home is writable by everyone \(mode 0777\)/],
    ['a home owned by nobody', (h) => run('chown', ['nobody', h]), /mcpki home is owned by uid 65534/],
    ['a 0777 ca/', (h) => chmodSync(join(h, 'ca'), 0o777), /CA folder is writable by everyone/],
    [
      'a 0644 intermediate.key',
      (h) => chmodSync(join(h, 'ca', 'intermediate.key'), 0o644),
      /intermediate CA key is accessible by group or others \(mode 0644\)/,
    ],
  ]) {
    test(
      `${title} is refused with exit 22 and the fix; nothing is issued`,
      { skip: process.getuid() !== 0 && title.includes('nobody') && 'needs root' },
      () => {
        const h = join(freshDir(), 'home');
        assert.equal(mcpki(['--home', h, 'init']).status, 0);
        breakIt(h);
        const result = mcpki(['--home', h, 'issue', 'server', 'web', 'web.localhost']);
        assert.equal(result.status, 22, result.stderr);
        assert.match(result.stderr, pattern);
        assert.match(result.stderr, /hint: .*(chmod|chown)/);
        assert.equal(existsSync(join(h, 'certs')), false);
      },
    );
  }
});
