// Template values are data, never syntax. Every variable has a kind (path, host, port, address, url, url
// path, identifier, boolean, integer, command, free text); a value is checked against its kind before
// anything is rendered (no control characters, no U+2028/U+2029, no bidi overrides, no NUL; the form the
// kind needs), and then escaped for the file it lands in and for where in that file it sits: inside a
// double-quoted string (nginx, HAProxy, Caddyfile, systemd, YAML, JSON, TypeScript, Python), a single-quoted
// shell word, a systemd command line, a comment, or a bare word. What a syntax cannot represent safely
// (an nginx "$" that would be read as a variable, a Caddy "{" that would be read as a placeholder) is refused
// with the variable's name, never passed through.
import { McpkiError, fix, type Hint } from '../errors.js';
import { checkHostPort, isHost, portNumber } from '../net/address.js';

export type VariableKind =
  | 'path'
  | 'host'
  | 'port'
  | 'address'
  | 'url'
  | 'urlPath'
  | 'identifier'
  | 'boolean'
  | 'integer'
  | 'command'
  | 'fileUrl'
  | 'text';

const FILE_VARIABLES = ['cert', 'key', 'fullchain', 'chain', 'combined'];

/** The kind of every variable a template may use; a variable not listed is free text. */
export const VARIABLE_KINDS: Readonly<Record<string, VariableKind>> = {
  ...Object.fromEntries(
    FILE_VARIABLES.flatMap((v) => [
      [v, 'path'],
      [`client${v[0]!.toUpperCase()}${v.slice(1)}`, 'path'],
    ]),
  ),
  ca: 'path',
  crl: 'path',
  home: 'path',
  config: 'path',
  configDir: 'path',
  node: 'path',
  bin: 'path',
  docs: 'fileUrl',
  serverName: 'host',
  clientServerName: 'host',
  listenHost: 'host',
  listenPort: 'port',
  listen: 'address',
  upstreamAddress: 'address',
  upstream: 'url',
  url: 'url',
  mcpPath: 'urlPath',
  name: 'identifier',
  clientName: 'identifier',
  entryPoint: 'identifier',
  mcpServer: 'identifier',
  user: 'identifier',
  requireClientCert: 'boolean',
  crlDays: 'integer',
  reloadCommand: 'command',
};

export function kindOf(variable: string): VariableKind {
  return VARIABLE_KINDS[variable] ?? 'text';
}

const MAX_VALUE_LENGTH = 4096;

/** Characters no template value may hold: C0 and C1 controls (NUL, newline, ESC…), DEL, line and paragraph separators, bidi controls, BOM. */
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/u;

function describeChar(char: string): string {
  const code = char.codePointAt(0)!;
  const names: Record<number, string> = {
    0: 'a NUL',
    9: 'a tab',
    10: 'a newline',
    13: 'a carriage return',
    27: 'an escape character',
    0x2028: 'a line separator (U+2028)',
    0x2029: 'a paragraph separator (U+2029)',
  };
  return names[code] ?? `the control character U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** For messages: the value, cut and with control characters shown as escapes. */
export function shownValue(value: string): string {
  const cut = value.length > 80 ? `${value.slice(0, 80)}…` : value;
  return JSON.stringify(cut).replace(
    /[\u2028\u2029\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/gu,
    (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`,
  );
}

function refuse(variable: string, value: string, why: string, hint: Hint): McpkiError {
  return new McpkiError('INVALID_INPUT', `template variable ${variable}=${shownValue(value)} ${why}`, hint);
}

const KIND_HINTS: Record<VariableKind, string> = {
  path: 'give an absolute path, e.g. {--var VAR=/etc/ssl/mcpki/web.pem}',
  host: 'give a DNS name or an IP address, e.g. {--var VAR=mcp.example.test}',
  port: 'give a port from 1 to 65535, e.g. {--var VAR=8443}',
  address: 'give host:port, [v6]:port or a port, e.g. {--var VAR=127.0.0.1:8443}',
  url: 'give an http:// or https:// URL without spaces or quotes, e.g. {--var VAR=https://mcp.example.test:8443/mcp}',
  urlPath: 'give a URL path, e.g. {--var VAR=/mcp}',
  identifier: 'use letters, digits, ".", "_" and "-", e.g. {--var VAR=web}',
  boolean: 'give true or false',
  integer: 'give a whole number, e.g. {--var VAR=7}',
  command:
    'give the command and its arguments separated by spaces, quoting an argument that holds spaces as a shell would, e.g. {--var VAR="/bin/sh -c \'nginx -t && nginx -s reload\'"}',
  fileUrl:
    'give a file:// URL with every character but letters, digits and - . _ ~ : / @ percent-encoded, e.g. {--var VAR=file:///usr/lib/node_modules/mcpki/docs}',
  text: 'give one line of text',
};

/**
 * A command line split into its arguments as a POSIX shell would, without expansions: spaces separate
 * words, '…' is literal, "…" is literal but for \" and \\, and a backslash outside quotes escapes the next
 * character. Returns the words, or what is wrong (an unterminated quote).
 */
export function splitCommand(value: string): string[] | string {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < value.length; i += 1) {
    const c = value[i]!;
    if (c === "'") {
      const end = value.indexOf("'", i + 1);
      if (end < 0) return `has a ' at position ${i + 1} that is not closed`;
      word += value.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < value.length && value[j] !== '"'; j += 1) {
        if (value[j] === '\\' && (value[j + 1] === '"' || value[j + 1] === '\\')) j += 1;
        word += value[j];
      }
      if (j >= value.length) return `has a " at position ${i + 1} that is not closed`;
      inWord = true;
      i = j;
    } else if (c === '\\') {
      if (i + 1 >= value.length) return 'ends with a backslash';
      word += value[i + 1];
      inWord = true;
      i += 1;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** Checks a value against its variable's kind; throws INVALID_INPUT (exit 3) naming the variable. */
export function checkValue(variable: string, value: string): void {
  const kind = kindOf(variable);
  const hint = fix(KIND_HINTS[kind].replace('VAR', variable));
  if (typeof value !== 'string') throw refuse(variable, String(value), 'is not text', hint);
  const bad = FORBIDDEN.exec(value);
  if (bad)
    throw refuse(
      variable,
      value,
      `holds ${describeChar(bad[0])} at position ${bad.index + 1}, which no template value may hold`,
      hint,
    );
  if (value.length > MAX_VALUE_LENGTH)
    throw refuse(variable, value, `is ${value.length} characters long; the limit is ${MAX_VALUE_LENGTH}`, hint);
  const fail = (why: string): never => {
    throw refuse(variable, value, why, hint);
  };
  switch (kind) {
    case 'path':
      if (!value.startsWith('/')) fail('is not an absolute path');
      if (/(^|\/)\.\.(\/|$)/.test(value)) fail('has a ".." component');
      return;
    case 'host':
      if (!isHost(value.replace(/^\*\./, ''))) fail('is not a DNS name or an IP address');
      return;
    case 'port':
      if (portNumber(value) === undefined) fail('is not a port from 1 to 65535');
      return;
    case 'address': {
      const result = checkHostPort(value, { defaultHost: '0.0.0.0' });
      if (!result.ok) fail(`is not host:port (${result.message})`);
      return;
    }
    case 'url': {
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        return fail('is not a URL');
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') fail('is not an http:// or https:// URL');
      if (!/^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/.test(value))
        fail('holds characters a URL cannot (spaces, quotes, backslashes, braces): percent-encode them');
      if (url.username || url.password) fail('holds a user name or password');
      if (!isHost(url.hostname.replace(/^\[|\]$/g, ''))) fail('does not name a host');
      return;
    }
    case 'urlPath':
      if (!/^\/[A-Za-z0-9\-._~/%@:+=,]*$/.test(value))
        fail('is not a URL path (it starts with "/" and holds letters, digits and - . _ ~ / % @ : + = ,)');
      return;
    case 'identifier':
      if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}$/.test(value)) fail('is not a name (letters, digits, ".", "_" and "-")');
      return;
    case 'boolean':
      if (value !== 'true' && value !== 'false') fail('is not true or false');
      return;
    case 'integer':
      if (!/^\d{1,9}$/.test(value)) fail('is not a whole number');
      return;
    case 'command': {
      if (value.trim() === '') fail('is empty');
      const words = splitCommand(value);
      if (typeof words === 'string') fail(words);
      return;
    }
    case 'fileUrl':
      if (!/^file:\/\/\/[A-Za-z0-9\-._~:/@%]*$/.test(value))
        fail('is not a file:/// URL of plain characters (percent-encode the others)');
      return;
    case 'text':
      return;
  }
}

// ---- escaping --------------------------------------------------------------------------------------------

export type Syntax = 'nginx' | 'haproxy' | 'caddy' | 'systemd' | 'yaml' | 'json' | 'js' | 'python' | 'sh' | 'plain';

/** The syntax of a template, from its name. */
export function syntaxOf(name: string): Syntax {
  if (name.startsWith('nginx/')) return 'nginx';
  if (name.startsWith('haproxy/')) return 'haproxy';
  if (/(^|\/)Caddyfile$/.test(name)) return 'caddy';
  if (name.startsWith('systemd/') || /\.(service|timer|socket)$/.test(name)) return 'systemd';
  if (/\.ya?ml$/.test(name)) return 'yaml';
  if (/\.json$/.test(name)) return 'json';
  if (/\.[cm]?[jt]s$/.test(name)) return 'js';
  if (/\.py$/.test(name)) return 'python';
  if (/\.sh$/.test(name)) return 'sh';
  return 'plain';
}

type Where = 'double' | 'single' | 'comment' | 'command' | 'program' | 'bare';

const COMMENT_START: Record<Syntax, RegExp> = {
  nginx: /^\s*#/,
  haproxy: /^\s*#/,
  caddy: /^\s*#/,
  systemd: /^\s*[#;]/,
  yaml: /^\s*#/,
  json: /^$a/,
  js: /^\s*(\/\/|\/?\*)/,
  python: /^\s*#/,
  sh: /^\s*#/,
  plain: /^$a/,
};

/** Where in the file the placeholder at `offset` sits, from the text of its line before it. */
function placeOf(syntax: Syntax, text: string, offset: number, inDocstring: boolean): Where {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const before = text.slice(lineStart, offset);
  if (inDocstring || COMMENT_START[syntax].test(before)) return 'comment';
  if (syntax === 'systemd' && /^\s*Exec[A-Za-z]*=/.test(before)) {
    const quotes = (before.match(/"/g) ?? []).length;
    if (quotes % 2 === 1) return 'double';
    return /^\s*Exec[A-Za-z]*=[-@:+!|]*$/.test(before) ? 'program' : 'command';
  }
  let double = false;
  let single = false;
  for (let i = 0; i < before.length; i++) {
    const c = before[i];
    if (c === '\\' && !single) i++;
    else if (c === '"' && !single) double = !double;
    else if (c === "'" && !double && (syntax === 'sh' || syntax === 'python' || syntax === 'js')) single = !single;
    else if (
      c === '#' &&
      !double &&
      !single &&
      syntax !== 'js' &&
      syntax !== 'json' &&
      /(^|\s)$/.test(before.slice(0, i))
    )
      return 'comment';
  }
  if (double) return 'double';
  if (single) return 'single';
  return 'bare';
}

/** Python docstrings: the offsets inside a """…""" block. */
function docstringRanges(syntax: Syntax, text: string): [number, number][] {
  if (syntax !== 'python') return [];
  const ranges: [number, number][] = [];
  const re = /"""[\s\S]*?"""/g;
  for (let m; (m = re.exec(text));) ranges.push([m.index, m.index + m[0].length]);
  return ranges;
}

/** systemd: one argument of a command line, quoted when it needs to be; "%" doubled (specifiers). */
function systemdWord(word: string): string {
  if (/^[A-Za-z0-9_/.,:@+=-]+$/.test(word) && !/^[-@:+!]/.test(word)) return word;
  return `"${word.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%')}"`;
}

/**
 * The text that stands for `value` (of `variable`) at a place in a file of `syntax`; throws INVALID_INPUT
 * naming the variable when the syntax cannot hold the value there.
 */
export function escapeValue(syntax: Syntax, where: Where, variable: string, value: string): string {
  const cannot = (what: string, hint: Hint = fix(KIND_HINTS[kindOf(variable)].replace('VAR', variable))): never => {
    throw refuse(variable, value, `cannot go into this ${syntax === 'plain' ? 'file' : syntax} file: ${what}`, hint);
  };
  const kind = kindOf(variable);
  if (where === 'comment') {
    if (/["'`\\]|\*\//.test(value)) cannot('it holds a quote or a backslash, and lands in a comment');
    if (syntax === 'systemd' && value.includes('%')) return value.replace(/%/g, '%%');
    return value;
  }
  switch (syntax) {
    case 'json':
    case 'js':
    case 'python':
    case 'yaml': {
      if (syntax === 'yaml' && /\{\{|\}\}/.test(value))
        cannot('"{{" and "}}" are Go template markers in Traefik files');
      if (where === 'double') return JSON.stringify(value).slice(1, -1);
      if (where === 'single') return JSON.stringify(value).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'");
      if (!/^[A-Za-z0-9._:/@+-]+$/.test(value)) cannot('it is not a plain word and lands outside a string');
      return value;
    }
    case 'sh':
      if (where === 'single') return value.replace(/'/g, `'\\''`);
      if (where === 'double') {
        if (/[$`"\\!]/.test(value))
          cannot('"$", "`", "\\", "!" and quotes are not allowed in a double-quoted shell word');
        return value;
      }
      if (!/^[A-Za-z0-9._:/@+=,-]+$/.test(value)) cannot('it is not a plain word and lands outside quotes');
      return value;
    case 'nginx':
      if (value.includes('$'))
        cannot('nginx would read "$" as a variable', 'percent-encode it (%24) in URLs, or choose a path without "$"');
      if (where === 'double') return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
      if (!/^[A-Za-z0-9\-._~:/?@!&()*+,=%[\]]+$/.test(value))
        cannot('";", "{", "}", "#", quotes and spaces would change the configuration');
      return value;
    case 'haproxy':
      if (where === 'double') return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$');
      if (!/^[A-Za-z0-9\-._~:/@[\]]+$/.test(value)) cannot('it is not a plain word and lands outside quotes');
      return value;
    case 'caddy':
      if (/[{}]/.test(value)) cannot('Caddy would read "{" and "}" as a placeholder');
      if (where === 'double') {
        if (value.includes('\\')) cannot('a backslash is ambiguous in a Caddyfile string');
        return value.replace(/"/g, '\\"');
      }
      if (!/^[A-Za-z0-9\-._~:/?@!&()*+,=%[\]]+$/.test(value))
        cannot('quotes, spaces and "#" would change the configuration');
      return value;
    case 'systemd':
      if (value.includes('$')) cannot('systemd would read "$" as an environment variable');
      if (where === 'double') return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%');
      if (where === 'command' || where === 'program') {
        const split = kind === 'command' ? splitCommand(value) : [value];
        const words = typeof split === 'string' ? cannot(split) : split;
        // systemd refuses to run a program whose name holds quotes or backslashes
        if (where === 'program' && /["'\\]/.test(words[0]!))
          cannot('systemd does not run a program whose path holds quotes or backslashes');
        return words.map(systemdWord).join(' ');
      }
      // the rest of the line is the value (User=, WorkingDirectory=): no quoting, specifiers doubled
      if (/["'\\]/.test(value) || value !== value.trim())
        cannot('quotes, backslashes and leading or trailing spaces are not allowed here');
      return value.replace(/%/g, '%%');
    case 'plain':
      if (where === 'double') return JSON.stringify(value).slice(1, -1);
      return value;
  }
}

const PLACEHOLDER = /\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}/g;

/** Fills every placeholder, each value checked for its kind and escaped for its place in the file. */
export function fillTemplate(text: string, variables: Readonly<Record<string, string>>, syntax: Syntax): string {
  const checked = new Set<string>();
  const docstrings = docstringRanges(syntax, text);
  return text.replace(PLACEHOLDER, (_match, variable: string, offset: number) => {
    const value = variables[variable]!;
    if (!checked.has(variable)) {
      checkValue(variable, value);
      checked.add(variable);
    }
    const inDocstring = docstrings.some(([start, end]) => offset > start && offset < end);
    return escapeValue(syntax, placeOf(syntax, text, offset, inDocstring), variable, value);
  });
}
