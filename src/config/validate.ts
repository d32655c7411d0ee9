// The whole of mcpki.yaml is checked before anything is done with it: every error is collected, each with
// its YAML path (certificates[2].targets[0].mode) and the line:column of the offending node, so a user fixes
// them all in one go. The walk works on the `yaml` package's nodes (not on plain JS values) to keep source
// positions. Unknown keys are errors, with a did-you-mean suggestion.
import { dirname, isAbsolute, resolve } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, Scalar, visit, type Document, type Node, type Pair } from 'yaml';
import { checkDuration, DURATION_LIMITS, formatDuration } from '../duration.js';
import { checkHostPort, type HostPort } from '../net/address.js';
import { KEY_TYPES, type KeyType } from '../pki/keys.js';
import { classifySan, validateCertName, type San } from '../pki/names.js';
import type {
  CertificateKind,
  Config,
  ConfigDefaults,
  DeclaredCertificate,
  DeclaredChallenge,
  DeclaredCrl,
  DeclaredCrlTarget,
  DeclaredHooks,
  DeclaredIssuer,
  DeclaredTarget,
  RenewBefore,
  TargetType,
} from './types.js';
import { TARGET_TYPES } from './types.js';
import { targetModeProblem } from '../deploy/targets.js';

/**
 * The keys each kind of object accepts. The JSON Schema (schema/mcpki.schema.json) has one `$defs` entry per
 * name here (`root` is the schema's top level) with exactly these properties; a test keeps the two in step.
 */
export const CONFIG_KEYS = {
  root: ['version', 'defaults', 'certificates', 'crl'],
  defaults: ['issuer', 'key', 'days', 'renewBefore', 'hooks'],
  defaultHooks: ['timeout'],
  certificate: ['name', 'issuer', 'names', 'kind', 'key', 'days', 'profile', 'challenge', 'renewBefore', 'targets', 'hooks'],
  http01: ['type', 'port', 'host', 'webroot'],
  dns01: ['type', 'hook', 'timeout', 'propagationSeconds'],
  tlsAlpn01: ['type', 'port', 'host'],
  target: ['type', 'path', 'mode', 'owner', 'group', 'passwordFile', 'namespace', 'secretName'],
  hooks: ['reload', 'timeout', 'verify'],
  crl: ['days', 'refreshBefore', 'targets', 'hooks'],
  crlTarget: ['path', 'mode', 'owner', 'group'],
  crlHooks: ['reload', 'timeout'],
} as const satisfies Record<string, readonly string[]>;

export const CHALLENGE_TYPES = ['http-01', 'dns-01', 'tls-alpn-01'] as const;
/** target types whose files hold the private key */
export const KEY_BEARING_TARGETS: readonly TargetType[] = ['key', 'combined', 'p12', 'k8s-secret'];

export const DEFAULT_DAYS = 90;
export const MAX_DAYS = 398;
export const DEFAULT_KEY: KeyType = 'ec-p256';
export const DEFAULT_HOOK_TIMEOUT_MS = 30_000;
/** the `crl:` section: the same default and bounds as `mcpki crl --days` */
export const DEFAULT_CRL_DAYS = 7;
export const MAX_CRL_DAYS = 365;
export const DEFAULT_CRL_REFRESH: RenewBefore = { type: 'fraction', fraction: 0.5 };

const CHALLENGE_KEYS: Record<(typeof CHALLENGE_TYPES)[number], readonly string[]> = {
  'http-01': CONFIG_KEYS.http01,
  'dns-01': CONFIG_KEYS.dns01,
  'tls-alpn-01': CONFIG_KEYS.tlsAlpn01,
};
const K8S_NAMESPACE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const K8S_NAME = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

interface Problem {
  offset: number;
  path: string;
  message: string;
}

export interface ValidationResult {
  /** undefined when there is at least one error */
  config: Config | undefined;
  /** "FILE:LINE:COL PATH: message", in file order */
  errors: string[];
}

// ---------------------------------------------------------------------------------------------------
// small helpers

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** Edit distance counting a swap of two neighbouring letters as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate within a small edit distance (or equal ignoring case, "-" and "_"), if any. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const squash = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = squash(candidate) === squash(word) ? 0 : editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  return bestDistance <= limit ? best : undefined;
}

function describe(node: Node | null | undefined): string {
  if (node === null || node === undefined) return 'nothing';
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const value = node.value;
    if (value === null) return 'nothing';
    if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
    if (typeof value === 'number' || typeof value === 'bigint') return `the number ${node.source ?? String(value)}`;
    if (typeof value === 'boolean') return `${value}`;
    return `a ${typeof value}`;
  }
  return 'an unexpected value';
}

// ---------------------------------------------------------------------------------------------------
// the checker

/** C0 and C1 controls, DEL, the line and paragraph separators and the bidi overrides and isolates. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

function controlName(char: string): string {
  if (char === '\0') return 'a NUL character';
  if (char === '\n') return 'a newline';
  if (char === '\r') return 'a carriage return';
  if (char === '\t') return 'a tab';
  return `the control character U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * A program written as a command line ("systemctl reload nginx", "/usr/sbin/nginx -s reload"): a bare name
 * with spaces, or a word after a space that is an option. A path with spaces ("/opt/My Tools/hook") is not.
 */
function looksLikeCommandLine(program: string): boolean {
  const words = program.trim().split(/\s+/);
  if (words.length < 2 && program === program.trim()) return false;
  return !words[0]!.includes('/') || words.slice(1).some((word) => word.startsWith('-')) || program !== program.trim();
}

type Entries = Map<string, { key: Node; value: Node }>;

/** One map being checked: reads its values and remembers whether every one read so far was valid. */
class Section {
  ok = true;
  constructor(
    private readonly check: Checker,
    private readonly entries: Entries,
  ) {}

  at(key: string): Node | null {
    return this.check.at(this.entries, key);
  }

  /** Passes a checked value through; an undefined one (already reported) marks the section invalid. */
  need<T>(result: T | undefined): T | undefined {
    if (result === undefined) this.ok = false;
    return result;
  }
}

class Checker {
  readonly problems: Problem[] = [];

  constructor(private readonly doc: Document) {}

  /** Follows aliases (*anchor) to the node they name. */
  node(value: unknown): Node | null {
    if (value === null || value === undefined) return null;
    if (isAlias(value)) return (value.resolve(this.doc) as Node | undefined) ?? null;
    return value as Node;
  }

  error(at: Node | number | null | undefined, path: string, message: string): undefined {
    const offset = typeof at === 'number' ? at : (at?.range?.[0] ?? 0);
    this.problems.push({ offset, path, message });
    return undefined;
  }

  /** A map's entries by key; reports a non-map, non-string keys and keys not in `allowed`. */
  map(node: Node | null, path: string, allowed: readonly string[], what: string, misplaced?: (key: string) => string | undefined): Entries | undefined {
    if (!isMap(node)) return this.error(node, path, `expected ${what} (a map), got ${describe(node)}`);
    const entries: Entries = new Map();
    for (const pair of node.items as Pair<unknown, unknown>[]) {
      const key = this.node(pair.key);
      const value = this.node(pair.value);
      if (!isScalar(key) || typeof key.value !== 'string') {
        this.error(key ?? node, path, `keys must be strings, got ${describe(key)}`);
        continue;
      }
      const name = key.value;
      if (!allowed.includes(name)) {
        const elsewhere = misplaced?.(name);
        if (elsewhere) {
          this.error(key, join(path, name), elsewhere);
        } else {
          const suggestion = didYouMean(name, allowed);
          this.error(key, join(path, name), suggestion ? `unknown key; did you mean "${suggestion}"?` : `unknown key; ${what} takes: ${allowed.join(', ')}`);
        }
        continue;
      }
      // `key:` without a value parses as a null scalar; an explicit `? key` has no value node at all
      let valueNode = value;
      if (valueNode === null) {
        valueNode = new Scalar(null);
        valueNode.range = key.range;
      }
      entries.set(name, { key, value: valueNode });
    }
    return entries;
  }

  at(entries: Entries, name: string): Node {
    return entries.get(name)!.value;
  }

  string(node: Node | null, path: string, what = 'a string'): string | undefined {
    if (isScalar(node) && typeof node.value === 'string') {
      if (node.value.trim() === '') return this.error(node, path, `expected ${what}, got an empty string`);
      return node.value;
    }
    return this.error(node, path, `expected ${what}, got ${describe(node)}`);
  }

  integer(node: Node | null, path: string, min: number, max: number, what?: string): number | undefined {
    const expected = what ?? `an integer from ${min} to ${max}`;
    if (!isScalar(node) || typeof node.value !== 'number' || !Number.isInteger(node.value)) {
      return this.error(node, path, `expected ${expected}, got ${describe(node)}`);
    }
    if (node.value < min || node.value > max) return this.error(node, path, `expected ${expected}, got ${node.value}`);
    return node.value;
  }

  oneOf<T extends string>(node: Node | null, path: string, choices: readonly T[]): T | undefined {
    if (isScalar(node) && typeof node.value === 'string') {
      if ((choices as readonly string[]).includes(node.value)) return node.value as T;
      const suggestion = didYouMean(node.value, choices);
      return this.error(node, path, `expected one of ${choices.join(', ')}, got ${JSON.stringify(node.value)}${suggestion ? `; did you mean "${suggestion}"?` : ''}`);
    }
    return this.error(node, path, `expected one of ${choices.join(', ')}, got ${describe(node)}`);
  }

  list(node: Node | null, path: string, what: string): { node: Node | null; path: string }[] | undefined {
    if (!isSeq(node)) return this.error(node, path, `expected ${what} (a list), got ${describe(node)}`);
    return node.items.map((item, index) => ({ node: this.node(item) ?? (item as Node | null), path: `${path}[${index}]` }));
  }

  /** An argv list: ["systemctl", "reload", "nginx"]. A shell string is refused with the list to write. */
  argv(node: Node | null, path: string): string[] | undefined {
    if (isScalar(node) && typeof node.value === 'string') {
      const words = node.value.trim().split(/\s+/).filter(Boolean);
      const example = words.length > 0 ? JSON.stringify(words).replace(/","/g, '", "') : '["/usr/local/bin/my-hook", "arg"]';
      return this.error(node, path, `expected a command as a list of arguments (no shell), got a string; write it as a list: ${example}`);
    }
    if (!isSeq(node)) return this.error(node, path, `expected a command as a list of arguments, got ${describe(node)}`);
    if (node.items.length === 0) return this.error(node, path, 'expected a command as a list of arguments, got an empty list');
    const argv: string[] = [];
    let ok = true;
    node.items.forEach((item, index) => {
      const word = this.node(item);
      if (isScalar(word) && typeof word.value === 'string' && (index > 0 || word.value !== '')) {
        const control = CONTROL.exec(word.value);
        if (control) {
          ok = false;
          this.error(word, `${path}[${index}]`, `${index === 0 ? 'the program' : 'an argument'} cannot contain ${controlName(control[0])} (at position ${control.index + 1}): it would be hidden in logs and listings; write it without`);
        } else if (index === 0 && looksLikeCommandLine(word.value)) {
          ok = false;
          const words = word.value.trim().split(/\s+/);
          this.error(word, `${path}[${index}]`, `the program ${JSON.stringify(word.value)} is a whole command line, and no program has that name; write each argument as its own item: ${JSON.stringify(words).replace(/","/g, '", "')}`);
        } else argv.push(word.value);
      } else {
        ok = false;
        this.error(word ?? node, `${path}[${index}]`, `expected ${index === 0 ? 'the program (a non-empty string)' : 'an argument (a string)'}, got ${describe(word)}`);
      }
    });
    return ok ? argv : undefined;
  }

  /** A duration such as "30s" (s, m, h, d or w), at most `maxMs`; the message names the limit. */
  duration(node: Node | null, path: string, example: string, maxMs: number = DURATION_LIMITS.hook): number | undefined {
    if (isScalar(node) && typeof node.value === 'string') {
      const result = checkDuration(node.value, { maxMs });
      if (result.ok) return result.ms;
      if (result.problem === 'zero') return this.error(node, path, 'expected a duration longer than 0');
      if (result.problem === 'too-long') return this.error(node, path, `${JSON.stringify(node.value.trim())} is longer than the limit of ${formatDuration(maxMs)}`);
    }
    return this.error(node, path, `expected a duration like "${example}" (a number and s, m, h, d or w), got ${describe(node)}`);
  }

  renewBefore(node: Node | null, path: string): RenewBefore | undefined {
    const expected = 'expected a duration like "30d" or a fraction of the lifetime like "1/3", "25%" or "0.25"';
    const fraction = (value: number, text: string): RenewBefore | undefined =>
      value > 0 && value < 1 ? { type: 'fraction', fraction: value } : this.error(node, path, `a fraction of the lifetime must be between 0 and 1 (both excluded), got ${text}`);
    if (isScalar(node) && typeof node.value === 'number' && !Number.isInteger(node.value)) {
      return fraction(node.value, node.source ?? String(node.value));
    }
    if (!isScalar(node) || typeof node.value !== 'string') return this.error(node, path, `${expected}, got ${describe(node)}`);
    const text = node.value.trim();
    let match: RegExpExecArray | null;
    if ((match = /^(\d+)\s*\/\s*(\d+)$/.exec(text))) {
      const denominator = Number(match[2]);
      if (denominator === 0) return this.error(node, path, `${expected}, got ${JSON.stringify(text)}`);
      return fraction(Number(match[1]) / denominator, JSON.stringify(text));
    }
    if ((match = /^(\d+(?:\.\d+)?)\s*%$/.exec(text))) return fraction(Number(match[1]) / 100, JSON.stringify(text));
    if (/^\d*\.\d+$/.test(text)) return fraction(Number(text), JSON.stringify(text));
    const result = checkDuration(text, { maxMs: DURATION_LIMITS.renewBefore });
    if (result.ok) return { type: 'duration', ms: result.ms };
    if (result.problem === 'zero') return this.error(node, path, 'expected a duration longer than 0');
    if (result.problem === 'too-long') return this.error(node, path, `${JSON.stringify(text)} is longer than the limit of ${formatDuration(DURATION_LIMITS.renewBefore)}`);
    return this.error(node, path, `${expected}, got ${describe(node)}`);
  }

  issuer(node: Node | null, path: string): DeclaredIssuer | undefined {
    const text = this.string(node, path, 'an issuer: local or acme:<account>');
    if (text === undefined) return undefined;
    if (text === 'local') return { type: 'local' };
    if (text.startsWith('acme:')) {
      const account = text.slice(5);
      try {
        validateCertName(account);
        return { type: 'acme', account };
      } catch {
        return this.error(node, path, `invalid ACME account name ${JSON.stringify(account)}: use letters, digits, ".", "_" and "-", e.g. acme:letsencrypt`);
      }
    }
    if (text === 'acme') return this.error(node, path, 'expected acme:<account>, naming the account, e.g. acme:letsencrypt');
    return this.error(node, path, `unknown issuer ${JSON.stringify(text)}: write local (the mcpki CA) or acme:<account>, e.g. acme:letsencrypt`);
  }

  keyType(node: Node | null, path: string): KeyType | undefined {
    return this.oneOf(node, path, KEY_TYPES);
  }

  days(node: Node | null, path: string): number | undefined {
    return this.integer(node, path, 1, MAX_DAYS, `a number of days from 1 to ${MAX_DAYS}`);
  }

  /** Absolute; relative paths are taken from the config file's folder. */
  path(node: Node | null, path: string, base: string, what = 'a file path'): { absolute: string; written: string } | undefined {
    const text = this.string(node, path, what);
    if (text === undefined) return undefined;
    if (text.includes('\0')) return this.error(node, path, 'a path cannot contain a NUL character');
    const control = CONTROL.exec(text);
    if (control) return this.error(node, path, `a path cannot contain ${controlName(control[0])} (at position ${control.index + 1}): it would break every file that names it`);
    if (what === 'a file path' && /(^|\/)(\.\.?)?$/.test(text)) {
      return this.error(node, path, `${JSON.stringify(text)} names a folder, not a file: add the file name (e.g. ${JSON.stringify(`${text.replace(/\/+$/, '')}/${'site.pem'}`)})`);
    }
    return { absolute: isAbsolute(text) ? resolve(text) : resolve(base, text), written: text };
  }

  mode(node: Node | null, path: string): number | undefined {
    if (isScalar(node) && typeof node.value === 'number') {
      return this.error(node, path, `expected an octal string like "0640", got the number ${node.source ?? node.value}: quote it (mode: "0640"); a bare number is ambiguous in YAML`);
    }
    if (isScalar(node) && typeof node.value === 'string' && /^[0-7]{3,4}$/.test(node.value)) return parseInt(node.value, 8);
    return this.error(node, path, `expected an octal string like "0640", got ${describe(node)}`);
  }

  ownerOrGroup(node: Node | null, path: string, what: 'user' | 'group'): string | number | undefined {
    if (isScalar(node) && typeof node.value === 'number') return this.integer(node, path, 0, 4_294_967_294, `a ${what} name or a numeric id`);
    if (isScalar(node) && typeof node.value === 'string' && /^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$/.test(node.value)) return node.value;
    return this.error(node, path, `expected a ${what} name or a numeric id, got ${describe(node)}`);
  }

  /** host:port, parsed here once: the runner and the probe take the { host, port } as it is. */
  verify(node: Node | null, path: string): HostPort | undefined {
    const text = this.string(node, path, 'host:port');
    if (text === undefined) return undefined;
    const result = checkHostPort(text);
    return result.ok ? result.value : this.error(node, path, result.message);
  }
}

// ---------------------------------------------------------------------------------------------------
// the file

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

interface CertificateSeen {
  name: string;
  line: number;
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
  const format = (problem: Problem): string => `${location(problem.offset)}${problem.path ? ` ${problem.path}` : ''}: ${problem.message}`;
  const yamlError = (offset: number, message: string): string => {
    const firstLine = message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    return `${location(offset)}: invalid YAML: ${/call stack/i.test(firstLine) ? 'nested too deeply (lists or maps inside each other)' : firstLine}`;
  };

  if (doc.errors.length > 0) return { config: undefined, errors: doc.errors.map((error) => yamlError(error.pos[0], error.message)) };
  const duplicates = duplicateKeys(doc);
  if (duplicates.length > 0) return { config: undefined, errors: duplicates.map((offset) => yamlError(offset, 'Map keys must be unique')) };

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

  // version
  if (!top.has('version')) check.error(root, 'version', 'missing; add version: 1 at the top');
  else {
    const node = check.at(top, 'version');
    if (isScalar(node) && node.value === 1) {
      /* the one version */
    } else if (isScalar(node) && typeof node.value === 'number' && Number.isInteger(node.value)) {
      check.error(node, 'version', `unsupported version ${node.value}: this mcpki reads version 1`);
    } else check.error(node, 'version', `expected 1, got ${describe(node)}`);
  }

  // defaults
  const defaults: ConfigDefaults = { issuer: { type: 'local' }, key: DEFAULT_KEY, days: DEFAULT_DAYS, hookTimeoutMs: DEFAULT_HOOK_TIMEOUT_MS };
  let defaultIssuerValid = true;
  if (top.has('defaults')) {
    const d = check.map(check.at(top, 'defaults'), 'defaults', CONFIG_KEYS.defaults, 'defaults');
    if (d) {
      if (d.has('issuer')) {
        const issuer = check.issuer(check.at(d, 'issuer'), 'defaults.issuer');
        if (issuer) defaults.issuer = issuer;
        else defaultIssuerValid = false;
      }
      if (d.has('key')) defaults.key = check.keyType(check.at(d, 'key'), 'defaults.key') ?? defaults.key;
      if (d.has('days')) defaults.days = check.days(check.at(d, 'days'), 'defaults.days') ?? defaults.days;
      if (d.has('renewBefore')) {
        const renewBefore = check.renewBefore(check.at(d, 'renewBefore'), 'defaults.renewBefore');
        if (renewBefore) defaults.renewBefore = renewBefore;
      }
      if (d.has('hooks')) {
        const h = check.map(check.at(d, 'hooks'), 'defaults.hooks', CONFIG_KEYS.defaultHooks, 'default hook settings');
        if (h?.has('timeout')) defaults.hookTimeoutMs = check.duration(check.at(h, 'timeout'), 'defaults.hooks.timeout', '30s') ?? defaults.hookTimeoutMs;
      }
    }
  }

  // certificates
  const certificates: DeclaredCertificate[] = [];
  const targetPaths = new Map<string, { path: string; line: number }>();
  if (!top.has('certificates')) check.error(root, 'certificates', 'missing; add certificates: followed by a list of certificates');
  else {
    const items = check.list(check.at(top, 'certificates'), 'certificates', 'a list of certificates') ?? [];
    const names = new Map<string, CertificateSeen>();
    for (const item of items) {
      const certificate = checkCertificate(check, item.node, item.path, defaults, defaultIssuerValid, base, lineCounter);
      if (!certificate) continue;
      const { declared, nameNode, targetNodes } = certificate;
      if (declared.name) {
        const seen = names.get(declared.name);
        if (seen) check.error(nameNode, `${item.path}.name`, `duplicate certificate name "${declared.name}" (first declared at line ${seen.line})`);
        else names.set(declared.name, { name: declared.name, line: declared.line });
      }
      declared.targets.forEach((target, index) => {
        const node = targetNodes[index]!;
        const targetPath = `${item.path}.targets[${index}].path`;
        const seen = targetPaths.get(target.path);
        if (seen) check.error(node, targetPath, `${JSON.stringify(target.pathAsWritten)} is also written by ${seen.path} (line ${seen.line})`);
        else targetPaths.set(target.path, { path: targetPath.slice(0, -'.path'.length), line: lineCounter.linePos(node?.range?.[0] ?? 0).line });
      });
      certificates.push(declared);
    }
  }

  // crl
  let crl: DeclaredCrl | undefined;
  if (top.has('crl')) crl = checkCrl(check, check.at(top, 'crl'), base, defaults.hookTimeoutMs, lineCounter, targetPaths);

  const sorted = [...check.problems].sort((a, b) => a.offset - b.offset);
  if (sorted.length > 0) return { config: undefined, errors: sorted.map(format) };
  const config: Config = { version: 1, file, dir: base, defaults, certificates };
  if (crl) config.crl = crl;
  return { config, errors: [] };
}

function checkCertificate(
  check: Checker,
  node: Node | null,
  path: string,
  defaults: ConfigDefaults,
  defaultIssuerValid: boolean,
  base: string,
  lineCounter: LineCounter,
): { declared: DeclaredCertificate; nameNode: Node | null; targetNodes: (Node | null)[] } | undefined {
  const c = check.map(node, path, CONFIG_KEYS.certificate, 'a certificate');
  if (!c) return undefined;
  const line = lineCounter.linePos(node?.range?.[0] ?? 0).line;
  const value = (key: string): Node | null => check.at(c, key);
  // errors are collected by the checker; a certificate with errors is still built (partially) so that its
  // name and target paths take part in the duplicate checks
  const need = <T>(result: T | undefined): T | undefined => result;

  // name
  let name: string | undefined;
  if (!c.has('name')) need(check.error(node, join(path, 'name'), 'missing; every certificate needs a name, e.g. name: my-mcp'));
  else {
    name = need(check.string(value('name'), join(path, 'name'), 'a certificate name'));
    if (name !== undefined) {
      try {
        validateCertName(name);
      } catch {
        name = need(check.error(value('name'), join(path, 'name'), `invalid certificate name ${JSON.stringify(name)}: use letters, digits, ".", "_" and "-" (it becomes a file name), e.g. my-mcp`));
      }
    }
  }

  // issuer
  let issuer: DeclaredIssuer | undefined = defaultIssuerValid ? defaults.issuer : undefined;
  if (c.has('issuer')) issuer = need(check.issuer(value('issuer'), join(path, 'issuer')));
  const acme = issuer?.type === 'acme';
  const local = issuer?.type === 'local';

  // kind
  let kind: CertificateKind = 'server';
  if (c.has('kind')) {
    const k = need(check.oneOf(value('kind'), join(path, 'kind'), ['server', 'client'] as const));
    if (k) kind = k;
    if (k === 'client' && acme) need(check.error(value('kind'), join(path, 'kind'), 'client certificates come only from the local CA (issuer: local); public ACME CAs issue server certificates'));
  }

  // names
  const sans: San[] = [];
  const sanNodes: (Node | null)[] = [];
  if (!c.has('names')) need(check.error(node, join(path, 'names'), 'missing; list the DNS names, IP addresses, URIs or e-mail addresses to certify'));
  else {
    const items = need(check.list(value('names'), join(path, 'names'), 'a list of names')) ?? [];
    if (c.has('names') && isSeq(value('names')) && items.length === 0) need(check.error(value('names'), join(path, 'names'), 'expected at least one name'));
    const seen = new Map<string, number>();
    items.forEach((item, index) => {
      const text = check.string(item.node, item.path, 'a DNS name, IP address, URI or e-mail address');
      if (text === undefined) return;
      let san: San;
      try {
        san = classifySan(text);
      } catch (error) {
        need(check.error(item.node, item.path, error instanceof Error ? error.message : String(error)));
        return;
      }
      const key = `${san.type}:${san.value}`;
      if (seen.has(key)) return need(check.error(item.node, item.path, `${JSON.stringify(text)} is listed twice (also names[${seen.get(key)}])`));
      seen.set(key, index);
      if (acme && san.type !== 'dns' && san.type !== 'ip') {
        return need(check.error(item.node, item.path, `an ACME certificate can only certify DNS names and IP addresses, not ${san.type === 'uri' ? 'URIs' : 'e-mail addresses'}`));
      }
      sans.push(san);
      sanNodes.push(item.node);
    });
  }

  // key, days, profile, renewBefore
  let key = defaults.key;
  if (c.has('key')) key = need(check.keyType(value('key'), join(path, 'key'))) ?? key;
  let days: number | undefined = local ? defaults.days : undefined;
  if (c.has('days')) {
    if (acme) need(check.error(c.get('days')!.key, join(path, 'days'), 'days is only for local certificates: an ACME CA decides the lifetime (choose a profile instead)'));
    else days = need(check.days(value('days'), join(path, 'days')));
  }
  let profile: string | undefined;
  if (c.has('profile')) {
    if (local) need(check.error(c.get('profile')!.key, join(path, 'profile'), 'profile is only for ACME certificates (issuer: acme:<account>); use days for a local certificate'));
    else profile = need(check.string(value('profile'), join(path, 'profile'), 'an ACME profile name'));
  }
  let renewBefore = defaults.renewBefore;
  if (c.has('renewBefore')) renewBefore = need(check.renewBefore(value('renewBefore'), join(path, 'renewBefore')));
  if (local && renewBefore?.type === 'duration' && days !== undefined && renewBefore.ms >= days * 86_400_000) {
    const where = c.has('renewBefore') ? value('renewBefore') : c.has('days') ? value('days') : node;
    need(check.error(where, join(path, c.has('renewBefore') ? 'renewBefore' : 'days'), `renewBefore must be shorter than the lifetime (${days} days), or the certificate would be renewed on every check`));
  }

  // challenge
  let challenge: DeclaredChallenge | undefined = acme ? { type: 'http-01', port: 80 } : undefined;
  if (c.has('challenge')) {
    if (local) need(check.error(c.get('challenge')!.key, join(path, 'challenge'), 'challenge is only for ACME certificates (issuer: acme:<account>)'));
    else challenge = need(checkChallenge(check, value('challenge'), join(path, 'challenge'), base));
  }
  if (acme && challenge) {
    sans.forEach((san, index) => {
      if (san.value.startsWith('*.') && challenge!.type !== 'dns-01') {
        need(check.error(sanNodes[index]!, `${join(path, 'names')}[${index}]`, `a wildcard name needs a dns-01 challenge (${challenge!.type} cannot validate it)`));
      }
      if (san.type === 'ip' && challenge!.type === 'dns-01') {
        need(check.error(sanNodes[index]!, `${join(path, 'names')}[${index}]`, 'an IP address cannot be validated with dns-01: use http-01 or tls-alpn-01'));
      }
    });
  }

  // targets
  const targets: DeclaredTarget[] = [];
  const targetNodes: (Node | null)[] = [];
  if (c.has('targets')) {
    const items = need(check.list(value('targets'), join(path, 'targets'), 'a list of targets')) ?? [];
    for (const item of items) {
      const target = checkTarget(check, item.node, item.path, base, name);
      if (target) {
        targets.push(target.target);
        targetNodes.push(target.pathNode);
      }
    }
  }

  // hooks
  let hooks: DeclaredHooks = { reload: [], timeoutMs: defaults.hookTimeoutMs };
  if (c.has('hooks')) hooks = need(checkHooks(check, value('hooks'), join(path, 'hooks'), defaults.hookTimeoutMs)) ?? hooks;

  if (name === undefined) return undefined;
  return { declared: partial(), nameNode: value('name'), targetNodes };

  function partial(): DeclaredCertificate {
    const declared: DeclaredCertificate = { name: name!, issuer: issuer ?? { type: 'local' }, names: sans, kind, key, targets, hooks, line };
    if (days !== undefined) declared.days = days;
    if (profile !== undefined) declared.profile = profile;
    if (challenge !== undefined) declared.challenge = challenge;
    if (renewBefore !== undefined) declared.renewBefore = renewBefore;
    return declared;
  }
}

function checkChallenge(check: Checker, node: Node | null, path: string, base: string): DeclaredChallenge | undefined {
  if (!isMap(node)) return check.error(node, path, `expected a challenge (a map with type: http-01, dns-01 or tls-alpn-01), got ${describe(node)}`);
  const typePair = node.items.find((pair) => isScalar(pair.key) && pair.key.value === 'type');
  if (!typePair) return check.error(node, join(path, 'type'), 'missing; write type: http-01, dns-01 or tls-alpn-01');
  const type = check.oneOf(check.node(typePair.value) ?? (typePair.key as Node), join(path, 'type'), CHALLENGE_TYPES);
  const allowed = type ? CHALLENGE_KEYS[type] : [...new Set(Object.values(CHALLENGE_KEYS).flat())];
  const misplaced = (key: string): string | undefined => {
    const owners = CHALLENGE_TYPES.filter((t) => CHALLENGE_KEYS[t].includes(key));
    return owners.length > 0 ? `${key} is only for ${owners.join(' and ')} challenges, not ${type}` : undefined;
  };
  const e = check.map(node, path, allowed, `a ${type ?? ''} challenge`.replace('  ', ' '), misplaced);
  if (!e || !type) return undefined;
  const section = new Section(check, e);
  const at = section.at.bind(section);
  const need = section.need.bind(section);
  const port = e.has('port') ? need(check.integer(at('port'), join(path, 'port'), 1, 65535, 'a port from 1 to 65535')) : undefined;
  const host = e.has('host') ? need(check.string(at('host'), join(path, 'host'), 'a host name or IP address to listen on')) : undefined;
  if (type === 'http-01') {
    const webroot = e.has('webroot') ? need(check.path(at('webroot'), join(path, 'webroot'), base, 'a folder path')) : undefined;
    if (webroot && (e.has('port') || e.has('host'))) {
      need(check.error(e.get(e.has('port') ? 'port' : 'host')!.key, join(path, e.has('port') ? 'port' : 'host'), 'port and host are for the built-in responder; with webroot, your web server answers the challenge'));
    }
    if (!section.ok) return undefined;
    const challenge: DeclaredChallenge = { type };
    if (webroot) challenge.webroot = webroot.absolute;
    else challenge.port = port ?? 80;
    if (host !== undefined) challenge.host = host;
    return challenge;
  }
  if (type === 'tls-alpn-01') {
    if (!section.ok) return undefined;
    return host === undefined ? { type, port: port ?? 443 } : { type, port: port ?? 443, host };
  }
  // dns-01
  let hook: string[] | undefined;
  if (!e.has('hook')) need(check.error(node, join(path, 'hook'), 'missing; dns-01 needs the hook that adds and removes TXT records, e.g. hook: ["/usr/local/bin/my-dns-hook"]'));
  else hook = need(check.argv(at('hook'), join(path, 'hook')));
  const timeoutMs = e.has('timeout') ? need(check.duration(at('timeout'), join(path, 'timeout'), '60s')) : undefined;
  const propagationSeconds = e.has('propagationSeconds') ? need(check.integer(at('propagationSeconds'), join(path, 'propagationSeconds'), 0, 86_400, 'a number of seconds from 0 to 86400')) : undefined;
  if (!section.ok || !hook) return undefined;
  const challenge: DeclaredChallenge = { type, hook };
  if (timeoutMs !== undefined) challenge.timeoutMs = timeoutMs;
  if (propagationSeconds !== undefined) challenge.propagationSeconds = propagationSeconds;
  return challenge;
}

function checkTarget(check: Checker, node: Node | null, path: string, base: string, certificateName: string | undefined): { target: DeclaredTarget; pathNode: Node | null } | undefined {
  const e = check.map(node, path, CONFIG_KEYS.target, 'a target');
  if (!e) return undefined;
  const section = new Section(check, e);
  const at = section.at.bind(section);
  const need = section.need.bind(section);
  let type: TargetType | undefined;
  if (!e.has('type')) need(check.error(node, join(path, 'type'), `missing; write type: followed by one of ${TARGET_TYPES.join(', ')}`));
  else type = need(check.oneOf(at('type'), join(path, 'type'), TARGET_TYPES));
  let file: { absolute: string; written: string } | undefined;
  if (!e.has('path')) need(check.error(node, join(path, 'path'), 'missing; write where the file goes, e.g. path: /etc/ssl/my-mcp.pem'));
  else file = need(check.path(at('path'), join(path, 'path'), base));
  const keyBearing = type !== undefined && KEY_BEARING_TARGETS.includes(type);
  let mode: number | undefined = keyBearing ? 0o600 : 0o644;
  if (e.has('mode')) {
    mode = need(check.mode(at('mode'), join(path, 'mode')));
    if (mode !== undefined && keyBearing && (mode & 0o007) !== 0) {
      mode = need(check.error(at('mode'), join(path, 'mode'), `a ${type} target holds the private key: it must not be readable or writable by others (use "0600" or "0640")`));
    }
    const modeProblem = mode !== undefined && type !== undefined ? targetModeProblem(type, mode) : null;
    if (modeProblem) mode = need(check.error(at('mode'), join(path, 'mode'), `${modeProblem.problem}: ${modeProblem.hint}`));
  }
  const owner = e.has('owner') ? need(check.ownerOrGroup(at('owner'), join(path, 'owner'), 'user')) : undefined;
  const group = e.has('group') ? need(check.ownerOrGroup(at('group'), join(path, 'group'), 'group')) : undefined;
  let passwordFile: string | undefined;
  if (e.has('passwordFile')) {
    if (type !== undefined && type !== 'p12') need(check.error(e.get('passwordFile')!.key, join(path, 'passwordFile'), 'passwordFile is only for p12 targets'));
    else passwordFile = need(check.path(at('passwordFile'), join(path, 'passwordFile'), base))?.absolute;
  } else if (type === 'p12') need(check.error(node, join(path, 'passwordFile'), 'missing; a p12 target needs passwordFile: the file holding the PKCS#12 password'));
  let namespace: string | undefined;
  let secretName: string | undefined;
  for (const key of ['namespace', 'secretName'] as const) {
    if (!e.has(key)) continue;
    if (type !== undefined && type !== 'k8s-secret') {
      need(check.error(e.get(key)!.key, join(path, key), `${key} is only for k8s-secret targets`));
      continue;
    }
    const text = need(check.string(at(key), join(path, key), key === 'namespace' ? 'a Kubernetes namespace' : 'a Kubernetes Secret name'));
    if (text === undefined) continue;
    const pattern = key === 'namespace' ? K8S_NAMESPACE : K8S_NAME;
    if (!pattern.test(text)) {
      need(check.error(at(key), join(path, key), `${JSON.stringify(text)} is not a valid Kubernetes ${key === 'namespace' ? 'namespace (a DNS label' : 'name (a DNS subdomain'}: lower-case letters, digits${key === 'namespace' ? '' : ', "."'} and "-")`));
      continue;
    }
    if (key === 'namespace') namespace = text;
    else secretName = text;
  }
  if (type === 'k8s-secret' && !e.has('secretName') && certificateName !== undefined) {
    if (K8S_NAME.test(certificateName)) secretName = certificateName;
    else need(check.error(node, join(path, 'secretName'), `missing; the certificate name ${JSON.stringify(certificateName)} is not a valid Kubernetes name, so give secretName (lower-case letters, digits, "." and "-")`));
  }
  if (!section.ok || !type || !file || mode === undefined) return undefined;
  const target: DeclaredTarget = { type, path: file.absolute, pathAsWritten: file.written, mode };
  if (owner !== undefined) target.owner = owner;
  if (group !== undefined) target.group = group;
  if (passwordFile !== undefined) target.passwordFile = passwordFile;
  if (namespace !== undefined) target.namespace = namespace;
  if (secretName !== undefined) target.secretName = secretName;
  return { target, pathNode: at('path') };
}

function checkHooks(
  check: Checker,
  node: Node | null,
  path: string,
  defaultTimeoutMs: number,
  allowed: readonly string[] = CONFIG_KEYS.hooks,
  misplaced?: (key: string) => string | undefined,
): DeclaredHooks | undefined {
  const e = check.map(node, path, allowed, 'hooks', misplaced);
  if (!e) return undefined;
  const section = new Section(check, e);
  const at = section.at.bind(section);
  const need = section.need.bind(section);
  const reload: string[][] = [];
  if (e.has('reload')) {
    const value = at('reload');
    const reloadPath = join(path, 'reload');
    if (isSeq(value) && value.items.length > 0 && value.items.every((item) => isSeq(check.node(item)))) {
      value.items.forEach((item, index) => {
        const argv = need(check.argv(check.node(item), `${reloadPath}[${index}]`));
        if (argv) reload.push(argv);
      });
    } else if (isSeq(value) && value.items.some((item) => isSeq(check.node(item)))) {
      need(check.error(value, reloadPath, 'expected one command (a list of strings) or a list of commands (a list of lists), not a mix of both'));
    } else {
      const argv = need(check.argv(value, reloadPath));
      if (argv) reload.push(argv);
    }
  }
  const timeoutMs = e.has('timeout') ? need(check.duration(at('timeout'), join(path, 'timeout'), '30s')) : defaultTimeoutMs;
  const verify = e.has('verify') ? need(check.verify(at('verify'), join(path, 'verify'))) : undefined;
  if (!section.ok || timeoutMs === undefined) return undefined;
  const hooks: DeclaredHooks = { reload, timeoutMs };
  if (verify) hooks.verify = verify;
  return hooks;
}

function checkCrl(
  check: Checker,
  node: Node | null,
  base: string,
  defaultTimeoutMs: number,
  lineCounter: LineCounter,
  targetPaths: Map<string, { path: string; line: number }>,
): DeclaredCrl | undefined {
  const path = 'crl';
  const e = check.map(node, path, CONFIG_KEYS.crl, 'the crl section');
  if (!e) return undefined;
  const section = new Section(check, e);
  const at = section.at.bind(section);
  const need = section.need.bind(section);
  const days = e.has('days') ? need(check.integer(at('days'), join(path, 'days'), 1, MAX_CRL_DAYS, `a number of days from 1 to ${MAX_CRL_DAYS}`)) : DEFAULT_CRL_DAYS;
  let refreshBefore: RenewBefore | undefined = DEFAULT_CRL_REFRESH;
  if (e.has('refreshBefore')) {
    refreshBefore = need(check.renewBefore(at('refreshBefore'), join(path, 'refreshBefore')));
    if (refreshBefore?.type === 'duration' && days !== undefined && refreshBefore.ms >= days * 86_400_000) {
      refreshBefore = need(check.error(at('refreshBefore'), join(path, 'refreshBefore'), `refreshBefore must be shorter than the CRL's validity (${days} days), or it would be published on every check`));
    }
  }
  const targets: DeclaredCrlTarget[] = [];
  if (e.has('targets')) {
    const items = need(check.list(at('targets'), join(path, 'targets'), 'a list of targets')) ?? [];
    for (const item of items) {
      const target = need(checkCrlTarget(check, item.node, item.path, base));
      if (!target) continue;
      const seen = targetPaths.get(target.target.path);
      const pathNode = target.pathNode;
      if (seen) need(check.error(pathNode, `${item.path}.path`, `${JSON.stringify(target.target.pathAsWritten)} is also written by ${seen.path} (line ${seen.line})`));
      else {
        targetPaths.set(target.target.path, { path: item.path, line: lineCounter.linePos(pathNode?.range?.[0] ?? 0).line });
        targets.push(target.target);
      }
    }
  }
  let hooks: DeclaredHooks | undefined = { reload: [], timeoutMs: defaultTimeoutMs };
  if (e.has('hooks')) {
    const misplaced = (key: string): string | undefined =>
      key === 'verify' ? 'verify is only for certificate hooks (it checks the certificate a server presents); a CRL has nothing to probe' : undefined;
    hooks = need(checkHooks(check, at('hooks'), join(path, 'hooks'), defaultTimeoutMs, CONFIG_KEYS.crlHooks, misplaced));
  }
  if (!section.ok || days === undefined || !refreshBefore || !hooks) return undefined;
  return { days, refreshBefore, targets, hooks: { reload: hooks.reload, timeoutMs: hooks.timeoutMs }, line: lineCounter.linePos(node?.range?.[0] ?? 0).line };
}

function checkCrlTarget(check: Checker, node: Node | null, path: string, base: string): { target: DeclaredCrlTarget; pathNode: Node | null } | undefined {
  const misplaced = (key: string): string | undefined =>
    key === 'type' ? 'a CRL target has no type: it is always a copy of the CRL file (PEM); remove type' : undefined;
  const e = check.map(node, path, CONFIG_KEYS.crlTarget, 'a CRL target', misplaced);
  if (!e) return undefined;
  const section = new Section(check, e);
  const at = section.at.bind(section);
  const need = section.need.bind(section);
  let file: { absolute: string; written: string } | undefined;
  if (!e.has('path')) need(check.error(node, join(path, 'path'), 'missing; write where the copy goes, e.g. path: /etc/nginx/mcpki-crl.pem'));
  else file = need(check.path(at('path'), join(path, 'path'), base));
  const mode = e.has('mode') ? need(check.mode(at('mode'), join(path, 'mode'))) : 0o644;
  const owner = e.has('owner') ? need(check.ownerOrGroup(at('owner'), join(path, 'owner'), 'user')) : undefined;
  const group = e.has('group') ? need(check.ownerOrGroup(at('group'), join(path, 'group'), 'group')) : undefined;
  if (!section.ok || !file || mode === undefined) return undefined;
  const target: DeclaredCrlTarget = { path: file.absolute, pathAsWritten: file.written, mode };
  if (owner !== undefined) target.owner = owner;
  if (group !== undefined) target.group = group;
  return { target, pathNode: at('path') };
}
