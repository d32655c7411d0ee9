// `mcpki completion bash|zsh|fish`: scripts generated from the commander tree, run by the real shells.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCommand, mcpki, run, tempDir } from './helpers.js';

/** What the bash completion offers for the words typed so far (the last one is being completed). */
function complete(script, words) {
  const line = words.map((w) => `'${w}'`).join(' ');
  const result = run('bash', [
    '-c',
    `source '${script}'; COMP_WORDS=(${line}); COMP_CWORD=${words.length - 1}; _mcpki; printf '%s\\n' "\${COMPREPLY[@]}"`,
  ]);
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.split('\n').filter(Boolean);
}

test('bash: the script parses (bash -n) and completes commands, subcommands and options from the command tree', () => {
  const { dir, cleanup } = tempDir();
  try {
    const generated = mcpki(['completion', 'bash']);
    assert.equal(generated.status, 0, generated.stderr);
    const script = join(dir, 'mcpki.bash');
    writeFileSync(script, generated.stdout);
    const syntax = run('bash', ['-n', script]);
    assert.equal(syntax.status, 0, syntax.stderr);
    assert.deepEqual(complete(script, ['mcpki', 'iss']), ['issue']);
    assert.deepEqual(complete(script, ['mcpki', 's']).sort(), ['serve', 'show', 'sign', 'store']);
    assert.deepEqual(complete(script, ['mcpki', 'issue', '']).sort(), ['batch', 'client', 'server']);
    assert.deepEqual(complete(script, ['mcpki', 'issue', 'server', '--da']), ['--days']);
    assert.deepEqual(complete(script, ['mcpki', 'acme', 'account', 'reg']), ['register']);
    // global options come with every command, and the value of --home is skipped
    assert.deepEqual(complete(script, ['mcpki', '--home', '/tmp/x', 'iss']), ['issue']);
    assert.ok(complete(script, ['mcpki', 'sign', 'x.csr', '--']).includes('--json'));
    assert.ok(complete(script, ['mcpki', 'sign', 'x.csr', '--']).includes('--profile'));
    // an option's value and a command's file argument complete file names
    writeFileSync(join(dir, 'app.csr'), '');
    assert.deepEqual(complete(script, ['mcpki', 'sign', '--out', join(dir, 'app.c')]), [join(dir, 'app.csr')]);
    assert.deepEqual(complete(script, ['mcpki', 'sign', join(dir, 'app.')]), [join(dir, 'app.csr')]);
    // every command mcpki has is offered at the top
    const top = complete(script, ['mcpki', '']);
    for (const command of ['init', 'issue', 'sign', 'forget', 'renew', 'completion', 'template', 'check'])
      assert.ok(top.includes(command), command);
  } finally {
    cleanup();
  }
});

test('zsh and fish scripts are generated (and parsed by zsh -n / fish -n where those shells exist); an unknown shell is a usage error', () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const shell of ['zsh', 'fish']) {
      const generated = mcpki(['completion', shell]);
      assert.equal(generated.status, 0, generated.stderr);
      assert.match(generated.stdout, /issue/);
      assert.match(generated.stdout, /--days/);
      if (!hasCommand(shell)) continue;
      const script = join(dir, `mcpki.${shell}`);
      writeFileSync(script, generated.stdout);
      const syntax = run(shell, ['-n', script]);
      assert.equal(syntax.status, 0, syntax.stderr);
      if (shell === 'fish') {
        const offered = run('fish', [
          '--no-config',
          '-c',
          `source '${script}'; complete -C 'mcpki iss'; complete -C 'mcpki issue server --da'`,
        ]);
        assert.equal(offered.status, 0, offered.stderr);
        assert.match(offered.stdout, /^issue\t/m);
        assert.match(offered.stdout, /^--days\t/m);
      } else {
        // zsh runs the bash function through bashcompinit (zsh itself then filters by the typed prefix)
        const offered = run('zsh', [
          '-f',
          '-c',
          `source '${script}'; setopt ksharrays; COMP_WORDS=(mcpki --home /x issue ''); COMP_CWORD=4; _mcpki; print -r -- "\${COMPREPLY[*]}"`,
        ]);
        assert.equal(offered.status, 0, offered.stderr);
        assert.match(offered.stdout, /\bserver client batch\b/);
      }
    }
    const unknown = mcpki(['--json', 'completion', 'powershell']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.json.error.message, /unknown shell "powershell"/);
  } finally {
    cleanup();
  }
});
