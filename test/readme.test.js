// The README's commands run as written. Every fenced block opened with ```sh runnable is executed by bash
// (-e: the first failing command fails the test), top to bottom in one scratch home and folder, with `mcpki`
// on PATH as a shim for this checkout's build, as a reader would paste them. A line that must not run here
// (it changes the machine: the system trust store, a port below 1024) says so in its comment with
// "(not run by the tests: REASON)" and is left out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { ROOT, BIN, tempDir, run } from './helpers.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const SKIP = /\(not run by the tests: ([^)]+)\)/;

/** The fenced blocks of a Markdown text: { info, body, line }. */
export function fencedBlocks(text) {
  const blocks = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})(.*)$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body = [];
    for (i++; i < lines.length && !lines[i].startsWith(open[1]); i++) body.push(lines[i]);
    blocks.push({ info: open[2].trim(), body: body.join('\n'), line: start + 1 });
  }
  return blocks;
}

const runnable = fencedBlocks(README).filter((b) => /^sh\s+runnable\b/.test(b.info));

test('the README has runnable blocks, and the quick start is one of them', () => {
  assert.ok(runnable.length >= 2, `found ${runnable.length} runnable blocks`);
  assert.ok(
    runnable.some((b) => /^mcpki init$/m.test(b.body)),
    'the quick start (mcpki init) runs',
  );
});

test('no README command pipes one mcpki command into another', () => {
  for (const block of fencedBlocks(README).filter((b) => /^(sh|bash|console)?\b/.test(b.info))) {
    for (const line of block.body.split('\n')) {
      const code = line.replace(/\s#.*$/, '');
      assert.doesNotMatch(
        code,
        /\bmcpki\b[^|#]*\|\s*mcpki\b/,
        `README.md:${block.line}: "${line.trim()}" pastes as a pipe`,
      );
    }
  }
});

/** GitHub's anchors for the headings of a Markdown text. */
function anchors(text) {
  const fenced = fencedBlocks(text)
    .map((b) => b.body)
    .join('\n');
  return new Set(
    text
      .split('\n')
      .filter((line) => /^#{1,6} /.test(line) && !fenced.includes(line))
      .map((line) =>
        line
          .replace(/^#+ /, '')
          .toLowerCase()
          .replace(/[^\p{L}\p{N}\s_-]/gu, '')
          .trim()
          .replace(/\s/g, '-'),
      ),
  );
}

test('every relative link in README.md and docs/ points at a file (and heading) that exists', () => {
  const files = [
    'README.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const [, target, anchor] of text.matchAll(/\]\((?!https?:|#|mailto:)([^)#\s]+)(?:#([^)\s]*))?\)/g)) {
      const path = join(ROOT, dirname(file), target);
      assert.ok(existsSync(path), `${file} links to ${target}, which does not exist`);
      if (anchor)
        assert.ok(
          anchors(readFileSync(path, 'utf8')).has(anchor),
          `${file} links to ${target}#${anchor}: no such heading`,
        );
    }
  }
});

test('the runnable README blocks run as written', { timeout: 240_000 }, () => {
  const scratch = tempDir('mcpki-readme-');
  try {
    const shim = join(scratch.dir, 'bin');
    const home = join(scratch.dir, 'home');
    const work = join(scratch.dir, 'work');
    mkdirSync(shim);
    mkdirSync(work);
    writeFileSync(join(shim, 'mcpki'), `#!/bin/sh\nexec '${process.execPath}' '${BIN}' "$@"\n`);
    chmodSync(join(shim, 'mcpki'), 0o755);
    const env = {
      PATH: `${shim}:${process.env.PATH}`,
      HOME: scratch.dir,
      MCPKI_HOME: home,
      NO_COLOR: '1',
      LANG: 'C.UTF-8',
    };
    for (const block of runnable) {
      const lines = block.body.split('\n').filter((line) => {
        const skip = SKIP.exec(line);
        return !skip;
      });
      const result = run('bash', ['-e', '-u', '-o', 'pipefail', '-c', lines.join('\n')], {
        cwd: work,
        env,
        timeout: 120_000,
      });
      assert.equal(
        result.status,
        0,
        `README.md:${block.line} block failed (exit ${result.status}):\n${result.stdout}\n${result.stderr}`,
      );
    }
    // what the quick start promised is there
    for (const file of ['my-mcp.crt', 'my-mcp.key', 'my-mcp.fullchain.pem', 'ca.crt']) {
      assert.ok(existsSync(join(home, 'certs', 'my-mcp', file)), `quick start wrote certs/my-mcp/${file}`);
    }
    // its own full chain: the README rotates the intermediate after the quick start
    const verify = run('openssl', [
      'verify',
      '-CAfile',
      join(home, 'ca', 'root.crt'),
      '-untrusted',
      join(home, 'certs', 'my-mcp', 'my-mcp.fullchain.pem'),
      join(home, 'certs', 'my-mcp', 'my-mcp.crt'),
    ]);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  } finally {
    scratch.cleanup();
  }
});
