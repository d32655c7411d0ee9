// The client templates for the MCP clients people use, run with their real peers: mcp/claude-code.sh (the
// environment Claude Code reads) under sh, its NODE_EXTRA_CA_CERTS making Node trust an mcpki server; with
// Claude Code itself when it is installed (MCPKI_TEST_CLAUDE or "claude" on PATH): `claude mcp add` through the
// wrapper and `claude mcp list` connecting to the rendered mcp/server.ts that requires a client certificate,
// refused without one; mcp/claude-code.mcp.json read by Claude Code; and mcp/claude-desktop.json (mcp-remote)
// saying that it sends no client certificate.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { hasCommand, mcpki, ROOT, run, startPeer, tempDir } from './helpers.js';
import { freePorts } from './pebble.js';

const CLAUDE = process.env.MCPKI_TEST_CLAUDE || (hasCommand('claude') ? 'claude' : '');
const NO_CLAUDE = !CLAUDE && 'Claude Code is not installed (set MCPKI_TEST_CLAUDE to its binary)';

let dir;
let cleanup;
const homes = {};
const stoppers = [];

function cli(home, args) {
  const result = mcpki(['--home', home, ...args]);
  assert.equal(result.status, 0, `mcpki ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  return result;
}

function runAsync(cmd, args, options = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 90_000, ...options }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

before(() => {
  ({ dir, cleanup } = tempDir('mcpki-mcp-clients-'));
  homes.main = join(dir, 'home');
  cli(homes.main, ['init']);
  cli(homes.main, ['issue', 'server', 'mcp.localhost', 'localhost', '127.0.0.1']);
  cli(homes.main, ['issue', 'client', 'agent', '--spiffe', 'spiffe://example.test/agent']);
  cli(homes.main, ['crl']);
});

after(async () => {
  await Promise.all(stoppers.map((stop) => stop()));
  cleanup?.();
});

test('mcp/claude-code.sh exports CLAUDE_CODE_CLIENT_CERT (the full chain), CLAUDE_CODE_CLIENT_KEY and NODE_EXTRA_CA_CERTS, and runs the program with its arguments', async () => {
  const script = join(dir, 'claude-code.sh');
  cli(homes.main, [
    'template',
    'render',
    'mcp/claude-code.sh',
    '--cert',
    'agent',
    '--var',
    'url=https://localhost:9/mcp',
    '--out',
    script,
  ]);
  const text = readFileSync(script, 'utf8');
  assert.match(text, /^# {3}sh claude-code\.sh mcp add --transport http mcpki https:\/\/localhost:9\/mcp$/m);
  const printed = await runAsync('sh', [script, '-0'], { env: { PATH: process.env.PATH, CLAUDE: 'env' } });
  assert.equal(printed.status, 0, printed.stderr);
  const env = Object.fromEntries(
    printed.stdout
      .split('\0')
      .filter(Boolean)
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  assert.equal(env.NODE_EXTRA_CA_CERTS, join(homes.main, 'ca', 'root.crt'));
  assert.equal(env.CLAUDE_CODE_CLIENT_CERT, join(homes.main, 'certs', 'agent', 'agent.fullchain.pem'));
  assert.equal(env.CLAUDE_CODE_CLIENT_KEY, join(homes.main, 'certs', 'agent', 'agent.key'));
  // the certificate and key match, and the chain verifies for client use against the root it trusts
  const pub = (args) => run('openssl', args).stdout;
  assert.equal(
    pub(['x509', '-in', env.CLAUDE_CODE_CLIENT_CERT, '-noout', '-pubkey']),
    pub(['pkey', '-in', env.CLAUDE_CODE_CLIENT_KEY, '-pubout']),
  );
  const verify = run('openssl', [
    'verify',
    '-purpose',
    'sslclient',
    '-CAfile',
    env.NODE_EXTRA_CA_CERTS,
    '-untrusted',
    env.CLAUDE_CODE_CLIENT_CERT,
    env.CLAUDE_CODE_CLIENT_CERT,
  ]);
  assert.equal(verify.status, 0, verify.stderr + verify.stdout);

  // NODE_EXTRA_CA_CERTS is read when Node starts: through the script Node trusts an mcpki server, without it not
  const server = createServer(
    {
      cert: readFileSync(join(homes.main, 'certs', 'mcp.localhost', 'mcp.localhost.fullchain.pem')),
      key: readFileSync(join(homes.main, 'certs', 'mcp.localhost', 'mcp.localhost.key')),
    },
    (_, response) => response.end('trusted'),
  );
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const probe = `fetch('https://localhost:${server.address().port}/').then(async (r) => console.log(await r.text()), (e) => { console.log(e.cause?.code ?? e.message); process.exitCode = 1; })`;
    const [through, bare] = await Promise.all([
      runAsync('sh', [script, '-e', probe], { env: { PATH: process.env.PATH, CLAUDE: process.execPath } }),
      runAsync(process.execPath, ['-e', probe], { env: { PATH: process.env.PATH } }),
    ]);
    assert.equal(through.stdout.trim(), 'trusted', through.stderr);
    assert.equal(bare.status, 1);
    assert.match(bare.stdout, /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  } finally {
    server.close();
  }
});

test('mcp/claude-code.mcp.json is a project .mcp.json with the server over HTTP', () => {
  const out = join(dir, 'mcp.json');
  cli(homes.main, [
    'template',
    'render',
    'mcp/claude-code.mcp.json',
    '--var',
    'url=https://mcp.localhost:8443/mcp',
    '--var',
    'mcpServer=tools',
    '--out',
    out,
  ]);
  assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), {
    mcpServers: { tools: { type: 'http', url: 'https://mcp.localhost:8443/mcp' } },
  });
});

test('mcp/claude-desktop.json (mcp-remote) says it sends no client certificate', () => {
  const listed = mcpki(['--json', 'template', 'list']).json.templates.find((t) => t.name === 'mcp/claude-desktop.json');
  assert.match(
    listed.description,
    /mcp-remote sends NO client certificate, so it reaches only servers without requireClientCert/,
  );
});

/** A folder where tsc and node resolve the SDK, zod and mcpki (the repository) as an installed package would. */
function tsProject(folder) {
  mkdirSync(join(folder, 'node_modules', '@modelcontextprotocol'), { recursive: true });
  mkdirSync(join(folder, 'node_modules', '@types'), { recursive: true });
  symlinkSync(
    join(ROOT, 'node_modules', '@modelcontextprotocol', 'sdk'),
    join(folder, 'node_modules', '@modelcontextprotocol', 'sdk'),
  );
  symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(folder, 'node_modules', '@types', 'node'));
  symlinkSync(join(ROOT, 'node_modules', 'zod'), join(folder, 'node_modules', 'zod'));
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

describe('Claude Code itself, through the rendered templates', { skip: NO_CLAUDE }, () => {
  const urls = {};
  let claudeEnv;

  before(async () => {
    // a CA without name constraints (Claude Code's TLS library refuses IP address constraints), and the default one
    homes.open = join(dir, 'open-home');
    cli(homes.open, ['init', '--no-name-constraints']);
    cli(homes.open, ['issue', 'server', 'mcp.localhost', 'localhost', '127.0.0.1']);
    cli(homes.open, ['issue', 'client', 'agent', '--spiffe', 'spiffe://example.test/agent']);
    cli(homes.open, ['crl']);
    const project = tsProject(join(dir, 'ts'));
    const ports = await freePorts(2);
    for (const [i, which] of ['open', 'main'].entries()) {
      urls[which] = `https://localhost:${ports[i]}/mcp`;
      cli(homes[which], [
        'template',
        'render',
        'mcp/server.ts',
        '--cert',
        'mcp.localhost',
        '--var',
        `listen=127.0.0.1:${ports[i]}`,
        '--out',
        join(project, `server_${which}.ts`),
      ]);
      cli(homes[which], [
        'template',
        'render',
        'mcp/claude-code.sh',
        '--cert',
        'agent',
        '--var',
        `url=${urls[which]}`,
        '--var',
        `mcpServer=mcpki-${which}`,
        '--out',
        join(dir, `claude_${which}.sh`),
      ]);
    }
    const compiled = run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project]);
    assert.equal(compiled.status, 0, compiled.stdout + compiled.stderr);
    for (const [i, which] of ['open', 'main'].entries())
      stoppers.push((await startPeer(process.execPath, [join(project, 'out', `server_${which}.js`)], ports[i])).stop);
    // Claude Code with its own empty home: no account, no telemetry, nothing of the machine's
    const claudeHome = join(dir, 'claude-home');
    mkdirSync(join(claudeHome, 'work'), { recursive: true });
    claudeEnv = {
      PATH: process.env.PATH,
      HOME: claudeHome,
      CLAUDE_CONFIG_DIR: join(claudeHome, '.claude'),
      CLAUDE: CLAUDE,
      DISABLE_TELEMETRY: '1',
      DISABLE_AUTOUPDATER: '1',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    };
  });

  const claude = (script, args) =>
    runAsync('sh', [script, ...args], { env: claudeEnv, cwd: join(claudeEnv.HOME, 'work') });
  const listed = (result, name) =>
    result.stdout.split('\n').find((line) => line.startsWith(`${name}:`)) ?? result.stdout + result.stderr;

  test('"claude mcp add --transport http" through claude-code.sh, then "claude mcp list": connected with the client certificate, refused without it', async () => {
    const script = join(dir, 'claude_open.sh');
    const added = await claude(script, ['mcp', 'add', '--transport', 'http', 'mcpki-open', urls.open]);
    assert.equal(added.status, 0, added.stderr + added.stdout);
    const connected = await claude(script, ['mcp', 'list']);
    assert.match(listed(connected, 'mcpki-open'), /Connected/);
    // the same without CLAUDE_CODE_CLIENT_CERT/KEY: the server requires a certificate
    const withoutCert = await runAsync(CLAUDE, ['mcp', 'list'], {
      env: { ...claudeEnv, NODE_EXTRA_CA_CERTS: join(homes.open, 'ca', 'root.crt') },
      cwd: join(claudeEnv.HOME, 'work'),
    });
    assert.match(listed(withoutCert, 'mcpki-open'), /Failed to connect/);
  });

  test("a CA with IP address name constraints (mcpki's default) is refused by Claude Code's TLS library, as the template says", async () => {
    const script = join(dir, 'claude_main.sh');
    assert.equal((await claude(script, ['mcp', 'add', '--transport', 'http', 'mcpki-main', urls.main])).status, 0);
    const result = await claude(script, ['mcp', 'list']);
    assert.match(listed(result, 'mcpki-main'), /UNSUPPORTED_CONSTRAINT_TYPE/);
    assert.match(readFileSync(script, 'utf8'), /UNSUPPORTED_CONSTRAINT_TYPE: unsupported\n# name constraint type/);
  });

  test('it is the IP address constraint Claude Code refuses: CAs made by openssl with one constraint type each', async () => {
    const results = {};
    for (const [type, constraint, san] of [
      ['dns', 'permitted;DNS:localhost', 'DNS:localhost'],
      ['uri', 'permitted;DNS:localhost,permitted;URI:.localhost', 'DNS:localhost'],
      ['email', 'permitted;DNS:localhost,permitted;email:.localhost', 'DNS:localhost'],
      ['ip', 'permitted;IP:127.0.0.0/255.0.0.0', 'DNS:localhost,IP:127.0.0.1'],
    ]) {
      const base = join(dir, `nc-${type}`);
      writeFileSync(
        `${base}.cnf`,
        `[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\nnameConstraints=critical,${constraint}\n[leaf]\nbasicConstraints=CA:FALSE\nsubjectAltName=${san}\nextendedKeyUsage=serverAuth\n`,
      );
      for (const args of [
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-keyout',
          `${base}-ca.key`,
          '-out',
          `${base}-ca.crt`,
          '-subj',
          `/CN=${type} CA`,
          '-days',
          '2',
          '-config',
          `${base}.cnf`,
          '-extensions',
          'ca',
        ],
        [
          'req',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-keyout',
          `${base}.key`,
          '-out',
          `${base}.csr`,
          '-subj',
          '/CN=localhost',
        ],
        [
          'x509',
          '-req',
          '-in',
          `${base}.csr`,
          '-CA',
          `${base}-ca.crt`,
          '-CAkey',
          `${base}-ca.key`,
          '-CAcreateserial',
          '-out',
          `${base}.crt`,
          '-days',
          '1',
          '-extfile',
          `${base}.cnf`,
          '-extensions',
          'leaf',
        ],
      ])
        assert.equal(run('openssl', args).status, 0, args.join(' '));
      const server = createServer(
        { cert: readFileSync(`${base}.crt`), key: readFileSync(`${base}.key`) },
        (_, response) => response.writeHead(404).end(),
      );
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const env = {
          ...claudeEnv,
          HOME: join(dir, `claude-${type}`),
          CLAUDE_CONFIG_DIR: join(dir, `claude-${type}`, '.claude'),
          NODE_EXTRA_CA_CERTS: `${base}-ca.crt`,
        };
        mkdirSync(env.HOME);
        assert.equal(
          (
            await runAsync(
              CLAUDE,
              ['mcp', 'add', '--transport', 'http', 'probe', `https://localhost:${server.address().port}/mcp`],
              { env, cwd: env.HOME },
            )
          ).status,
          0,
        );
        results[type] = listed(await runAsync(CLAUDE, ['mcp', 'list'], { env, cwd: env.HOME }), 'probe');
      } finally {
        server.close();
      }
    }
    for (const type of ['dns', 'uri', 'email'])
      assert.doesNotMatch(
        results[type],
        /UNSUPPORTED_CONSTRAINT_TYPE|certificate|TLS/i,
        `${type}: the handshake passes (the plain server has no MCP endpoint)`,
      );
    assert.match(results.ip, /UNSUPPORTED_CONSTRAINT_TYPE: unsupported name constraint type/);
  });

  test('Claude Code reads the rendered .mcp.json', async () => {
    const work = join(claudeEnv.HOME, 'work');
    cli(homes.open, [
      'template',
      'render',
      'mcp/claude-code.mcp.json',
      '--var',
      `url=${urls.open}`,
      '--var',
      'mcpServer=from-project',
      '--out',
      join(work, '.mcp.json'),
    ]);
    const result = await claude(join(dir, 'claude_open.sh'), ['mcp', 'get', 'from-project']);
    assert.equal(result.status, 0, result.stderr + result.stdout);
    assert.match(result.stdout, new RegExp(`URL: ${urls.open.replace(/[.]/g, '\\.')}`));
    assert.match(result.stdout, /Type: http/);
  });
});

const MCP_REMOTE = process.env.MCPKI_TEST_MCP_REMOTE || (hasCommand('mcp-remote') ? 'mcp-remote' : '');
const NO_MCP_REMOTE = !MCP_REMOTE && 'mcp-remote is not installed (set MCPKI_TEST_MCP_REMOTE to its bin/mcp-remote)';

describe('mcp-remote through the rendered mcp/claude-desktop.json', { skip: NO_MCP_REMOTE }, () => {
  const ports = {};
  let entry;

  before(async () => {
    const project = tsProject(join(dir, 'ts-remote'));
    [ports.tlsOnly, ports.mtls] = await freePorts(2);
    cli(homes.main, [
      'template',
      'render',
      'mcp/server.ts',
      '--cert',
      'mcp.localhost',
      '--var',
      `listen=127.0.0.1:${ports.mtls}`,
      '--out',
      join(project, 'server.ts'),
    ]);
    const compiled = run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project]);
    assert.equal(compiled.status, 0, compiled.stdout + compiled.stderr);
    for (const [port, require] of [
      [ports.tlsOnly, 'false'],
      [ports.mtls, 'true'],
    ]) {
      stoppers.push(
        (
          await startPeer(process.execPath, [join(project, 'out', 'server.js')], port, {
            env: { ...process.env, MCP_PORT: String(port), MCP_REQUIRE_CLIENT_CERT: require },
          })
        ).stop,
      );
    }
    const out = join(dir, 'claude-desktop.json');
    cli(homes.main, ['template', 'render', 'mcp/claude-desktop.json', '--cert', 'mcp.localhost', '--out', out]);
    entry = JSON.parse(readFileSync(out, 'utf8')).mcpServers['mcp.localhost'];
  });

  /** mcp-remote with the entry's arguments (its URL replaced) and environment; answers one initialize on stdio. */
  function initialize(url) {
    const args = entry.args
      .map((arg) => (arg.startsWith('https://') ? url : arg))
      .filter((arg) => arg !== '-y' && arg !== 'mcp-remote');
    return new Promise((resolve) => {
      const child = execFile(
        MCP_REMOTE,
        args,
        {
          encoding: 'utf8',
          timeout: 30_000,
          env: { PATH: process.env.PATH, HOME: join(dir, 'mcp-remote-home'), ...entry.env },
        },
        (_, stdout, stderr) => resolve({ stdout, stderr }),
      );
      child.stdin.write(
        `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'mcpki-test', version: '1' } } })}\n`,
      );
      let answered = '';
      child.stdout.on('data', (chunk) => {
        answered += chunk;
        if (answered.includes('"id":1')) child.stdin.end();
      });
      child.on('exit', () => child.stdin.destroyed || child.stdin.end());
    });
  }

  test('reaches a TLS-only server, trusting the mcpki root through NODE_EXTRA_CA_CERTS; a server requiring a client certificate closes the connection', async () => {
    const [tlsOnly, mtls] = await Promise.all([
      initialize(`https://localhost:${ports.tlsOnly}/mcp`),
      initialize(`https://localhost:${ports.mtls}/mcp`),
    ]);
    assert.match(tlsOnly.stdout, /"serverInfo":\{"name":"mcp\.localhost"/, tlsOnly.stderr);
    assert.doesNotMatch(mtls.stdout, /"serverInfo"/);
    assert.match(mtls.stderr, /other side closed|UND_ERR_SOCKET|ECONNRESET/);
  });
});
