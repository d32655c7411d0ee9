// The whole of mcpki.yaml is checked before anything is done with it: every error is collected, each with
// its YAML path (certificates[2].targets[0].mode) and the line:column of the offending node, so a user fixes
// them all in one go. The walk works on the `yaml` package's nodes (not on plain JS values) to keep source
// positions. Unknown keys are errors, with a did-you-mean suggestion.
//
// This file reads the document and checks the top level; checker.ts holds the generic checks (types, paths,
// durations, host:port) and each section has its own file: defaults, certificates (with challenge, targets
// and hooks) and crl.
import { dirname, resolve } from 'node:path';
import { isScalar, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { ACME_SERVER_KEYS, checkAcmeServer } from './acme-server.js';
import { CERTIFICATE_KEYS, checkCertificates } from './certificates.js';
import { DNS01_KEYS, HTTP01_KEYS, TLS_ALPN01_KEYS } from './challenge.js';
import { Checker, describe, type Problem } from './checker.js';
import { checkStore } from './store.js';
import { checkCrl, CRL_HOOK_KEYS, CRL_KEYS, CRL_TARGET_KEYS } from './crl.js';
import { checkDefaults, DEFAULT_HOOKS_KEYS, DEFAULTS_KEYS } from './defaults.js';
import { HOOK_KEYS } from './hooks.js';
import { TARGET_KEYS, type WrittenPaths } from './targets.js';
import type { Config, DeclaredCertificate, DeclaredCrl } from './types.js';

export { didYouMean } from './checker.js';

/**
 * The keys each kind of object accepts. The JSON Schema (schema/mcpki.schema.json) has one `$defs` entry per
 * name here (`root` is the schema's top level) with exactly these properties; a test keeps the two in step.
 */
export const CONFIG_KEYS = {
  root: ['version', 'defaults', 'certificates', 'crl', 'acmeServer', 'store'],
  defaults: DEFAULTS_KEYS,
  defaultHooks: DEFAULT_HOOKS_KEYS,
  certificate: CERTIFICATE_KEYS,
  http01: HTTP01_KEYS,
  dns01: DNS01_KEYS,
  tlsAlpn01: TLS_ALPN01_KEYS,
  target: TARGET_KEYS,
  hooks: HOOK_KEYS,
  crl: CRL_KEYS,
  crlTarget: CRL_TARGET_KEYS,
  crlHooks: CRL_HOOK_KEYS,
  acmeServer: ACME_SERVER_KEYS,
} as const satisfies Record<string, readonly string[]>;

export interface ValidationResult {
  /** undefined when there is at least one error */
  config: Config | undefined;
  /** "FILE:LINE:COL PATH: message", in file order */
  errors: string[];
}

/** The offsets of every key that repeats an earlier key of its map (compared as scalars). */
function duplicateKeys(doc: Document): number[] {
  const offsets: number[] = [];
  try {
    visit(doc, {
      Map(_key, map) {
        const seen = new Set<unknown>();
        for (const pair of map.items) {
          if (!isScalar(pair.key)) continue;
          const value = pair.key.value;
          if (seen.has(value)) offsets.push(pair.key.range?.[0] ?? 0);
          else seen.add(value);
        }
      },
    });
  } catch (error) {
    if (error instanceof RangeError) return [0]; // nesting too deep to walk: refused as a YAML error
    throw error;
  }
  return offsets;
}

export function validateConfig(text: string, fileName: string): ValidationResult {
  const lineCounter = new LineCounter();
  // uniqueKeys is checked below with a Set: the parser's own check compares every pair of keys of a map,
  // and a map of 100,000 keys would take hours.
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: false });
  const location = (offset: number): string => {
    const { line, col } = lineCounter.linePos(offset);
    return `${fileName}:${line}:${col}`;
  };
  const format = (problem: Problem): string =>
    `${location(problem.offset)}${problem.path ? ` ${problem.path}` : ''}: ${problem.message}`;
  const yamlError = (offset: number, message: string): string => {
    const firstLine = message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    return `${location(offset)}: invalid YAML: ${/call stack/i.test(firstLine) ? 'nested too deeply (lists or maps inside each other)' : firstLine}`;
  };

  if (doc.errors.length > 0)
    return { config: undefined, errors: doc.errors.map((error) => yamlError(error.pos[0], error.message)) };
  const duplicates = duplicateKeys(doc);
  if (duplicates.length > 0)
    return { config: undefined, errors: duplicates.map((offset) => yamlError(offset, 'Map keys must be unique')) };

  const check = new Checker(doc);
  const file = resolve(fileName);
  const base = dirname(file);
  const root = check.node(doc.contents);
  if (root === null || (isScalar(root) && root.value === null)) {
    check.error(0, '', 'the file is empty; expected version: 1 and certificates: [...]');
    return { config: undefined, errors: check.problems.map(format) };
  }
  const top = check.map(root, '', CONFIG_KEYS.root, 'the declaration file');
  if (!top) return { config: undefined, errors: check.problems.map(format) };

  if (!top.has('version')) check.error(root, 'version', 'missing; add version: 1 at the top');
  else {
    const node = check.at(top, 'version');
    if (isScalar(node) && node.value === 1) {
      /* the one version */
    } else if (isScalar(node) && typeof node.value === 'number' && Number.isInteger(node.value)) {
      check.error(node, 'version', `unsupported version ${node.value}: this mcpki reads version 1`);
    } else check.error(node, 'version', `expected 1, got ${describe(node)}`);
  }

  const { defaults, issuerValid } = checkDefaults(check, top.has('defaults') ? check.at(top, 'defaults') : undefined);

  let certificates: DeclaredCertificate[] = [];
  const targetPaths: WrittenPaths = new Map();
  if (!top.has('certificates'))
    check.error(root, 'certificates', 'missing; add certificates: followed by a list of certificates');
  else
    certificates = checkCertificates(
      check,
      check.at(top, 'certificates'),
      defaults,
      issuerValid,
      base,
      lineCounter,
      targetPaths,
    );

  let crl: DeclaredCrl | undefined;
  if (top.has('crl'))
    crl = checkCrl(check, check.at(top, 'crl'), base, defaults.hookTimeoutMs, lineCounter, targetPaths);

  const acmeServer = top.has('acmeServer') ? checkAcmeServer(check, check.at(top, 'acmeServer')) : undefined;
  const store = top.has('store') ? checkStore(check, check.at(top, 'store'), base) : undefined;

  const sorted = [...check.problems].sort((a, b) => a.offset - b.offset);
  if (sorted.length > 0) return { config: undefined, errors: sorted.map(format) };
  const config: Config = { version: 1, file, dir: base, defaults, certificates };
  if (crl) config.crl = crl;
  if (acmeServer) config.acmeServer = acmeServer;
  if (store !== undefined) config.store = store;
  return { config, errors: [] };
}
