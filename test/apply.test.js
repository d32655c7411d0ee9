// mcpki apply / renew with a local-CA mcpki.yaml: issuance, targets, hooks, idempotency, the renewal clock,
// failures, and two applies at once.
import { test } from 'node:test';
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
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { applyConfig, createContext, loadConfig } from '../dist/index.js';
import { BIN, mcpki, mcpkiAsync, run, storeEnv, tempDir, testStore } from './helpers.js';

function setup({ failHook = false } = {}) {
  const temp = tempDir('mcpki-apply-');
  const dir = temp.dir;
  const home = join(dir, 'home');
  assert.equal(mcpki(['--home', home, 'init']).status, 0);
  const hook = join(dir, 'reload.sh');
  writeFileSync(
    hook,
    `#!/bin/sh\necho "$MCPKI_CERT_NAME $MCPKI_SERIAL" >> ${join(dir, 'reloads.log')}\n${failHook ? 'echo "reload refused" >&2; exit 3\n' : ''}`,
  );
  chmodSync(hook, 0o755);
  writeFileSync(
    join(dir, 'mcpki.yaml'),
    `version: 1
certificates:
  - name: api
    names: [api.localhost, 127.0.0.1]
    days: 30
    targets:
      - { type: cert, path: deploy/api.crt }
      - { type: key, path: deploy/api.key }
      - { type: combined, path: deploy/api.pem }
    hooks:
      reload: [${hook}]
  - name: web
    names: [web.localhost]
    targets:
      - { type: fullchain, path: deploy/web.crt }
      - { type: key, path: deploy/web.key }
  - name: agent
    kind: client
    names: [agent@example.test]
    days: 7
`,
  );
  const reloads = () =>
    existsSync(join(dir, 'reloads.log')) ? readFileSync(join(dir, 'reloads.log'), 'utf8').trim().split('\n') : [];
  return { ...temp, home, config: join(dir, 'mcpki.yaml'), deploy: join(dir, 'deploy'), reloads };
}

function servedSerial(path) {
  return run('openssl', ['x509', '-in', path, '-noout', '-serial']).stdout.trim().replace('serial=', '');
}

function keyMatches(certPath, keyPath) {
  return (
    run('openssl', ['x509', '-in', certPath, '-noout', '-pubkey']).stdout ===
    run('openssl', ['pkey', '-in', keyPath, '-pubout']).stdout
  );
}

test('apply issues, deploys and reloads once; a second apply changes nothing and says so', () => {
  const s = setup();
  try {
    const first = mcpki(['--home', s.home, '--json', 'apply', '-c', s.config]);
    assert.equal(first.status, 0, first.stderr + first.stdout);
    assert.deepEqual(
      first.json.items.map((i) => [i.name, i.action]),
      [
        ['api', 'issued'],
        ['web', 'issued'],
        ['agent', 'issued'],
      ],
    );
    assert.equal(s.reloads().length, 1, 'the reload hook ran once, for api');
    const api = mcpki(['--home', s.home, '--json', 'show', 'api']).json.certificate;
    assert.equal(s.reloads()[0], `api ${api.serial}`);
    assert.equal(servedSerial(join(s.deploy, 'api.crt')), api.serial);
    assert.ok(keyMatches(join(s.deploy, 'api.crt'), join(s.deploy, 'api.key')));
    assert.ok(
      keyMatches(join(s.deploy, 'api.pem'), join(s.deploy, 'api.pem')),
      'combined file holds the matching key and certificate',
    );
    assert.ok(keyMatches(join(s.deploy, 'web.crt'), join(s.deploy, 'web.key')));
    const verified = run('openssl', [
      'verify',
      '-CAfile',
      join(s.home, 'ca', 'root.crt'),
      '-untrusted',
      join(s.deploy, 'web.crt'),
      join(s.deploy, 'web.crt'),
    ]);
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);

    // api.crt and api.key form a file set: symlinks into one version folder swapped as a whole
    assert.equal(readlinkSync(join(s.deploy, 'api.key')), '.mcpki-set-api/current/api.key');
    assert.ok(lstatSync(join(s.deploy, 'api.pem')).isFile(), 'the combined file is a plain file');
    const version = readlinkSync(join(s.deploy, '.mcpki-set-api', 'current'));

    const second = mcpki(['--home', s.home, 'apply', '-c', s.config]);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /nothing to do: all 3 certificates are current and deployed/);
    assert.equal(readlinkSync(join(s.deploy, '.mcpki-set-api', 'current')), version, 'no new version');
    assert.equal(s.reloads().length, 1, 'no reload without a change');
    assert.equal(
      mcpki(['--home', s.home, '--json', 'list', '--all']).json.certificates.length,
      3,
      'nothing issued twice',
    );
  } finally {
    s.cleanup();
  }
});

test('renew --dry-run shows the plan; --force renews one certificate, rewrites its targets and reloads', () => {
  const s = setup();
  try {
    const planBefore = mcpki(['--home', s.home, '--json', 'renew', '--dry-run', '-c', s.config]).json.plan;
    assert.deepEqual(
      planBefore.map((p) => [p.name, p.due, p.code]),
      [
        ['api', true, 'missing'],
        ['web', true, 'missing'],
        ['agent', true, 'missing'],
      ],
    );
    assert.equal(mcpki(['--home', s.home, 'apply', '-c', s.config]).status, 0);
    const plan = mcpki(['--home', s.home, '--json', 'renew', '--dry-run', '-c', s.config]).json.plan;
    assert.ok(
      plan.every((p) => !p.due && p.code === 'not-yet'),
      JSON.stringify(plan),
    );
    assert.match(plan[0].reason, /1\/3 of the 30-day lifetime/);
    assert.match(plan[2].reason, /1\/2 of the 7-day lifetime/);
    const api = plan.find((p) => p.name === 'api');
    assert.ok(
      Date.parse(api.nextCheck) > Date.now() + 19 * 86_400_000 &&
        Date.parse(api.nextCheck) < Date.now() + 21 * 86_400_000,
      '30 days, renewed with 1/3 left',
    );
    const human = mcpki(['--home', s.home, 'renew', '--dry-run', '-c', s.config]).stdout;
    assert.match(human, /^NAME\s+DUE\s+WHY\s+NEXT CHECK/m);

    const oldSerial = servedSerial(join(s.deploy, 'api.crt'));
    const forced = mcpki(['--home', s.home, '--json', 'renew', '--force', 'api', '-c', s.config]);
    assert.equal(forced.status, 0, forced.stderr);
    assert.deepEqual(
      forced.json.items.map((i) => [i.name, i.action]),
      [
        ['api', 'renewed'],
        ['web', 'unchanged'],
        ['agent', 'unchanged'],
      ],
    );
    assert.notEqual(servedSerial(join(s.deploy, 'api.crt')), oldSerial);
    assert.equal(s.reloads().length, 2);

    const unknown = mcpki(['--home', s.home, 'renew', '--force', 'ghost', '-c', s.config]);
    assert.equal(unknown.status, 10);
    assert.match(unknown.stderr, /does not declare/);
  } finally {
    s.cleanup();
  }
});

test('with an injected clock, each certificate renews when its policy says, and only then', async () => {
  const s = setup();
  let now = new Date();
  const context = createContext({ ...testStore(s.home), home: s.home, now: () => now });
  try {
    const config = loadConfig(s.config);
    await applyConfig(context, config);
    const serials = () =>
      Object.fromEntries(
        ['api', 'web', 'agent'].map((n) => [n, mcpki(['--home', s.home, '--json', 'show', n]).json.certificate.serial]),
      );
    const start = serials();
    now = new Date(now.getTime() + 5 * 86_400_000); // agent (7 days, < 10: renews at half) is due
    let result = await applyConfig(context, config);
    assert.deepEqual(
      result.items.map((i) => i.action),
      ['unchanged', 'unchanged', 'renewed'],
    );
    now = new Date(now.getTime() + 16 * 86_400_000); // day 21: api (30 days) has less than 1/3 left
    result = await applyConfig(context, config);
    assert.deepEqual(
      result.items.map((i) => i.action),
      ['renewed', 'unchanged', 'renewed'],
    );
    const after = serials();
    assert.notEqual(after.api, start.api);
    assert.equal(after.web, start.web);
    assert.equal(s.reloads().length, 2, 'api reloaded once per renewal');
  } finally {
    context.close();
    s.cleanup();
  }
});

test('a failing reload hook rolls the files back and apply exits 17; the other certificates are done', () => {
  const s = setup({ failHook: true });
  try {
    const result = mcpki(['--home', s.home, '--json', 'apply', '-c', s.config]);
    assert.equal(result.status, 17, result.stdout + result.stderr);
    const api = result.json.items.find((i) => i.name === 'api');
    assert.equal(api.action, 'failed');
    assert.equal(api.error.code, 'DEPLOY_HOOK_FAILED');
    assert.match(api.error.message, /reload refused/);
    assert.ok(!existsSync(join(s.deploy, 'api.crt')), 'the new files were rolled back (there were none before)');
    assert.deepEqual(
      result.json.items.filter((i) => i.name !== 'api').map((i) => i.action),
      ['issued', 'issued'],
    );
    const plan = mcpki(['--home', s.home, '--json', 'renew', '--dry-run', '-c', s.config]).json.plan.find(
      (p) => p.name === 'api',
    );
    assert.equal(plan.failures, 1);
    assert.match(plan.lastError, /reload refused/);
    const listed = mcpki(['--home', s.home, '--json', 'list']).json.certificates.find((c) => c.name === 'api');
    assert.equal(listed.renewal.failures, 1);
    assert.match(listed.renewal.lastError, /reload refused/);
    assert.match(mcpki(['--home', s.home, 'list']).stdout, /^api .*1 failed: .*reload refused/m);
  } finally {
    s.cleanup();
  }
});

test('two concurrent applies: every certificate is issued once', async () => {
  const s = setup();
  try {
    const [a, b] = await Promise.all([
      mcpkiAsync(['--home', s.home, 'apply', '-c', s.config]),
      mcpkiAsync(['--home', s.home, 'apply', '-c', s.config]),
    ]);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(mcpki(['--home', s.home, '--json', 'list', '--all']).json.certificates.length, 3);
    assert.equal(s.reloads().length, 1);
  } finally {
    s.cleanup();
  }
});

test('an invalid mcpki.yaml: every error listed with its line, nothing issued', () => {
  const s = setup();
  try {
    writeFileSync(
      s.config,
      'version: 1\ncertificates:\n  - name: x\n    names: [x.localhost]\n    dayz: 3\n  - name: y\n    names: [example.com\n',
    );
    const broken = mcpki(['--home', s.home, 'apply', '-c', s.config]);
    assert.equal(broken.status, 3);
    assert.match(broken.stderr, /mcpki\.yaml/);
    writeFileSync(
      s.config,
      'version: 1\ncertificates:\n  - name: x\n    names: [x.localhost]\n    dayz: 3\n  - name: y\n    names: [y.localhost]\n    targets:\n      - { type: cert, path: a.crt, mode: 0640 }\n',
    );
    const invalid = mcpki(['--home', s.home, 'apply', '-c', s.config]);
    assert.equal(invalid.status, 3);
    assert.match(invalid.stderr, /mcpki\.yaml has 2 errors/);
    assert.match(invalid.stderr, /mcpki\.yaml:5:\d+ certificates\[0\]/);
    assert.match(invalid.stderr, /mcpki\.yaml:9:\d+ certificates\[1\]\.targets\[0\]\.mode/);
    assert.equal(mcpki(['--home', s.home, '--json', 'list']).json.certificates.length, 0);
  } finally {
    s.cleanup();
  }
});

test('the parsed mcpki.yaml is cached by content: an edit is seen at once, a broken edit is reported', () => {
  const s = setup();
  try {
    const plan = () => mcpki(['--home', s.home, '--json', 'renew', '--dry-run', '-c', s.config]);
    assert.deepEqual(
      plan().json.plan.map((p) => p.name),
      ['api', 'web', 'agent'],
    );
    assert.equal(readdirSync(join(s.home, 'cache')).filter((f) => f.startsWith('config-')).length, 1);
    assert.deepEqual(
      plan().json.plan.map((p) => p.name),
      ['api', 'web', 'agent'],
      'from the cache',
    );
    writeFileSync(s.config, readFileSync(s.config, 'utf8') + '  - name: extra\n    names: [extra.localhost]\n');
    assert.deepEqual(
      plan().json.plan.map((p) => p.name),
      ['api', 'web', 'agent', 'extra'],
    );
    writeFileSync(s.config, readFileSync(s.config, 'utf8') + '    dayz: 3\n');
    const broken = plan();
    assert.equal(broken.status, 3);
    assert.match(broken.json.error.details[0], /dayz/);
    assert.equal(
      readdirSync(join(s.home, 'cache')).filter((f) => f.startsWith('config-')).length,
      1,
      'old entries are pruned',
    );
  } finally {
    s.cleanup();
  }
});

test('a target changed or removed by hand is rewritten on the next apply, and its hook runs', () => {
  const s = setup();
  try {
    assert.equal(mcpki(['--home', s.home, 'apply', '-c', s.config]).status, 0);
    assert.equal(s.reloads().length, 1);
    assert.match(mcpki(['--home', s.home, 'apply', '-c', s.config]).stdout, /nothing to do/);
    const cert = join(s.deploy, 'api.crt');
    const good = readFileSync(cert, 'utf8');
    writeFileSync(cert, 'tampered\n');
    const repaired = mcpki(['--home', s.home, '--json', 'apply', '-c', s.config]);
    assert.equal(repaired.status, 0, repaired.stderr);
    assert.deepEqual(repaired.json.items.find((i) => i.name === 'api').deployed, [cert]);
    assert.equal(readFileSync(cert, 'utf8'), good);
    assert.equal(s.reloads().length, 2);
    rmSync(join(s.deploy, 'web.key'));
    const recreated = mcpki(['--home', s.home, '--json', 'apply', '-c', s.config]);
    assert.deepEqual(recreated.json.items.find((i) => i.name === 'web').deployed, [join(s.deploy, 'web.key')]);
    assert.ok(keyMatches(join(s.deploy, 'web.crt'), join(s.deploy, 'web.key')));
  } finally {
    s.cleanup();
  }
});

test('reload hooks never see the secrets mcpki reads from the environment', () => {
  const s = setup();
  try {
    const dump = join(s.dir, 'hook-env.txt');
    const hook = join(s.dir, 'dump-env.sh');
    writeFileSync(hook, `#!/bin/sh\nenv > ${dump}\n`);
    chmodSync(hook, 0o755);
    writeFileSync(
      s.config,
      `version: 1
certificates:
  - name: api
    names: [api.localhost]
    targets:
      - { type: fullchain, path: deploy/api.crt }
      - { type: key, path: deploy/api.key }
    hooks:
      reload: [${hook}]
`,
    );
    const secrets = {
      MCPKI_ROOT_PASSPHRASE: 'root-secret-1',
      MCPKI_P12_PASSWORD: 'p12-secret-2',
      MCPKI_EAB_HMAC: 'eab-secret-3',
      MCPKI_FUTURE_TOKEN: 'token-secret-4',
    };
    const result = mcpki(['--home', s.home, 'apply', '-c', s.config], { env: { ...secrets, KEPT_VARIABLE: 'kept' } });
    assert.equal(result.status, 0, result.stderr + result.stdout);
    const seen = readFileSync(dump, 'utf8');
    assert.match(seen, /^MCPKI_CERT_NAME=api$/m, 'the hook got its own variables');
    assert.match(seen, /^KEPT_VARIABLE=kept$/m, 'and the rest of the environment');
    for (const [name, value] of Object.entries(secrets)) {
      assert.ok(!seen.includes(name), `${name} reached the hook`);
      assert.ok(!seen.includes(value), `the value of ${name} reached the hook`);
    }
  } finally {
    s.cleanup();
  }
});

/** mcpki.yaml with one certificate, api, of these names, deployed to deploy/api.crt and .key. */
function declareApi(config, names) {
  writeFileSync(
    config,
    `version: 1
certificates:
  - name: api
    names: [${names.join(', ')}]
    targets:
      - { type: fullchain, path: deploy/api.crt }
      - { type: key, path: deploy/api.key }
`,
  );
}

test('names declared in another order are the same declaration; one more name, or one replaced, is a change', () => {
  const s = setup();
  try {
    const declare = (names) => declareApi(s.config, names);
    const plan = () => {
      const result = mcpki(['--home', s.home, '--json', 'renew', '--dry-run', '-c', s.config]);
      assert.equal(result.status, 0, result.stderr + result.stdout);
      return result.json.plan[0];
    };
    declare(['a.localhost', 'b.localhost', '127.0.0.1']);
    assert.equal(mcpki(['--home', s.home, '--json', 'apply', '-c', s.config]).status, 0);
    assert.equal(plan().code, 'not-yet');
    declare(['127.0.0.1', 'b.localhost', 'a.localhost']);
    assert.equal(plan().code, 'not-yet', 'the same names in another order');
    declare(['b.localhost', 'a.localhost', '127.0.0.1', 'c.localhost']);
    const grown = plan();
    assert.deepEqual([grown.code, grown.reason.startsWith('names changed')], ['changed', true]);
    declare(['a.localhost', 'c.localhost', '127.0.0.1']);
    assert.equal(plan().code, 'changed', 'one name replaced, as many names');
  } finally {
    s.cleanup();
  }
});

test('a changed declaration that fails to reissue backs off: the next apply neither retries nor says "current", and keeps the failure', () => {
  const s = setup();
  try {
    const declare = (names) => declareApi(s.config, names);
    declare(['api.localhost']);
    const first = mcpki(['--home', s.home, '--json', 'apply', '-c', s.config]);
    assert.equal(first.status, 0, first.stderr + first.stdout);
    const serial = first.json.items[0].serial;
    // a name outside the CA's constraints: the reissue fails
    declare(['api.localhost', 'www.outside-the-constraints.com']);
    const failed = mcpki(['--home', s.home, '--json', 'apply', '-c', s.config]);
    assert.equal(failed.status, 17, failed.stderr + failed.stdout);
    assert.equal(failed.json.items[0].action, 'failed');
    assert.equal(failed.json.items[0].failures, 1);
    assert.equal(failed.json.items[0].code, 'changed');

    // the next apply: backing off, no new attempt, the failure kept, never "nothing to do"
    const again = mcpki(['--home', s.home, 'apply', '-c', s.config]);
    assert.equal(again.status, 17, again.stderr + again.stdout);
    assert.doesNotMatch(again.stdout, /nothing to do|are current and deployed/);
    assert.match(again.stdout, /api\s+backing off/);
    assert.match(again.stdout, /backing off after 1 failure/);
    const json = mcpki(['--home', s.home, '--json', 'apply', '-c', s.config]);
    assert.equal(json.status, 17);
    const item = json.json.items[0];
    assert.equal(item.action, 'unchanged', 'not attempted again');
    assert.equal(item.code, 'backoff');
    assert.equal(item.failures, 1, 'the failure count survives skipped runs');
    assert.equal(item.serial, serial);
    assert.equal(json.json.backingOff, 1);
    const events = mcpki(['--home', s.home, '--json', 'events', '--type', 'renewal.failed']);
    assert.equal(events.status, 0, events.stderr);
    assert.equal(events.json.events.length, 1, 'one attempt only');

    // renew --dry-run: the JSON and the table agree on when it is retried
    const plan = mcpki(['--home', s.home, '--json', 'renew', '--dry-run', '-c', s.config]);
    assert.equal(plan.status, 0, plan.stderr);
    const [p] = plan.json.plan;
    assert.equal(p.due, false);
    assert.equal(p.code, 'backoff');
    const retry = Date.parse(p.nextCheck);
    assert.ok(retry > Date.now() && retry < Date.now() + 10 * 60_000, `retry within minutes, not ${p.nextCheck}`);
    const table = mcpki(['--home', s.home, 'renew', '--dry-run', '-c', s.config]);
    assert.match(table.stdout, new RegExp(`api\\s+backing off.*${p.nextCheck.slice(0, 16).replace('T', ' ')}`));
  } finally {
    s.cleanup();
  }
});

test('renew --dry-run names renewBefore from mcpki.yaml as written (parsed once, not turned back into seconds)', () => {
  const temp = tempDir('mcpki-apply-rb-');
  try {
    const home = join(temp.dir, 'home');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const config = join(temp.dir, 'mcpki.yaml');
    writeFileSync(
      config,
      `version: 1
certificates:
  - { name: by-time, names: [a.localhost], days: 30, renewBefore: 20d }
  - { name: by-share, names: [b.localhost], days: 30, renewBefore: 25% }
`,
    );
    assert.equal(mcpki(['--home', home, 'apply', '-c', config]).status, 0);
    const plan = mcpki(['--home', home, '--json', 'renew', '--dry-run', '-c', config]).json.plan;
    assert.match(plan.find((p) => p.name === 'by-time').reason, /renewBefore 20d before expiry/);
    assert.match(plan.find((p) => p.name === 'by-share').reason, /when 25% of the 30-day lifetime remains/);
  } finally {
    temp.cleanup();
  }
});

/** `count` certificates, each with a fullchain and a key target in deploy/ (a file set). */
function fleet(count) {
  const temp = tempDir('mcpki-apply-fleet-');
  const home = join(temp.dir, 'home');
  assert.equal(mcpki(['--home', home, 'init']).status, 0);
  const names = Array.from({ length: count }, (_, i) => `f${i}`);
  const config = join(temp.dir, 'mcpki.yaml');
  writeFileSync(
    config,
    'version: 1\ncertificates:\n' +
      names
        .map(
          (n) =>
            `  - name: ${n}\n    names: [${n}.localhost]\n    targets:\n` +
            `      - { type: fullchain, path: deploy/${n}.crt }\n      - { type: key, path: deploy/${n}.key }\n`,
        )
        .join(''),
  );
  return { ...temp, home, config, names, deploy: join(temp.dir, 'deploy') };
}

/** Serial (openssl's spelling) of the certificate in a file. */
function serialOf(path) {
  return run('openssl', ['x509', '-in', path, '-noout', '-serial']).stdout.trim().replace('serial=', '');
}

test('renew --force of 40 certificates syncs per chunk, not per file: every set then matches and is on record', (t) => {
  if (run('strace', ['-V']).status !== 0) return t.skip('strace is not installed');
  // hosts sharing a PostgreSQL inventory renew one certificate at a time, each under its lock
  if (process.env.MCPKI_TEST_POSTGRES) return t.skip('one at a time on a shared inventory');
  const f = fleet(40);
  try {
    assert.equal(mcpki(['--home', f.home, 'apply', '-c', f.config]).status, 0);
    const before = new Map(f.names.map((n) => [n, serialOf(join(f.deploy, `${n}.crt`))]));
    const counts = join(f.dir, 'strace.txt');
    const traced = run(
      'strace',
      [
        '-f',
        '-c',
        '-o',
        counts,
        '-e',
        'trace=fsync,fdatasync,syncfs',
        process.execPath,
        BIN,
        '--home',
        f.home,
        '--json',
        'renew',
        '-c',
        f.config,
        ...f.names.flatMap((n) => ['--force', n]),
      ],
      { timeout: 120_000, env: { ...process.env, ...storeEnv(['--home', f.home]) } },
    );
    assert.equal(traced.status, 0, traced.stderr);
    const items = JSON.parse(traced.stdout).items;
    assert.equal(items.filter((i) => i.action === 'renewed').length, 40);
    const calls = {};
    for (const line of readFileSync(counts, 'utf8').split('\n')) {
      const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
      if (m) calls[m[2]] = Number(m[1]);
    }
    // one certificate at a time made ~10 fsyncs each (4 home files, 2 set files, their folders): 400 here
    const fsyncs = (calls.fsync ?? 0) + (calls.fdatasync ?? 0);
    assert.ok(fsyncs < 40, `fewer fsyncs than certificates, got ${JSON.stringify(calls)}`);
    assert.ok((calls.syncfs ?? 0) >= 2, `syncfs before and after the renames, got ${JSON.stringify(calls)}`);
    // what is on disk: each set's new certificate, matching its key (openssl), and the one on record
    const list = mcpki(['--home', f.home, '--json', 'list']).json;
    for (const n of f.names) {
      const crt = join(f.deploy, `${n}.crt`);
      const key = join(f.deploy, `${n}.key`);
      const serial = serialOf(crt);
      assert.notEqual(serial, before.get(n), `${n} was rewritten`);
      assert.equal(serial, items.find((i) => i.name === n).serial, `${n}: the serial reported is the one deployed`);
      const record = (list.certificates ?? list).find((c) => c.name === n);
      assert.equal(record.serial, serial, `${n}: the serial on record is the one deployed`);
      const fromCert = run('openssl', ['x509', '-in', crt, '-noout', '-pubkey']).stdout;
      assert.ok(fromCert.includes('PUBLIC KEY'));
      assert.equal(fromCert, run('openssl', ['pkey', '-in', key, '-pubout']).stdout, `${n}: key matches`);
      const set = join(f.deploy, `.mcpki-set-${n}`);
      assert.deepEqual(
        readdirSync(set).sort(),
        ['current', readlinkSync(join(set, 'current'))].sort(),
        `${n}: the previous version is removed`,
      );
    }
    assert.deepEqual(
      readdirSync(join(f.home, 'certs', 'f0')).sort(),
      ['ca.crt', 'f0.crt', 'f0.fullchain.pem', 'f0.key'],
      'no temp files or kept links left in the home',
    );
    assert.equal(mcpki(['--home', f.home, '--json', 'renew', '-c', f.config]).json.changed, false, 'then current');
  } finally {
    f.cleanup();
  }
});

test('in a chunk renewed together, a certificate whose target cannot be written fails alone', () => {
  const f = fleet(5);
  try {
    assert.equal(mcpki(['--home', f.home, 'apply', '-c', f.config]).status, 0);
    const before = new Map(f.names.map((n) => [n, serialOf(join(f.deploy, `${n}.crt`))]));
    rmSync(join(f.deploy, 'f2.key'));
    mkdirSync(join(f.deploy, 'f2.key')); // a folder where the key goes
    const result = mcpki([
      '--home',
      f.home,
      '--json',
      'renew',
      '-c',
      f.config,
      ...f.names.flatMap((n) => ['--force', n]),
    ]);
    assert.notEqual(result.status, 0);
    const items = JSON.parse(result.stdout).items;
    assert.equal(items.find((i) => i.name === 'f2').action, 'failed');
    assert.match(items.find((i) => i.name === 'f2').error.message, /f2\.key is a folder/);
    for (const n of f.names.filter((n) => n !== 'f2')) {
      assert.equal(items.find((i) => i.name === n).action, 'renewed', n);
      assert.notEqual(serialOf(join(f.deploy, `${n}.crt`)), before.get(n), `${n} was rewritten`);
    }
    assert.equal(serialOf(join(f.deploy, 'f2.crt')), before.get('f2'), 'f2 keeps its previous set');
  } finally {
    f.cleanup();
  }
});
