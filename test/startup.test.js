// Start-up: what `npm run build` prepares so that one command costs little more than a bare `node`
// (docs/architecture.md, "Start-up cost"). Timings are in bench/, not here; these check the mechanisms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT, tempDir } from './helpers.js';

/** Runs `code` in a fresh node that has required bin/mcpki.js as `loaded`; returns its JSON output. */
function probe(code) {
  const script = `const loaded = require(${JSON.stringify(BIN)}); (async () => { ${code} })().catch((e) => { console.error(e); process.exitCode = 99; });`;
  const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

test('every command group bundle is loaded with the code cache the build made for it', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    const groups = probe(`
      const write = process.stdout.write; process.stdout.write = () => true;
      for (const args of [['init'], ['issue', 'server', 'web'], ['list'], ['template', 'list'], ['--help']]) await loaded.cli.main(['node', 'mcpki', '--home', ${JSON.stringify(home)}, ...args]);
      process.stdout.write = write;
      console.log(JSON.stringify(loaded.cli.loadedBundles().map((b) => [b.file, b.script?.cachedDataRejected])));`);
    const names = groups.map(([file]) => file.replace(/^.*\//, ''));
    for (const name of [
      'cli-ca.cjs',
      'cli-issue.cjs',
      'cli-inventory.cjs',
      'cli-template.cjs',
      'cli-renew.cjs',
      'cli-serve.cjs',
      'cli-check.cjs',
      'cli-trust.cjs',
      'cli-acme.cjs',
    ]) {
      assert.ok(names.includes(name), `${name} not loaded: ${names}`);
    }
    for (const [file, rejected] of groups) {
      assert.ok(file.startsWith(join(ROOT, 'dist')), file);
      assert.equal(rejected, false, `${file}: no code cache, or V8 rejected it`);
    }
  } finally {
    cleanup();
  }
});

test('a group bundle is loaded once per process', () => {
  const { dir, cleanup } = tempDir();
  try {
    const count = probe(`
      const write = process.stdout.write; process.stdout.write = () => true;
      for (let i = 0; i < 3; i++) await loaded.cli.main(['node', 'mcpki', '--home', ${JSON.stringify(join(dir, 'home'))}, 'list']);
      process.stdout.write = write;
      console.log(JSON.stringify(loaded.cli.loadedBundles().length));`);
    assert.equal(count, 1);
  } finally {
    cleanup();
  }
});

/** The built-in modules `node BIN ...args` loaded beyond what `node -e 0` loads. */
function builtinsLoaded(args, stdout = 'ignore') {
  const { dir, cleanup } = tempDir();
  try {
    const list = join(dir, 'modules.txt');
    const hook = join(dir, 'hook.cjs');
    writeFileSync(
      hook,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));`,
    );
    const result = spawnSync(process.execPath, ['-r', hook, BIN, ...args(dir)], {
      encoding: 'utf8',
      stdio: ['ignore', stdout, 'pipe'],
    });
    assert.equal(result.status, 0, result.stderr);
    if (stdout === 'pipe') assert.ok(result.stdout.length > 0, 'the command printed through the pipe');
    return readFileSync(list, 'utf8').split('\n');
  } finally {
    cleanup();
  }
}

test('a command that runs nothing does not load node:child_process (nor net and dgram behind it)', () => {
  for (const args of [
    () => ['--version'],
    (dir) => ['--home', join(dir, 'home'), 'init'],
    (dir) => ['--home', join(dir, 'home'), 'list'],
  ]) {
    const modules = builtinsLoaded(args);
    assert.ok(modules.includes('NativeModule vm'), 'the hook saw the command line load');
    for (const name of ['child_process', 'net', 'dgram'])
      assert.ok(!modules.includes(`NativeModule ${name}`), `${args('DIR').join(' ')} loaded ${name}`);
  }
});

test('list and show print to a pipe or /dev/null without building process.stdout (no node:stream)', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    const made = spawnSync(process.execPath, [BIN, '--home', home, 'init'], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const issued = spawnSync(process.execPath, [BIN, '--home', home, 'issue', 'server', 'web', 'web.localhost']);
    assert.equal(issued.status, 0, String(issued.stderr));
    for (const stdout of ['ignore', 'pipe'])
      for (const args of [['list'], ['--json', 'list'], ['show', 'web']]) {
        const modules = builtinsLoaded(() => ['--home', home, ...args], stdout);
        assert.ok(modules.includes('NativeModule vm'), 'the hook saw the command line load');
        assert.ok(!modules.includes('NativeModule stream'), `${args.join(' ')} > ${stdout} loaded node:stream`);
      }
  } finally {
    cleanup();
  }
});

/** A home with 120 server certificates (h0 … h119, issued by one batch into DIR/out): its `list --json` is larger than a pipe holds. */
function issueHundredTwenty(dir, home) {
  const run = (...args) => spawnSync(process.execPath, [BIN, '--home', home, ...args], { encoding: 'utf8' });
  assert.equal(run('init').status, 0);
  const requests = join(dir, 'requests.txt');
  writeFileSync(requests, Array.from({ length: 120 }, (_, i) => `server h${i} h${i}.localhost\n`).join(''));
  const batch = run('issue', 'batch', requests, '--out', join(dir, 'out'));
  assert.equal(batch.status, 0, batch.stderr);
}

test('output larger than a pipe holds arrives whole when the pipe is non-blocking and its reader is slow', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    issueHundredTwenty(dir, home);
    // Python hands mcpki the write end of a pipe set O_NONBLOCK and reads only after 0.3 s: writeSync meets
    // EAGAIN once the pipe's 64 KiB are full, and the rest must go through process.stdout
    const script = [
      'import os, subprocess, sys, time',
      'r, w = os.pipe()',
      'os.set_blocking(w, False)',
      'p = subprocess.Popen(sys.argv[1:], stdout=w)',
      'os.close(w)',
      'time.sleep(0.3)',
      'chunks = []',
      'while True:',
      '    b = os.read(r, 65536)',
      '    if not b: break',
      '    chunks.append(b)',
      'sys.stdout.buffer.write(b"".join(chunks))',
      'sys.exit(p.wait())',
    ].join('\n');
    const result = spawnSync('python3', ['-c', script, process.execPath, BIN, '--home', home, '--json', 'list'], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    assert.equal(result.status, 0, result.stderr);
    assert.ok(result.stdout.length > 128 * 1024, `${result.stdout.length} bytes`);
    assert.equal(JSON.parse(result.stdout).certificates.length, 120);
  } finally {
    cleanup();
  }
});

test('commander is evaluated once: the group bundles take the copy dist/cli.cjs loaded', () => {
  assert.ok(readFileSync(join(ROOT, 'dist', 'cli.cjs'), 'utf8').includes('commander.unknownOption'));
  for (const group of ['issue', 'inventory', 'acme']) {
    const text = readFileSync(join(ROOT, 'dist', `cli-${group}.cjs`), 'utf8');
    assert.ok(!text.includes('commander.unknownOption'), `dist/cli-${group}.cjs has its own commander`);
    assert.ok(text.includes('require("commander")'), `dist/cli-${group}.cjs does not take commander`);
  }
});

test('renew --dry-run with mcpki.yaml already parsed (HOME/cache) does not load the yaml package', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    const config = join(dir, 'mcpki.yaml');
    writeFileSync(config, 'version: 1\ncertificates:\n  - name: web\n    names: [web.localhost]\n');
    const hook = join(dir, 'hook.cjs');
    const list = join(dir, 'loaded.txt');
    writeFileSync(
      hook,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, Object.keys(require.cache).join('\\n')));`,
    );
    const yamlLoaded = () => {
      const result = spawnSync(
        process.execPath,
        ['-r', hook, BIN, '--home', home, '--json', 'renew', '--dry-run', '-c', config],
        { encoding: 'utf8' },
      );
      assert.equal(result.status, 0, result.stderr);
      assert.equal(JSON.parse(result.stdout).plan[0].name, 'web');
      return readFileSync(list, 'utf8')
        .split('\n')
        .some((path) => path.includes(`${join('node_modules', 'yaml')}`));
    };
    assert.equal(yamlLoaded(), true, 'the first run parses the YAML');
    assert.equal(yamlLoaded(), false, 'the second run reads the parsed form');
  } finally {
    cleanup();
  }
});

test('a finished command ends with process.exit (no heap teardown), with its exit code and all of its output', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    const run = (...args) =>
      spawnSync(process.execPath, ['--trace-exit', BIN, '--home', home, ...args], { encoding: 'utf8' });
    issueHundredTwenty(dir, home);
    // stdout is a pipe here, and the document is larger than a pipe holds: all of it arrives
    const listed = run('--json', 'list');
    assert.equal(listed.status, 0, listed.stderr);
    assert.ok(listed.stdout.length > 128 * 1024, `${listed.stdout.length} bytes`);
    assert.equal(JSON.parse(listed.stdout).certificates.length, 120);
    assert.match(listed.stderr, /Exited the environment with code 0/, '--trace-exit saw no process.exit');
    const missing = run('show', 'no-such-name');
    assert.equal(missing.status, 10, missing.stderr);
    assert.match(missing.stderr, /Exited the environment with code 10/);
  } finally {
    cleanup();
  }
});

test('the early exit waits for what is still pending: a timer, a beforeExit listener', () => {
  const node = (code) =>
    spawnSync(process.execPath, ['--trace-exit', '-e', `const loaded = require(${JSON.stringify(BIN)}); ${code}`], {
      encoding: 'utf8',
    });
  const exited = /Exited the environment/;
  const timer = node("setTimeout(() => console.log('timer ran'), 50); loaded.cli.exitWhenIdle();");
  assert.equal(timer.status, 0, timer.stderr);
  assert.equal(timer.stdout, 'timer ran\n');
  assert.doesNotMatch(timer.stderr, exited);
  const listener = node("process.once('beforeExit', () => console.log('beforeExit ran')); loaded.cli.exitWhenIdle();");
  assert.equal(listener.status, 0, listener.stderr);
  assert.equal(listener.stdout, 'beforeExit ran\n');
  assert.doesNotMatch(listener.stderr, exited);
  // with nothing pending it ends at once, keeping the exit code; 'exit' listeners run
  const idle = node(
    "process.on('exit', () => console.log('exit ran')); process.exitCode = 4; loaded.cli.exitWhenIdle();",
  );
  assert.equal(idle.status, 4, idle.stderr);
  assert.equal(idle.stdout, 'exit ran\n');
  assert.match(idle.stderr, exited);
});
