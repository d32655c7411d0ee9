// The generic half of checking mcpki.yaml: the collector of problems (each with its YAML path and the offset of
// the offending node), maps with unknown-key suggestions, and the value types every section uses: strings,
// integers, choices, lists, commands, durations, renewal margins, paths, file modes, owners and host:port.
// Nothing here knows which section it is checking; the per-section rules are in the files beside it.
import { isAbsolute, resolve } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, Scalar, type Document, type Node, type Pair } from 'yaml';
import { checkDuration, checkRenewBefore, DURATION_LIMITS, formatDuration } from '../duration.js';
import { checkHostPort, type HostPort } from '../net/address.js';
import type { RenewBefore } from './types.js';

export interface Problem {
  offset: number;
  path: string;
  message: string;
}

// ---------------------------------------------------------------------------------------------------
// small helpers

export function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** Edit distance counting a swap of two neighbouring letters as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
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

export function describe(node: Node | null | undefined): string {
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

export type Entries = Map<string, { key: Node; value: Node }>;
/** One map being checked: reads its values and remembers whether every one read so far was valid. */
export class Section {
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

export class Checker {
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
  map(
    node: Node | null,
    path: string,
    allowed: readonly string[],
    what: string,
    misplaced?: (key: string) => string | undefined,
  ): Entries | undefined {
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
          this.error(
            key,
            join(path, name),
            suggestion
              ? `unknown key; did you mean "${suggestion}"?`
              : `unknown key; ${what} takes: ${allowed.join(', ')}`,
          );
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
      return this.error(
        node,
        path,
        `expected one of ${choices.join(', ')}, got ${JSON.stringify(node.value)}${suggestion ? `; did you mean "${suggestion}"?` : ''}`,
      );
    }
    return this.error(node, path, `expected one of ${choices.join(', ')}, got ${describe(node)}`);
  }

  list(node: Node | null, path: string, what: string): { node: Node | null; path: string }[] | undefined {
    if (!isSeq(node)) return this.error(node, path, `expected ${what} (a list), got ${describe(node)}`);
    return node.items.map((item, index) => ({
      node: this.node(item) ?? (item as Node | null),
      path: `${path}[${index}]`,
    }));
  }

  /** An argv list: ["systemctl", "reload", "nginx"]. A shell string is refused with the list to write. */
  argv(node: Node | null, path: string): string[] | undefined {
    if (isScalar(node) && typeof node.value === 'string') {
      const words = node.value.trim().split(/\s+/).filter(Boolean);
      const example =
        words.length > 0 ? JSON.stringify(words).replace(/","/g, '", "') : '["/usr/local/bin/my-hook", "arg"]';
      return this.error(
        node,
        path,
        `expected a command as a list of arguments (no shell), got a string; write it as a list: ${example}`,
      );
    }
    if (!isSeq(node)) return this.error(node, path, `expected a command as a list of arguments, got ${describe(node)}`);
    if (node.items.length === 0)
      return this.error(node, path, 'expected a command as a list of arguments, got an empty list');
    const argv: string[] = [];
    let ok = true;
    node.items.forEach((item, index) => {
      const word = this.node(item);
      if (isScalar(word) && typeof word.value === 'string' && (index > 0 || word.value !== '')) {
        const control = CONTROL.exec(word.value);
        if (control) {
          ok = false;
          this.error(
            word,
            `${path}[${index}]`,
            `${index === 0 ? 'the program' : 'an argument'} cannot contain ${controlName(control[0])} (at position ${control.index + 1}): it would be hidden in logs and listings; write it without`,
          );
        } else if (index === 0 && looksLikeCommandLine(word.value)) {
          ok = false;
          const words = word.value.trim().split(/\s+/);
          this.error(
            word,
            `${path}[${index}]`,
            `the program ${JSON.stringify(word.value)} is a whole command line, and no program has that name; write each argument as its own item: ${JSON.stringify(words).replace(/","/g, '", "')}`,
          );
        } else argv.push(word.value);
      } else {
        ok = false;
        this.error(
          word ?? node,
          `${path}[${index}]`,
          `expected ${index === 0 ? 'the program (a non-empty string)' : 'an argument (a string)'}, got ${describe(word)}`,
        );
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
      if (result.problem === 'too-long')
        return this.error(
          node,
          path,
          `${JSON.stringify(node.value.trim())} is longer than the limit of ${formatDuration(maxMs)}`,
        );
    }
    return this.error(
      node,
      path,
      `expected a duration like "${example}" (a number and s, m, h, d or w), got ${describe(node)}`,
    );
  }

  renewBefore(node: Node | null, path: string): RenewBefore | undefined {
    const expected = 'expected a duration like "30d" or a fraction of the lifetime like "1/3", "25%" or "0.25"';
    const fraction = (value: number, text: string): RenewBefore | undefined =>
      value > 0 && value < 1
        ? { type: 'fraction', fraction: value }
        : this.error(node, path, `a fraction of the lifetime must be between 0 and 1 (both excluded), got ${text}`);
    if (isScalar(node) && typeof node.value === 'number' && !Number.isInteger(node.value)) {
      return fraction(node.value, node.source ?? String(node.value));
    }
    if (!isScalar(node) || typeof node.value !== 'string')
      return this.error(node, path, `${expected}, got ${describe(node)}`);
    const result = checkRenewBefore(node.value);
    return result.ok ? result.value : this.error(node, path, result.message);
  }

  /** Absolute; relative paths are taken from the config file's folder. */
  path(
    node: Node | null,
    path: string,
    base: string,
    what = 'a file path',
  ): { absolute: string; written: string } | undefined {
    const text = this.string(node, path, what);
    if (text === undefined) return undefined;
    if (text.includes('\0')) return this.error(node, path, 'a path cannot contain a NUL character');
    const control = CONTROL.exec(text);
    if (control)
      return this.error(
        node,
        path,
        `a path cannot contain ${controlName(control[0])} (at position ${control.index + 1}): it would break every file that names it`,
      );
    if (what === 'a file path' && /(^|\/)(\.\.?)?$/.test(text)) {
      return this.error(
        node,
        path,
        `${JSON.stringify(text)} names a folder, not a file: add the file name (e.g. ${JSON.stringify(`${text.replace(/\/+$/, '')}/${'site.pem'}`)})`,
      );
    }
    return { absolute: isAbsolute(text) ? resolve(text) : resolve(base, text), written: text };
  }

  mode(node: Node | null, path: string): number | undefined {
    if (isScalar(node) && typeof node.value === 'number') {
      return this.error(
        node,
        path,
        `expected an octal string like "0640", got the number ${node.source ?? node.value}: quote it (mode: "0640"); a bare number is ambiguous in YAML`,
      );
    }
    if (isScalar(node) && typeof node.value === 'string' && /^[0-7]{3,4}$/.test(node.value))
      return parseInt(node.value, 8);
    return this.error(node, path, `expected an octal string like "0640", got ${describe(node)}`);
  }

  ownerOrGroup(node: Node | null, path: string, what: 'user' | 'group'): string | number | undefined {
    if (isScalar(node) && typeof node.value === 'number')
      return this.integer(node, path, 0, 4_294_967_294, `a ${what} name or a numeric id`);
    if (isScalar(node) && typeof node.value === 'string' && /^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$/.test(node.value))
      return node.value;
    return this.error(node, path, `expected a ${what} name or a numeric id, got ${describe(node)}`);
  }

  /** host:port, parsed here once: the runner and the probe take the { host, port } as it is. */
  hostPort(node: Node | null, path: string): HostPort | undefined {
    const text = this.string(node, path, 'host:port');
    if (text === undefined) return undefined;
    const result = checkHostPort(text);
    return result.ok ? result.value : this.error(node, path, result.message);
  }
}
