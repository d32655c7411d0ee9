// One definition per concept (issue 9 item 1): the key types, renewBefore's parsed form and the exit codes are
// each written once, and every place that shows them derives its text from that one definition.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_KEY_TYPE, KEY_TYPES } from '../dist/index.js';
import { mcpki } from './helpers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function sourceFiles(dir = join(ROOT, 'src')) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

test('the key types are listed only in src/pki/keys.ts; every --key help derives from KEY_TYPES', () => {
  // a list of two or more key type names written out anywhere else is a second copy
  const list = new RegExp(`(${KEY_TYPES.join('|')})\\W{1,4}(${KEY_TYPES.join('|')})`);
  const copies = sourceFiles().filter(
    (file) => !file.endsWith(join('pki', 'keys.ts')) && list.test(readFileSync(file, 'utf8')),
  );
  assert.deepEqual(
    copies.map((file) => file.slice(ROOT.length + 1)),
    [],
  );
  for (const args of [
    ['issue', 'server', '--help'],
    ['init', '--help'],
    ['acme', 'issue', '--help'],
  ]) {
    const help = mcpki(args).stdout.replace(/\s+/g, ' ');
    assert.ok(
      help.includes(`key type: ${KEY_TYPES.join(', ')} (default: "${DEFAULT_KEY_TYPE}"`),
      `${args.join(' ')}: ${help}`,
    );
  }
});

test('the parsed renewBefore type is defined once, below config and renewal', () => {
  const definitions = sourceFiles().filter((file) => /export type RenewBefore\s*=/.test(readFileSync(file, 'utf8')));
  assert.deepEqual(
    definitions.map((file) => file.slice(ROOT.length + 1)),
    ['src/duration.ts'],
  );
  assert.doesNotMatch(readFileSync(join(ROOT, 'src/renewal/policy.ts'), 'utf8'), /from '\.\.\/config\//);
  assert.doesNotMatch(readFileSync(join(ROOT, 'src/renewal/runner.ts'), 'utf8'), /renewBeforeText/);
  // and its text ("1/3", "25%", "0.25", "30d") is read in one place, for mcpki.yaml and the library alike
  const readers = sourceFiles().filter((file) => readFileSync(file, 'utf8').includes(String.raw`\s*%$/`));
  assert.deepEqual(
    readers.map((file) => file.slice(ROOT.length + 1)),
    ['src/duration.ts'],
  );
});

test('mcpki.yaml and parseRenewBefore read renewBefore text the same way', async () => {
  const { loadConfig, parseRenewBefore } = await import('../dist/index.js');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'mcpki-rb-'));
  try {
    for (const text of [
      '30d',
      '12h',
      '2w',
      '1/3',
      '2 / 3',
      '25%',
      '12.5%',
      '.5',
      '0.25',
      '0d',
      '30',
      '1/0',
      '3/2',
      '100%',
      '1.5',
      'abc',
      '401d',
    ]) {
      const path = join(dir, 'mcpki.yaml');
      writeFileSync(
        path,
        `version: 1\ncertificates:\n  - { name: a, names: [a.localhost], days: 398, renewBefore: "${text}" }\n`,
      );
      let fromYaml;
      try {
        fromYaml = loadConfig(path).certificates[0].renewBefore;
      } catch (error) {
        fromYaml = error.code;
      }
      let fromText;
      try {
        fromText = parseRenewBefore(text);
      } catch (error) {
        fromText = error.code;
      }
      assert.deepEqual(fromYaml, fromText, text);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** docs/cli.md's exit-code table as exitCodeTable() makes it. */
function exitCodeMarkdown(rows) {
  const lines = ['| exit | meaning | codes |', '| --- | --- | --- |'];
  for (const row of rows)
    lines.push(
      `| ${row.exit} | ${row.detail} | ${row.codes.length ? row.codes.map((code) => `\`${code}\``).join(', ') : '—'} |`,
    );
  return lines.join('\n');
}

test("docs/cli.md's exit-code table is the one generated from EXIT_CODES (UPDATE_DOCS=1 rewrites it)", async () => {
  const { exitCodeTable, EXIT_CODES } = await import('../dist/index.js');
  const rows = exitCodeTable();
  // every exit code has a row, once, and every error code is in exactly one row
  assert.deepEqual(
    rows.filter((row) => !row.exit.includes(',')).map((row) => Number(row.exit)),
    Object.values(EXIT_CODES),
  );
  const codes = rows.flatMap((row) => row.codes);
  assert.equal(new Set(codes).size, codes.length);
  const path = join(ROOT, 'docs/cli.md');
  const doc = readFileSync(path, 'utf8');
  const table = /^\| exit \| meaning \| codes \|\n(?:\|.*\|\n)+/m.exec(doc);
  assert.ok(table, 'docs/cli.md has an exit-code table');
  const expected = exitCodeMarkdown(rows) + '\n';
  if (process.env.UPDATE_DOCS === '1' && table[0] !== expected) writeFileSync(path, doc.replace(table[0], expected));
  else
    assert.equal(
      table[0],
      expected,
      'docs/cli.md is out of date: run UPDATE_DOCS=1 node --test test/errors-one-source.test.js',
    );
});

test('mcpki --help lists every exit code from the same table', async () => {
  const { exitCodeTable } = await import('../dist/index.js');
  const help = mcpki(['--help']).stdout;
  const list = help.slice(help.indexOf('Exit codes:')).replace(/\s+/g, ' ').trim();
  const expected = `Exit codes: ${exitCodeTable()
    .map((row) => `${row.exit.replace(', ', '/')} ${row.brief}`)
    .join(', ')}.`;
  assert.equal(list, expected);
  for (const line of help.slice(help.indexOf('Exit codes:')).split('\n')) assert.ok(line.length <= 110, line);
});
