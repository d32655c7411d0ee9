// Hints in each surface's words (issue 9 item 5): a core error whose fix names a setting carries it structured
// (`fix()`), so the command line shows the option (--days N) and mcpki.yaml's surface (apply, renew, serve)
// the key (days: N in mcpki.yaml). `--json` carries the hint and the fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { McpkiError, fix, renderFix } from '../dist/index.js';
import { mcpki, tempDir } from './helpers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function coreFiles(dir = join(ROOT, 'src')) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return path === join(ROOT, 'src', 'cli') ? [] : coreFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** A command to run, quoted or after "run:", may name its options on every surface: "mcpki renew --force api". */
const COMMAND = /"(?:sudo )?(?:mcpki|certutil)\b[^"]*"|\b(?:sudo )?(?:mcpki|certutil) [^;,()"]*/g;
const FLAG = /(^|[^\w-])--[a-z][a-z0-9-]*/;
/** A setting written for fix(): {--days N|days: N}. */
const PLACEHOLDER = /\{--[^{}]*\}/g;
/** Files whose hints have not moved to fix() yet: none (a file listed here must exist, so the list only shrinks). */
const NOT_YET = [];

/**
 * Hint texts in src/ (outside the command line) that name an --option without `fix()`. A hint is the third
 * argument of `new McpkiError`, a `hint:` property, a variable, constant or parameter named *hint*, or what a
 * function named *hint* returns. Texts inside a `fix(...)` call are structured.
 */
export function plainFlagHints(files) {
  const found = [];
  for (const file of files) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const report = (node) => {
      const texts = [];
      const collect = (n) => {
        if (ts.isCallExpression(n) && n.expression.getText(source) === 'fix') return;
        if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) texts.push(n.text);
        else if (ts.isTemplateExpression(n))
          texts.push(n.head.text + n.templateSpans.map((span) => '${}' + span.literal.text).join(''));
        ts.forEachChild(n, collect);
      };
      collect(node);
      for (const text of texts) {
        if (FLAG.test(text.replace(COMMAND, '').replace(PLACEHOLDER, ''))) {
          const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
          found.push(`${file.slice(ROOT.length + 1)}:${line + 1}: ${text.slice(0, 120)}`);
        }
      }
    };
    const isHintName = (name) => name !== undefined && /hint/i.test(name.getText(source));
    const visit = (node) => {
      if (ts.isNewExpression(node) && /^McpkiError$/.test(node.expression.getText(source)) && node.arguments?.[2])
        report(node.arguments[2]);
      else if (ts.isPropertyAssignment(node) && node.name.getText(source) === 'hint') report(node.initializer);
      else if ((ts.isVariableDeclaration(node) || ts.isParameter(node)) && isHintName(node.name) && node.initializer)
        report(node.initializer);
      else if (ts.isFunctionDeclaration(node) && isHintName(node.name) && node.body) {
        const returns = (n) =>
          ts.isReturnStatement(n) && n.expression
            ? report(n.expression)
            : ts.isFunctionLike(n)
              ? undefined
              : ts.forEachChild(n, returns);
        ts.forEachChild(node.body, returns);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found;
}

test('every core hint that names an --option names it through fix()', () => {
  const files = coreFiles();
  for (const file of NOT_YET) assert.ok(files.includes(join(ROOT, file)), `${file} is gone: remove it from NOT_YET`);
  assert.deepEqual(plainFlagHints(files.filter((file) => !NOT_YET.includes(file.slice(ROOT.length + 1)))), []);
});

test('the scan finds a plain hint naming an option, and passes one written with fix()', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcpki-hint-scan-'));
  try {
    const file = join(dir, 'x.ts');
    writeFileSync(
      file,
      [
        "throw new McpkiError('USAGE', 'm', 'give --days N');",
        "throw new McpkiError('USAGE', 'm', fix('give {--days N|days: N}'));",
        'const OUT_HINT = `choose another --out ${x}`;',
        "f({ what: 'x', hint: 'pass --force' });",
        "function challengeHint(): string { return 'use --challenge dns-01'; }",
        "throw new McpkiError('USAGE', 'm', 'run \"mcpki renew --force api\"');",
      ].join('\n'),
    );
    const found = plainFlagHints([file]).map((line) => line.replace(/^.*x\.ts:/, ''));
    assert.deepEqual(found, [
      '1: give --days N',
      '3: choose another --out ${}',
      '4: pass --force',
      '5: use --challenge dns-01',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fix(): each surface words the settings its own way', () => {
  const f = fix('give {--days N|days: N} from 1 to 825, or pass {--force}');
  assert.deepEqual(f, {
    text: 'give {0} from 1 to 825, or pass {1}',
    settings: [
      { flag: '--days N', key: 'days: N' },
      { flag: '--force', key: null },
    ],
  });
  assert.equal(renderFix(f, 'cli'), 'give --days N from 1 to 825, or pass --force');
  assert.equal(renderFix(f, 'config'), 'give days: N in mcpki.yaml from 1 to 825, or pass --force');
  const error = new McpkiError('INVALID_DAYS', 'bad days', f);
  assert.equal(error.hint, 'give --days N from 1 to 825, or pass --force');
  assert.equal(error.hintFor('config'), 'give days: N in mcpki.yaml from 1 to 825, or pass --force');
  assert.equal(new McpkiError('USAGE', 'plain', 'a plain hint').hintFor('config'), 'a plain hint');
});

test('one error, two surfaces: `issue` names the option, `apply` the mcpki.yaml key; --json carries hint and fix', () => {
  const temp = tempDir('mcpki-fix-');
  try {
    const home = join(temp.dir, 'home');
    assert.equal(mcpki(['--home', home, 'init']).status, 0);
    const empty = join(temp.dir, 'empty.txt');
    writeFileSync(empty, '');
    // the command line: the option
    const cli = mcpki(['--home', home, 'issue', 'server', 'web', 'web.localhost', '--p12-password-file', empty]);
    assert.equal(cli.status, 12, cli.stderr);
    assert.match(
      cli.stderr,
      /^hint: put the password on the first line of the password file \(--p12-password-file FILE\)$/m,
    );
    const json = mcpki([
      '--home',
      home,
      '--json',
      'issue',
      'server',
      'web',
      'web.localhost',
      '--p12-password-file',
      empty,
    ]).json.error;
    assert.equal(json.hint, 'put the password on the first line of the password file (--p12-password-file FILE)');
    assert.deepEqual(json.fix, {
      text: 'put the password on the first line of the password file ({0})',
      settings: [{ flag: '--p12-password-file FILE', key: "the p12 target's passwordFile:" }],
    });
    // mcpki.yaml: the same error, reached through apply, names the key
    const config = join(temp.dir, 'mcpki.yaml');
    writeFileSync(
      config,
      `version: 1\ncertificates:\n  - name: app\n    names: [app.localhost]\n    targets:\n      - { type: p12, path: out/app.p12, passwordFile: ${empty} }\n`,
    );
    const applied = mcpki(['--home', home, '--json', 'apply', '-c', config]);
    assert.equal(applied.status, 17, applied.stdout + applied.stderr);
    const item = applied.json.items.find((i) => i.name === 'app');
    assert.equal(item.error.code, 'PASSPHRASE_MISSING');
    assert.equal(
      item.error.hint,
      "put the password on the first line of the password file (the p12 target's passwordFile: in mcpki.yaml)",
    );
    assert.doesNotMatch(mcpki(['--home', home, 'apply', '-c', config]).stdout, /--p12-password-file/);
  } finally {
    temp.cleanup();
  }
});

test('reportError words the fix for its surface, in text and in --json', async () => {
  const { reportError } = await import('../dist/cli/output.js');
  const error = new McpkiError('INVALID_DAYS', 'days out of range', fix('give {--days N|days: N} from 1 to 825'));
  const capture = (options) => {
    const written = [];
    const stream = options.json ? process.stdout : process.stderr;
    const original = stream.write;
    stream.write = (chunk) => written.push(String(chunk)) > 0;
    try {
      assert.equal(reportError(options, error), 3);
    } finally {
      stream.write = original;
    }
    return written.join('');
  };
  assert.match(capture({ json: false }), /^hint: give --days N from 1 to 825$/m);
  assert.match(capture({ json: false, surface: 'config' }), /^hint: give days: N in mcpki.yaml from 1 to 825$/m);
  const body = JSON.parse(capture({ json: true, surface: 'config' })).error;
  assert.equal(body.hint, 'give days: N in mcpki.yaml from 1 to 825');
  assert.deepEqual(body.fix, { text: 'give {0} from 1 to 825', settings: [{ flag: '--days N', key: 'days: N' }] });
  assert.equal(JSON.parse(capture({ json: true })).error.hint, 'give --days N from 1 to 825');
});
