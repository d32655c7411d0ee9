// The systemd units, rendered with this installation's paths, pass systemd-analyze verify, and the command
// they run works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCommand, mcpki, tempDir } from './helpers.js';

test('systemd units render with real paths and pass systemd-analyze verify', { skip: !hasCommand('systemd-analyze') && 'systemd-analyze is not installed' }, () => {
  const { dir, cleanup } = tempDir('mcpki-templates-');
  try {
    const home = join(dir, 'home');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const config = join(dir, 'mcpki.yaml');
    writeFileSync(config, 'version: 1\ncertificates:\n  - name: unit\n    names: [unit.localhost]\n');
    const listed = mcpki(['--json', 'template', 'list']).json.templates.map((t) => t.name);
    for (const name of ['systemd/mcpki.service', 'systemd/mcpki-renew.service', 'systemd/mcpki-renew.timer']) {
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
    const env = Object.fromEntries(unit.match(/^Environment=(.+)$/gm).map((line) => line.slice('Environment='.length).split('=')));
    assert.equal(env.MCPKI_HOME, home);
    const ran = spawnSync(execStart[0], execStart.slice(1), { encoding: 'utf8', env: { ...process.env, ...env } });
    assert.equal(ran.status, 0, ran.stderr + ran.stdout);
    assert.equal(mcpki(['--home', home, '--json', 'show', 'unit']).json.certificate.name, 'unit');
  } finally {
    cleanup();
  }
});

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
