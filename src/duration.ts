import { McpkiError } from './errors.js';

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "30d", "12h", "2w", "90m", "45s" → milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*([smhdw])$/.exec(text.trim());
  if (!match) throw new McpkiError('INVALID_INPUT', `invalid duration "${text}"`, 'write a number and a unit: 30d, 12h, 2w, 90m or 45s');
  return Number(match[1]) * UNITS[match[2]!]!;
}
