// The client identity the MCP server templates hand their tools: the rendered mcp/server.ts (compiled with
// tsc, on node:https with createTlsReloader) and mcp/server.py (Python SDK 2.x under uvicorn) each answer
// `whoami` with the verified client certificate's SPIFFE ID, e-mails, common name, serial and RFC 8705
// thumbprint; both SDK clients (the rendered mcp/client.ts over undici and mcp/client.py over httpx2) must see
// exactly what openssl reads from the certificate. A server requiring a client certificate refuses a client
// that sends none (as mcp-remote does).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
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
const NO_PYTHON =
  !hasSdk && `no Python with the MCP SDK 2.x at ${PYTHON} (.ci/run creates .venv-ci; or set MCPKI_TEST_PYTHON)`;

let dir;
let cleanup;
let home;
let project;
const stoppers = [];
const servers = {};
/** What openssl reads from each client certificate, the reference the servers' answers are compared with. */
const expected = {};
const CLIENTS = {
  agent: ['--spiffe', 'spiffe://example.test/ns/prod/agent', '--email', 'ops@example.test'],
  mailer: ['--email', 'mailer@example.test', '--email', 'second@example.test'],
  plain: [],
};

function cli(args) {
  const result = mcpki(['--home', home, ...args]);
  assert.equal(result.status, 0, `mcpki ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  return result;
}

function render(name, args, out) {
  cli(['template', 'render', name, ...args, '--out', out]);
  return out;
}

function runAsync(cmd, args, options = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 60_000, cwd: dir, ...options }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** The identity of a certificate as openssl and coreutils see it, in the whoami fields. */
function opensslIdentity(name) {
  const cert = join(home, 'certs', name, `${name}.crt`);
  const text = run('openssl', [
    'x509',
    '-in',
    cert,
    '-noout',
    '-serial',
    '-enddate',
    '-ext',
    'subjectAltName',
    '-nameopt',
    'multiline',
    '-subject',
  ]).stdout;
  const uri = [...text.matchAll(/URI:([^,\n]+)/g)].map((m) => m[1]);
  const email = [...text.matchAll(/email:([^,\n]+)/g)].map((m) => m[1]);
  const cn = /commonName\s*=\s*(.+)/.exec(text)[1].trim();
  const thumbprint = spawnSync(
    'sh',
    [
      '-c',
      'openssl x509 -in "$1" -outform DER | openssl dgst -sha256 -binary | basenc --base64url | tr -d =',
      'sh',
      cert,
    ],
    { encoding: 'utf8' },
  ).stdout.trim();
  return {
    id: uri[0] ?? email[0] ?? cn,
    uri,
    email,
    cn,
    serial: /serial=([0-9A-F]+)/.exec(text)[1],
    not_after: /notAfter=(.+)/.exec(text)[1].trim(),
    thumbprint,
  };
}

/** A folder where tsc and node resolve the SDK, undici, zod and mcpki (the repository) as an installed package would. */
function tsProject() {
  const folder = join(dir, 'ts');
  mkdirSync(join(folder, 'node_modules', '@modelcontextprotocol'), { recursive: true });
  mkdirSync(join(folder, 'node_modules', '@types'), { recursive: true });
  symlinkSync(
    join(ROOT, 'node_modules', '@modelcontextprotocol', 'sdk'),
    join(folder, 'node_modules', '@modelcontextprotocol', 'sdk'),
  );
  symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(folder, 'node_modules', '@types', 'node'));
  for (const name of ['undici', 'zod'])
    symlinkSync(join(ROOT, 'node_modules', name), join(folder, 'node_modules', name));
  symlinkSync(ROOT, join(folder, 'node_modules', 'mcpki'));
  writeFileSync(join(folder, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(
    join(folder, 'tsconfig.json'),
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
  return folder;
}

function whoamiFrom(stdout) {
  // the Python server's tool returns a dict, which its SDK sends as indented JSON text: read to the end
  const start = stdout.indexOf('\nwhoami: ');
  assert.ok(start >= 0, stdout);
  return JSON.parse(stdout.slice(start + '\nwhoami: '.length));
}

before(async () => {
  ({ dir, cleanup } = tempDir('mcpki-mcp-identity-'));
  home = join(dir, 'home');
  cli(['init']);
  cli(['issue', 'server', 'mcp.localhost', 'localhost', '127.0.0.1']);
  for (const [name, args] of Object.entries(CLIENTS)) {
    cli(['issue', 'client', name, ...args]);
    expected[name] = opensslIdentity(name);
  }
  cli(['crl']);
  assert.deepEqual(expected.agent.uri, ['spiffe://example.test/ns/prod/agent']);

  const [tsPort, pyPort] = await freePorts(2);
  servers.ts = `https://localhost:${tsPort}/mcp`;
  servers.py = `https://localhost:${pyPort}/mcp`;
  project = tsProject();
  render(
    'mcp/server.ts',
    ['--cert', 'mcp.localhost', '--var', `listen=127.0.0.1:${tsPort}`],
    join(project, 'server.ts'),
  );
  for (const name of Object.keys(CLIENTS)) {
    render('mcp/client.ts', ['--cert', name, '--var', `url=${servers.ts}`], join(project, `client_${name}.ts`));
    render('mcp/client.py', ['--cert', name, '--var', `url=${servers.ts}`], join(dir, `client_${name}.py`));
  }
  const compiled = run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project]);
  assert.equal(compiled.status, 0, compiled.stdout + compiled.stderr);
  const started = [startPeer(process.execPath, [join(project, 'out', 'server.js')], tsPort)];
  if (!NO_PYTHON)
    started.push(
      startPeer(
        PYTHON,
        [
          render(
            'mcp/server.py',
            ['--cert', 'mcp.localhost', '--var', `listen=127.0.0.1:${pyPort}`],
            join(dir, 'server.py'),
          ),
        ],
        pyPort,
        { cwd: dir, waitMs: 60_000 },
      ),
    );
  for (const peer of await Promise.all(started)) stoppers.push(peer.stop);
});

after(async () => {
  await Promise.all(stoppers.map((stop) => stop()));
  cleanup?.();
});

for (const server of ['ts', 'py']) {
  describe(
    `mcp/server.${server}: whoami is the verified client certificate`,
    { skip: server === 'py' && NO_PYTHON },
    () => {
      test('the TypeScript SDK client (rendered mcp/client.ts, undici Agent): SPIFFE ID, else e-mail, else common name; serial, expiry and x5t#S256 as openssl reads them', async () => {
        const results = await Promise.all(
          Object.keys(CLIENTS).map((name) =>
            runAsync(process.execPath, [join(project, 'out', `client_${name}.js`), servers[server]]),
          ),
        );
        for (const [i, name] of Object.keys(CLIENTS).entries()) {
          assert.equal(results[i].status, 0, results[i].stderr + results[i].stdout);
          assert.match(results[i].stdout, /^tools: whoami, echo$/m);
          assert.deepEqual(whoamiFrom(results[i].stdout), expected[name], name);
        }
        assert.equal(expected.mailer.id, 'mailer@example.test');
        assert.equal(expected.plain.id, 'plain');
      });

      test(
        'the Python SDK client (rendered mcp/client.py, httpx2) sees the same identity',
        { skip: NO_PYTHON },
        async () => {
          const results = await Promise.all(
            Object.keys(CLIENTS).map((name) => runAsync(PYTHON, [join(dir, `client_${name}.py`), servers[server]])),
          );
          for (const [i, name] of Object.keys(CLIENTS).entries()) {
            assert.equal(results[i].status, 0, results[i].stderr + results[i].stdout);
            assert.deepEqual(whoamiFrom(results[i].stdout), expected[name], name);
          }
        },
      );

      test('a client that sends no certificate (as mcp-remote does) is refused', async () => {
        const agent = new Agent({ connect: { ca: readFileSync(join(home, 'ca', 'root.crt')) } });
        const client = new Client({ name: 'no-certificate', version: '1.0.0' });
        const transport = new StreamableHTTPClientTransport(new URL(servers[server]), {
          fetch: (input, init) => undiciFetch(input, { ...init, dispatcher: agent }),
        });
        try {
          await assert.rejects(client.connect(transport));
        } finally {
          await client.close().catch(() => {});
          await agent.close().catch(() => {});
        }
      });
    },
  );
}
