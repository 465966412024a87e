// Server-sent events over fetch, which (unlike EventSource) sends Authorization and Last-Event-ID
// itself, in browsers and in Node. The parser follows the HTML standard's event stream
// interpretation; the stream reconnects as EventSource does, resuming from the last event id.
import { LiftoffError } from './errors.js';
import { retryDelay, sleep, type RetryOptions } from './retry.js';

// Answers after which a stream is opened again (after Retry-After): the server could not serve it now.
const reconnectingStatuses = new Set([429, 503, 504]);

export interface ServerSentEvent {
  // The event's type: `event:`, or "message".
  type: string;
  data: string;
  // The stream's last event id when this event was dispatched.
  lastEventId: string;
}

// Text in, events out: feed() takes the stream's chunks as they come, split anywhere.
export class EventStreamParser {
  lastEventId = '';
  // The reconnection time the stream asked for (`retry:`), in ms.
  retry: number | undefined;
  #buffer = '';
  #data: string[] = [];
  #type = '';
  #afterCr = false;

  constructor(private readonly dispatch: (event: ServerSentEvent) => void) {}

  feed(chunk: string): void {
    // A CR that ended the last chunk ended its line; an LF right after it is the rest of a CRLF.
    if (this.#afterCr && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.#afterCr = false;
    this.#buffer += chunk;
    let start = 0;
    for (;;) {
      const cr = this.#buffer.indexOf('\r', start);
      const lf = this.#buffer.indexOf('\n', start);
      if (cr < 0 && lf < 0) break;
      const end = cr >= 0 && (lf < 0 || cr < lf) ? cr : lf;
      this.#line(this.#buffer.slice(start, end));
      start = end + 1;
      if (end === cr) {
        if (start === this.#buffer.length) this.#afterCr = true;
        else if (this.#buffer[start] === '\n') ++start;
      }
    }
    this.#buffer = this.#buffer.slice(start);
  }

  #line(line: string): void {
    if (line === '') {
      this.#dispatch();
      return;
    }
    if (line.startsWith(':')) return;  // a comment (a heartbeat)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.#type = value;
        break;
      case 'data':
        this.#data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;  // unknown fields are ignored
    }
  }

  #dispatch(): void {
    const data = this.#data;
    const type = this.#type;
    this.#data = [];
    this.#type = '';
    // An id without data moves the position and dispatches nothing.
    if (data.length === 0) return;
    this.dispatch({ type: type || 'message', data: data.join('\n'), lastEventId: this.lastEventId });
  }
}

export interface EventStreamOptions {
  // Resume after this id (what a previous stream's last event carried).
  lastEventId?: string;
  // Ends the stream (the loop over it then ends without an error).
  signal?: AbortSignal;
  // Waits between reconnections when the server gave no `retry:` (default 2 s) and how 429 and 503
  // are waited out.
  reconnectDelayMs?: number;
  retry?: RetryOptions;
}

// Opens the stream `request()` makes (called again, with Last-Event-ID, for each reconnection) and
// yields its events until the caller stops or `signal` aborts. A dropped connection, the server
// ending the stream, 429, 503 and 504 reconnect; any other error status ends the loop with a
// LiftoffError (401: the credential is gone; 404: the stream's org or collection is).
export async function* eventStream(
  request: (headers: Headers, signal: AbortSignal) => Promise<Response>,
  options: EventStreamOptions = {},
): AsyncGenerator<ServerSentEvent, void, undefined> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  options.signal?.addEventListener('abort', stop, { once: true });
  if (options.signal?.aborted) return;
  const queue: ServerSentEvent[] = [];
  const parser = new EventStreamParser((event) => queue.push(event));
  parser.lastEventId = options.lastEventId ?? '';
  let failures = 0;
  try {
    while (!controller.signal.aborted) {
      const headers = new Headers({ Accept: 'text/event-stream' });
      if (parser.lastEventId) headers.set('Last-Event-ID', parser.lastEventId);
      let retryAfter: number | undefined;
      try {
        const response = await request(headers, controller.signal);
        if (!response.ok || !response.body) {
          const error = await LiftoffError.fromResponse(response);
          if (!reconnectingStatuses.has(response.status)) throw error;
          retryAfter = error.retryAfter;
        } else {
          failures = 0;
          const decoder = new TextDecoderStream();
          const reader = response.body.pipeThrough(decoder).getReader();
          try {
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              parser.feed(value);
              while (queue.length > 0) yield queue.shift()!;
            }
          } finally {
            await reader.cancel().catch(() => {});
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error instanceof LiftoffError) throw error;
        // A network failure or a connection cut: reconnect.
      }
      const base = parser.retry ?? options.reconnectDelayMs ?? 2000;
      const wait =
        retryAfter !== undefined
          ? retryDelay(failures, retryAfter, options.retry)
          : Math.min(30_000, base * 2 ** Math.min(failures, 4) * (0.5 + Math.random()));
      ++failures;
      try {
        await sleep(wait ?? 30_000, controller.signal);
      } catch {
        return;
      }
    }
  } finally {
    options.signal?.removeEventListener('abort', stop);
    controller.abort();
  }
}
