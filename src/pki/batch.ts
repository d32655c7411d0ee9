import { McpkiError } from '../errors.js';
import type { IssueRequest } from './issue.js';

/**
 * A batch file is either a JSON array of requests ({"kind","name","sans","key","days","out"}) or lines of
 * "server|client NAME [SAN...]" (blank lines and # comments ignored).
 */
export function parseBatch(text: string, defaults: Partial<IssueRequest> = {}): IssueRequest[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (error) {
      throw new McpkiError('INVALID_INPUT', `the batch file is not valid JSON: ${(error as Error).message}`, 'fix the JSON, or use the line format "server NAME SAN..."');
    }
    return (parsed as Record<string, unknown>[]).map((item, i) => {
      if (typeof item !== 'object' || item === null || typeof item.name !== 'string') {
        throw new McpkiError('INVALID_INPUT', `batch entry ${i + 1} has no "name"`, 'each entry needs at least {"kind": "server", "name": "...", "sans": [...]}');
      }
      return {
        ...defaults,
        kind: (item.kind ?? 'server') as IssueRequest['kind'],
        name: item.name,
        sans: (item.sans as string[] | undefined) ?? [],
        keyType: (item.key as string | undefined) ?? defaults.keyType,
        days: (item.days as number | undefined) ?? defaults.days,
        outDir: (item.out as string | undefined) ?? defaults.outDir,
      };
    });
  }
  const requests: IssueRequest[] = [];
  trimmed.split(/\r?\n/).forEach((line, i) => {
    const words = line.replace(/#.*/, '').trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return;
    const [kind, name, ...sans] = words;
    if ((kind !== 'server' && kind !== 'client') || !name) {
      throw new McpkiError('INVALID_INPUT', `batch line ${i + 1}: expected "server|client NAME [SAN...]", got "${line.trim()}"`, 'e.g. server api-1 api-1.localhost 127.0.0.1');
    }
    requests.push({ ...defaults, kind, name, sans });
  });
  return requests;
}
