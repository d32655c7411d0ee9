// The package as users get it: `npm pack`, then installed into an empty folder without devDependencies, and the
// installed `mcpki` run for what a newcomer does first. Offline: the dependencies come from npm's cache (filled
// by `npm ci`), pinned by the repository's package-lock.json, and better-sqlite3's native module from this
// checkout's own build, handed to its real install script (prebuild-install) as a local prebuild.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, tempDir, run, hasCommand } from './helpers.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
const nativeModule = join(ROOT, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
const sqlite = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8'));

const scratch = tempDir('mcpki-package-');
let packed;
let app;
let home;

function installed(args, options = {}) {
  return run(join(app, 'node_modules', '.bin', 'mcpki'), args, {
    timeout: 60_000,
    cwd: options.cwd ?? scratch.dir,
    env: { PATH: process.env.PATH, HOME: scratch.dir, MCPKI_HOME: home, NO_COLOR: '1' },
  });
}

function step(name, fn, skip = false) {
  test(name, { skip }, fn);
}

test.after(() => scratch.cleanup());

test('npm pack: the published files, the manifest without a prepare script', () => {
  assert.ok(existsSync(join(ROOT, 'dist', 'cli.cjs')), 'dist/ is built (npm run build, or npm test builds it first)');
  // --ignore-scripts: dist/ is the tree the other tests ran against; `prepack` would rebuild the same thing
  const result = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', scratch.dir], {
    cwd: ROOT,
    timeout: 120_000,
  });
  assert.equal(result.status, 0, result.stderr);
  const [info] = JSON.parse(result.stdout);
  packed = join(scratch.dir, info.filename);
  const files = info.files.map((f) => f.path);
  for (const path of [
    'bin/mcpki.js',
    'dist/cli.cjs',
    'dist/index.js',
    'dist/index.d.ts',
    'dist/tls/index.js',
    'README.md',
    'package.json',
    'schema/mcpki.schema.json',
    'templates/systemd/mcpki.service',
    'docs/cli.md',
    'docs/troubleshooting.md',
    'docs/mcp.md',
  ]) {
    assert.ok(files.includes(path), `${path} is in the package`);
  }
  for (const path of files) assert.doesNotMatch(path, /^(test|src|bench|\.ci)\//, `${path} is not shipped`);
  // every file a doc links to is shipped with it
  for (const doc of files.filter((f) => f.endsWith('.md'))) {
    const text = run('tar', ['-xzOf', packed, `package/${doc}`]).stdout;
    for (const [, target] of text.matchAll(/\]\((?!https?:|#|mailto:)([^)#\s]+)/g)) {
      const linked = join(doc, '..', target).replace(/\/$/, '');
      assert.ok(
        files.some((f) => f === linked || f.startsWith(`${linked}/`)),
        `${doc} links to ${target}, which is not in the package`,
      );
    }
  }
  const manifest = JSON.parse(run('tar', ['-xzOf', packed, 'package/package.json']).stdout);
  assert.equal(manifest.scripts.prepare, undefined, 'no prepare script: npm would warn on every install');
  assert.match(manifest.scripts.prepack ?? '', /build/, 'npm pack builds dist/ first');
  assert.match(manifest.repository?.url ?? '', /^git\+https:\/\//);
  assert.match(manifest.homepage ?? '', /^https:\/\//);
  assert.match(manifest.bugs?.url ?? '', /^https:\/\//);
});

test('npm install --omit=dev of the tarball into an empty folder, offline', { timeout: 300_000 }, () => {
  assert.ok(packed, 'packed by the previous test');
  assert.ok(existsSync(nativeModule), `better-sqlite3 is built in this checkout (${nativeModule}): run npm ci`);
  app = join(scratch.dir, 'app with space'); // the Documentation= URLs must be percent-encoded
  home = join(scratch.dir, 'home');
  mkdirSync(app);
  // the lock pins each runtime dependency (version + integrity) so npm takes it from its cache by hash
  const packages = {
    '': { dependencies: { mcpki: `file:${packed}` } },
    'node_modules/mcpki': {
      version: pkg.version,
      resolved: `file:${packed}`,
      license: pkg.license,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) if (path !== '' && !entry.dev) packages[path] = entry;
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ private: true, dependencies: { mcpki: `file:${packed}` } }),
  );
  writeFileSync(
    join(app, 'package-lock.json'),
    JSON.stringify({ name: 'app', lockfileVersion: 3, requires: true, packages }),
  );
  // prebuild-install's local prebuild: DIR/NAME-vVERSION-node-vABI-PLATFORM-ARCH.tar.gz holding build/Release/
  const prebuilds = join(scratch.dir, 'prebuilds');
  const stage = join(scratch.dir, 'stage');
  mkdirSync(join(stage, 'build', 'Release'), { recursive: true });
  copyFileSync(nativeModule, join(stage, 'build', 'Release', 'better_sqlite3.node'));
  mkdirSync(prebuilds);
  const archive = `better-sqlite3-v${sqlite.version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  assert.equal(run('tar', ['-C', stage, '-czf', join(prebuilds, archive), 'build']).status, 0);
  const result = run('npm', ['ci', '--omit=dev', '--offline', '--no-audit', '--no-fund', '--foreground-scripts'], {
    cwd: app,
    timeout: 280_000,
    env: { ...process.env, npm_config_better_sqlite3_local_prebuilds: prebuilds },
  });
  assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
  const modules = readdirSync(join(app, 'node_modules'));
  for (const dev of Object.keys(pkg.devDependencies))
    assert.ok(
      !modules.includes(dev.split('/')[0]) || !existsSync(join(app, 'node_modules', dev)),
      `devDependency ${dev} is not installed`,
    );
  assert.ok(
    existsSync(join(app, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')),
    'better-sqlite3 install script placed its native module',
  );
});

test('installed mcpki --version', () => {
  const result = installed(['--version']);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.trim(), pkg.version);
});

test('installed mcpki init', () => {
  const result = installed(['init']);
  assert.equal(result.status, 0, result.stderr);
  assert.ok(existsSync(join(home, 'ca', 'root.crt')));
});

function issueLocalhost(args) {
  const result = installed(['issue', 'server', ...args, '--json']);
  assert.equal(result.status, 0, result.stderr);
  const { certificate } = JSON.parse(result.stdout);
  const verify = run('openssl', [
    'verify',
    '-CAfile',
    join(home, 'ca', 'root.crt'),
    '-untrusted',
    join(home, 'ca', 'intermediate.crt'),
    '-verify_hostname',
    'localhost',
    certificate.paths.cert,
  ]);
  assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  return certificate;
}

step('issue NAME alone', () => {
  const certificate = issueLocalhost(['localhost']);
  assert.deepEqual(certificate.sans, [{ type: 'dns', value: 'localhost' }]);
});

step(
  'sign',
  () => {
    const key = join(scratch.dir, 'svc.key');
    const csr = join(scratch.dir, 'svc.csr');
    const req = run('openssl', [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      csr,
      '-subj',
      '/CN=svc.localhost',
      '-addext',
      'subjectAltName=DNS:svc.localhost',
    ]);
    assert.equal(req.status, 0, req.stderr);
    const out = join(scratch.dir, 'svc.crt');
    const result = installed(['sign', csr, '--out', out]);
    assert.equal(result.status, 0, result.stderr);
    const verify = run('openssl', [
      'verify',
      '-CAfile',
      join(home, 'ca', 'root.crt'),
      '-untrusted',
      join(home, 'ca', 'intermediate.crt'),
      '-verify_hostname',
      'svc.localhost',
      out,
    ]);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  },
  !hasCommand('openssl') && 'needs openssl',
);

step('renew NAME', () => {
  const before = JSON.parse(installed(['show', 'localhost', '--json']).stdout);
  const result = installed(['renew', 'localhost']);
  assert.equal(result.status, 0, result.stderr);
  const after = JSON.parse(installed(['show', 'localhost', '--json']).stdout);
  assert.notEqual(after.certificate?.serial ?? after.serial, before.certificate?.serial ?? before.serial);
});

step('forget', () => {
  const result = installed(['forget', 'localhost']);
  assert.equal(result.status, 0, result.stderr);
  assert.notEqual(installed(['show', 'localhost']).status, 0, 'forgotten: show no longer finds it');
});

step('completion', () => {
  const result = installed(['completion', 'bash']);
  assert.equal(result.status, 0, result.stderr);
  const script = join(scratch.dir, 'mcpki.bash');
  writeFileSync(script, result.stdout);
  const check = run('bash', ['-n', script]);
  assert.equal(check.status, 0, check.stderr);
});

test('installed: a rendered systemd unit points its Documentation= at files that exist', () => {
  const config = join(scratch.dir, 'mcpki.yaml');
  writeFileSync(config, 'version: 1\ncertificates: []\n');
  for (const unit of ['systemd/mcpki.service', 'systemd/mcpki-renew.service', 'systemd/mcpki-crl.service']) {
    const result = installed(['template', 'render', unit, '-c', config]);
    assert.equal(result.status, 0, result.stderr);
    const line = result.stdout.split('\n').find((l) => l.startsWith('Documentation='));
    assert.ok(line, `${unit} has a Documentation= line`);
    // systemd expands specifiers in Documentation=: "%%" is one "%"
    for (const uri of line.slice('Documentation='.length).replace(/%%/g, '%').split(' ')) {
      assert.match(uri, /^file:\/\//, uri);
      const path = fileURLToPath(uri);
      assert.ok(path.startsWith(join(app, 'node_modules', 'mcpki')), `${uri} is inside the installed package`);
      assert.ok(existsSync(path), `${unit}: ${uri} exists`);
    }
    if (hasCommand('systemd-analyze')) {
      const file = join(scratch.dir, unit.split('/')[1]);
      writeFileSync(file, result.stdout);
      const verified = run('systemd-analyze', ['verify', file], { cwd: scratch.dir });
      assert.doesNotMatch(
        verified.stderr,
        /Documentation|Invalid URL|specifiers in 'file:/,
        `${unit}: ${verified.stderr}`,
      );
    }
  }
});
