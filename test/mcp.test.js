// End to end with the real MCP SDK: an MCP server (McpServer + Streamable HTTP over node:https, certificate from
// createTlsReloader, client certificate required, CRL-checked) and the SDK's client over mTLS, with
// certificates from the real mcpki CLI. Then the same server behind Debian's nginx configured by the rendered
// nginx/mcp-mtls.conf, and a certificate renewal by `mcpki renew` while a session stays open.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { Agent, fetch as undiciFetch } from 'undici';
import { hasCommand, mcpki, ROOT, run, tempDir } from './helpers.js';
import { freePorts } from './pebble.js';
import { nginxConf } from './nginx.js';

const SERVER_SCRIPT = join(ROOT, 'test', 'fixtures', 'mcp', 'server.js');
const STEPS = 3;
const STEP_DELAY_MS = 300;

let tmp;
let cleanup;
let home;
let otherHome;
const certs = {};
const stoppers = [];
const clients = [];

function cli(args, targetHome = home) {
  const result = mcpki(['--home', targetHome, '--json', ...args]);
  assert.equal(result.status, 0, `mcpki ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  return result.json;
}

function issueClient(targetHome, name) {
  const json = cli(['issue', 'client', name, `${name}@example.test`], targetHome);
  return { serial: json.certificate.serial, ...json.paths };
}

/** The declaration the MCP server's files come from; `verify` makes mcpki itself probe the served serial. */
function writeConfig(verifyPort) {
  const hooks = verifyPort ? `\n    hooks:\n      verify: 127.0.0.1:${verifyPort}` : '';
  writeFileSync(
    join(tmp, 'mcpki.yaml'),
    `version: 1
certificates:
  - name: mcp
    names: [localhost, 127.0.0.1]
    days: 30
    targets:
      - { type: fullchain, path: ${join(tmp, 'tls', 'mcp.crt')} }
      - { type: key, path: ${join(tmp, 'tls', 'mcp.key')} }${hooks}
`,
  );
  return join(tmp, 'mcpki.yaml');
}

/** Starts test/fixtures/mcp/server.js; resolves once it listens. Its JSON event lines are kept in `events`. */
function startMcpServer(env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER_SCRIPT], {
      env: { ...process.env, MCPKI_MCP_FIXTURE: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const events = [];
    const waiters = [];
    let stderr = '';
    let exited = false;
    child.stderr.on('data', (chunk) => (stderr += chunk));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const event = JSON.parse(line);
      events.push(event);
      for (const waiter of [...waiters]) if (waiter.match(event)) waiter.resolve(event);
      if (event.event === 'listening') resolve(handle);
    });
    child.on('exit', (code) => {
      exited = true;
      reject(new Error(`MCP server exited with ${code}: ${stderr}`));
    });
    const handle = {
      child,
      events,
      get exited() {
        return exited;
      },
      get port() {
        return events.find((e) => e.event === 'listening').port;
      },
      waitFor(match, timeoutMs = 5_000) {
        const seen = events.find(match);
        if (seen) return Promise.resolve(seen);
        return new Promise((resolveWait, rejectWait) => {
          const timer = setTimeout(
            () => rejectWait(new Error(`no matching event within ${timeoutMs} ms; events: ${JSON.stringify(events)}`)),
            timeoutMs,
          );
          waiters.push({
            match,
            resolve: (event) => {
              clearTimeout(timer);
              resolveWait(event);
            },
          });
        });
      },
    };
    stoppers.push(() => stopProcess(child));
  });
}

function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 3_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** An SDK client whose fetch is undici's own, bound to an Agent with the given trust and client certificate. */
async function connectClient(url, { ca, cert, key }) {
  const connect = { ca: readFileSync(ca) };
  if (cert) connect.cert = readFileSync(cert);
  if (key) connect.key = readFileSync(key);
  const agent = new Agent({ connect });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    fetch: (input, init) => undiciFetch(input, { ...init, dispatcher: agent }),
  });
  const client = new Client({ name: 'mcpki-e2e', version: '1.0.0' });
  const logs = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) =>
    logs.push({ at: Date.now(), data: notification.params.data }),
  );
  const entry = { client, agent, transport, logs };
  clients.push(entry);
  await client.connect(transport);
  return entry;
}

function textOf(result) {
  return result.content.map((part) => part.text).join('');
}

async function whoami(client) {
  return JSON.parse(textOf(await client.callTool({ name: 'whoami', arguments: {} })));
}

/** Calls the streaming tool; returns when each notification and the result arrived (ms since the call). */
async function timedCountdown(entry) {
  const started = Date.now();
  const progress = [];
  entry.logs.length = 0;
  const result = await entry.client.callTool(
    { name: 'countdown', arguments: { steps: STEPS, delayMs: STEP_DELAY_MS } },
    undefined,
    {
      onprogress: (p) => progress.push({ at: Date.now() - started, progress: p.progress }),
    },
  );
  const resultAt = Date.now() - started;
  return {
    text: textOf(result),
    resultAt,
    progress,
    logs: entry.logs.map((log) => ({ ...log, at: log.at - started })),
  };
}

/** The serial a new TLS connection is served, read by the openssl CLI (an independent client). */
function opensslServedSerial(port, client) {
  const handshake = run(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'localhost',
      '-CAfile',
      join(home, 'ca', 'root.crt'),
      '-cert',
      client.fullchain,
      '-key',
      client.key,
    ],
    { input: '' },
  );
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(handshake.stdout)?.[0];
  assert.ok(pem, `openssl s_client printed no certificate: ${handshake.stderr}`);
  const serial = run('openssl', ['x509', '-noout', '-serial'], { input: pem }).stdout.trim();
  return serial.replace(/^serial=/, '').toUpperCase();
}

async function freePort() {
  return (await freePorts(1))[0];
}

before(() => {
  ({ dir: tmp, cleanup } = tempDir('mcpki-mcp-'));
  home = join(tmp, 'home');
  otherHome = join(tmp, 'other-home');
  mkdirSync(join(tmp, 'tls'));
  cli(['init']);
  cli(['init'], otherHome);
  certs.agent = issueClient(home, 'agent');
  certs.revoked = issueClient(home, 'revoked');
  certs.stranger = issueClient(otherHome, 'stranger');
  cli(['revoke', 'revoked']);
  cli(['crl']);
  const applied = mcpki(['--home', home, 'apply', '-c', writeConfig()]);
  assert.equal(applied.status, 0, applied.stderr + applied.stdout);
});

after(async () => {
  for (const { client, agent } of clients) {
    await client.close().catch(() => {});
    await agent.destroy().catch(() => {});
  }
  await Promise.all(stoppers.map((stop) => stop()));
  cleanup?.();
});

describe('MCP over HTTPS with a required client certificate, served through createTlsReloader', () => {
  let server;
  let url;

  before(async () => {
    server = await startMcpServer({
      MCP_TLS: JSON.stringify({
        cert: join(tmp, 'tls', 'mcp.crt'),
        key: join(tmp, 'tls', 'mcp.key'),
        ca: join(home, 'ca', 'root.crt'),
        crl: join(home, 'ca', 'crl.pem'),
      }),
    });
    url = `https://127.0.0.1:${server.port}/mcp`;
  });

  test('the SDK client with an mcpki client certificate lists the tools, calls one, and gets a streamed result', async () => {
    const entry = await connectClient(url, {
      ca: join(home, 'ca', 'root.crt'),
      cert: certs.agent.fullchain,
      key: certs.agent.key,
    });
    const tools = (await entry.client.listTools()).tools.map((tool) => tool.name).sort();
    assert.deepEqual(tools, ['countdown', 'echo', 'whoami']);
    assert.equal(
      textOf(await entry.client.callTool({ name: 'echo', arguments: { text: 'hello over mTLS' } })),
      'hello over mTLS',
    );
    const run = await timedCountdown(entry);
    assert.equal(run.text, `done after ${STEPS} steps`);
    assert.deepEqual(
      run.progress.map((p) => p.progress),
      [1, 2, 3],
    );
    assert.equal(run.logs.length, STEPS);
    assert.ok(
      run.progress[0].at < run.resultAt - STEP_DELAY_MS,
      `first progress at ${run.progress[0].at} ms, result at ${run.resultAt} ms`,
    );
  });

  // Under TLS 1.3 the client finishes its handshake before the server judges its certificate, so a refusal
  // surfaces as a closed socket on the first request: assert that connecting fails, and read the reason
  // from the server's side.
  const refusals = [
    [
      'without a client certificate',
      () => ({ ca: join(home, 'ca', 'root.crt') }),
      /peer did not return a certificate|certificate required/i,
    ],
    [
      'with a revoked certificate (CRL-checked)',
      () => ({ ca: join(home, 'ca', 'root.crt'), cert: certs.revoked.fullchain, key: certs.revoked.key }),
      /CERT_REVOKED/,
    ],
    [
      'with a client certificate from another CA',
      () => ({ ca: join(home, 'ca', 'root.crt'), cert: certs.stranger.fullchain, key: certs.stranger.key }),
      /UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_GET_CRL/,
    ], // OpenSSL reports the missing CRL of the foreign intermediate first
  ];
  for (const [what, options, serverReason] of refusals) {
    test(`fails ${what}`, async () => {
      const before = server.events.length;
      await assert.rejects(connectClient(url, options()));
      const refusal = await server.waitFor(
        (e, i = server.events.indexOf(e)) => i >= before && e.event === 'tls-client-error',
      );
      assert.match(`${refusal.authorizationError} ${refusal.message}`, serverReason);
    });
  }

  test('fails when the client trusts another CA (the server certificate does not verify)', async () => {
    const error = await connectClient(url, {
      ca: join(otherHome, 'ca', 'root.crt'),
      cert: certs.agent.fullchain,
      key: certs.agent.key,
    }).then(
      () => assert.fail('connected while trusting another CA'),
      (e) => e,
    );
    const causes = [];
    for (let e = error; e; e = e.cause) causes.push(`${e.code ?? ''} ${e.message}`);
    assert.match(
      causes.join(' | '),
      /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|unable to get local issuer|self[- ]signed|UNABLE_TO_VERIFY_LEAF_SIGNATURE/i,
    );
  });

  test('renewal by "mcpki renew --force" while a session is open: new connections get the new serial, the session goes on, same process', async () => {
    const entry = await connectClient(url, {
      ca: join(home, 'ca', 'root.crt'),
      cert: certs.agent.fullchain,
      key: certs.agent.key,
    });
    const sessionId = entry.transport.sessionId;
    assert.ok(sessionId);
    const oldSerial = opensslServedSerial(server.port, certs.agent);
    assert.equal(oldSerial, server.events.find((e) => e.event === 'listening').serial);
    const before = await whoami(entry.client);

    const renewed = mcpki(['--home', home, '--json', 'renew', '--force', 'mcp', '-c', writeConfig(server.port)]);
    assert.equal(
      renewed.status,
      0,
      `mcpki renew (its verify probe checks the served serial): ${renewed.stderr}${renewed.stdout}`,
    );
    const newSerial = cli(['show', 'mcp']).certificate.serial;
    assert.notEqual(newSerial, oldSerial);
    await server.waitFor((e) => e.event === 'reload' && e.serial === newSerial);

    assert.equal(
      opensslServedSerial(server.port, certs.agent),
      newSerial,
      'openssl s_client sees the renewed certificate',
    );
    // the open session: same id, tools still answer, over connections made before the renewal
    assert.equal(entry.transport.sessionId, sessionId);
    assert.equal(
      textOf(await entry.client.callTool({ name: 'echo', arguments: { text: 'still here' } })),
      'still here',
    );
    const after = await whoami(entry.client);
    assert.equal(after.pid, before.pid);
    assert.equal(after.startedAt, before.startedAt);
    assert.equal(server.exited, false, 'the server was never restarted');
    assert.ok(
      after.connections.some((c) => c.servedSerial === oldSerial),
      `a connection made before the renewal is still open: ${JSON.stringify(after.connections)}`,
    );
    // a new client gets the new certificate, through the SDK too
    const fresh = await connectClient(url, {
      ca: join(home, 'ca', 'root.crt'),
      cert: certs.agent.fullchain,
      key: certs.agent.key,
    });
    const seen = await whoami(fresh.client);
    assert.equal(seen.pid, before.pid);
    assert.ok(seen.connections.some((c) => c.servedSerial === newSerial));
    assert.deepEqual(
      server.events.filter((e) => e.event === 'reload-error'),
      [],
    );
  });
});

describe(
  'MCP behind Debian nginx with the rendered nginx/mcp-mtls.conf',
  { skip: !hasCommand('nginx') && 'nginx is not installed' },
  () => {
    let url;

    before(async () => {
      // without the SDK's "X-Accel-Buffering: no": the rendered configuration alone must keep streams unbuffered
      const upstream = await startMcpServer({ MCP_NO_ACCEL_HEADER: '1' });
      cli(['issue', 'server', 'edge', 'localhost', '127.0.0.1']);
      const port = await freePort();
      const nginxDir = join(tmp, 'nginx');
      mkdirSync(join(nginxDir, 'logs'), { recursive: true });
      const rendered = mcpki([
        '--home',
        home,
        'template',
        'render',
        'nginx/mcp-mtls.conf',
        '--cert',
        'edge',
        '--var',
        `listen=127.0.0.1:${port}`,
        '--var',
        `upstream=http://127.0.0.1:${upstream.port}`,
        '--var',
        'serverName=localhost',
        '--out',
        join(nginxDir, 'mcp.conf'),
      ]);
      assert.equal(rendered.status, 0, rendered.stderr);
      const nginxArgs = nginxConf(nginxDir, `    include ${nginxDir}/mcp.conf;`, {
        errorLogLevel: 'info',
        accessLog: `${nginxDir}/logs/access.log`,
      });
      const check = run('nginx', ['-t', ...nginxArgs]);
      assert.equal(check.status, 0, check.stderr);
      const nginx = spawn('nginx', nginxArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
      stoppers.push(() => stopProcess(nginx));
      const deadline = Date.now() + 5_000;
      for (;;) {
        const up = await new Promise((resolve) =>
          net
            .connect(port, '127.0.0.1')
            .once('connect', function () {
              this.destroy();
              resolve(true);
            })
            .once('error', () => resolve(false)),
        );
        if (up) break;
        assert.ok(
          Date.now() < deadline && nginx.exitCode === null,
          `nginx did not start: ${readFileSync(join(nginxDir, 'error.log'), 'utf8')}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      url = `https://127.0.0.1:${port}/mcp`;
    });

    test('the SDK client completes a session through nginx with mTLS, and nginx passes the client certificate on', async () => {
      const entry = await connectClient(url, {
        ca: join(home, 'ca', 'root.crt'),
        cert: certs.agent.fullchain,
        key: certs.agent.key,
      });
      const tools = (await entry.client.listTools()).tools.map((tool) => tool.name).sort();
      assert.deepEqual(tools, ['countdown', 'echo', 'whoami']);
      assert.equal(
        textOf(await entry.client.callTool({ name: 'echo', arguments: { text: 'through nginx' } })),
        'through nginx',
      );
      const seen = await whoami(entry.client);
      assert.equal(seen.proxiedClientVerify, 'SUCCESS');
      assert.equal(seen.proxiedClientSerial.toUpperCase(), certs.agent.serial);
    });

    test('a streamed response arrives through nginx step by step, not buffered', async () => {
      const entry = await connectClient(url, {
        ca: join(home, 'ca', 'root.crt'),
        cert: certs.agent.fullchain,
        key: certs.agent.key,
      });
      const run = await timedCountdown(entry);
      assert.equal(run.text, `done after ${STEPS} steps`);
      assert.deepEqual(
        run.progress.map((p) => p.progress),
        [1, 2, 3],
      );
      assert.equal(run.logs.length, STEPS);
      // the tool sends each step, then waits STEP_DELAY_MS: unbuffered, step 1 arrives about 3 delays before the result
      const gap = run.resultAt - run.progress[0].at;
      assert.ok(
        gap >= STEP_DELAY_MS,
        `first progress at ${run.progress[0].at} ms, result at ${run.resultAt} ms (gap ${gap} ms)`,
      );
      assert.ok(
        run.progress[1].at - run.progress[0].at >= STEP_DELAY_MS / 2,
        `steps arrive apart: ${JSON.stringify(run.progress)}`,
      );
    });

    test('nginx refuses a client without a certificate, and a revoked one', async () => {
      await assert.rejects(connectClient(url, { ca: join(home, 'ca', 'root.crt') }), /400|certificate/i);
      await assert.rejects(
        connectClient(url, { ca: join(home, 'ca', 'root.crt'), cert: certs.revoked.fullchain, key: certs.revoked.key }),
        /400|certificate/i,
      );
    });
  },
);
