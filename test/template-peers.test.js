// The peer templates, rendered with `mcpki template render … --cert` against a real home, run in the tools
// they are for: nginx -t and a live nginx, haproxy -c and a live HAProxy, caddy validate, the TypeScript server
// and client compiled with tsc and run against each other, the curl script, and the Python server's TLS
// settings and client identity under Debian's uvicorn without the mcp package (acceptance 5 of issue 5; the
// MCP SDK itself is in mcp-python.test.js). Each must be able to fail: broken paths,
// missing and revoked client certificates are refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { nginxConf } from './nginx.js';
import { hasCommand, mcpki, ROOT, run, startPeer, tempDir } from './helpers.js';
import { freePorts } from './pebble.js';

const PYTHON = '/usr/bin/python3';
const hasUvicorn = existsSync(PYTHON) && run(PYTHON, ['-c', 'import uvicorn']).status === 0;

let dir;
let home;
let cleanup;
let config;
const files = {};

function cli(args) {
  const result = mcpki(['--home', home, ...args]);
  assert.equal(result.status, 0, `mcpki ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  return result;
}

/** Renders a template into dir and returns its path. */
function render(name, args, out = join(dir, name.replace(/\//g, '_'))) {
  cli(['template', 'render', name, ...args, '--out', out]);
  return out;
}

before(() => {
  ({ dir, cleanup } = tempDir('mcpki-template-peers-'));
  home = join(dir, 'home');
  cli(['init']);
  cli(['issue', 'server', 'mcp.localhost', 'localhost', '127.0.0.1']);
  for (const name of ['agent', 'gateway', 'revoked-agent']) cli(['issue', 'client', name]);
  cli(['revoke', 'revoked-agent']);
  cli(['crl']);
  // a certificate declared with deployed targets (what a proxy reads), and one without a combined target
  config = join(dir, 'mcpki.yaml');
  writeFileSync(
    config,
    `version: 1
certificates:
  - name: proxy
    names: [localhost, 127.0.0.1]
    targets:
      - { type: fullchain, path: deploy/proxy.fullchain.pem }
      - { type: key, path: deploy/proxy.key }
      - { type: combined, path: deploy/proxy.pem }
  - name: bare
    names: [bare.localhost]
    targets:
      - { type: cert, path: deploy/bare.crt }
`,
  );
  cli(['apply', '-c', config]);
  files.root = join(home, 'ca', 'root.crt');
  files.crl = join(home, 'ca', 'crl.pem');
  for (const name of ['agent', 'gateway', 'revoked-agent']) {
    files[name] = {
      cert: join(home, 'certs', name, `${name}.fullchain.pem`),
      key: join(home, 'certs', name, `${name}.key`),
    };
  }
});

after(() => cleanup?.());

async function freePort() {
  return (await freePorts(1))[0];
}

/** Runs a program without blocking the event loop (in-process upstreams must keep answering). */
function runAsync(cmd, args, options = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 20_000, ...options }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** curl over TLS to 127.0.0.1 with `name` resolved there; returns status and body (the HTTP code on the last line). */
function curl(port, path, { client, headers = [], name = 'localhost' } = {}) {
  const args = [
    '--silent',
    '--show-error',
    '--max-time',
    '10',
    '--cacert',
    files.root,
    '--resolve',
    `${name}:${port}:127.0.0.1`,
    '--write-out',
    '\n%{http_code}',
  ];
  if (client) args.push('--cert', files[client].cert, '--key', files[client].key);
  for (const header of headers) args.push('-H', header);
  return runAsync('curl', [...args, `https://${name}:${port}${path}`]).then((r) => {
    const lines = r.stdout.split('\n');
    return { ...r, code: Number(lines.pop()), body: lines.join('\n') };
  });
}

function nginxFor(prefix, include) {
  return nginxConf(prefix, `    include ${include};`);
}

test(
  'every nginx template passes nginx -t; a missing certificate file makes it fail',
  { skip: !hasCommand('nginx') && 'nginx is not installed' },
  () => {
    const cases = [
      ['nginx/mcp-mtls.conf', ['--cert', 'mcp.localhost']],
      ['nginx/mcp-tls.conf', ['--cert', 'proxy', '-c', config]],
      ['nginx/mcp-mtls-upstream.conf', ['--cert', 'mcp.localhost', '--client-cert', 'gateway']],
    ];
    for (const [name, args] of cases) {
      const rendered = render(name, [...args, '--var', 'listen=127.0.0.1:18443']);
      const text = readFileSync(rendered, 'utf8');
      assert.ok(!text.includes('{{'), `${name}: every placeholder filled`);
      const checked = run('nginx', ['-t', ...nginxFor(join(dir, `nginx-t-${name.split('/')[1]}`), rendered)]);
      assert.equal(checked.status, 0, `${name}: ${checked.stderr}`);
      assert.match(checked.stderr, /test is successful/);
    }
    const mtls = readFileSync(join(dir, 'nginx_mcp-mtls.conf'), 'utf8');
    assert.match(mtls, new RegExp(`ssl_client_certificate "${files.root}";`));
    assert.match(mtls, new RegExp(`ssl_crl "${files.crl}";`));
    assert.match(mtls, /ssl_protocols TLSv1\.2 TLSv1\.3;/);
    assert.match(
      readFileSync(join(dir, 'nginx_mcp-tls.conf'), 'utf8'),
      new RegExp(`ssl_certificate "${join(dir, 'deploy', 'proxy.fullchain.pem')}";`),
      'the deployed target, not the inventory copy',
    );

    const broken = render(
      'nginx/mcp-mtls.conf',
      ['--cert', 'mcp.localhost', '--var', `fullchain=${join(dir, 'missing.pem')}`],
      join(dir, 'broken.conf'),
    );
    const failed = run('nginx', ['-t', ...nginxFor(join(dir, 'nginx-t-broken'), broken)]);
    assert.notEqual(failed.status, 0);
    assert.match(failed.stderr, /missing\.pem/);
  },
);

test(
  'nginx/mcp-mtls.conf: a client certificate gets through with its identity; none or a revoked one is refused; event streams are not buffered',
  { skip: (!hasCommand('nginx') || !hasCommand('curl')) && 'nginx or curl is not installed' },
  async (t) => {
    let release;
    const upstream = createServer((req, res) => {
      if (req.url === '/events') {
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
        res.write('data: one\n\n');
        release = () => res.end('data: two\n\n');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          path: req.url,
          subject: req.headers['x-client-cert-subject'],
          verify: req.headers['x-client-cert-verify'],
        }),
      );
    });
    await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    t.after(() => upstream.close());
    const port = await freePort();
    const rendered = render('nginx/mcp-mtls.conf', [
      '--cert',
      'mcp.localhost',
      '--var',
      `listen=127.0.0.1:${port}`,
      '--var',
      `upstream=http://127.0.0.1:${upstream.address().port}`,
    ]);
    const nginx = await startPeer('nginx', nginxFor(join(dir, 'nginx-live'), rendered), port);
    t.after(() => nginx.stop());

    const ok = await curl(port, '/mcp', { client: 'agent', headers: ['X-Client-Cert-Subject: CN=forged'] });
    assert.equal(ok.code, 200, ok.stderr + ok.body);
    const seen = JSON.parse(ok.body);
    assert.equal(seen.path, '/mcp');
    assert.match(seen.subject, /CN=agent/);
    assert.doesNotMatch(seen.subject, /forged/, 'a client cannot set its own identity header');
    assert.equal(seen.verify, 'SUCCESS');

    const none = await curl(port, '/mcp');
    assert.equal(none.code, 400, 'no client certificate');
    assert.match(none.body, /No required SSL certificate was sent/);
    const revoked = await curl(port, '/mcp', { client: 'revoked-agent' });
    assert.equal(revoked.code, 400, 'revoked client certificate');
    assert.match(revoked.body, /SSL certificate error/);

    // the upstream ends the stream only after the client has read its first event: a buffering proxy never delivers it
    const events = await new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/events',
          servername: 'localhost',
          ca: readFileSync(files.root),
          cert: readFileSync(files.agent.cert),
          key: readFileSync(files.agent.key),
          timeout: 5_000,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => {
            body += chunk;
            if (body.includes('data: one') && !body.includes('two')) release();
          });
          res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('no event within 5 s: the proxy buffers the stream')));
      req.on('error', reject);
      req.end();
    });
    assert.equal(events.status, 200);
    assert.equal(events.type, 'text/event-stream');
    assert.equal(events.body, 'data: one\n\ndata: two\n\n');
  },
);

test(
  'haproxy/mcp-mtls.cfg reads the combined target, passes haproxy -c and requires a client certificate; without a combined target, a clear error',
  { skip: (!hasCommand('haproxy') || !hasCommand('curl')) && 'haproxy or curl is not installed' },
  async (t) => {
    const noTarget = mcpki([
      '--home',
      home,
      'template',
      'render',
      'haproxy/mcp-mtls.cfg',
      '--cert',
      'bare',
      '-c',
      config,
    ]);
    assert.equal(noTarget.status, 10);
    assert.match(noTarget.stderr, /certificate "bare" in .*mcpki\.yaml has no combined target/);
    assert.match(
      noTarget.stderr,
      /hint: add "- \{ type: combined, path: \/etc\/haproxy\/certs\/bare\.pem \}" to its targets/,
    );
    const inventoryOnly = mcpki([
      '--home',
      home,
      'template',
      'render',
      'haproxy/mcp-mtls.cfg',
      '--cert',
      'mcp.localhost',
    ]);
    assert.equal(inventoryOnly.status, 10);
    assert.match(inventoryOnly.stderr, /has no combined file/);
    assert.match(inventoryOnly.stderr, /type: combined/);

    const upstream = createServer((req, res) =>
      res.end(JSON.stringify({ subject: req.headers['x-client-cert-subject'] })),
    );
    await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    t.after(() => upstream.close());
    const port = await freePort();
    const cfg = render('haproxy/mcp-mtls.cfg', [
      '--cert',
      'proxy',
      '-c',
      config,
      '--var',
      `listen=127.0.0.1:${port}`,
      '--var',
      `upstream=http://127.0.0.1:${upstream.address().port}`,
    ]);
    assert.match(
      readFileSync(cfg, 'utf8'),
      new RegExp(
        `crt "${join(dir, 'deploy', 'proxy.pem')}" verify required ca-file "${files.root}" crl-file "${files.crl}"`,
      ),
    );
    const checked = run('haproxy', ['-c', '-f', cfg]);
    assert.equal(checked.status, 0, checked.stderr + checked.stdout);

    const haproxy = await startPeer('haproxy', ['-db', '-f', cfg], port);
    t.after(() => haproxy.stop());
    const ok = await curl(port, '/mcp', { client: 'agent' });
    assert.equal(ok.code, 200, ok.stderr + ok.body);
    assert.match(JSON.parse(ok.body).subject, /CN=agent/);
    assert.notEqual((await curl(port, '/mcp')).code, 200, 'no client certificate');
    assert.notEqual((await curl(port, '/mcp', { client: 'revoked-agent' })).code, 200, 'revoked client certificate');
  },
);

test(
  'caddy/Caddyfile passes caddy validate; a missing key file fails it',
  { skip: !hasCommand('caddy') && 'caddy is not installed' },
  () => {
    const env = { ...process.env, HOME: dir, XDG_DATA_HOME: join(dir, 'xdg'), XDG_CONFIG_HOME: join(dir, 'xdg') };
    const good = render('caddy/Caddyfile', ['--cert', 'proxy', '-c', config, '--var', 'listen=127.0.0.1:18443']);
    const text = readFileSync(good, 'utf8');
    assert.match(text, /^https:\/\/localhost:18443 \{$/m);
    assert.match(text, new RegExp(`trusted_ca_cert_file "${files.root}"`));
    const validated = run('caddy', ['validate', '--adapter', 'caddyfile', '--config', good], { env });
    assert.equal(validated.status, 0, validated.stderr);
    assert.match(validated.stdout + validated.stderr, /Valid configuration/);
    const broken = render(
      'caddy/Caddyfile',
      ['--cert', 'proxy', '-c', config, '--var', `key=${join(dir, 'missing.key')}`],
      join(dir, 'Caddyfile.broken'),
    );
    const failed = run('caddy', ['validate', '--adapter', 'caddyfile', '--config', broken], { env });
    assert.notEqual(failed.status, 0);
    assert.match(failed.stderr, /missing\.key/);
  },
);

test('traefik/mcp-mtls.yml is YAML with the deployed paths and a client certificate requirement', () => {
  const doc = parseYaml(readFileSync(render('traefik/mcp-mtls.yml', ['--cert', 'proxy', '-c', config]), 'utf8'));
  assert.deepEqual(doc.tls.certificates, [
    { certFile: join(dir, 'deploy', 'proxy.fullchain.pem'), keyFile: join(dir, 'deploy', 'proxy.key') },
  ]);
  const options = doc.tls.options[doc.http.routers.mcp.tls.options];
  assert.deepEqual(options.clientAuth, { caFiles: [files.root], clientAuthType: 'RequireAndVerifyClientCert' });
  assert.equal(options.minVersion, 'VersionTLS12');
  assert.equal(doc.http.routers.mcp.rule, 'Host(`localhost`)');
  assert.deepEqual(doc.http.services[doc.http.routers.mcp.service].loadBalancer.servers, [
    { url: 'http://127.0.0.1:3000' },
  ]);
  assert.equal(doc.http.routers.mcp.entryPoints[0], 'websecure');
});

test('mcp/claude-desktop.json trusts the mcpki root through NODE_EXTRA_CA_CERTS', () => {
  const doc = JSON.parse(readFileSync(render('mcp/claude-desktop.json', ['--cert', 'mcp.localhost']), 'utf8'));
  const entry = doc.mcpServers['mcp.localhost'];
  assert.equal(entry.env.NODE_EXTRA_CA_CERTS, files.root);
  assert.deepEqual(entry.args, ['-y', 'mcp-remote', 'https://localhost:8443/mcp']);
});

/** A folder where tsc and node resolve the SDK, undici, zod and mcpki (the repository) as an installed package would. */
function tsProject() {
  const project = join(dir, 'ts');
  mkdirSync(join(project, 'node_modules', '@modelcontextprotocol'), { recursive: true });
  mkdirSync(join(project, 'node_modules', '@types'), { recursive: true });
  symlinkSync(
    join(ROOT, 'node_modules', '@modelcontextprotocol', 'sdk'),
    join(project, 'node_modules', '@modelcontextprotocol', 'sdk'),
  );
  symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(project, 'node_modules', '@types', 'node'));
  for (const name of ['undici', 'zod'])
    symlinkSync(join(ROOT, 'node_modules', name), join(project, 'node_modules', name));
  symlinkSync(ROOT, join(project, 'node_modules', 'mcpki'));
  writeFileSync(join(project, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        skipLibCheck: true,
        types: ['node'],
        outDir: 'out',
      },
      include: ['*.ts'],
    }),
  );
  return project;
}

function servedSerial(port) {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: readFileSync(files.root),
        cert: readFileSync(files.agent.cert),
        key: readFileSync(files.agent.key),
      },
      () => {
        const serial = socket.getPeerCertificate().serialNumber.toUpperCase();
        socket.end();
        resolve(serial);
      },
    );
    socket.once('error', reject);
  });
}

test(
  'mcp/server.ts and mcp/client.ts compile and talk MCP over mTLS; the curl script and nginx/mcp-mtls-upstream.conf reach the same server; a renewal is served without a restart',
  { skip: !hasCommand('curl') && 'curl is not installed' },
  async (t) => {
    const project = tsProject();
    const port = await freePort();
    const url = `https://localhost:${port}/mcp`;
    render(
      'mcp/server.ts',
      ['--cert', 'proxy', '-c', config, '--var', `listen=127.0.0.1:${port}`],
      join(project, 'server.ts'),
    );
    render('mcp/client.ts', ['--cert', 'agent', '--var', `url=${url}`], join(project, 'client.ts'));
    // the same client with a certificate from another CA
    const { dir: otherHome, cleanup: cleanupOther } = tempDir('mcpki-other-ca-');
    t.after(cleanupOther);
    assert.equal(mcpki(['--home', otherHome, 'init']).status, 0);
    assert.equal(mcpki(['--home', otherHome, 'issue', 'client', 'stranger']).status, 0);
    const stranger = join(otherHome, 'certs', 'stranger');
    render(
      'mcp/client.ts',
      [
        '--cert',
        'agent',
        '--var',
        `url=${url}`,
        '--var',
        `fullchain=${stranger}/stranger.fullchain.pem`,
        '--var',
        `key=${stranger}/stranger.key`,
      ],
      join(project, 'stranger.ts'),
    );
    const compiled = run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project]);
    assert.equal(compiled.status, 0, compiled.stdout + compiled.stderr);

    const server = await startPeer(process.execPath, [join(project, 'out', 'server.js')], port);
    t.after(() => server.stop());
    // the port opens before the listen callback's line reaches the pipe
    for (const deadline = Date.now() + 5_000; !server.output().includes('\n') && Date.now() < deadline;)
      await new Promise((resolve) => setTimeout(resolve, 50));
    assert.match(server.output(), /client certificate required/);

    const listed = await runAsync(process.execPath, [join(project, 'out', 'client.js')]);
    assert.equal(listed.status, 0, listed.stderr + listed.stdout);
    assert.match(listed.stdout, /^tools: whoami, echo$/m);
    const identity = JSON.parse(/^whoami: (.*)$/m.exec(listed.stdout)[1]);
    assert.equal(identity.id, 'agent', 'a certificate without SAN URI or e-mail is known by its common name');
    assert.equal(
      identity.thumbprint,
      createHash('sha256')
        .update(new X509Certificate(readFileSync(files.agent.cert)).raw)
        .digest('base64url'),
    );

    // refused: under TLS 1.3 the client sees only a closed socket, and the template says what that means
    const refused = await runAsync(process.execPath, [join(project, 'out', 'stranger.js')]);
    assert.equal(refused.status, 1, refused.stdout);
    assert.match(refused.stderr, /closed the connection: was the client certificate refused/);

    // the curl script: initialize, list, call
    const script = render('curl/mcp-call.sh', ['--cert', 'agent', '--var', `url=${url}`]);
    const called = await runAsync('sh', [script, '', 'echo', '{"text":"through curl"}']);
    assert.equal(called.status, 0, called.stderr);
    assert.match(called.stdout, /"name":"whoami"/);
    assert.match(called.stdout, /"text":"through curl"/);
    const revokedScript = render('curl/mcp-call.sh', ['--cert', 'revoked-agent', '--var', `url=${url}`]);
    assert.notEqual((await runAsync('sh', [revokedScript])).status, 0, 'revoked client refused by the server');

    // nginx in front (TLS only), presenting the gateway client certificate to this server
    if (hasCommand('nginx')) {
      const front = await freePort();
      const conf = render('nginx/mcp-mtls-upstream.conf', [
        '--cert',
        'mcp.localhost',
        '--client-cert',
        'gateway',
        '--var',
        `listen=127.0.0.1:${front}`,
        '--var',
        `upstream=https://localhost:${port}`,
      ]);
      const nginx = await startPeer('nginx', nginxFor(join(dir, 'nginx-upstream'), conf), front);
      t.after(() => nginx.stop());
      const viaNginx = await runAsync('sh', [script, `https://localhost:${front}/mcp`, 'whoami']);
      assert.equal(
        viaNginx.status,
        0,
        viaNginx.stderr + readFileSync(join(dir, 'nginx-upstream', 'error.log'), 'utf8'),
      );
      assert.match(
        viaNginx.stdout,
        /"text":"\{\\"id\\":\\"gateway\\"/,
        'the server saw the certificate nginx presented',
      );
    }

    // hot reload: a forced renewal rewrites the deployed files; the next connection gets the new serial
    const before = await servedSerial(port);
    assert.equal(before, mcpki(['--home', home, '--json', 'show', 'proxy']).json.certificate.serial);
    cli(['renew', '-c', config, '--force', 'proxy']);
    const renewed = mcpki(['--home', home, '--json', 'show', 'proxy']).json.certificate.serial;
    assert.notEqual(renewed, before);
    const deadline = Date.now() + 10_000;
    let now = before;
    while (now !== renewed && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      now = await servedSerial(port);
    }
    assert.equal(now, renewed, 'the renewed certificate is served');
    assert.match(server.output(), new RegExp(`certificate reloaded: serial ${renewed}`));
  },
);

test(
  "mcp/server.py compiles, and its TLS settings under Debian's uvicorn complete an mTLS handshake with an mcpki client certificate, pass its identity to the app, and refuse none or a revoked one",
  { skip: (!hasUvicorn || !hasCommand('curl')) && `${PYTHON} with uvicorn or curl is missing` },
  async (t) => {
    const port = await freePort();
    const server = render(
      'mcp/server.py',
      ['--cert', 'mcp.localhost', '--var', `listen=127.0.0.1:${port}`],
      join(dir, 'server.py'),
    );
    const compiled = run(PYTHON, ['-m', 'py_compile', server]);
    assert.equal(compiled.status, 0, compiled.stderr);
    // The mcp package is not in Debian: the rendered module's own server_config() runs with a tiny ASGI app.
    const runner = join(dir, 'run_tls.py');
    writeFileSync(
      runner,
      `import importlib.util
import sys

import uvicorn

spec = importlib.util.spec_from_file_location("rendered_server", sys.argv[1])
server = importlib.util.module_from_spec(spec)
spec.loader.exec_module(server)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    identity = scope.get("state", {}).get("client_identity") or {}
    body = f"mtls ok: {identity.get('id')} {identity.get('thumbprint')}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


uvicorn.Server(server.server_config(app)).run()
`,
    );
    const uvicorn = await startPeer(PYTHON, [runner, server], port);
    t.after(() => uvicorn.stop());
    const ok = await curl(port, '/', { client: 'agent' });
    assert.equal(ok.code, 200, ok.stderr + uvicorn.output());
    const thumbprint = createHash('sha256')
      .update(new X509Certificate(readFileSync(files.agent.cert)).raw)
      .digest('base64url');
    assert.equal(ok.body, `mtls ok: agent ${thumbprint}`, 'the app sees the verified client certificate');
    const none = await curl(port, '/');
    assert.notEqual(none.status, 0, 'no client certificate: the handshake fails');
    assert.equal(none.code, 0);
    const revoked = await curl(port, '/', { client: 'revoked-agent' });
    assert.notEqual(revoked.status, 0, 'revoked client certificate: refused through the CRL');
    assert.equal(revoked.code, 0);
    // an independent peer: openssl s_client shows the TLS version and the verified client handshake
    const handshake = run(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-servername',
        'localhost',
        '-CAfile',
        files.root,
        '-cert',
        files.agent.cert,
        '-key',
        files.agent.key,
        '-verify_return_error',
        '-brief',
      ],
      { input: '' },
    );
    assert.match(handshake.stderr + handshake.stdout, /Protocol version: TLSv1\.[23]/);
  },
);
