// The architecture, checked: the import graph of src/ (static `import … from`, `export … from`, dynamic
// `import()` and `require()`), read with the TypeScript parser, against the rules docs/architecture.md states.
// Each rule has a synthetic graph that breaks it, so a rule that can no longer fail is noticed.
//
// Rules that do not hold yet carry an allow-list of today's violations: any NEW violation fails, and so
// does an allow-listed one that is gone (remove it from the list, so the list only shrinks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The layers, lowest first. A file may import (even a type, even lazily) from its own layer or a lower one,
 * never from a higher one. Keys are folders under src/ or top-level files; docs/architecture.md has the
 * same table (a test below compares them).
 */
const LAYERS = [
  [
    'src/errors.ts',
    'src/version.ts',
    'src/install.ts',
    'src/process',
    'src/duration.ts',
    'src/net',
    'src/fs',
    'src/home.ts',
  ],
  ['src/pki', 'src/store', 'src/context.ts', 'src/inventory.ts'],
  ['src/deploy', 'src/acme', 'src/acme-server', 'src/trust', 'src/tls', 'src/check'],
  ['src/config'],
  ['src/templates', 'src/renewal'],
  ['src/service'],
  ['src/index.ts'],
  ['src/cli'],
];

/** What renewal/policy.ts (the pure renewal decision) must not load, directly or through anything it imports. */
const POLICY = 'src/renewal/policy.ts';
const POLICY_FORBIDDEN = ['http', 'https', 'fs', 'child_process', 'better-sqlite3'];

const SQL = /\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b/;

// ---------------------------------------------------------------------------------------------------------
// Today's violations. Each list is exact: a new violation fails, and so does an entry that no longer occurs.

/** I/O modules renewal/policy.ts still reaches. Keyed by the module reached. */
const ALLOWED_POLICY_IO = [];

/** Core modules cli/ imports directly instead of through src/index.ts. Keyed by the imported module, not the importing file. */
const ALLOWED_CLI_IMPORTS = [];

/** Edges from a lower layer to a higher one. */
const ALLOWED_LAYER_EDGES = [];

/** Runtime import cycles (strongly connected components, members sorted). */
const ALLOWED_CYCLES = [];

// ---------------------------------------------------------------------------------------------------------
// Reading sources

/** Every .ts file under src/, as { 'src/a/b.ts': text }. */
function readSources() {
  const sources = {};
  const walk = (dir) => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = posix.join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))
        sources[path] = readFileSync(join(ROOT, path), 'utf8');
    }
  };
  walk('src');
  return sources;
}

function literalText(node) {
  return node && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node.text : undefined;
}

/** `import type …`, or named bindings that are all `type`: TypeScript drops the import from the output. */
function importIsTypeOnly(clause) {
  if (!clause) return false; // `import './x.js'` runs the module
  if (clause.isTypeOnly) return true;
  if (clause.name) return false;
  const bindings = clause.namedBindings;
  return (
    bindings !== undefined &&
    ts.isNamedImports(bindings) &&
    bindings.elements.length > 0 &&
    bindings.elements.every((e) => e.isTypeOnly)
  );
}

function exportIsTypeOnly(node) {
  if (node.isTypeOnly) return true;
  const clause = node.exportClause;
  return (
    clause !== undefined &&
    ts.isNamedExports(clause) &&
    clause.elements.length > 0 &&
    clause.elements.every((e) => e.isTypeOnly)
  );
}

/**
 * One source file: its imports ({ specifier, kind: static | reexport | dynamic | require | type, typeOnly, line }),
 * its string literals (templates with each `${…}` read as `x`) and the lines that call process.exit.
 */
function parseSource(path, text) {
  const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const imports = [];
  const strings = [];
  const exits = [];
  const exitCodes = [];
  const line = (node) => file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1;
  const visit = (node) => {
    if (ts.isImportDeclaration(node)) {
      imports.push({
        specifier: literalText(node.moduleSpecifier),
        kind: 'static',
        typeOnly: importIsTypeOnly(node.importClause),
        line: line(node),
      });
      return; // the specifier is not a string the code uses
    }
    if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      imports.push({
        specifier: literalText(node.moduleSpecifier),
        kind: 'reexport',
        typeOnly: exportIsTypeOnly(node),
        line: line(node),
      });
      return;
    }
    if (ts.isImportTypeNode(node)) {
      const argument = node.argument;
      if (ts.isLiteralTypeNode(argument))
        imports.push({ specifier: literalText(argument.literal), kind: 'type', typeOnly: true, line: line(node) });
      return;
    }
    if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const first = literalText(node.arguments[0]);
      if (callee.kind === ts.SyntaxKind.ImportKeyword) {
        imports.push({ specifier: first, kind: 'dynamic', typeOnly: false, line: line(node) });
      } else if (
        (ts.isIdentifier(callee) && callee.text === 'require') ||
        (ts.isCallExpression(callee) &&
          ts.isIdentifier(callee.expression) &&
          callee.expression.text === 'createRequire')
      ) {
        if (first !== undefined) imports.push({ specifier: first, kind: 'require', typeOnly: false, line: line(node) });
      }
    }
    if (
      (ts.isPropertyAccessExpression(node) && node.name.text === 'exit') ||
      (ts.isElementAccessExpression(node) && literalText(node.argumentExpression) === 'exit')
    ) {
      if (ts.isIdentifier(node.expression) && node.expression.text === 'process') exits.push(line(node));
    }
    if (
      ts.isBinaryExpression(node) &&
      node.operatorToken.kind >= ts.SyntaxKind.FirstAssignment &&
      node.operatorToken.kind <= ts.SyntaxKind.LastAssignment
    ) {
      const target = node.left;
      const name = ts.isPropertyAccessExpression(target)
        ? target.name.text
        : ts.isElementAccessExpression(target)
          ? literalText(target.argumentExpression)
          : undefined;
      if (name === 'exitCode' && ts.isIdentifier(target.expression) && target.expression.text === 'process')
        exitCodes.push(line(node));
    }
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node))
      strings.push({ text: node.text, line: line(node) });
    if (ts.isTemplateExpression(node)) {
      strings.push({
        text: node.head.text + node.templateSpans.map((span) => 'x' + span.literal.text).join(''),
        line: line(node),
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return { imports, strings, exits, exitCodes };
}

/** A module name without `node:` and subpath: `node:fs/promises` → `fs`, `@scope/pkg/x` → `@scope/pkg`. */
function packageName(specifier) {
  const bare = specifier.replace(/^node:/, '');
  const parts = bare.split('/');
  return bare.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/**
 * The graph of a set of sources: files → { imports: [{ …import, to }] } where `to` is a src path for a
 * relative import, `pkg:NAME` for a package or built-in, `file:PATH` for a file outside src/, or null when a relative import names no source
 * (`.cjs` bundles made at build time are expected; anything else is reported by `unresolvedImports`).
 */
function buildGraph(sources) {
  const files = new Map();
  for (const [path, text] of Object.entries(sources)) {
    const parsed = parseSource(path, text);
    for (const entry of parsed.imports) {
      if (entry.specifier === undefined) entry.to = null;
      else if (entry.specifier.startsWith('.')) {
        const target = posix.normalize(posix.join(posix.dirname(path), entry.specifier));
        const source = target.replace(/\.js$/, '.ts');
        if (!target.startsWith('src/'))
          entry.to = `file:${target}`; // bin/, outside the graph
        else entry.to = Object.hasOwn(sources, source) ? source : null;
      } else entry.to = `pkg:${packageName(entry.specifier)}`;
    }
    files.set(path, parsed);
  }
  return { files };
}

/** The folder under src/ a file belongs to, or the file itself at the top of src/. */
function unitOf(path) {
  const parts = path.split('/');
  return parts.length > 2 ? parts.slice(0, 2).join('/') : path;
}

function layerIndex(layers) {
  const index = new Map();
  layers.forEach((units, i) => units.forEach((unit) => index.set(unit, i)));
  return index;
}

function runtimeEdges(entry) {
  return entry.imports.filter((i) => !i.typeOnly && i.to !== null);
}

// ---------------------------------------------------------------------------------------------------------
// Rules: each returns { key, message } violations; `key` is what an allow-list names.

function unresolvedImports(graph) {
  const found = [];
  for (const [path, entry] of graph.files) {
    for (const i of entry.imports) {
      if (i.to !== null) continue;
      if (i.specifier !== undefined && i.kind === 'require' && i.specifier.endsWith('.cjs')) continue; // a bundle beside dist/cli
      found.push({
        key: `${path}:${i.line}`,
        message: `${path}:${i.line} imports ${i.specifier ?? '(a computed name)'}, which is no file under src/`,
      });
    }
  }
  return found;
}

function sqlOutsideStore(graph) {
  const found = [];
  for (const [path, entry] of graph.files) {
    if (path.startsWith('src/store/')) continue;
    const hit = entry.strings.find((s) => SQL.test(s.text));
    if (hit)
      found.push({
        key: path,
        message: `${path}:${hit.line} holds SQL (${SQL.exec(hit.text)[0]}); only src/store/ speaks SQL`,
      });
  }
  return found;
}

function acmeClientOutsideAcme(graph) {
  const found = [];
  for (const [path, entry] of graph.files) {
    if (path.startsWith('src/acme/')) continue;
    const hit = entry.imports.find((i) => i.to === 'pkg:acme-client');
    if (hit)
      found.push({
        key: path,
        message: `${path}:${hit.line} imports acme-client; only src/acme/ may (it costs ~240 ms to load)`,
      });
  }
  return found;
}

function exitOutsideCli(graph) {
  const found = [];
  for (const [path, entry] of graph.files) {
    if (path.startsWith('src/cli/')) continue;
    if (entry.exits.length > 0)
      found.push({
        key: path,
        message: `${path}:${entry.exits[0]} calls process.exit; the core returns or throws, only src/cli/ ends the process`,
      });
  }
  return found;
}

/** Forbidden modules `start` loads at run time, with one chain of imports that reaches each. */
function forbiddenLoads(graph, start = POLICY, forbidden = POLICY_FORBIDDEN) {
  const parent = new Map([[start, null]]);
  const queue = [start];
  const found = [];
  const chain = (node) => {
    const path = [];
    for (let at = node; at !== null; at = parent.get(at)) path.unshift(at.replace(/^src\//, ''));
    return path.join(' > ');
  };
  while (queue.length > 0) {
    const node = queue.shift();
    const entry = graph.files.get(node);
    if (!entry) continue;
    for (const i of runtimeEdges(entry)) {
      if (parent.has(i.to)) continue;
      parent.set(i.to, node);
      if (i.to.startsWith('pkg:')) {
        const name = i.to.slice(4);
        if (forbidden.includes(name)) found.push({ key: name, message: `${start} loads ${name}: ${chain(i.to)}` });
      } else queue.push(i.to);
    }
  }
  return found;
}

/** cli/ imports only src/index.ts (and its own files, and packages). */
function cliBeyondIndex(graph) {
  const found = new Map();
  for (const [path, entry] of graph.files) {
    if (!path.startsWith('src/cli/')) continue;
    for (const i of entry.imports) {
      if (i.to === null || !i.to.startsWith('src/') || i.to.startsWith('src/cli/') || i.to === 'src/index.ts') continue;
      if (!found.has(i.to))
        found.set(i.to, {
          key: i.to,
          message: `${path}:${i.line} imports ${i.to}; the command line uses only what src/index.ts exports`,
        });
    }
  }
  return [...found.values()];
}

/** Every unit (folder under src/ or top-level file) has a layer. */
function unitsWithoutLayer(graph, layers = LAYERS) {
  const index = layerIndex(layers);
  const units = new Set([...graph.files.keys()].map(unitOf));
  return [...units]
    .filter((unit) => !index.has(unit))
    .map((unit) => ({
      key: unit,
      message: `${unit} has no layer: add it to LAYERS here and to the table in docs/architecture.md`,
    }));
}

/** An import (of any kind, types included) from a lower layer into a higher one. */
function upwardImports(graph, layers = LAYERS) {
  const index = layerIndex(layers);
  const found = [];
  const seen = new Set();
  for (const [path, entry] of graph.files) {
    const from = index.get(unitOf(path));
    for (const i of entry.imports) {
      if (i.to === null || !i.to.startsWith('src/')) continue;
      const to = index.get(unitOf(i.to));
      if (from === undefined || to === undefined || to <= from) continue;
      const key = `${path} -> ${i.to}`;
      if (seen.has(key)) continue;
      seen.add(key);
      found.push({
        key,
        message: `${path}:${i.line} (layer ${from}, ${unitOf(path)}) imports ${i.to} (layer ${to}, ${unitOf(i.to)})`,
      });
    }
  }
  return found;
}

/** Runtime import cycles (type-only imports excluded; lazy ones included): Tarjan's strongly connected components. */
function runtimeCycles(graph) {
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  let counter = 0;
  const strongConnect = (node) => {
    index.set(node, counter);
    low.set(node, counter);
    counter += 1;
    stack.push(node);
    onStack.add(node);
    for (const i of runtimeEdges(graph.files.get(node))) {
      if (!graph.files.has(i.to)) continue;
      if (!index.has(i.to)) {
        strongConnect(i.to);
        low.set(node, Math.min(low.get(node), low.get(i.to)));
      } else if (onStack.has(i.to)) low.set(node, Math.min(low.get(node), index.get(i.to)));
    }
    if (low.get(node) === index.get(node)) {
      const component = [];
      let member;
      do {
        member = stack.pop();
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      const selfLoop = runtimeEdges(graph.files.get(node)).some((i) => i.to === node);
      if (component.length > 1 || selfLoop) components.push(component.sort());
    }
  };
  for (const node of [...graph.files.keys()].sort()) if (!index.has(node)) strongConnect(node);
  return components.map((members) => ({
    key: members.join(' '),
    message: `runtime import cycle: ${members.join(' ⇄ ')}`,
  }));
}

/** Violations not in `allowed`, and allowed entries that no longer occur. */
function compare(violations, allowed) {
  const keys = new Set(violations.map((v) => v.key));
  const added = violations.filter((v) => !allowed.includes(v.key)).map((v) => v.message);
  const gone = allowed
    .filter((key) => !keys.has(key))
    .map((key) => `allow-listed but no longer found (remove it from the list): ${key}`);
  return [...added, ...gone];
}

function assertRule(violations, allowed = []) {
  const problems = compare(violations, allowed);
  assert.deepEqual(problems, [], '\n' + problems.join('\n'));
}

// ---------------------------------------------------------------------------------------------------------
// The real tree

const graph = buildGraph(readSources());

test('every relative import names a source file', () => assertRule(unresolvedImports(graph)));
test('SQL only in src/store', () => assertRule(sqlOutsideStore(graph)));
test('acme-client only in src/acme', () => assertRule(acmeClientOutsideAcme(graph)));
test('process.exit only in src/cli', () => assertRule(exitOutsideCli(graph)));
test('process.exitCode set only by src/cli/main.ts and src/cli/command.ts', () =>
  assertRule(exitCodeOutsideGlue(graph)));
test('renewal/policy.ts loads no I/O module, directly or transitively', () =>
  assertRule(forbiddenLoads(graph), ALLOWED_POLICY_IO));
test('cli imports only the core API (src/index.ts)', () => assertRule(cliBeyondIndex(graph), ALLOWED_CLI_IMPORTS));
test('every folder and top-level file under src/ has a layer', () => assertRule(unitsWithoutLayer(graph)));
test('no layer imports a higher one', () => assertRule(upwardImports(graph), ALLOWED_LAYER_EDGES));
test('no runtime import cycle', () => assertRule(runtimeCycles(graph), ALLOWED_CYCLES));

test('docs/architecture.md lists the same layers and describes every folder', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
  // the layer table: | 0 | `src/errors.ts`, `src/fs/`, … | …
  const rows = [...doc.matchAll(/^\| (\d+) \| ([^|]+) \|/gm)].map((m) => ({
    layer: Number(m[1]),
    units: [...m[2].matchAll(/`([^`]+)`/g)].map((u) => u[1].replace(/\/$/, '')),
  }));
  assert.deepEqual(
    rows.map((r) => r.units),
    LAYERS,
    'the layer table in docs/architecture.md differs from LAYERS',
  );
  assert.deepEqual(
    rows.map((r) => r.layer),
    LAYERS.map((_, i) => i),
  );
  const folders = new Set(
    [...graph.files.keys()]
      .map((path) => path.split('/'))
      .filter((parts) => parts.length > 2)
      .map((parts) => parts.slice(0, -1).join('/')),
  );
  const missing = [...folders].filter((folder) => !doc.includes('`' + folder + '/`'));
  assert.deepEqual(missing, [], 'folders docs/architecture.md does not describe (as `src/x/`)');
});

// ---------------------------------------------------------------------------------------------------------
// Each rule fails on a synthetic graph that breaks it

/** Files that may set process.exitCode: a command returns its exit code, and only the command-line glue sets it. */
const EXIT_CODE_SETTERS = [
  'src/cli/main.ts',
  'src/cli/command.ts',
  'src/cli/build-code-cache.ts' /* the build step, not a command */,
];

function exitCodeOutsideGlue(graph) {
  const found = [];
  for (const [path, entry] of graph.files) {
    if (EXIT_CODE_SETTERS.includes(path)) continue;
    if (entry.exitCodes.length > 0)
      found.push({
        key: path,
        message: `${path}:${entry.exitCodes[0]} sets process.exitCode; a command returns its exit code, only src/cli/main.ts and src/cli/command.ts set it`,
      });
  }
  return found;
}

const keys = (violations) => violations.map((v) => v.key);

test('parser: import kinds, type-only forms, literals and process.exit', () => {
  const parsed = parseSource(
    'src/a.ts',
    [
      "import x from './x.js';",
      "import type { T } from './t.js';",
      "import { type U, type V } from './u.js';",
      "import { type W, w } from './w.js';",
      "import './side.js';",
      "export { y } from './y.js';",
      "export type { Z } from './z.js';",
      "export * from './all.js';",
      "let q: import('./q.js').Q;",
      "async function f() { await import('./lazy.js'); }",
      "const r = createRequire(import.meta.url)('./r.js');",
      '// process.exit(1) in a comment is not a call',
      "const t = `UPDATE ${'x'} SET`;",
      'process.exit(2);',
    ].join('\n'),
  );
  assert.deepEqual(
    parsed.imports.map((i) => [i.specifier, i.kind, i.typeOnly]),
    [
      ['./x.js', 'static', false],
      ['./t.js', 'static', true],
      ['./u.js', 'static', true],
      ['./w.js', 'static', false],
      ['./side.js', 'static', false],
      ['./y.js', 'reexport', false],
      ['./z.js', 'reexport', true],
      ['./all.js', 'reexport', false],
      ['./q.js', 'type', true],
      ['./lazy.js', 'dynamic', false],
      ['./r.js', 'require', false],
    ],
  );
  assert.deepEqual(parsed.exits, [14]);
  assert.ok(
    parsed.strings.some((s) => SQL.test(s.text)),
    'a template with a substitution is read as one string',
  );
});

test('rule fails: an unresolved relative import', () => {
  assert.deepEqual(keys(unresolvedImports(buildGraph({ 'src/a.ts': "import { b } from './b.js';" }))), ['src/a.ts:1']);
  assert.deepEqual(
    keys(unresolvedImports(buildGraph({ 'src/cli/main.ts': "createRequire(import.meta.url)('./cli-extra.cjs');" }))),
    [],
  );
});

test('rule fails: SQL outside src/store', () => {
  const g = buildGraph({
    'src/store/store.ts': "const q = 'SELECT * FROM certificates';",
    'src/pki/ca.ts': 'const q = `DELETE FROM events WHERE id = ${1}`;',
    'src/check/index.ts': "// SELECT in a comment\nconst text = 'select a profile';",
  });
  assert.deepEqual(keys(sqlOutsideStore(g)), ['src/pki/ca.ts']);
});

test('rule fails: acme-client outside src/acme', () => {
  const g = buildGraph({
    'src/acme/client.ts': "import * as acme from 'acme-client';",
    'src/renewal/runner.ts': "const m = await import('acme-client');",
    'src/pki/x.ts': "import type { Client } from 'acme-client';",
  });
  assert.deepEqual(keys(acmeClientOutsideAcme(g)).sort(), ['src/pki/x.ts', 'src/renewal/runner.ts']);
});

test('rule fails: process.exitCode set by a command or the core', () => {
  const g = buildGraph({
    'src/cli/command.ts': 'process.exitCode = code;',
    'src/cli/commands/check.ts': 'process.exitCode = report.exitCode;',
    'src/renewal/runner.ts': "process['exitCode'] ??= 17;",
    'src/cli/commands/list.ts': 'const exitCode = 3; return { exitCode };',
  });
  assert.deepEqual(keys(exitCodeOutsideGlue(g)), ['src/cli/commands/check.ts', 'src/renewal/runner.ts']);
});

test('rule fails: process.exit outside src/cli', () => {
  const g = buildGraph({
    'src/cli/main.ts': 'process.exit(0);',
    'src/service/serve.ts': "process['exit'](1);",
    'src/errors.ts': 'process.exitCode = 1;',
  });
  assert.deepEqual(keys(exitOutsideCli(g)), ['src/service/serve.ts']);
});

test('rule fails: renewal/policy.ts reaching I/O through another module', () => {
  const g = buildGraph({
    'src/renewal/policy.ts': "import { a } from '../acme/ari.js';\nimport type { S } from '../store/store.js';",
    'src/acme/ari.ts': "import { p } from './problems.js';",
    'src/acme/problems.ts': "import { request } from 'node:https';\nconst fs = await import('node:fs/promises');",
    'src/store/store.ts': "import Database from 'better-sqlite3';",
  });
  const found = forbiddenLoads(g);
  assert.deepEqual(keys(found), ['https', 'fs'], 'a type-only import loads nothing');
  assert.equal(
    found[0].message,
    'src/renewal/policy.ts loads https: renewal/policy.ts > acme/ari.ts > acme/problems.ts > pkg:https',
  );
});

test('rule fails: cli importing past src/index.ts', () => {
  const g = buildGraph({
    'src/index.ts': '',
    'src/pki/ca.ts': '',
    'src/cli/output.ts': '',
    'src/cli/main.ts':
      "import { a } from '../index.js';\nimport { b } from './output.js';\nimport { Command } from 'commander';\nconst { c } = await import('../pki/ca.js');",
  });
  assert.deepEqual(keys(cliBeyondIndex(g)), ['src/pki/ca.ts']);
});

test('rule fails: a lower layer importing a higher one, and a unit with no layer', () => {
  const g = buildGraph({
    'src/pki/ca.ts': "import type { Plan } from '../deploy/plan.js';\nimport { McpkiError } from '../errors.js';",
    'src/deploy/plan.ts': "import { encode } from '../pki/der.js';",
    'src/pki/der.ts': '',
    'src/errors.ts': '',
    'src/gadgets/x.ts': '',
  });
  assert.deepEqual(keys(upwardImports(g)), ['src/pki/ca.ts -> src/deploy/plan.ts']);
  assert.deepEqual(keys(unitsWithoutLayer(g)), ['src/gadgets']);
});

test('rule fails: a runtime cycle, lazy or re-exported; a type-only one passes', () => {
  const g = buildGraph({
    'src/a.ts': "import { b } from './b.js';",
    'src/b.ts': "export { c } from './c.js';",
    'src/c.ts': "const a = () => import('./a.js');",
    'src/d.ts': "import { e } from './e.js';",
    'src/e.ts': "import type { D } from './d.js';",
    'src/f.ts': "import { f } from './f.js';",
  });
  assert.deepEqual(keys(runtimeCycles(g)), ['src/a.ts src/b.ts src/c.ts', 'src/f.ts']);
});

test('allow-lists: a new violation fails, and so does an allow-listed one that is gone', () => {
  const v = [
    { key: 'a', message: 'A' },
    { key: 'b', message: 'B' },
  ];
  assert.deepEqual(compare(v, ['a', 'b']), []);
  assert.deepEqual(compare(v, ['a']), ['B']);
  assert.deepEqual(compare(v, ['a', 'b', 'c']), ['allow-listed but no longer found (remove it from the list): c']);
});
