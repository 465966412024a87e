// The client against a real Liftoff (started here with its embedded PostgreSQL): sessions, API
// keys, typed errors, pagination, idempotent creates, If-Match, record events with resume, and
// read-your-writes across a replica. Faults (a lost answer, a 429, a stream cut mid-way) come from
// a proxy between the two (fault-proxy.mjs); the server behind it is the real one.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Liftoff, LiftoffError, ok } from '../dist/index.js';
import { startLiftoff } from '../../../tests/support/liftoff.mjs';
import { startFaultProxy } from './fault-proxy.mjs';

const deadline = { timeout: 120_000 };
const password = 'a long enough password';
let server;
let proxy;

before(async () => {
  server = await startLiftoff({ LIFTOFF_EMBEDDED_PG_REPLICAS: '1' });
  proxy = await startFaultProxy(server.base);
}, deadline);

after(async () => {
  await proxy?.close();
  await server?.stop();
}, deadline);

const uniqueEmail = (who) => `${who}-${Math.random().toString(36).slice(2)}@example.com`;

// A signed-up owner with an org and a `tickets` collection, through `baseUrl`.
async function ownerWithTickets(baseUrl = server.base, options = {}) {
  const liftoff = new Liftoff({ baseUrl, ...options });
  await liftoff.signup({ email: uniqueEmail('owner'), password, name: 'Owner' });
  const org = await ok(liftoff.api.POST('/v1/orgs', { body: { name: 'Client Co' } }));
  await ok(
    liftoff.api.POST('/v1/orgs/{org}/collections', {
      params: { path: { org: org.id } },
      body: {
        name: 'tickets',
        fields: [
          { name: 'title', type: 'text', required: true },
          { name: 'status', type: 'enum', values: ['open', 'closed'], indexed: true },
          { name: 'priority', type: 'integer' },
        ],
      },
    }),
  );
  return { liftoff, org: org.id, tickets: liftoff.records(org.id, 'tickets') };
}

describe('sessions', () => {
  test('signup and login keep the token; logout forgets it and the server ends it', deadline, async () => {
    const tokens = [];
    const liftoff = new Liftoff({ baseUrl: server.base, onTokenChange: (t) => tokens.push(t) });
    const email = uniqueEmail('session');
    const signed = await liftoff.signup({ email, password, name: 'Session' });
    assert.match(liftoff.token, /^ls_/);
    assert.equal((await liftoff.me()).email, email);

    const other = new Liftoff({ baseUrl: server.base });
    const logged = await other.login({ email, password });
    assert.notEqual(logged.token, signed.token);
    const old = other.token;
    await other.logout();
    assert.equal(other.token, undefined);
    const revoked = other.withToken(old);
    await assert.rejects(revoked.me(), (e) => e instanceof LiftoffError && e.is('unauthenticated') && e.status === 401);
    // The first session is untouched.
    assert.equal((await liftoff.me()).email, email);
    assert.deepEqual(tokens, [signed.token]);
  });

  test('a wrong password is a typed 401, and the client holds no token', deadline, async () => {
    const liftoff = new Liftoff({ baseUrl: server.base });
    const error = await liftoff.login({ email: uniqueEmail('nobody'), password }).catch((e) => e);
    assert.ok(error instanceof LiftoffError);
    assert.equal(error.status, 401);
    assert.ok(error.requestId, 'the request id comes with the error');
    assert.match(error.traceId, /^[0-9a-f]{32}$/, 'and the trace id');
    assert.equal(liftoff.token, undefined);
  });

  test('an API key acts on its org with its role; it is refused what is about a person', deadline, async () => {
    const { liftoff, org } = await ownerWithTickets();
    const created = await ok(
      liftoff.api.POST('/v1/orgs/{org}/api-keys', { params: { path: { org } }, body: { name: 'ci', role: 'viewer' } }),
    );
    assert.match(created.key, /^lk_/);
    const key = liftoff.withToken(created.key);
    await liftoff.records(org, 'tickets').create({ title: 'seen by the key' });
    const page = await key.records(org, 'tickets').list();
    assert.deepEqual(page.records.map((r) => r.data.title), ['seen by the key']);
    await assert.rejects(key.records(org, 'tickets').create({ title: 'no' }), (e) => e.is('permission-denied'));
    await assert.rejects(key.me(), (e) => e.status === 403);
  });
});

describe('records', () => {
  test('field errors come typed from problem+json', deadline, async () => {
    const { tickets } = await ownerWithTickets();
    const error = await tickets.create({ status: 'pending', priority: 'high' }).catch((e) => e);
    assert.ok(error instanceof LiftoffError);
    assert.equal(error.status, 422);
    assert.ok(error.is('validation-failed'));
    assert.deepEqual(Object.keys(error.fieldErrors).sort(), ['priority', 'status', 'title']);
  });

  test('all() follows next_cursor through every page, in order, once each', deadline, async () => {
    const { liftoff, org, tickets } = await ownerWithTickets();
    const operations = Array.from({ length: 45 }, (_, i) => ({ op: 'create', data: { title: `t${i}`, priority: i } }));
    const results = await tickets.batch(operations);
    assert.equal(results.length, 45);
    assert.ok(results.every((r) => r.status === 201));
    const seen = [];
    for await (const record of tickets.all({ sort: 'id', limit: 10 })) seen.push(record);
    assert.equal(seen.length, 45);
    assert.deepEqual(seen.map((r) => r.data.priority).sort((a, b) => a - b), Array.from({ length: 45 }, (_, i) => i));
    assert.deepEqual(seen.map((r) => r.id), seen.map((r) => r.id).sort(), 'in id order');
    let pages = 0;
    for await (const page of liftoff.pages((cursor) => tickets.list({ limit: 10, cursor, filter: 'priority >= 40' }))) {
      ++pages;
      assert.ok(page.records.every((r) => r.data.priority >= 40));
    }
    assert.equal(pages, 1);
    // Any cursor list of the API, typed: the org's members.
    const members = [];
    for await (const member of liftoff.items(
      (cursor) => ok(liftoff.api.GET('/v1/orgs/{org}/members', { params: { path: { org }, query: { cursor, limit: 1 } } })),
      'members',
    ))
      members.push(member.role);
    assert.deepEqual(members, ['owner']);
  });

  test('If-Match: a write at a stale version is a 412 and changes nothing', deadline, async () => {
    const { tickets } = await ownerWithTickets();
    const first = await tickets.create({ title: 'v1', status: 'open' });
    const second = await tickets.update(first.id, { title: 'v2' }, { ifMatch: first });
    assert.equal(second.version, first.version + 1);
    const stale = await tickets.update(first.id, { title: 'lost update' }, { ifMatch: first }).catch((e) => e);
    assert.ok(stale instanceof LiftoffError && stale.is('precondition-failed'), String(stale));
    await assert.rejects(tickets.delete(first.id, { ifMatch: first.version }), (e) => e.status === 412);
    assert.equal((await tickets.get(first.id)).data.title, 'v2');
    await tickets.delete(first.id, { ifMatch: second });
    await assert.rejects(tickets.get(first.id), (e) => e.is('not-found'));
  });

  test('a create whose answer was lost is retried with its Idempotency-Key and stored once', deadline, async () => {
    const owner = await ownerWithTickets();
    const viaProxy = new Liftoff({ baseUrl: proxy.origin, token: owner.liftoff.token, retry: { baseDelayMs: 10 } });
    const tickets = viaProxy.records(owner.org, 'tickets');
    let failed = 0;
    proxy.decide = (req) => {
      if (req.method === 'POST' && req.url.includes(owner.org) && failed++ === 0)
        return { status: 503, headers: { 'Retry-After': '0' }, forward: true };
      return undefined;
    };
    try {
      const record = await tickets.create({ title: 'exactly once' });
      assert.equal(record.data.title, 'exactly once');
    } finally {
      proxy.decide = () => undefined;
    }
    const posts = proxy.requests.filter((r) => r.method === 'POST' && r.url.includes(owner.org));
    assert.equal(posts.length, 2, 'the create was sent twice');
    assert.equal(posts[0].headers['idempotency-key'], posts[1].headers['idempotency-key']);
    const stored = await owner.tickets.list({ filter: "title = 'exactly once'", count: 'exact' });
    assert.equal(stored.count, 1, 'and stored once');
  });

  test('a 429 is waited out for its Retry-After; a write without a key is not retried after a 503', deadline, async () => {
    const owner = await ownerWithTickets();
    const viaProxy = new Liftoff({ baseUrl: proxy.origin, token: owner.liftoff.token, retry: { baseDelayMs: 10 } });
    let limited = 0;
    proxy.decide = (req) => {
      if (req.url.includes(owner.org) && req.method === 'GET' && limited++ === 0) return { status: 429, headers: { 'Retry-After': '1' } };
      if (req.url === '/v1/orgs' && req.method === 'POST') return { status: 503, headers: { 'Retry-After': '0' } };
      return undefined;
    };
    try {
      const start = proxy.requests.length;
      await viaProxy.records(owner.org, 'tickets').list();
      const [refused, served] = proxy.requests.slice(start);
      assert.ok(served.at - refused.at >= 1000, `asked again ${served.at - refused.at} ms later`);
      const before = proxy.requests.length;
      const error = await ok(viaProxy.api.POST('/v1/orgs', { body: { name: 'not twice' } })).catch((e) => e);
      assert.ok(error instanceof LiftoffError && error.status === 503 && error.retryAfter === 0, String(error));
      assert.equal(proxy.requests.length - before, 1, 'sent once');
    } finally {
      proxy.decide = () => undefined;
    }
  });

  test('reads see the client\'s own writes at once, with a read replica lagging or not', deadline, async () => {
    const { liftoff, tickets } = await ownerWithTickets();
    for (let i = 0; i < 30; ++i) {
      const created = await tickets.create({ title: `mine ${i}` });
      assert.ok(liftoff.consistency, 'the write answered its position');
      assert.equal((await tickets.get(created.id)).data.title, `mine ${i}`);
      const updated = await tickets.update(created.id, { priority: i });
      assert.equal((await tickets.get(created.id)).version, updated.version);
    }
  });
});

describe('record events', () => {
  // The next `n` events of a stream, within `ms`.
  async function take(stream, n, ms = 20_000) {
    const events = [];
    const timer = setTimeout(() => stream.return(), ms);
    for await (const event of stream) {
      events.push(event);
      if (events.length === n) break;
    }
    clearTimeout(timer);
    return events;
  }

  test('created, updated and deleted arrive in commit order, filtered', deadline, async () => {
    const { tickets } = await ownerWithTickets();
    const stream = tickets.events({ filter: "status = 'open'" });
    const received = take(stream, 3);
    // The stream has opened once its first read is pending: give it a moment, then write.
    await new Promise((r) => setTimeout(r, 300));
    const a = await tickets.create({ title: 'a', status: 'open' });
    await tickets.create({ title: 'not for this stream', status: 'closed' });
    await tickets.update(a.id, { title: 'a2' });
    await tickets.delete(a.id);
    const events = await received;
    assert.deepEqual(events.map((e) => e.type), ['created', 'updated', 'deleted']);
    assert.equal(events[1].record.data.title, 'a2');
    assert.equal(events[1].previous.data.title, 'a');
    assert.equal(events[2].previous.id, a.id);
    assert.ok(events.every((e) => e.id === a.id));
    const positions = events.map((e) => Number(e.eventId));
    assert.ok(positions[0] < positions[1] && positions[1] < positions[2], JSON.stringify(positions));
  });

  test('a stream cut mid-way resumes from its last event: nothing lost, nothing twice', deadline, async () => {
    const owner = await ownerWithTickets();
    const tickets = new Liftoff({ baseUrl: proxy.origin, token: owner.liftoff.token }).records(owner.org, 'tickets');
    let streams = 0;
    proxy.decide = (req) => {
      // The first stream is cut after its first event (the opening position, then one change).
      if (req.url.includes('/events') && req.url.includes(owner.org) && streams++ === 0) return { cutAfter: 400 };
      return undefined;
    };
    try {
      const stream = tickets.events({ reconnectDelayMs: 50 });
      const received = take(stream, 10);
      await new Promise((r) => setTimeout(r, 300));
      for (let i = 0; i < 10; ++i) await owner.tickets.create({ title: `e${i}`, priority: i });
      const events = await received;
      assert.deepEqual(events.map((e) => e.record.data.priority), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.ok(streams >= 2, 'the stream was opened again');
      const resumed = proxy.requests.filter((r) => r.url.includes('/events') && r.url.includes(owner.org));
      assert.ok(resumed[1].headers['last-event-id'], 'with Last-Event-ID');
    } finally {
      proxy.decide = () => undefined;
    }
  });

  test('a position that cannot be resumed from gets a reset', deadline, async () => {
    const { tickets } = await ownerWithTickets();
    const [event] = await take(tickets.events({ lastEventId: '987654321' }), 1);
    assert.equal(event.type, 'reset');
    assert.ok(event.reason);
  });

  test('a stream the caller may not read ends with a typed error, not a reconnection loop', deadline, async () => {
    const { tickets } = await ownerWithTickets();
    const stranger = new Liftoff({ baseUrl: server.base });
    await stranger.signup({ email: uniqueEmail('stranger'), password, name: 'Stranger' });
    const error = await take(stranger.records(tickets.org, 'tickets').events(), 1).catch((e) => e);
    assert.ok(error instanceof LiftoffError && error.status === 404, String(error));
  });

  test('notifications stream the unread count and then each notification', deadline, async () => {
    const { liftoff, org } = await ownerWithTickets();
    const stream = liftoff.notifications();
    const received = take(stream, 3);
    await new Promise((r) => setTimeout(r, 300));
    await ok(
      liftoff.api.POST('/v1/orgs/{org}/notifications', {
        params: { path: { org } },
        body: { kind: 'report.ready', title: 'Your report is ready', roles: ['owner'] },
      }),
    );
    const events = await received;
    assert.deepEqual(events.map((e) => e.type), ['unread', 'notification', 'unread']);
    assert.equal(events[1].title, 'Your report is ready');
    assert.equal(events[2].unread, 1);
  });
});
