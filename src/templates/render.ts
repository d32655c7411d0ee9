// Templates are data files under templates/ with {{name}} placeholders; rendering fills them and refuses
// to leave any placeholder unfilled.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Context } from '../context.js';
import { loadConfig } from '../config/index.js';
import { didYouMean } from '../config/validate.js';
import { McpkiError, fix, type Hint } from '../errors.js';
import { formatHostPort, parseHostPort } from '../net/address.js';
import { CATALOG, COMMON_DEFAULTS } from './catalog.js';
import { checkValue, fillTemplate, syntaxOf } from './escape.js';
import { authorityVariables, certificateVariableNames, certificateVariables } from './certificate.js';

/** The installed package's folder (holds templates/ and bin/), found from this module's location. */
export function packageRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && /"name":\s*"mcpki"/.test(readFileSync(manifest, 'utf8'))) return dir;
    if (dirname(dir) === dir)
      throw new McpkiError('INTERNAL', 'cannot find the mcpki package folder', 'reinstall mcpki');
  }
}

function templatesDir(): string {
  return join(packageRoot(), 'templates');
}

export interface TemplateInfo {
  name: string;
  path: string;
  /** what the template is for ('' for templates without a catalog entry) */
  description: string;
  /** the placeholders it needs */
  variables: string[];
  /** defaults of those variables (from the catalog and the common defaults) */
  defaults: Record<string, string>;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}/g;

function placeholders(text: string): string[] {
  return [...new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1]!))].sort();
}

/** Variables computed from another unless given (see derivedVariables), by the variable they come from. */
const DERIVED_FROM: Readonly<Record<string, string>> = {
  listenHost: 'listen',
  listenPort: 'listen',
  upstreamAddress: 'upstream',
};

/** The placeholders, plus the variables that derived ones come from. */
function variablesOf(text: string): string[] {
  const found = placeholders(text);
  return [...new Set([...found, ...found.flatMap((v) => (DERIVED_FROM[v] ? [DERIVED_FROM[v]] : []))])].sort();
}

/** Defaults of the template's variables, and of the variables those defaults refer to. */
function defaultsFor(name: string, variables: readonly string[]): Record<string, string> {
  const all: Record<string, string> = { ...COMMON_DEFAULTS, ...CATALOG[name]?.defaults };
  const wanted = new Set(variables);
  for (let size = -1; size !== wanted.size;) {
    size = wanted.size;
    for (const key of [...wanted]) if (all[key] !== undefined) for (const v of placeholders(all[key])) wanted.add(v);
  }
  return Object.fromEntries(Object.entries(all).filter(([key]) => wanted.has(key)));
}

export function listTemplates(): TemplateInfo[] {
  const root = templatesDir();
  const out: TemplateInfo[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else {
        const name = relative(root, path);
        const variables = variablesOf(readFileSync(path, 'utf8'));
        out.push({
          name,
          path,
          description: CATALOG[name]?.description ?? '',
          variables,
          defaults: defaultsFor(name, variables),
        });
      }
    }
  };
  walk(root);
  return out;
}

function hintFor(missing: readonly string[]): Hint {
  const fromCert = missing.some((m) => certificateVariableNames().includes(m) || m === 'ca' || m === 'crl');
  const fromClient = missing.some((m) => certificateVariableNames('client').includes(m));
  const vars = missing.map((m) => `{--var ${m}=…}`).join(' ');
  if (fromClient) return fix(`pass {--client-cert NAME} (a client certificate from "mcpki list"), or ${vars}`);
  if (fromCert) return fix(`pass {--cert NAME} (a certificate from "mcpki list"), or ${vars}`);
  return fix(`pass ${vars}`);
}

/**
 * Fills a template's placeholders. Each value is checked for its variable's kind and escaped for the file's
 * syntax (src/templates/escape.ts); `raw` fills without either, for a default made of other variables.
 */
export function renderText(text: string, variables: Record<string, string>, name = 'template', raw = false): string {
  const missing = placeholders(text).filter((v) => variables[v] === undefined);
  if (missing.length) {
    throw new McpkiError(
      'INVALID_INPUT',
      `${name} needs ${missing.map((m) => `{{${m}}}`).join(', ')}`,
      hintFor(missing),
    );
  }
  if (raw) return text.replace(PLACEHOLDER, (_, key: string) => variables[key]!);
  return fillTemplate(text, variables, syntaxOf(name));
}

export interface RenderOptions {
  /** the mcpki.yaml the rendered service should use, and where --cert looks for declared targets */
  config?: string;
  /** fill the certificate's paths, host name, the mcpki root and CRL */
  cert?: string;
  /** fill clientCert, clientKey, clientFullchain, … from this (client) certificate */
  clientCert?: string;
  /** extra or overriding variables */
  variables?: Record<string, string>;
}

/** Variables computed from others unless given: listenHost/listenPort from listen, upstreamAddress from upstream. */
function derivedVariables(variables: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  if (variables.listen !== undefined) {
    checkValue('listen', variables.listen);
    const { host, port } = parseHostPort(variables.listen, { defaultHost: '0.0.0.0', what: 'listen' });
    out.listenHost = host;
    out.listenPort = String(port);
  }
  if (variables.upstream !== undefined) {
    try {
      const url = new URL(variables.upstream);
      const port = Number(url.port || (url.protocol === 'https:' ? '443' : '80'));
      out.upstreamAddress = formatHostPort({ host: url.hostname.replace(/^\[|\]$/g, ''), port });
    } catch {
      // not a URL: templates that need upstreamAddress then ask for it
    }
  }
  return out;
}

/**
 * Fills a template with this installation's real paths (node, mcpki, home, config, user), the defaults,
 * the certificate's variables (--cert, --client-cert) and any --var, in that order of precedence (last wins).
 */
export function renderTemplate(
  context: Context,
  name: string,
  options: RenderOptions = {},
): { name: string; text: string; variables: Record<string, string> } {
  const template = listTemplates().find((t) => t.name === name || t.name.endsWith(`/${name}`));
  if (!template) {
    throw new McpkiError('NOT_FOUND', `no template named "${name}"`, `see "mcpki template list"`);
  }
  let user = 'root';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry: keep root
  }
  const given = options.variables ?? {};
  const configFile = resolve(options.config ?? 'mcpki.yaml');
  const used = new Set(template.variables);
  for (const value of Object.values(template.defaults)) for (const v of placeholders(value)) used.add(v);
  const needed = (variable: string) => used.has(variable) && given[variable] === undefined;
  // a --var the template does not use is a typo (--var usr=mcpki would leave User= as it was)
  for (const variable of Object.keys(given)) {
    // an empty value is never meant: it would leave a blank where a path, a name or a URL goes
    if (used.has(variable) && given[variable] === '') {
      throw new McpkiError(
        'INVALID_INPUT',
        `--var ${variable}= is empty`,
        fix(`give it a value ({--var} ${variable}=VALUE), or leave it out for its default`),
      );
    }
    if (used.has(variable)) continue;
    const takes = [...used].sort();
    const suggestion = didYouMean(variable, takes);
    throw new McpkiError(
      'INVALID_INPUT',
      `template ${template.name} has no variable ${JSON.stringify(variable)}`,
      suggestion
        ? fix(`did you mean {--var ${suggestion}=…}? (see "mcpki template list")`)
        : takes.length > 0
          ? `it takes: ${takes.join(', ')}`
          : 'it takes no variables',
    );
  }

  const config = options.config && (options.cert || options.clientCert) ? loadConfig(configFile) : undefined;
  const variables: Record<string, string> = {
    node: process.execPath,
    bin: join(packageRoot(), 'bin', 'mcpki.js'),
    docs: pathToFileURL(join(packageRoot(), 'docs')).href.replace(
      /[^A-Za-z0-9\-._~:/@%]/g,
      (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
    ),
    home: context.home,
    config: configFile,
    configDir: dirname(configFile),
    user,
    ...template.defaults,
  };
  if (needed('ca') || needed('crl')) Object.assign(variables, authorityVariables(context, needed));
  if (options.cert) Object.assign(variables, certificateVariables(context, { name: options.cert }, config, needed));
  if (options.clientCert)
    Object.assign(
      variables,
      certificateVariables(context, { name: options.clientCert, prefix: 'client' }, config, needed),
    );
  Object.assign(variables, given);
  for (const [key, value] of Object.entries(template.defaults)) {
    if (given[key] === undefined && value.includes('{{'))
      variables[key] = renderText(value, variables, `the default of ${key}`, true);
  }
  for (const [key, value] of Object.entries(derivedVariables(variables)))
    if (given[key] === undefined) variables[key] = value;
  return {
    name: template.name,
    text: renderText(readFileSync(template.path, 'utf8'), variables, template.name),
    variables,
  };
}
