import { McpkiError } from '../errors.js';
import type { IssueRequest } from './issue.js';
import { classifySan, validateCertName } from './names.js';

const FIELDS = ['kind', 'name', 'sans', 'key', 'days', 'out'];

function invalid(message: string, hint: string): McpkiError {
  return new McpkiError('INVALID_INPUT', message, hint);
}

function requestFromJson(item: unknown, n: number, defaults: Partial<IssueRequest>): IssueRequest {
  const example = '{"kind": "server", "name": "api-1", "sans": ["api-1.localhost"]}';
  if (typeof item !== 'object' || item === null || Array.isArray(item))
    throw invalid(`batch entry ${n} is not an object`, `each entry looks like ${example}`);
  const entry = item as Record<string, unknown>;
  const unknown = Object.keys(entry).filter((key) => !FIELDS.includes(key));
  if (unknown.length)
    throw invalid(`batch entry ${n} has unknown field "${unknown[0]}"`, `fields are ${FIELDS.join(', ')}`);
  if (typeof entry.name !== 'string')
    throw invalid(`batch entry ${n} has no "name" string`, `each entry looks like ${example}`);
  for (const field of ['kind', 'key', 'out'] as const) {
    if (entry[field] !== undefined && typeof entry[field] !== 'string')
      throw invalid(
        `batch entry ${n} (${entry.name}): "${field}" must be a string`,
        `each entry looks like ${example}`,
      );
  }
  if (typeof entry.out === 'string' && entry.out.split(/[\\/]/).includes('..')) {
    throw invalid(
      `batch entry ${n} (${entry.name}): "out" climbs out of its folder with ".."`,
      'give a folder without ".." (an absolute path, or one below the working folder)',
    );
  }
  if (entry.out === '')
    throw invalid(
      `batch entry ${n} (${entry.name}): "out" is empty`,
      'give the folder to write into, or leave "out" out for HOME/certs/NAME',
    );
  if (entry.sans !== undefined && (!Array.isArray(entry.sans) || entry.sans.some((s) => typeof s !== 'string'))) {
    throw invalid(
      `batch entry ${n} (${entry.name}): "sans" must be a list of strings`,
      'write "sans": ["api-1.localhost", "127.0.0.1"]',
    );
  }
  if (entry.days !== undefined && !Number.isInteger(entry.days)) {
    throw invalid(
      `batch entry ${n} (${entry.name}): "days" must be a whole number, not ${JSON.stringify(entry.days)}`,
      'write "days": 30 (no quotes)',
    );
  }
  return {
    kind: (entry.kind ?? 'server') as IssueRequest['kind'],
    name: entry.name,
    sans: (entry.sans as string[] | undefined) ?? [],
    keyType: (entry.key as string | undefined) ?? defaults.keyType,
    days: (entry.days as number | undefined) ?? defaults.days,
    outDir: (entry.out as string | undefined) ?? defaults.outDir,
  };
}

/** At most this many bad lines are listed one by one (the count says how many there were). */
const MAX_LISTED = 50;

/** One bad line or entry: its number, what is wrong, and the error that said so (for its code and hint). */
interface Problem {
  n: number;
  text: string;
  error?: McpkiError;
}

/**
 * Every bad line or entry of a batch at once, each with its number, in `details`. A single one keeps the code
 * and hint of its error (INVALID_NAME, with how to write the name).
 */
function badBatch(problems: Problem[], unit: 'line' | 'entry', hint: string): McpkiError {
  if (problems.length === 1) {
    const [only] = problems;
    return new McpkiError(
      only!.error?.code ?? 'INVALID_INPUT',
      `batch ${unit} ${only!.n}${only!.text}`,
      only!.error?.hint ?? hint,
    );
  }
  const listed = problems.slice(0, MAX_LISTED).map((p) => `${unit} ${p.n}${p.text}`);
  if (problems.length > MAX_LISTED) listed.push(`… and ${problems.length - MAX_LISTED} more`);
  const numbers =
    problems
      .slice(0, 10)
      .map((p) => p.n)
      .join(', ') + (problems.length > 10 ? ', …' : '');
  const error = invalid(
    `the batch has ${problems.length} bad ${unit === 'line' ? 'lines' : 'entries'} (${numbers})`,
    `fix all ${problems.length} (listed above), then run again; ${hint}`,
  );
  return Object.assign(error, { details: listed });
}

/** What is wrong with the name and SANs of one request, without the CA: one error a bad word. */
function nameProblems(name: string, sans: readonly string[]): McpkiError[] {
  const errors: McpkiError[] = [];
  const attempt = (check: () => unknown) => {
    try {
      check();
    } catch (error) {
      if (!(error instanceof McpkiError)) throw error;
      errors.push(error);
    }
  };
  attempt(() => validateCertName(name));
  for (const san of sans) attempt(() => classifySan(san));
  return errors;
}

function nameProblem(n: number, name: string, errors: McpkiError[]): Problem {
  return { n, text: ` (${name}): ${errors.map((e) => e.message).join('; ')}`, error: errors[0] };
}

/**
 * A batch file is either a JSON array of requests ({"kind","name","sans","key","days","out"}) or lines of
 * "server|client NAME [SAN...]" (blank lines and # comments ignored). Every bad line (or entry) is reported at
 * once, each with its number, not only the first.
 */
export function parseBatch(text: string, defaults: Partial<IssueRequest> = {}): IssueRequest[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (error) {
      throw invalid(
        `the batch file is not valid JSON: ${(error as Error).message}`,
        'fix the JSON, or use the line format "server NAME SAN..."',
      );
    }
    if (!Array.isArray(parsed))
      throw invalid('the batch file holds a JSON object, not an array of requests', 'wrap the requests in [ … ]');
    const requests: IssueRequest[] = [];
    const problems: Problem[] = [];
    parsed.forEach((item: unknown, i) => {
      try {
        const request = { ...defaults, ...requestFromJson(item, i + 1, defaults) };
        const bad = nameProblems(request.name, request.sans ?? []);
        if (bad.length) problems.push(nameProblem(i + 1, request.name, bad));
        requests.push(request);
      } catch (error) {
        if (!(error instanceof McpkiError)) throw error;
        problems.push({ n: i + 1, text: error.message.replace(/^batch entry \d+/, ''), error });
      }
    });
    if (problems.length)
      throw badBatch(
        problems,
        'entry',
        'each entry looks like {"kind": "server", "name": "api-1", "sans": ["api-1.localhost"]}',
      );
    return requests;
  }
  const requests: IssueRequest[] = [];
  const problems: Problem[] = [];
  trimmed.split(/\r?\n/).forEach((line, i) => {
    // the regular expression only where there is a comment: V8 ran it on its slow path for every line
    const words = (line.includes('#') ? line.replace(/#.*/, '') : line).trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return;
    const [kind, name, ...sans] = words;
    if ((kind !== 'server' && kind !== 'client') || !name) {
      problems.push({ n: i + 1, text: `: expected "server|client NAME [SAN...]", got "${line.trim()}"` });
      return;
    }
    const bad = nameProblems(name, sans);
    if (bad.length) problems.push(nameProblem(i + 1, name, bad));
    else {
      // what `{ ...defaults, kind, name, sans }` makes, without a miss of V8's inline cache per line (2,000 lines:
      // 16 -> 7 ms)
      const request = Object.assign({}, defaults) as IssueRequest;
      request.kind = kind;
      request.name = name;
      request.sans = sans;
      requests.push(request);
    }
  });
  if (problems.length) throw badBatch(problems, 'line', 'e.g. server api-1 api-1.localhost 127.0.0.1');
  return requests;
}
