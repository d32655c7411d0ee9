// The crl: section of mcpki.yaml: apply/renew/serve keep the local CA's CRL published, copy it to its targets
// and run the reload hooks. Checked with real peers: openssl reads the published CRL (its number, its
// nextUpdate, and `openssl verify -crl_check_all` refuses a revoked client), and a live nginx started with
// ssl_crl on the target refuses a client once it is revoked and applied, reloaded by the hook (same master).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import { applyConfig, createContext, loadConfig } from '../dist/index.js';
import { planCrl } from '../dist/renewal/crl.js';
import { startService } from '../dist/service/serve.js';
import { hasCommand, mcpki, run, tempDir, testStore } from './helpers.js';
import { freePorts } from './pebble.js';
import { nginxConf } from './nginx.js';

const DAY = 86_400_000;

/**
 * A home with a CA, a client certificate declared (good) and one issued by hand (bad: a declared certificate
 * that is revoked is issued again by apply), a crl: section, a target and a hook.
 */
function setup(t, { crl = '', hookExit = 0 } = {}) {
  const { dir, cleanup } = tempDir('mcpki-crl-publish-');
  t.after(cleanup);
  const home = join(dir, 'home');
  assert.equal(mcpki(['--home', home, 'init']).status, 0);
  assert.equal(mcpki(['--home', home, 'issue', 'client', 'bad']).status, 0);
  const log = join(dir, 'hook.log');
  const hook = join(dir, 'reload.sh');
  writeFileSync(hook, `#!/bin/sh\necho "$MCPKI_CRL_NUMBER $MCPKI_CRL_NEXT_UPDATE" >> ${log}\nexit ${hookExit}\n`);
  chmodSync(hook, 0o755);
  const target = join(dir, 'served', 'crl.pem');
  const config = join(dir, 'mcpki.yaml');
  writeFileSync(
    config,
    `version: 1
certificates:
  - { name: good, kind: client, names: [good@example.test] }
crl:
  days: 7
  targets:
    - { path: served/crl.pem }
  hooks:
    reload: [[${hook}]]
${crl}`,
  );
  const cli = (args, expected = 0) => {
    const result = mcpki(['--home', home, ...args]);
    if (expected !== null)
      assert.equal(result.status, expected, `mcpki ${args.join(' ')}: ${result.stderr}${result.stdout}`);
    return result;
  };
  return {
    dir,
    home,
    config,
    target,
    hook,
    cli,
    runs: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []),
    published: () => readFileSync(join(home, 'ca', 'crl.pem'), 'utf8'),
    cert: (name) => join(home, 'certs', name, `${name}.crt`),
  };
}

/** openssl's view of the first CRL in a file: number, lastUpdate and nextUpdate. */
function opensslCrl(path) {
  const out = run('openssl', ['crl', '-in', path, '-noout', '-crlnumber', '-lastupdate', '-nextupdate']);
  assert.equal(out.status, 0, out.stderr);
  const field = (name) => new RegExp(`${name}=(.+)`).exec(out.stdout)[1].trim();
  return {
    number: BigInt(`0x${field('crlNumber').replace(/^0x/i, '')}`).toString(),
    lastUpdate: new Date(field('lastUpdate')),
    nextUpdate: new Date(field('nextUpdate')),
  };
}

/** `openssl verify -crl_check_all` of a client certificate against the CA and a CRL file. */
function verifyWithCrl(s, name, crlFile) {
  return run('openssl', [
    'verify',
    '-crl_check_all',
    '-CAfile',
    join(s.home, 'ca', 'root.crt'),
    '-untrusted',
    join(s.home, 'ca', 'intermediate.crt'),
    '-CRLfile',
    crlFile,
    s.cert(name),
  ]);
}

test('apply publishes the CRL, copies it and runs the hook; a second apply changes nothing; a revocation is published at the next apply and openssl refuses that client', (t) => {
  const s = setup(t);
  const first = s.cli(['apply', '-c', s.config, '--json']).json;
  assert.equal(first.crl.action, 'published');
  assert.equal(first.crl.code, 'missing');
  assert.equal(first.crl.hooksRun, 1);
  assert.deepEqual(first.crl.deployed, [s.target]);
  assert.equal(readFileSync(s.target, 'utf8'), s.published(), 'the target is a copy of HOME/ca/crl.pem');
  assert.equal(statSync(s.target).mode & 0o777, 0o644);
  const seen = opensslCrl(s.target);
  assert.equal(seen.number, first.crl.number);
  assert.equal(seen.nextUpdate.toISOString(), first.crl.nextUpdate);
  assert.equal(seen.nextUpdate - seen.lastUpdate, 7 * DAY, 'days: 7');
  assert.equal(Date.parse(first.crl.refreshAt), seen.nextUpdate.getTime() - 3.5 * DAY, 'refreshBefore 1/2 by default');
  assert.deepEqual(
    s.runs(),
    [`${first.crl.number} ${first.crl.nextUpdate}`],
    'the hook ran once, told the number and nextUpdate',
  );
  assert.equal(verifyWithCrl(s, 'bad', s.target).status, 0, 'not revoked yet');

  const second = s.cli(['apply', '-c', s.config, '--json']).json;
  assert.equal(second.changed, false);
  assert.equal(second.crl.action, 'unchanged');
  assert.equal(second.crl.code, 'not-yet');
  assert.equal(second.crl.number, first.crl.number);
  assert.equal(s.runs().length, 1, 'no hook on an unchanged CRL');
  assert.match(s.cli(['apply', '-c', s.config]).stdout, /nothing to do/);

  s.cli(['revoke', 'bad']);
  const plan = planCrl(createContext({ ...testStore(s.home), home: s.home }), loadConfig(s.config));
  assert.equal(plan.due, true);
  assert.equal(plan.code, 'revoked');
  assert.match(plan.reason, /revoked since CRL #1 was published: bad/);
  const dry = s.cli(['renew', '--dry-run', '-c', s.config, '--json']).json;
  assert.equal(dry.crl.due, true);
  assert.equal(dry.crl.code, 'revoked');
  assert.match(
    s.cli(['renew', '--dry-run', '-c', s.config]).stdout,
    /^CRL: due: revoked since CRL #1 was published: bad$/m,
  );
  const third = s.cli(['apply', '-c', s.config, '--json']).json;
  assert.equal(third.crl.action, 'published');
  assert.equal(third.crl.code, 'revoked');
  assert.equal(BigInt(third.crl.number), BigInt(first.crl.number) + 1n);
  assert.equal(s.runs().length, 2, 'the hook ran once more');
  const refused = verifyWithCrl(s, 'bad', s.target);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stdout + refused.stderr, /certificate revoked/);
  const good = verifyWithCrl(s, 'good', s.target);
  assert.equal(good.status, 0, good.stdout + good.stderr);

  assert.equal(s.cli(['apply', '-c', s.config, '--json']).json.crl.action, 'unchanged');
  assert.equal(s.runs().length, 2);
});

test('a CRL made by hand (mcpki crl) is taken into account: its copy is refreshed, and its own lifetime decides', (t) => {
  const s = setup(t);
  s.cli(['apply', '-c', s.config]);
  s.cli(['crl', '--days', '30']);
  const result = s.cli(['apply', '-c', s.config, '--json']).json;
  assert.equal(result.crl.action, 'deployed', 'not signed again: only copied');
  assert.equal(result.crl.code, 'target');
  assert.equal(readFileSync(s.target, 'utf8'), s.published());
  const seen = opensslCrl(s.target);
  assert.equal(result.crl.number, seen.number);
  assert.equal(Date.parse(result.crl.refreshAt), seen.nextUpdate.getTime() - 15 * DAY, 'half of 30 days');
  assert.equal(s.runs().length, 2, 'the hook ran for the new copy');
  // a copy edited by someone else is put back
  writeFileSync(s.target, 'stale');
  assert.equal(s.cli(['apply', '-c', s.config, '--json']).json.crl.action, 'deployed');
  assert.equal(readFileSync(s.target, 'utf8'), s.published());
});

test('the clock past refreshBefore (or past nextUpdate) republishes; before it, nothing', async (t) => {
  const s = setup(t, { crl: '  refreshBefore: 2d\n' });
  let now = new Date();
  const context = createContext({ ...testStore(s.home), home: s.home, now: () => now });
  t.after(() => context.close());
  const config = loadConfig(s.config);
  const first = await applyConfig(context, config);
  assert.equal(first.crl.action, 'published');
  const nextUpdate = opensslCrl(s.target).nextUpdate.getTime();
  assert.equal(Date.parse(first.crl.refreshAt), nextUpdate - 2 * DAY);

  now = new Date(nextUpdate - 2 * DAY - 60_000); // a minute before refreshAt
  assert.equal(planCrl(context, config).due, false);
  assert.equal((await applyConfig(context, config)).crl.action, 'unchanged');

  now = new Date(nextUpdate - 2 * DAY + 60_000);
  const plan = planCrl(context, config);
  assert.equal(plan.due, true);
  assert.equal(plan.code, 'refresh');
  assert.match(plan.reason, /less than 2 day\(s\) left/);
  const refreshed = await applyConfig(context, config);
  assert.equal(refreshed.crl.action, 'published');
  assert.equal(refreshed.crl.code, 'refresh');
  const seen = opensslCrl(s.target);
  assert.equal(seen.lastUpdate.getTime(), Math.floor(now.getTime() / 1000) * 1000, 'signed at the injected time');
  assert.equal(seen.nextUpdate - seen.lastUpdate, 7 * DAY);
  assert.equal(s.runs().length, 2);

  now = new Date(seen.nextUpdate.getTime() + 1000);
  const expired = await applyConfig(context, config);
  assert.equal(expired.crl.code, 'expired');
  assert.equal(expired.crl.action, 'published');
  assert.ok(opensslCrl(s.target).nextUpdate > now);
});

test('a failing reload hook: the CRL is still published, apply exits with SOME_FAILED (17), and the next apply runs the hook again', (t) => {
  const s = setup(t, { hookExit: 3 });
  const failed = s.cli(['apply', '-c', s.config, '--json'], 17).json;
  assert.equal(failed.failed, 1);
  assert.equal(failed.crl.action, 'failed');
  assert.equal(failed.crl.error.code, 'DEPLOY_HOOK_FAILED');
  assert.match(failed.crl.error.message, /CRL reload hook .*reload\.sh" failed: exit 3/);
  assert.deepEqual(
    failed.items.map((i) => i.action),
    ['issued'],
    'the certificate was done',
  );
  assert.equal(readFileSync(s.target, 'utf8'), s.published(), 'the new CRL stays in place');
  assert.equal(opensslCrl(s.target).number, failed.crl.number);
  const human = s.cli(['apply', '-c', s.config], 17);
  assert.equal(s.runs().length, 2, 'retried');
  assert.doesNotMatch(human.stdout, /nothing to do/);

  writeFileSync(s.hook, readFileSync(s.hook, 'utf8').replace('exit 3', 'exit 0'));
  const fixed = s.cli(['apply', '-c', s.config, '--json']).json;
  assert.equal(fixed.crl.action, 'deployed');
  assert.equal(fixed.crl.code, 'reload-pending');
  assert.equal(s.runs().length, 3);
  assert.equal(s.cli(['apply', '-c', s.config, '--json']).json.crl.action, 'unchanged');
  assert.equal(s.runs().length, 3);
});

test('an invalid crl: section is refused before anything is done, each error with its YAML path and line', (t) => {
  const { dir, cleanup } = tempDir('mcpki-crl-invalid-');
  t.after(cleanup);
  const home = join(dir, 'home');
  assert.equal(mcpki(['--home', home, 'init']).status, 0);
  const config = join(dir, 'mcpki.yaml');
  writeFileSync(
    config,
    'version: 1\ncertificates: []\ncrl:\n  days: 0\n  interval: 1d\n  hooks:\n    reload: nginx -s reload\n',
  );
  const result = mcpki(['--home', home, 'apply', '-c', config]);
  assert.equal(result.status, 3, result.stderr);
  assert.match(result.stderr, /mcpki\.yaml:4:9 crl\.days: expected a number of days from 1 to 365, got 0/);
  assert.match(result.stderr, /mcpki\.yaml:5:3 crl\.interval: unknown key/);
  assert.match(
    result.stderr,
    /mcpki\.yaml:7:13 crl\.hooks\.reload: expected a command as a list of arguments \(no shell\), got a string/,
  );
  assert.equal(existsSync(join(home, 'ca', 'crl.pem')), false, 'nothing was published');
});

test('serve publishes the CRL, logs crl.published, exports its nextUpdate and wakes up when it is due again', async (t) => {
  const s = setup(t);
  const events = [];
  let now = new Date();
  const context = createContext({ ...testStore(s.home), home: s.home, now: () => now });
  // a free port (metrics addresses take ports 1 to 65535)
  const { createServer } = await import('node:net');
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  await new Promise((resolve) => probe.close(resolve));
  const service = await startService(context, {
    loadConfig: () => loadConfig(s.config),
    schedule: '0 0 1 1 *',
    metrics: `127.0.0.1:${port}`,
    log: (event, fields) => events.push({ event, ...fields }),
    scheduler: { runOnStart: false, now: () => now },
  });
  t.after(async () => {
    await service.stop();
    context.close();
  });
  assert.equal(await service.checkNow(), true);
  const published = events.find((e) => e.event === 'crl.published');
  assert.ok(published, JSON.stringify(events));
  assert.equal(published.action, 'published');
  const seen = opensslCrl(s.target);
  assert.equal(published.nextUpdate, seen.nextUpdate.toISOString());
  const done = events.filter((e) => e.event === 'check.done').at(-1);
  const certificatesDueAt = Math.min(...service.lastResult.items.map((i) => Date.parse(i.nextCheck)));
  assert.ok(seen.nextUpdate.getTime() - 3.5 * DAY < certificatesDueAt);
  assert.equal(
    done.nextWakeUp,
    new Date(seen.nextUpdate.getTime() - 3.5 * DAY).toISOString(),
    'the wake-up is the CRL refresh time, before any certificate',
  );

  const metrics = await (await fetch(`${service.metricsUrl}/metrics`)).text();
  assert.match(
    metrics,
    new RegExp(`^mcpki_crl_next_update_timestamp_seconds ${seen.nextUpdate.getTime() / 1000}$`, 'm'),
  );
  assert.match(metrics, /^mcpki_crl_publish_total\{result="success"\} 1$/m);
  assert.match(metrics, /^mcpki_crl_publish_total\{result="failure"\} 0$/m);
  assert.match(metrics, new RegExp(`^mcpki_crl_number ${seen.number}$`, 'm'));

  // an unchanged check logs nothing about the CRL; past refreshAt it is published again
  events.length = 0;
  await service.checkNow();
  assert.equal(
    events.some((e) => e.event.startsWith('crl.')),
    false,
  );
  now = new Date(seen.nextUpdate.getTime() - 3 * DAY);
  await service.checkNow();
  assert.equal(events.find((e) => e.event === 'crl.published')?.action, 'published');
  assert.match(
    await (await fetch(`${service.metricsUrl}/metrics`)).text(),
    /^mcpki_crl_publish_total\{result="success"\} 2$/m,
  );
});

test('an encrypted root key and no root CRL: published with the warning (once, not at every check); a home without a CA is skipped', (t) => {
  const { dir, cleanup } = tempDir('mcpki-crl-warning-');
  t.after(cleanup);
  const home = join(dir, 'home');
  const config = join(dir, 'mcpki.yaml');
  writeFileSync(config, 'version: 1\ncertificates: []\ncrl: {}\n');
  const skipped = mcpki(['--home', home, 'apply', '-c', config, '--json']);
  assert.equal(skipped.status, 0, skipped.stderr);
  assert.equal(skipped.json.crl.action, 'skipped');
  assert.equal(skipped.json.crl.code, 'no-ca');

  assert.equal(
    mcpki(['--home', home, 'init', '--encrypt-root'], { env: { MCPKI_ROOT_PASSPHRASE: 'correct horse battery' } })
      .status,
    0,
  );
  rmSync(join(home, 'ca', 'root-crl.pem')); // a home made before the root signed its own CRL
  const first = mcpki(['--home', home, 'apply', '-c', config, '--json'], { env: { MCPKI_ROOT_PASSPHRASE: '' } });
  assert.equal(first.status, 0, first.stderr);
  assert.equal(first.json.crl.action, 'published');
  assert.equal(first.json.crl.warnings.length, 1);
  assert.match(first.json.crl.warnings[0], /root key is encrypted and this home has no root CRL/);
  const blocks = readFileSync(join(home, 'ca', 'crl.pem'), 'utf8').match(/BEGIN X509 CRL/g);
  assert.equal(blocks.length, 1, "only the intermediate's CRL");
  const second = mcpki(['--home', home, 'apply', '-c', config, '--json']);
  assert.equal(second.json.crl.action, 'unchanged');
  assert.equal(second.json.changed, false);

  // once the root CRL exists again (`mcpki crl` with the passphrase would sign it), the file is completed
  assert.equal(mcpki(['--home', home, 'crl'], { env: { MCPKI_ROOT_PASSPHRASE: 'correct horse battery' } }).status, 0);
  assert.equal(readFileSync(join(home, 'ca', 'crl.pem'), 'utf8').match(/BEGIN X509 CRL/g).length, 2);
  assert.equal(mcpki(['--home', home, 'apply', '-c', config, '--json']).json.crl.action, 'unchanged');
});

// --- a live nginx ------------------------------------------------------------------------------------

async function freePort() {
  return (await freePorts(1))[0];
}

async function waitForPort(port, child, output) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${output()}`);
    const open = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port}: ${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One HTTPS request with a client certificate; resolves to the HTTP status or the TLS error's code. */
function get(port, s, client) {
  return new Promise((resolve) => {
    const request = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        path: '/',
        ca: readFileSync(join(s.home, 'ca', 'root.crt')),
        cert: readFileSync(join(s.home, 'certs', client, `${client}.fullchain.pem`)),
        key: readFileSync(join(s.home, 'certs', client, `${client}.key`)),
        agent: false,
        timeout: 10_000,
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode));
      },
    );
    request.on('error', (error) => resolve(error.code ?? error.message));
    request.end();
  });
}

test(
  'a live nginx with ssl_crl on the target refuses a client once it is revoked and applied, reloaded by the hook without a restart',
  { skip: !hasCommand('nginx') && 'nginx is not installed' },
  async (t) => {
    const { dir, cleanup } = tempDir('mcpki-crl-nginx-');
    t.after(cleanup);
    const home = join(dir, 'home');
    const cli = (args, expected = 0) => {
      const result = mcpki(['--home', home, ...args]);
      assert.equal(result.status, expected, `mcpki ${args.join(' ')}: ${result.stderr}${result.stdout}`);
      return result;
    };
    cli(['init']);
    for (const name of ['good', 'bad']) cli(['issue', 'client', name]);
    const prefix = join(dir, 'nginx');
    const conf = join(prefix, 'nginx.conf');
    const target = join(dir, 'etc', 'mcpki-crl.pem');
    const port = await freePort();
    const config = join(dir, 'mcpki.yaml');
    writeFileSync(
      config,
      `version: 1
certificates:
  - { name: server, names: [localhost, 127.0.0.1], targets: [{ type: fullchain, path: etc/server.pem }, { type: key, path: etc/server.key }] }
crl:
  targets: [{ path: etc/mcpki-crl.pem }]
  hooks:
    reload: [[nginx, -s, reload, -p, ${prefix}/, -e, ${join(prefix, 'error.log')}, -c, ${conf}]]
`,
    );
    // the first apply runs the hook before nginx runs: it fails (no pid file yet); start nginx, then apply again
    cli(['apply', '-c', config], 17);
    const nginxArgs = nginxConf(
      prefix,
      `    server {
        listen 127.0.0.1:${port} ssl;
        ssl_certificate ${join(dir, 'etc', 'server.pem')};
        ssl_certificate_key ${join(dir, 'etc', 'server.key')};
        ssl_verify_client on;
        ssl_client_certificate ${join(home, 'ca', 'root.crt')};
        ssl_verify_depth 2;
        ssl_crl ${target};
        location / { return 200 "hello\\n"; }
    }`,
      { errorLogLevel: 'info' },
    );
    const child = spawn('nginx', nginxArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    t.after(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
    });
    await waitForPort(
      port,
      child,
      () => output + (existsSync(join(prefix, 'error.log')) ? readFileSync(join(prefix, 'error.log'), 'utf8') : ''),
    );
    const master = Number(readFileSync(join(prefix, 'nginx.pid'), 'utf8').trim());
    assert.equal(master, child.pid);

    const pending = cli(['apply', '-c', config, '--json']).json;
    assert.equal(pending.crl.code, 'reload-pending', 'the failed hook is run again');
    assert.equal(await get(port, { home }, 'good'), 200);
    assert.equal(await get(port, { home }, 'bad'), 200, 'not revoked yet');

    cli(['revoke', 'bad']);
    assert.equal(await get(port, { home }, 'bad'), 200, 'a revocation alone changes nothing for nginx');
    const applied = cli(['apply', '-c', config, '--json']).json;
    assert.equal(applied.crl.action, 'published');
    assert.equal(applied.crl.hooksRun, 1);
    // nginx -s reload only signals the master; new workers take over within moments
    let status;
    for (
      const deadline = Date.now() + 10_000;
      Date.now() < deadline;
      await new Promise((resolve) => setTimeout(resolve, 100))
    ) {
      status = await get(port, { home }, 'bad');
      if (status === 400) break;
    }
    assert.equal(status, 400, 'nginx answers 400 (certificate revoked) to the revoked client');
    assert.match(
      readFileSync(join(prefix, 'error.log'), 'utf8'),
      /client SSL certificate verify error: .*certificate revoked/,
    );
    assert.equal(await get(port, { home }, 'good'), 200);
    assert.equal(child.exitCode, null);
    assert.equal(
      Number(readFileSync(join(prefix, 'nginx.pid'), 'utf8').trim()),
      master,
      'the same master: reloaded, not restarted',
    );
  },
);
