// Safe retries. Liftoff answers 429 (a rate limit: the request was not served) and 503 (the server
// cannot answer now: a database failover, no connections, short of memory) with Retry-After, and
// 504 when a dependency timed out. A request is sent again after Retry-After plus a random share of
// an exponential backoff, so clients told the same Retry-After do not return all at once; only when
// sending it twice cannot do anything twice: 429 always (nothing was done), 503, 504 and network
// failures for GET, HEAD, OPTIONS, PUT and DELETE, and for a write that carries an Idempotency-Key
// (the server answers its retry with the first answer).
import { parseRetryAfter } from './errors.js';

export interface RetryOptions {
  // Tries after the first (default 3).
  retries?: number;
  // The first backoff step; it doubles with each try (default 200 ms).
  baseDelayMs?: number;
  // The longest wait between two tries; a Retry-After longer than this is not waited for: the
  // answer goes back to the caller (default 30 s).
  maxDelayMs?: number;
  // [0, 1): replaceable for tests.
  random?: () => number;
}

type FetchLike = (request: Request) => Promise<Response>;

const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

// Whether the request may be sent again after `status` (undefined: no answer, a network failure).
export function mayRetry(request: Request, status: number | undefined): boolean {
  if (status === 429) return true;
  if (status !== undefined && status !== 503 && status !== 504) return false;
  return idempotentMethods.has(request.method) || request.headers.has('Idempotency-Key');
}

// Milliseconds to wait before try `attempt` + 1 (0-based), or undefined when the server asked for
// longer than maxDelayMs.
export function retryDelay(attempt: number, retryAfter: number | undefined, options: RetryOptions = {}) {
  const base = options.baseDelayMs ?? 200;
  const max = options.maxDelayMs ?? 30_000;
  const random = options.random ?? Math.random;
  const asked = (retryAfter ?? 0) * 1000;
  if (asked > max) return undefined;
  const backoff = Math.min(max, base * 2 ** attempt);
  return Math.min(max, asked + random() * backoff);
}

export function sleep(ms: number, signal?: AbortSignal | null): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// `fetch` that retries as above. A request with a body is copied before each try but the last (a
// body can be read once); one without is sent as it is.
export function retryingFetch(fetchImpl: FetchLike, options: RetryOptions = {}): FetchLike {
  const retries = options.retries ?? 3;
  return async (request: Request) => {
    for (let attempt = 0; ; ++attempt) {
      const last = attempt >= retries;
      let response: Response;
      try {
        response = await fetchImpl(last || request.body === null ? request : request.clone());
      } catch (error) {
        if (last || request.signal.aborted || !mayRetry(request, undefined)) throw error;
        await sleep(retryDelay(attempt, undefined, options) ?? 0, request.signal);
        continue;
      }
      if (last || !mayRetry(request, response.status)) return response;
      const wait = retryDelay(attempt, parseRetryAfter(response.headers.get('Retry-After')), options);
      if (wait === undefined) return response;
      await response.body?.cancel();
      await sleep(wait, request.signal);
    }
  };
}
