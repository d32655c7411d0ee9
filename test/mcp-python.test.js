// The Python MCP templates with the real Python SDK 2.x (in the virtualenv .ci/run creates): the rendered
// mcp/server.py runs under uvicorn with the mcpki server certificate and a required client certificate,
// and its tools answer the rendered mcp/client.py (SDK client over httpx2) and the TypeScript SDK client
// (undici Agent). The tool handler sees the verified client identity (SAN URI, e-mail, common name,
// thumbprint). No client certificate, a revoked one (the server loads the CRL) and another CA's are refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, fetch as undiciFetch } from 'undici';
import { mcpki, ROOT, run, startPeer, tempDir } from './helpers.js';
import { freePorts } from './pebble.js';

const PYTHON = process.env.MCPKI_TEST_PYTHON || join(ROOT, '.venv-ci', 'bin', 'python');
const hasSdk =
  existsSync(PYTHON) &&
  run(PYTHON, [
    '-c',
    'import importlib.metadata as m, uvicorn, httpx2, mcp.server.mcpserver; assert int(m.version("mcp").split(".")[0]) >= 2',
  ]).status === 0;
const SKIP =
  !hasSdk &&
  `no Python with the MCP SDK 2.x, uvicorn and httpx2 at ${PYTHON} (.ci/run creates .venv-ci; or set MCPKI_TEST_PYTHON)`;

let dir;
let cleanup;
let home;
let otherHome;
const files = {};
const stoppers = [];

function cli(args, targetHome = home) {
  const result = mcpki(['--home', targetHome, ...args]);
  assert.equal(result.status, 0, `mcpki ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  return result;
}

function render(name, args, out) {
  cli(['template', 'render', name, ...args, '--out', out]);
  return out;
}

function certFiles(targetHome, name) {
  return {
    cert: join(targetHome, 'certs', name, `${name}.fullchain.pem`),
    key: join(targetHome, 'certs', name, `${name}.key`),
    leaf: join(targetHome, 'certs', name, `${name}.crt`),
  };
}

/** Runs a program without blocking the event loop. */
function runAsync(cmd, args, options = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 60_000, cwd: dir, ...options }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Starts a rendered server.py and waits until it listens on port; stopped by its PID after the tests. */
async function startServer(script, port) {
  const peer = await startPeer(PYTHON, [script], port, { cwd: dir, waitMs: 60_000 });
  stoppers.push(peer.stop);
  return peer;
}

/** The TypeScript SDK client over undici with the given trust and client certificate: tool names and whoami. */
async function tsClient(url, { cert, key } = {}) {
  const connectOptions = { ca: readFileSync(files.root) };
  if (cert) Object.assign(connectOptions, { cert: readFileSync(cert), key: readFileSync(key) });
  const agent = new Agent({ connect: connectOptions });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    fetch: (input, init) => undiciFetch(input, { ...init, dispatcher: agent }),
  });
  const client = new Client({ name: 'mcpki-ts-test', version: '1.0.0' });
  try {
    await client.connect(transport);
    const tools = (await client.listTools()).tools.map((tool) => tool.name);
    const echoed = await client.callTool({ name: 'echo', arguments: { text: 'from TypeScript' } });
    const whoami = await client.callTool({ name: 'whoami', arguments: {} });
    const text = (result) => result.content.map((part) => part.text).join('');
    return { tools, echo: text(echoed), whoami: JSON.parse(text(whoami)) };
  } finally {
    await client.close().catch(() => {});
    await agent.close().catch(() => {});
  }
}

/** RFC 8705 x5t#S256 of a PEM certificate. */
function thumbprint(pemFile) {
  return createHash('sha256')
    .update(new X509Certificate(readFileSync(pemFile)).raw)
    .digest('base64url');
}

function whoamiFrom(stdout) {
  const start = stdout.indexOf('whoami: ');
  assert.ok(start >= 0, stdout);
  return JSON.parse(stdout.slice(start + 'whoami: '.length));
}

before(() => {
  if (SKIP) return;
  ({ dir, cleanup } = tempDir('mcpki-mcp-python-'));
  home = join(dir, 'home');
  otherHome = join(dir, 'other-home');
  cli(['init']);
  cli(['init'], otherHome);
  cli(['issue', 'server', 'mcp.localhost', 'localhost', '127.0.0.1']);
  cli(['issue', 'client', 'agent', 'spiffe://example.test/agent', 'agent@example.test']);
  cli(['issue', 'client', 'mailer', 'mailer@example.test']);
  cli(['issue', 'client', 'plain']);
  cli(['issue', 'client', 'revoked-agent', 'spiffe://example.test/revoked']);
  cli(['issue', 'client', 'stranger', 'spiffe://other.test/stranger'], otherHome);
  files.root = join(home, 'ca', 'root.crt');
  // the CRL before the revocation: a server reading it accepts revoked-agent, which proves the CRL refuses it
  cli(['crl']);
  files.crlBefore = join(dir, 'crl-before.pem');
  copyFileSync(join(home, 'ca', 'crl.pem'), files.crlBefore);
  cli(['revoke', 'revoked-agent']);
  cli(['crl']);
  for (const name of ['agent', 'mailer', 'plain', 'revoked-agent']) files[name] = certFiles(home, name);
  files.stranger = certFiles(otherHome, 'stranger');
});

after(async () => {
  await Promise.all(stoppers.map((stop) => stop()));
  cleanup?.();
});

describe('mcp/server.py and mcp/client.py with the Python MCP SDK 2.x over mTLS', { skip: SKIP }, () => {
  let url;
  let server;
  let oldCrlUrl;

  before(async () => {
    const [port, oldCrlPort] = await freePorts(2);
    url = `https://localhost:${port}/mcp`;
    oldCrlUrl = `https://localhost:${oldCrlPort}/mcp`;
    const script = render(
      'mcp/server.py',
      ['--cert', 'mcp.localhost', '--var', `listen=127.0.0.1:${port}`],
      join(dir, 'server.py'),
    );
    const oldCrl = render(
      'mcp/server.py',
      ['--cert', 'mcp.localhost', '--var', `listen=127.0.0.1:${oldCrlPort}`, '--var', `crl=${files.crlBefore}`],
      join(dir, 'server_old_crl.py'),
    );
    const text = readFileSync(script, 'utf8');
    assert.ok(!text.includes('{{'), 'every placeholder filled');
    assert.match(text, /from mcp\.server\.mcpserver import Context, MCPServer/);
    assert.doesNotMatch(text, /^\s*(from|import) mcp\.server\.fastmcp/m, 'mcp 2.x has no FastMCP');
    [server] = await Promise.all([startServer(script, port), startServer(oldCrl, oldCrlPort)]);
  });

  test('the rendered client.py lists the tools and calls them; whoami returns the verified SPIFFE ID, e-mail, CN, serial and thumbprint', async () => {
    const client = render('mcp/client.py', ['--cert', 'agent', '--var', `url=${url}`], join(dir, 'client.py'));
    const [listed, echoed] = await Promise.all([
      runAsync(PYTHON, [client]),
      runAsync(PYTHON, [client, '', 'echo', '{"text":"from Python"}']),
    ]);
    assert.equal(listed.status, 0, listed.stderr + listed.stdout + server.output());
    assert.match(listed.stdout, /^tools: whoami, echo$/m);
    const identity = whoamiFrom(listed.stdout);
    assert.equal(identity.id, 'spiffe://example.test/agent');
    assert.deepEqual(identity.uri, ['spiffe://example.test/agent']);
    assert.deepEqual(identity.email, ['agent@example.test']);
    assert.equal(identity.cn, 'agent');
    assert.equal(
      identity.serial,
      mcpki(['--home', home, '--json', 'show', 'agent']).json.certificate.serial.toUpperCase(),
    );
    assert.equal(identity.thumbprint, thumbprint(files.agent.leaf), 'RFC 8705 x5t#S256 of the client certificate');
    assert.equal(echoed.status, 0, echoed.stderr);
    assert.match(echoed.stdout, /^echo: from Python$/m);
  });

  test('the TypeScript SDK client (undici Agent) calls the Python server and is identified by its certificate: SAN URI, else e-mail, else common name', async () => {
    const seen = await tsClient(url, files.agent);
    assert.deepEqual(seen.tools, ['whoami', 'echo']);
    assert.equal(seen.echo, 'from TypeScript');
    assert.equal(seen.whoami.id, 'spiffe://example.test/agent');
    assert.equal(seen.whoami.thumbprint, thumbprint(files.agent.leaf));
    // without a SAN URI the identity is the e-mail, without either the common name
    const [mailer, plain] = await Promise.all([tsClient(url, files.mailer), tsClient(url, files.plain)]);
    assert.deepEqual(
      [mailer.whoami.id, mailer.whoami.uri, mailer.whoami.email, mailer.whoami.cn],
      ['mailer@example.test', [], ['mailer@example.test'], 'mailer'],
    );
    assert.deepEqual(
      [plain.whoami.id, plain.whoami.uri, plain.whoami.email, plain.whoami.cn],
      ['plain', [], [], 'plain'],
    );
  });

  test("no client certificate, a revoked one and another CA's are refused, by both clients", async () => {
    // the Python SDK client, through client.py: revoked, and another CA's certificate
    const revokedPy = render(
      'mcp/client.py',
      ['--cert', 'revoked-agent', '--var', `url=${url}`],
      join(dir, 'client_revoked.py'),
    );
    const strangerPy = render(
      'mcp/client.py',
      [
        '--cert',
        'agent',
        '--var',
        `url=${url}`,
        '--var',
        `fullchain=${files.stranger.cert}`,
        '--var',
        `key=${files.stranger.key}`,
      ],
      join(dir, 'client_stranger.py'),
    );
    // and the SDK client with the mcpki root but no certificate of its own
    const noCertPy = join(dir, 'client_none.py');
    writeFileSync(
      noCertPy,
      `import asyncio, ssl, sys
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main():
    async with httpx2.AsyncClient(verify=ssl.create_default_context(cafile=sys.argv[2])) as http:
        async with Client(streamable_http_client(sys.argv[1], http_client=http)) as client:
            print(await client.list_tools())


asyncio.run(main())
`,
    );
    const [revoked, stranger, none] = await Promise.all([
      runAsync(PYTHON, [revokedPy]),
      runAsync(PYTHON, [strangerPy]),
      runAsync(PYTHON, [noCertPy, url, files.root]),
    ]);
    for (const [what, result] of [
      ['revoked', revoked],
      ['another CA', stranger],
    ]) {
      assert.equal(result.status, 1, `${what}: ${result.stdout}`);
      assert.doesNotMatch(result.stdout, /^tools:/m, what);
      assert.match(
        result.stderr,
        /the connection failed \((ReadError|ConnectError|RemoteProtocolError|SSL\w*Error)\b.*was the client certificate refused/,
        what,
      );
    }
    assert.notEqual(none.status, 0, 'no client certificate');
    assert.match(none.stderr, /ReadError|ConnectError|RemoteProtocolError|SSLError/, none.stderr);
    assert.doesNotMatch(none.stdout, /whoami/);

    // the TypeScript SDK client
    await assert.rejects(tsClient(url), 'TypeScript, no client certificate');
    await assert.rejects(tsClient(url, files['revoked-agent']), 'TypeScript, revoked');
    await assert.rejects(tsClient(url, files.stranger), 'TypeScript, another CA');

    // the same revoked certificate is accepted by a server reading the CRL from before the revocation: the CRL refused it
    const accepted = await tsClient(oldCrlUrl, files['revoked-agent']);
    assert.equal(accepted.whoami.id, 'spiffe://example.test/revoked');
    // and the server still serves good clients
    assert.equal((await tsClient(url, files.agent)).whoami.cn, 'agent');
  });
});
