// What `mcpki check` reports: findings, each with a severity and the fix, and the exit code they add up to.
import { EXIT_CODES } from '../errors.js';

export type Severity = 'ok' | 'info' | 'warning' | 'failure' | 'alarm';

/** The report's overall verdict: the worst finding, with ok and info both counting as healthy. */
export type CheckStatus = 'ok' | 'warning' | 'failure' | 'alarm';

export interface Finding {
  /** stable identifier, e.g. "expiry", "hostname", "protocol.tls1.0" (documented in docs/cli.md) */
  id: string;
  severity: Severity;
  message: string;
  /** what to do about it; null when there is nothing to do */
  fix: string | null;
}

const RANK: Record<Severity, number> = { ok: 0, info: 0, warning: 1, failure: 2, alarm: 3 };

export function statusOf(findings: readonly Finding[]): CheckStatus {
  let worst = 0;
  for (const finding of findings) worst = Math.max(worst, RANK[finding.severity]);
  return (['ok', 'warning', 'failure', 'alarm'] as const)[worst]!;
}

/** 0 healthy, 19 warnings, 20 failures, 21 unexpected certificate; the worst finding wins. */
export function exitCodeOf(status: CheckStatus): number {
  switch (status) {
    case 'alarm':
      return EXIT_CODES.CHECK_ALARM;
    case 'failure':
      return EXIT_CODES.CHECK_FAILURE;
    case 'warning':
      return EXIT_CODES.CHECK_WARNING;
    default:
      return EXIT_CODES.OK;
  }
}

/** Collects findings in the order they are found. */
export class Findings {
  readonly list: Finding[] = [];

  add(id: string, severity: Severity, message: string, fix: string | null = null): void {
    this.list.push({ id, severity, message, fix });
  }
}
