// The systemd units, rendered with this installation's paths, pass systemd-analyze verify, and the command
// they run works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCommand, mcpki, tempDir } from './helpers.js';

test(
  'systemd units render with real paths and pass systemd-analyze verify',
  { skip: !hasCommand('systemd-analyze') && 'systemd-analyze is not installed' },
  () => {
    const { dir, cleanup } = tempDir('mcpki-templates-');
    try {
      const home = join(dir, 'home');
      assert.equal(mcpki(['--home', home, 'init']).status, 0);
      const config = join(dir, 'mcpki.yaml');
      writeFileSync(config, 'version: 1\ncertificates:\n  - name: unit\n    names: [unit.localhost]\n');
      const listed = mcpki(['--json', 'template', 'list']).json.templates.map((t) => t.name);
      for (const name of [
        'systemd/mcpki.service',
        'systemd/mcpki-renew.service',
        'systemd/mcpki-renew.timer',
        'systemd/mcpki-crl.service',
        'systemd/mcpki-crl.timer',
      ]) {
        assert.ok(listed.includes(name), name);
        const unit = join(dir, name.split('/')[1]);
        const rendered = mcpki(['--home', home, 'template', 'render', name, '-c', config, '--out', unit]);
        assert.equal(rendered.status, 0, rendered.stderr);
        const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8', cwd: dir });
        assert.equal(verify.status, 0, verify.stderr);
        assert.equal(verify.stderr.trim(), '', `systemd-analyze has no complaint about ${name}`);
      }
      // the renew unit's ExecStart, run as systemd would run it, issues the declared certificate
      const unit = mcpki(['--home', home, 'template', 'render', 'systemd/mcpki-renew.service', '-c', config]).stdout;
      const execStart = unit.match(/^ExecStart=(.+)$/m)[1].split(' ');
      // Environment="NAME=VALUE": the whole assignment quoted, so a home with spaces stays one value
      const env = Object.fromEntries(
        unit.match(/^Environment=(.+)$/gm).map((line) => JSON.parse(line.slice('Environment='.length)).split('=')),
      );
      assert.equal(env.MCPKI_HOME, home);
      const ran = spawnSync(execStart[0], execStart.slice(1), { encoding: 'utf8', env: { ...process.env, ...env } });
      assert.equal(ran.status, 0, ran.stderr + ran.stdout);
      assert.equal(mcpki(['--home', home, '--json', 'show', 'unit']).json.certificate.name, 'unit');

      // the CRL unit publishes a CRL of the whole chain, then runs the reload command given with --var
      const marker = join(dir, 'reloaded');
      const crlUnit = mcpki([
        '--home',
        home,
        'template',
        'render',
        'systemd/mcpki-crl.service',
        '--var',
        `reloadCommand=/usr/bin/touch ${marker}`,
      ]).stdout;
      const crlStart = crlUnit.match(/^ExecStart=(.+)$/m)[1].split(' ');
      assert.deepEqual(crlStart.slice(-3), ['crl', '--days', '7']);
      assert.equal(
        spawnSync(crlStart[0], crlStart.slice(1), { encoding: 'utf8', env: { ...process.env, ...env } }).status,
        0,
      );
      assert.equal((readFileSync(join(home, 'ca', 'crl.pem'), 'utf8').match(/BEGIN X509 CRL/g) ?? []).length, 2);
      const post = crlUnit.match(/^ExecStartPost=\+(.+)$/m)[1].split(' ');
      assert.equal(spawnSync(post[0], post.slice(1)).status, 0);
      assert.ok(existsSync(marker), 'the reload command ran');
    } finally {
      cleanup();
    }
  },
);

test('--var overrides a variable; an unknown template is a clear error', () => {
  const rendered = mcpki(['--json', 'template', 'render', 'systemd/mcpki.service', '--var', 'user=mcpki']);
  assert.equal(rendered.status, 0, rendered.stderr);
  assert.match(rendered.json.text, /^User=mcpki$/m);
  assert.ok(!rendered.json.text.includes('{{'), 'every placeholder filled');
  const missing = mcpki(['template', 'render', 'systemd/nope.service']);
  assert.equal(missing.status, 10);
  assert.match(missing.stderr, /no template named "systemd\/nope\.service"/);
  const bad = mcpki(['template', 'render', 'systemd/mcpki.service', '--var', 'oops']);
  assert.equal(bad.status, 2);
});

test('template list describes each peer template, its variables and defaults', () => {
  const listed = mcpki(['--json', 'template', 'list']);
  assert.equal(listed.status, 0, listed.stderr);
  const byName = Object.fromEntries(listed.json.templates.map((t) => [t.name, t]));
  for (const name of [
    'nginx/mcp-mtls.conf',
    'nginx/mcp-tls.conf',
    'nginx/mcp-mtls-upstream.conf',
    'haproxy/mcp-mtls.cfg',
    'caddy/Caddyfile',
    'traefik/mcp-mtls.yml',
    'mcp/server.ts',
    'mcp/server.py',
    'mcp/client.ts',
    'mcp/client.py',
    'mcp/claude-code.sh',
    'mcp/claude-code.mcp.json',
    'mcp/claude-desktop.json',
    'curl/mcp-call.sh',
  ]) {
    assert.ok(byName[name], name);
    assert.ok(byName[name].description.length > 10, `${name} says what it is for`);
  }
  const nginx = byName['nginx/mcp-mtls.conf'];
  for (const v of ['listen', 'serverName', 'fullchain', 'key', 'ca', 'crl', 'mcpPath', 'upstream'])
    assert.ok(nginx.variables.includes(v), v);
  assert.deepEqual(nginx.defaults, { listen: '0.0.0.0:8443', mcpPath: '/mcp', upstream: 'http://127.0.0.1:3000' });
  assert.ok(byName['caddy/Caddyfile'].variables.includes('listen'), 'a derived variable lists the one it comes from');
  assert.equal(
    byName['nginx/mcp-mtls-upstream.conf'].defaults.upstream,
    'https://localhost:3443',
    'a template can have its own default',
  );
});

test("--cert fills the certificate's paths; --var wins; unknown certificates and missing variables are clear errors", () => {
  const { dir, cleanup } = tempDir('mcpki-templates-cert-');
  try {
    const home = join(dir, 'home');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    assert.equal(mcpki(['--home', home, 'issue', 'server', 'web', 'web.localhost', '127.0.0.1']).status, 0);
    const rendered = mcpki([
      '--home',
      home,
      '--json',
      'template',
      'render',
      'nginx/mcp-tls.conf',
      '--cert',
      'web',
      '--var',
      'listen=127.0.0.1:9443',
    ]);
    assert.equal(rendered.status, 0, rendered.stderr);
    const { variables, text } = rendered.json;
    assert.equal(variables.fullchain, join(home, 'certs', 'web', 'web.fullchain.pem'));
    assert.equal(variables.key, join(home, 'certs', 'web', 'web.key'));
    assert.equal(variables.cert, join(home, 'certs', 'web', 'web.crt'));
    assert.equal(variables.chain, join(home, 'ca', 'intermediate.crt'));
    assert.equal(variables.serverName, 'web.localhost');
    assert.match(text, /^    listen 127\.0\.0\.1:9443 ssl;$/m);
    assert.match(text, /^    server_name web\.localhost;$/m);

    const unknown = mcpki(['--home', home, 'template', 'render', 'nginx/mcp-tls.conf', '--cert', 'nope']);
    assert.equal(unknown.status, 10);
    assert.match(unknown.stderr, /no certificate named or with serial "nope"/);
    const noCrl = mcpki(['--home', home, 'template', 'render', 'nginx/mcp-mtls.conf', '--cert', 'web']);
    assert.equal(noCrl.status, 10);
    assert.match(noCrl.stderr, /hint: run "mcpki crl"/);
    const noCert = mcpki(['--home', home, 'template', 'render', 'nginx/mcp-tls.conf']);
    assert.equal(noCert.status, 3);
    assert.match(noCert.stderr, /needs \{\{fullchain\}\}/);
    assert.match(noCert.stderr, /hint: pass --cert NAME/);
    const noClient = mcpki(['--home', home, 'template', 'render', 'nginx/mcp-mtls-upstream.conf', '--cert', 'web']);
    assert.equal(noClient.status, 3);
    assert.match(noClient.stderr, /hint: pass --client-cert NAME/);

    // values are escaped for the file they land in: JSON strings, single-quoted shell words
    const json = mcpki([
      '--home',
      home,
      '--json',
      'template',
      'render',
      'mcp/claude-desktop.json',
      '--cert',
      'web',
      '--var',
      'ca=/etc/ssl/"quoted"\\path.pem',
    ]);
    assert.equal(JSON.parse(json.json.text).mcpServers.web.env.NODE_EXTRA_CA_CERTS, '/etc/ssl/"quoted"\\path.pem');
    // a URL cannot hold a quote or a backslash: refused naming the variable, not escaped into something else
    const quotedUrl = mcpki([
      '--home',
      home,
      'template',
      'render',
      'mcp/claude-desktop.json',
      '--cert',
      'web',
      '--var',
      'url=https://web.localhost/"quoted"\\path',
    ]);
    assert.equal(quotedUrl.status, 3);
    assert.match(quotedUrl.stderr, /^error: template variable url=.*percent-encode/m);
    const sh = mcpki([
      '--home',
      home,
      '--json',
      'template',
      'render',
      'curl/mcp-call.sh',
      '--cert',
      'web',
      '--var',
      "url=https://web.example/it's/mcp",
    ]);
    const echoed = spawnSync('sh', ['-c', `${sh.json.text.match(/^url=.*$/m)[0]}; printf %s "$url"`], {
      encoding: 'utf8',
    });
    assert.equal(echoed.stdout, "https://web.example/it's/mcp");
  } finally {
    cleanup();
  }
});

test('every template says what it is for', () => {
  const listed = mcpki(['--json', 'template', 'list']).json.templates;
  assert.ok(listed.length >= 16, `${listed.length} templates`);
  for (const t of listed) assert.ok(t.description.length > 10, `${t.name} has a description`);
});

/** The arguments systemd reads from an Exec*= line: words split on spaces, "…" quoted (\" and \\), %% is %. */
function systemdArgv(line) {
  const words = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m; (m = re.exec(line));)
    words.push((m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]).replace(/%%/g, '%'));
  return words;
}

test('reloadCommand is split as a shell would: quoted arguments stay one argument, and run as written', () => {
  const { dir, cleanup } = tempDir();
  try {
    const marker = join(dir, 'out put');
    const command = `/bin/sh -c 'printf "%s|" "$0" "$1" > "$2"' "a b" 'c"d' "${marker}"`;
    const rendered = mcpki(['template', 'render', 'systemd/mcpki-crl.service', '--var', `reloadCommand=${command}`]);
    assert.equal(rendered.status, 3, 'a "$" is refused in a systemd unit');
    const safe = `/bin/sh -c 'printf "%s|" a\\ b "c\\"d" > ${JSON.stringify(marker).slice(1, -1).replace(/ /g, '\\ ')}'`;
    const unit = mcpki(['template', 'render', 'systemd/mcpki-crl.service', '--var', `reloadCommand=${safe}`]);
    assert.equal(unit.status, 0, unit.stderr);
    const argv = systemdArgv(unit.stdout.match(/^ExecStartPost=\+(.+)$/m)[1]);
    assert.deepEqual(argv, ['/bin/sh', '-c', `printf "%s|" a\\ b "c\\"d" > ${marker.replace(/ /g, '\\ ')}`]);
    assert.equal(spawnSync(argv[0], argv.slice(1)).status, 0);
    assert.equal(readFileSync(marker, 'utf8'), 'a b|c"d|');
    const unclosed = mcpki([
      'template',
      'render',
      'systemd/mcpki-crl.service',
      '--var',
      'reloadCommand=/bin/sh -c "reload',
    ]);
    assert.equal(unclosed.status, 3);
    assert.match(unclosed.stderr, /that is not closed/);
  } finally {
    cleanup();
  }
});
