export * from './client.js';
export * from './errors.js';
export { mayRetry, retryDelay, retryingFetch, type RetryOptions } from './retry.js';
export { EventStreamParser, eventStream, type EventStreamOptions, type ServerSentEvent } from './sse.js';
