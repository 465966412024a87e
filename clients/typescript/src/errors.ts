// Errors as Liftoff sends them: application/problem+json (RFC 9457), with the fields a request got
// wrong and, on 402 and an organization's 429, the plan limit it ran into.

export interface FieldError {
  field: string;
  message: string;
}

export interface PlanLimit {
  name: string;
  value: number;
  plan: string;
  lifted_by: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  request_id?: string;
  trace_id?: string;
  errors?: FieldError[];
  limit?: PlanLimit;
}

// The last part of a problem's type, urn:liftoff:problem:<slug> (docs/api.md lists them).
export type ProblemSlug =
  | 'bad-request'
  | 'unauthenticated'
  | 'plan-limit-reached'
  | 'permission-denied'
  | 'not-found'
  | 'method-not-allowed'
  | 'request-timeout'
  | 'conflict'
  | 'precondition-failed'
  | 'payload-too-large'
  | 'unsupported-media-type'
  | 'validation-failed'
  | 'too-many-requests'
  | 'headers-too-large'
  | 'internal'
  | 'unavailable'
  | 'retryable'
  | 'timeout';

const problemPrefix = 'urn:liftoff:problem:';

function isProblem(body: unknown): body is Problem {
  if (typeof body !== 'object' || body === null) return false;
  const problem = body as Record<string, unknown>;
  return typeof problem.type === 'string' && typeof problem.status === 'number';
}

// A request Liftoff answered with an error (or with a status the caller did not expect).
export class LiftoffError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly requestId: string | undefined;
  // The W3C trace id of the request (its spans and log lines).
  readonly traceId: string | undefined;
  readonly errors: FieldError[];
  readonly limit: PlanLimit | undefined;
  // Seconds the server asked to wait before trying again (429, 503), when it said.
  readonly retryAfter: number | undefined;

  constructor(status: number, problem: Partial<Problem>, retryAfter?: number) {
    const detail = problem.detail ?? '';
    const title = problem.title ?? `HTTP ${status}`;
    const fields = (problem.errors ?? []).map((e) => `${e.field}: ${e.message}`).join('; ');
    super((detail ? `${title}: ${detail}` : title) + (fields ? ` (${fields})` : ''));
    this.name = 'LiftoffError';
    this.status = status;
    this.type = problem.type ?? 'about:blank';
    this.title = title;
    this.detail = detail;
    this.requestId = problem.request_id;
    this.traceId = problem.trace_id;
    this.errors = problem.errors ?? [];
    this.limit = problem.limit;
    this.retryAfter = retryAfter;
  }

  // urn:liftoff:problem:validation-failed -> validation-failed; '' for another type.
  get slug(): string {
    return this.type.startsWith(problemPrefix) ? this.type.slice(problemPrefix.length) : '';
  }

  is(slug: ProblemSlug): boolean {
    return this.slug === slug;
  }

  // The first message about each field: {"title": "is required", "operations[2].status": ...}.
  get fieldErrors(): Record<string, string> {
    const byField: Record<string, string> = {};
    for (const { field, message } of this.errors) byField[field] ??= message;
    return byField;
  }

  // From an answer whose body (already read, or read here) may be a problem.
  static async fromResponse(response: Response, body?: unknown): Promise<LiftoffError> {
    if (body === undefined) {
      const text = await response.text().catch(() => '');
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    const problem: Partial<Problem> = isProblem(body)
      ? body
      : { status: response.status, title: response.statusText || `HTTP ${response.status}` };
    if (!problem.request_id) {
      const requestId = response.headers.get('X-Request-Id');
      if (requestId) problem.request_id = requestId;
    }
    return new LiftoffError(response.status, problem, parseRetryAfter(response.headers.get('Retry-After')));
  }
}

// Retry-After (RFC 9110): delay-seconds or an HTTP date; seconds from now, undefined when absent or
// unreadable.
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}
