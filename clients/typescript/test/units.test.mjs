// The client's parts that need no server: the event stream parser, retry timing and safety,
// Retry-After, ETags, Idempotency-Keys and consistency tokens.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  EventStreamParser,
  LiftoffError,
  etagOf,
  mayRetry,
  mergeConsistency,
  newIdempotencyKey,
  parseRetryAfter,
  retryDelay,
} from '../dist/index.js';

function parse(...chunks) {
  const events = [];
  const parser = new EventStreamParser((event) => events.push(event));
  for (const chunk of chunks) parser.feed(chunk);
  return { events, parser };
}

test('events are dispatched at blank lines, with their type, data and last id', () => {
  const { events, parser } = parse('retry: 2000\nid: 1840\n\nid: 1841\nevent: updated\ndata: {"a":1}\n\n: heartbeat\n\n');
  assert.deepEqual(events, [{ type: 'updated', data: '{"a":1}', lastEventId: '1841' }]);
  assert.equal(parser.retry, 2000);
  assert.equal(parser.lastEventId, '1841');
});

test('an id without data moves the position and dispatches nothing', () => {
  const { events, parser } = parse('id: 1840\n\n');
  assert.deepEqual(events, []);
  assert.equal(parser.lastEventId, '1840');
});

test('lines end at CRLF, LF or CR, also when a chunk ends between CR and LF', () => {
  const whole = 'event: created\r\ndata: one\r\ndata: two\r\n\r\nevent: deleted\rdata: x\r\r';
  const expected = [
    { type: 'created', data: 'one\ntwo', lastEventId: '' },
    { type: 'deleted', data: 'x', lastEventId: '' },
  ];
  for (let split = 0; split <= whole.length; ++split) {
    const { events } = parse(whole.slice(0, split), whole.slice(split));
    assert.deepEqual(events, expected, `split at ${split}`);
  }
  // One character at a time.
  assert.deepEqual(parse(...whole).events, expected);
});

test('a field without a colon, a value without its space, unknown fields and a bad retry', () => {
  const { events, parser } = parse('data\ndata:x\nfoo: bar\nretry: 1s\n\n');
  assert.deepEqual(events, [{ type: 'message', data: '\nx', lastEventId: '' }]);
  assert.equal(parser.retry, undefined);
});

test('an event not yet ended by a blank line is not dispatched', () => {
  assert.deepEqual(parse('event: created\ndata: {}\n').events, []);
});

test('Retry-After as seconds or an HTTP date', () => {
  assert.equal(parseRetryAfter('3'), 3);
  assert.equal(parseRetryAfter(' 0 '), 0);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter('soon'), undefined);
  const now = Date.parse('2026-12-07T10:00:00Z');
  assert.equal(parseRetryAfter('Mon, 07 Dec 2026 10:00:05 GMT', now), 5);
  assert.equal(parseRetryAfter('Mon, 07 Dec 2026 09:00:00 GMT', now), 0);
});

test('a retry waits Retry-After plus a random share of an exponential backoff, within the maximum', () => {
  const fixed = (r) => ({ random: () => r, baseDelayMs: 100, maxDelayMs: 10_000 });
  assert.equal(retryDelay(0, undefined, fixed(0)), 0);
  assert.equal(retryDelay(0, undefined, fixed(0.5)), 50);
  assert.equal(retryDelay(3, undefined, fixed(0.5)), 400);
  assert.equal(retryDelay(0, 2, fixed(0)), 2000);
  assert.equal(retryDelay(0, 2, fixed(0.99)), 2099);
  assert.equal(retryDelay(20, undefined, fixed(1)), 10_000, 'the backoff stops at the maximum');
  assert.equal(retryDelay(0, 11, fixed(0)), undefined, 'a longer Retry-After is the caller\'s to wait');
});

test('what may be sent twice: 429 always; 503, 504 and no answer only when idempotent or keyed', () => {
  const request = (method, headers = {}) => new Request('http://x/', { method, headers });
  assert.equal(mayRetry(request('POST'), 429), true);
  for (const status of [503, 504, undefined]) {
    assert.equal(mayRetry(request('GET'), status), true);
    assert.equal(mayRetry(request('PUT'), status), true);
    assert.equal(mayRetry(request('DELETE'), status), true);
    assert.equal(mayRetry(request('POST'), status), false);
    assert.equal(mayRetry(request('PATCH'), status), false);
    assert.equal(mayRetry(request('POST', { 'Idempotency-Key': 'k' }), status), true);
  }
  for (const status of [400, 401, 409, 412, 422, 500]) assert.equal(mayRetry(request('GET'), status), false);
});

test('If-Match takes a record, a version or an ETag', () => {
  assert.equal(etagOf({ version: 3 }), '"3"');
  assert.equal(etagOf(4), '"4"');
  assert.equal(etagOf('"5"'), '"5"');
});

test('Idempotency-Keys are random UUIDs (v4)', () => {
  const keys = new Set(Array.from({ length: 1000 }, newIdempotencyKey));
  assert.equal(keys.size, 1000);
  for (const key of keys) assert.match(key, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test('consistency tokens merge by cluster, keeping each later position', () => {
  assert.equal(mergeConsistency(undefined, '0/3000148'), '0/3000148');
  assert.equal(mergeConsistency('0/3000148', '0/2000000'), '0/3000148', 'an older answer arriving late');
  assert.equal(mergeConsistency('0/3000148', '1/0'), '1/0');
  assert.equal(mergeConsistency('main:0/5;eu-1:0/9A0', 'main:0/4;eu-1:0/A00'), 'main:0/5;eu-1:0/A00');
  assert.equal(mergeConsistency('0/5', 'eu-1:0/1'), 'main:0/5;eu-1:0/1');
  assert.equal(mergeConsistency('0/5', 'something new'), 'something new');
});

test('a problem becomes a typed error with its fields', async () => {
  const body = {
    type: 'urn:liftoff:problem:validation-failed',
    title: 'Validation failed',
    status: 422,
    detail: 'the record is invalid',
    request_id: 'r-1',
    errors: [
      { field: 'title', message: 'is required' },
      { field: 'title', message: 'second' },
    ],
  };
  const response = new Response(JSON.stringify(body), {
    status: 422,
    headers: { 'Content-Type': 'application/problem+json' },
  });
  const error = await LiftoffError.fromResponse(response);
  assert.ok(error instanceof Error);
  assert.equal(error.status, 422);
  assert.ok(error.is('validation-failed'));
  assert.deepEqual(error.fieldErrors, { title: 'is required' });
  assert.equal(error.requestId, 'r-1');
  assert.equal(error.message, 'Validation failed: the record is invalid (title: is required; title: second)');
  const plain = await LiftoffError.fromResponse(new Response('gateway says no', { status: 502, statusText: 'Bad Gateway', headers: { 'Retry-After': '7' } }));
  assert.equal(plain.status, 502);
  assert.equal(plain.slug, '');
  assert.equal(plain.retryAfter, 7);
});
