// Browser access in a real browser: headless Chromium (Debian's package) loads pages from loopback
// origins of their own, and their scripts call a Liftoff on another origin, as a single-page app on
// app.example.com calls api.example.com. What the browser allows or blocks is the browser's own
// doing; the server's side of each exchange is read from its /metrics.
//
// Run by CTest (tests/CMakeLists.txt) as: node --test tests/browser/cors.test.mjs, with
// LIFTOFF_BINARY set. Liftoff starts here with its embedded PostgreSQL in a temporary directory.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import puppeteer from 'puppeteer-core';

import { startLiftoff } from '../support/liftoff.mjs';

const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

// A server of one blank page: its address is the origin the page's scripts run in.
async function pageServer() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>front end</title>');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

// A counter of the server's /metrics (asked from here: no Origin, no CORS).
async function metric(base, series) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `${series} is in /metrics`);
  return Number(line.slice(series.length + 1));
}
const preflights = (base, result) =>
  metric(base, `http_cors_preflights_total{result="${result}"}`);

let app, stranger, orgFront, liftoff, browser;

// No step may hang the suite: each has a deadline.
const deadline = { timeout: 120_000 };

before(async () => {
  app = await pageServer();
  stranger = await pageServer();
  orgFront = await pageServer();
  liftoff = await startLiftoff({ LIFTOFF_CORS_ORIGINS: app.origin, LIFTOFF_CORS_MAX_AGE: '10m' });
  browser = await puppeteer.launch({
    executablePath: chromiumPath,
    headless: true,
    // As root in a container Chromium needs its sandbox off; the pages are the test's own.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}, deadline);

after(async () => {
  await browser?.close();
  await liftoff?.stop();
  for (const server of [app, stranger, orgFront]) server?.close();
}, deadline);

async function pageAt(origin) {
  const page = await browser.newPage();
  await page.goto(`${origin}/`);
  return page;
}

// What the allowed page does: sign up, make an org with a collection, write and list records, and
// read the headers a client needs. Returns the session and where things are.
async function signUpAndWrite(page, api) {
  return page.evaluate(async (api) => {
    const send = async (method, path, token, body) => {
      const headers = {};
      if (token) headers.Authorization = `Bearer ${token}`;
      if (body) headers['Content-Type'] = 'application/json';
      const res = await fetch(api + path, {
        method,
        headers,
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, headers: res.headers, body: await res.json() };
    };
    const email = `browser-${crypto.randomUUID()}@example.com`;
    const signup = await send('POST', '/v1/auth/signup', null, {
      email,
      password: 'a browser-made password',
      name: 'Browser',
    });
    const token = signup.body.token;
    const org = await send('POST', '/v1/orgs', token, { name: 'Browser Co' });
    const base = `/v1/orgs/${org.body.id}/collections`;
    const collection = await send('POST', base, token, {
      name: 'notes',
      fields: [{ name: 'text', type: 'text' }],
    });
    const created = await send('POST', `${base}/notes/records`, token, { text: 'one' });
    const read = await send('GET', `${base}/notes/records/${created.body.id}`, token);
    const listed = await send('GET', `${base}/notes/records`, token);
    return {
      statuses: [
        signup.status,
        org.status,
        collection.status,
        created.status,
        read.status,
        listed.status,
      ],
      token,
      org: org.body.id,
      base,
      etag: read.headers.get('ETag'),
      requestId: created.headers.get('X-Request-Id'),
      listed: listed.body.records.map((r) => r.data.text),
    };
  }, api);
}

test('an allowed origin signs in, writes and lists records, and reads the exposed headers', deadline, async () => {
  const page = await pageAt(app.origin);
  const allowedBefore = await preflights(liftoff.base, 'allowed');
  const result = await signUpAndWrite(page, liftoff.base);
  assert.deepEqual(result.statuses, [201, 201, 201, 201, 200, 200]);
  assert.deepEqual(result.listed, ['one']);
  assert.match(result.etag, /^"\d+"$/, 'ETag is exposed to the page');
  assert.ok(result.requestId, 'X-Request-Id is exposed to the page');
  // JSON bodies and Authorization made the browser ask first.
  assert.ok((await preflights(liftoff.base, 'allowed')) > allowedBefore);
  await page.close();
});

test('a preflight is cached for its Access-Control-Max-Age: a second call sends none', deadline, async () => {
  const page = await pageAt(app.origin);
  const { token } = await signUpAndWrite(page, liftoff.base);
  const me = () =>
    page.evaluate(
      async (api, token) =>
        (await fetch(`${api}/v1/me`, { headers: { Authorization: `Bearer ${token}` } })).status,
      liftoff.base,
      token,
    );
  const before = await preflights(liftoff.base, 'allowed');
  assert.equal(await me(), 200);
  const afterFirst = await preflights(liftoff.base, 'allowed');
  assert.equal(afterFirst, before + 1, 'the first call is preflighted');
  assert.equal(await me(), 200);
  assert.equal(await preflights(liftoff.base, 'allowed'), afterFirst, 'the second is not');
  await page.close();
});

test('a page from an origin not allowed is blocked by the browser', deadline, async () => {
  const page = await pageAt(stranger.origin);
  const refusedBefore = await preflights(liftoff.base, 'refused');
  const outcome = await page.evaluate(async (api) => {
    const attempt = async (request) => {
      try {
        const res = await request();
        return `read ${res.status}`;
      } catch (e) {
        return e.name;
      }
    };
    return {
      // A simple GET needs no preflight: the server answers, the browser withholds the answer.
      health: await attempt(() => fetch(`${api}/healthz`)),
      // A JSON POST is stopped at its preflight: the request itself is never sent.
      login: await attempt(() =>
        fetch(`${api}/v1/auth/login`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ email: 'a@example.com', password: 'whatever it is' }),
        }),
      ),
    };
  }, liftoff.base);
  assert.deepEqual(outcome, { health: 'TypeError', login: 'TypeError' });
  assert.equal(await preflights(liftoff.base, 'refused'), refusedBefore + 1);
  await page.close();
});

test("an org's own origin reaches that org's routes, and nothing else", deadline, async () => {
  const setup = await pageAt(app.origin);
  const { token, org, base } = await signUpAndWrite(setup, liftoff.base);
  await setup.close();
  const put = await fetch(`${liftoff.base}/v1/orgs/${org}/cors-origins`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ origins: [orgFront.origin] }),
  });
  assert.equal(put.status, 200);
  const page = await pageAt(orgFront.origin);
  const call = (path) =>
    page.evaluate(
      async (url, token) => {
        try {
          return (await fetch(url, { headers: { Authorization: `Bearer ${token}` } })).status;
        } catch (e) {
          return e.name;
        }
      },
      liftoff.base + path,
      token,
    );
  // Every process picks the change up within a second (here the one process).
  let status;
  for (let tries = 0; tries < 20 && status !== 200; ++tries) {
    status = await call(`${base}/notes/records?limit=${tries + 1}`);
    if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(status, 200);
  assert.equal(await call('/v1/me'), 'TypeError', 'a route of no org is not the org’s to open');
  await page.close();
});

test('realtime from a web page: EventSource with a stream ticket, and resuming both ways', deadline, async () => {
  const page = await pageAt(app.origin);
  const { token, base } = await signUpAndWrite(page, liftoff.base);
  const outcome = await page.evaluate(
    async (api, token, base) => {
      const auth = { Authorization: `Bearer ${token}` };
      const write = (text) =>
        fetch(`${api}${base}/notes/records`, {
          method: 'POST',
          headers: { ...auth, 'Content-Type': 'application/json' },
          body: JSON.stringify({ text }),
        });
      const ticket = async () =>
        (await (await fetch(`${api}${base}/notes/events/tickets`, { method: 'POST', headers: auth })).json())
          .url;
      const within = (promise, what) =>
        Promise.race([
          promise,
          new Promise((_, reject) => setTimeout(() => reject(new Error(`no ${what}`)), 10_000)),
        ]);
      // A live event on an EventSource opened with a ticket (it cannot send Authorization).
      const source = new EventSource(api + (await ticket()));
      await within(new Promise((resolve) => (source.onopen = resolve)), 'open');
      const live = within(
        new Promise((resolve) => source.addEventListener('created', resolve, { once: true })),
        'live event',
      );
      await write('live');
      const first = await live;
      source.close();

      // While the page is away.
      await write('missed');

      // Resumed by a new EventSource: a new ticket, and the last id as ?last_event_id=.
      const again = new EventSource(`${api}${await ticket()}&last_event_id=${first.lastEventId}`);
      const replayed = await within(
        new Promise((resolve) => again.addEventListener('created', resolve, { once: true })),
        'replayed event',
      );
      again.close();

      // Resumed by fetch streaming, which sends Authorization and Last-Event-ID itself.
      const controller = new AbortController();
      const res = await fetch(`${api}${base}/notes/events`, {
        headers: { ...auth, 'Last-Event-ID': first.lastEventId },
        signal: controller.signal,
      });
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let text = '';
      await within(
        (async () => {
          while (!text.includes('event: created')) {
            const { value, done } = await reader.read();
            if (done) break;
            text += decoder.decode(value, { stream: true });
          }
        })(),
        'streamed event',
      );
      controller.abort();
      const streamed = /data: (.*)\n/.exec(text.slice(text.indexOf('event: created')));
      return {
        live: JSON.parse(first.data).record.data.text,
        replayed: JSON.parse(replayed.data).record.data.text,
        streamed: streamed ? JSON.parse(streamed[1]).record.data.text : null,
        streamStatus: res.status,
      };
    },
    liftoff.base,
    token,
    base,
  );
  assert.deepEqual(outcome, {
    live: 'live',
    replayed: 'missed',
    streamed: 'missed',
    streamStatus: 200,
  });
  // The tickets, in URLs, were never written to the log.
  assert.doesNotMatch(liftoff.log(), /lt_[A-Za-z0-9_-]{43}/);
  await page.close();
});
