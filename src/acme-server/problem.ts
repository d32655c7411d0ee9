// RFC 8555 §6.7 problem documents, as the ACME server sends them. Every refusal of a request is one of these;
// the HTTP layer turns it into `application/problem+json` with its status.
import type { AcmeErrorName } from '../acme/problems.js';

/** The RFC's error types, one list for client and server (src/acme/problems.ts); `compound` is not sent alone. */
export type ProblemType = Exclude<AcmeErrorName, 'compound'>;

const STATUS: Partial<Record<ProblemType, number>> = {
  accountDoesNotExist: 400,
  orderNotReady: 403,
  rateLimited: 429,
  serverInternal: 500,
  unauthorized: 403,
};

export const PROBLEM_PREFIX = 'urn:ietf:params:acme:error:';

export interface ProblemDocument {
  type: string;
  detail: string;
  status: number;
  subproblems?: { type: string; detail: string; identifier?: { type: string; value: string } }[];
}

export class AcmeProblem extends Error {
  readonly type: ProblemType;
  readonly status: number;
  readonly subproblems: ProblemDocument['subproblems'];
  /** seconds, for rateLimited and for 503 while the store is unavailable */
  readonly retryAfter: number | undefined;

  constructor(
    type: ProblemType,
    detail: string,
    options: { status?: number; subproblems?: ProblemDocument['subproblems']; retryAfter?: number } = {},
  ) {
    super(detail);
    this.name = 'AcmeProblem';
    this.type = type;
    this.status = options.status ?? STATUS[type] ?? 400;
    this.subproblems = options.subproblems;
    this.retryAfter = options.retryAfter;
  }

  toDocument(): ProblemDocument {
    const document: ProblemDocument = { type: PROBLEM_PREFIX + this.type, detail: this.message, status: this.status };
    if (this.subproblems?.length) document.subproblems = this.subproblems;
    return document;
  }
}

export function problem(
  type: ProblemType,
  detail: string,
  options?: ConstructorParameters<typeof AcmeProblem>[2],
): AcmeProblem {
  return new AcmeProblem(type, detail, options);
}
