// Templates are data files under templates/ with {{name}} placeholders; rendering fills them and refuses
// to leave any placeholder unfilled.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from '../context.js';
import { McpkiError } from '../errors.js';

/** The installed package's folder (holds templates/ and bin/), found from this module's location. */
export function packageRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && /"name":\s*"mcpki"/.test(readFileSync(manifest, 'utf8'))) return dir;
    if (dirname(dir) === dir) throw new McpkiError('INTERNAL', 'cannot find the mcpki package folder', 'reinstall mcpki');
  }
}

function templatesDir(): string {
  return join(packageRoot(), 'templates');
}

export interface TemplateInfo {
  name: string;
  path: string;
  /** the placeholders it needs */
  variables: string[];
}

function placeholders(text: string): string[] {
  return [...new Set([...text.matchAll(/\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}/g)].map((m) => m[1]!))].sort();
}

export function listTemplates(): TemplateInfo[] {
  const root = templatesDir();
  const out: TemplateInfo[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else out.push({ name: relative(root, path), path, variables: placeholders(readFileSync(path, 'utf8')) });
    }
  };
  walk(root);
  return out;
}

export function renderText(text: string, variables: Record<string, string>, name = 'template'): string {
  const missing = placeholders(text).filter((v) => variables[v] === undefined);
  if (missing.length) {
    throw new McpkiError('INVALID_INPUT', `${name} needs ${missing.map((m) => `{{${m}}}`).join(', ')}`, `pass ${missing.map((m) => `--var ${m}=…`).join(' ')}`);
  }
  return text.replace(/\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}/g, (_, key: string) => variables[key]!);
}

export interface RenderOptions {
  /** the mcpki.yaml the rendered service should use */
  config?: string;
  /** extra or overriding variables */
  variables?: Record<string, string>;
}

/** Fills a template with this installation's real paths (node, mcpki, home, config, user) and any --var. */
export function renderTemplate(context: Context, name: string, options: RenderOptions = {}): { name: string; text: string; variables: Record<string, string> } {
  const template = listTemplates().find((t) => t.name === name || t.name === `${name}` || t.name.endsWith(`/${name}`));
  if (!template) {
    throw new McpkiError('NOT_FOUND', `no template named "${name}"`, `see "mcpki template list"`);
  }
  let user = 'root';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry: keep root
  }
  const config = resolve(options.config ?? 'mcpki.yaml');
  const variables: Record<string, string> = {
    node: process.execPath,
    bin: join(packageRoot(), 'bin', 'mcpki.js'),
    home: context.home,
    config,
    configDir: dirname(config),
    user,
    ...options.variables,
  };
  return { name: template.name, text: renderText(readFileSync(template.path, 'utf8'), variables, template.name), variables };
}
