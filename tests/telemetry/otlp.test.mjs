// Liftoff's spans over OTLP/HTTP, received here and decoded with OpenTelemetry's own schema (the
// opentelemetry-proto .proto files, from npm, read by protobufjs): a request whose traceparent is
// sampled becomes a server span of the caller's trace, child of the caller's span, named by its
// route; an unsampled one becomes nothing; the statements a request runs are its children, and the
// job it enqueues continues its trace, down to the email the job sends (through a real SMTP server,
// Debian's aiosmtpd), which carries the trace on; a collector that is gone costs requests nothing
// and the lost spans are counted.
//
// Run by CTest (tests/CMakeLists.txt) with LIFTOFF_BINARY set.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import protobuf from 'protobufjs';

import { startLiftoff } from '../support/liftoff.mjs';

const protos = fileURLToPath(
  new URL('node_modules/@opentelemetry/otlp-grpc-exporter-base/build/protos/', import.meta.url),
);
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => path.join(protos, target);
root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto', { keepCase: false });
const ExportTraceServiceRequest = root.lookupType(
  'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest',
);

const deadline = { timeout: 60_000 };
const hex = (bytes) => Buffer.from(bytes).toString('hex');

let collector, liftoff, smtp;
const requests = []; // decoded ExportTraceServiceRequests, as plain objects

before(async () => {
  collector = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    if (req.method === 'POST' && req.url === '/v1/traces') {
      assert.equal(req.headers['content-type'], 'application/x-protobuf');
      const message = ExportTraceServiceRequest.decode(Buffer.concat(chunks));
      requests.push(ExportTraceServiceRequest.toObject(message, { longs: String, enums: String, bytes: Array }));
      res.writeHead(200, { 'Content-Type': 'application/x-protobuf' });
      res.end();
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise((resolve) => collector.listen(0, '127.0.0.1', resolve));
  smtp = await startSmtp();
  liftoff = await startLiftoff({
    LIFTOFF_SMTP_HOST: '127.0.0.1',
    LIFTOFF_SMTP_PORT: String(smtp.port),
    LIFTOFF_SMTP_SECURITY: 'none',
    LIFTOFF_MAIL_FROM: 'no-reply@telemetry.test',
    LIFTOFF_OTLP_ENDPOINT: `http://127.0.0.1:${collector.address().port}`,
    LIFTOFF_TRACE_SAMPLE_RATIO: '0',
  });
}, deadline);

after(async () => {
  await liftoff?.stop();
  collector?.close();
  smtp?.stop();
}, deadline);

// tests/support/smtp_server.py (aiosmtpd), which lists what it received at GET /_received.
async function startSmtp() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'liftoff-smtp-'));
  const portFile = path.join(dir, 'ports');
  const script = fileURLToPath(new URL('../support/smtp_server.py', import.meta.url));
  // Debian's Python, which has python3-aiosmtpd (not one a version manager put first on PATH).
  const child = spawn('/usr/bin/python3', [script, '--port-file', portFile], { stdio: 'inherit' });
  const until = Date.now() + 20_000;
  while (!existsSync(portFile) || !readFileSync(portFile, 'utf8').trim()) {
    if (Date.now() > until) throw new Error('the SMTP server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  const [port, httpPort] = readFileSync(portFile, 'utf8').trim().split(/\s+/).map(Number);
  return {
    port,
    received: async () => (await fetch(`http://127.0.0.1:${httpPort}/_received`)).json(),
    stop: () => {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const spans = () =>
  requests.flatMap((r) =>
    r.resourceSpans.flatMap((rs) =>
      rs.scopeSpans.flatMap((ss) => ss.spans.map((span) => ({ span, resource: rs.resource, scope: ss.scope }))),
    ),
  );

async function eventually(check, ms = 15_000) {
  const until = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > until) return undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const attributes = (span) =>
  Object.fromEntries(span.attributes.map(({ key, value }) => [key, value.stringValue ?? value.intValue ?? value.boolValue ?? value.doubleValue]));

test('a sampled request is a server span of its caller\'s trace, decoded by the official schema', deadline, async () => {
  const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const caller = '00f067aa0ba902b7';
  const answer = await fetch(`${liftoff.base}/v1/me`, {
    headers: { traceparent: `00-${trace}-${caller}-01`, tracestate: 'congo=t61rcWkgMzE', 'X-Request-Id': 'otlp-test-1' },
  });
  assert.equal(answer.status, 401);
  const serverSpan = answer.headers.get('traceresponse').split('-')[2];
  const unsampled = '0af7651916cd43dd8448eb211c80319c';
  assert.equal((await fetch(`${liftoff.base}/healthz`, { headers: { traceparent: `00-${unsampled}-b7ad6b7169203331-00` } })).status, 200);
  const missing = await fetch(`${liftoff.base}/v1/nowhere`, { headers: { traceparent: `00-${trace}-${caller}-01` } });
  assert.equal(missing.status, 404);

  const found = await eventually(() => {
    const mine = spans().filter(({ span }) => hex(span.traceId) === trace);
    return mine.length >= 2 ? mine : undefined;
  });
  assert.ok(found, `spans received: ${JSON.stringify(spans().map(({ span }) => span.name))}`);
  const me = found.find(({ span }) => span.name === 'GET /v1/me');
  assert.ok(me, JSON.stringify(found.map(({ span }) => span.name)));
  assert.equal(me.span.kind, 'SPAN_KIND_SERVER');
  assert.equal(hex(me.span.spanId), serverSpan, 'the span traceresponse named');
  assert.equal(hex(me.span.parentSpanId), caller);
  assert.equal(me.span.traceState, 'congo=t61rcWkgMzE');
  assert.ok(BigInt(me.span.startTimeUnixNano) <= BigInt(me.span.endTimeUnixNano));
  assert.ok(BigInt(me.span.startTimeUnixNano) > BigInt(Date.now() - 60_000) * 1_000_000n, 'wall-clock nanoseconds');
  assert.deepEqual(attributes(me.span), {
    'http.request.method': 'GET',
    'http.route': '/v1/me',
    'http.response.status_code': '401',
    'client.address': '127.0.0.1',
    'liftoff.request_id': 'otlp-test-1',
  });
  assert.equal(me.span.status?.code ?? 'STATUS_CODE_UNSET', 'STATUS_CODE_UNSET', '4xx is not a server error');
  const resource = Object.fromEntries(me.resource.attributes.map(({ key, value }) => [key, value.stringValue]));
  assert.equal(resource['service.name'], 'liftoff');
  assert.ok(resource['service.version']);
  assert.match(resource['service.instance.id'], /:\d+$/);
  assert.equal(me.scope.name, 'liftoff');
  assert.ok(found.some(({ span }) => span.name === 'GET unmatched'));
  assert.ok(!spans().some(({ span }) => hex(span.traceId) === unsampled), 'an unsampled request is not exported');
});

test('a request\'s statements, the job it enqueues and the email that job sends are spans of its trace', deadline, async () => {
  const trace = '5bf92f3577b34da6a3ce929d0e0e4737';
  const email = `traced-${Date.now()}@telemetry.test`;
  const password = 'a sturdy passphrase';
  const answer = await fetch(`${liftoff.base}/v1/auth/signup`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', traceparent: `00-${trace}-00f067aa0ba902b7-01` },
    body: JSON.stringify({ email, password, name: 'Ada Lovelace' }),
  });
  assert.equal(answer.status, 201);
  const requestSpan = answer.headers.get('traceresponse').split('-')[2];

  const found = await eventually(() => {
    const mine = spans().filter(({ span }) => hex(span.traceId) === trace).map(({ span }) => span);
    return mine.some((span) => span.name === 'SMTP send') ? mine : undefined;
  }, 30_000);
  assert.ok(found, `spans of the trace: ${JSON.stringify(spans().filter(({ span }) => hex(span.traceId) === trace).map(({ span }) => span.name))}`);
  const names = JSON.stringify(found.map((span) => `${span.name} (${span.kind})`));
  const signup = found.find((span) => span.name === 'POST /v1/auth/signup');
  assert.ok(signup, names);
  assert.equal(hex(signup.spanId), requestSpan);
  const within = (child, parent) => {
    const slack = 1_000_000n; // a millisecond: the server span's start is its end less a steady-clock duration
    assert.ok(BigInt(child.startTimeUnixNano) + slack >= BigInt(parent.startTimeUnixNano), `${child.name} starts within ${parent.name}`);
    assert.ok(BigInt(child.endTimeUnixNano) <= BigInt(parent.endTimeUnixNano) + slack, `${child.name} ends within ${parent.name}`);
  };
  const isStatement = (span) => span.kind === 'SPAN_KIND_CLIENT' && attributes(span)['db.system.name'] === 'postgresql';

  // The request's statements: client spans under its span, named by the statement, on main's primary.
  const statements = found.filter((span) => hex(span.parentSpanId) === requestSpan && isStatement(span));
  assert.ok(statements.length >= 2, names);
  for (const statement of statements) {
    const a = attributes(statement);
    assert.match(statement.name, /^[a-z_]+(\.[a-z_]+)+$/, 'named by the statement');
    assert.equal(a['liftoff.shard'], 'main');
    assert.equal(a['liftoff.node'], 'primary');
    assert.ok(a['db.response.returned_rows'] !== undefined || statement.status?.code === 'STATUS_CODE_ERROR', statement.name);
    within(statement, signup);
  }
  assert.ok(statements.some((span) => /\$1/.test(attributes(span)['db.query.text'] ?? '')), 'the SQL, with placeholders');

  // The verification email's job continues the trace, under the request's span.
  const job = found.find((span) => span.kind === 'SPAN_KIND_CONSUMER' && span.name === 'job mail.verify_email');
  assert.ok(job, names);
  assert.equal(hex(job.parentSpanId), requestSpan);
  assert.equal(attributes(job)['liftoff.job.outcome'], 'completed');
  assert.equal(attributes(job)['liftoff.job.attempt'], '1');
  const jobSpan = hex(job.spanId);
  assert.ok(found.some((span) => hex(span.parentSpanId) === jobSpan && isStatement(span)), `the job's statements: ${names}`);
  const smtpSpan = found.find((span) => span.name === 'SMTP send');
  assert.equal(hex(smtpSpan.parentSpanId), jobSpan);
  assert.equal(smtpSpan.kind, 'SPAN_KIND_CLIENT');
  assert.equal(attributes(smtpSpan)['server.address'], '127.0.0.1');
  assert.equal(attributes(smtpSpan)['liftoff.smtp.reply_code'], '250');
  within(smtpSpan, job);

  // ...and the message carries it on, naming the SMTP span as its parent.
  const message = (await smtp.received()).find((m) => m.rcpt_tos.includes(email));
  assert.ok(message, 'the verification email arrived');
  assert.equal(message.traceparent, `00-${trace}-${hex(smtpSpan.spanId)}-01`);

  // No value a user sent is in any span: statements are recorded with their parameters left out.
  const everything = JSON.stringify(found.map((span) => span.attributes));
  assert.ok(!everything.includes(email) && !everything.includes(password), 'no parameter values');
});

test('a session cache lookup and a record list cache lookup are spans that say whether they hit', deadline, async () => {
  const json = (token) => ({ 'Content-Type': 'application/json', Authorization: `Bearer ${token}` });
  const signup = await fetch(`${liftoff.base}/v1/auth/signup`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: `cached-${Date.now()}@telemetry.test`, password: 'a sturdy passphrase', name: 'Cache' }),
  });
  assert.equal(signup.status, 201);
  const { token } = await signup.json();
  const org = await (await fetch(`${liftoff.base}/v1/orgs`, { method: 'POST', headers: json(token), body: '{"name":"Cached"}' })).json();
  const collection = await fetch(`${liftoff.base}/v1/orgs/${org.id}/collections`, {
    method: 'POST',
    headers: json(token),
    body: JSON.stringify({ name: 'notes', fields: [{ name: 'title', type: 'text', required: true }] }),
  });
  assert.equal(collection.status, 201);

  // Each request its own sampled trace: the same list twice, the second from the cache (the
  // session was checked, and cached, by the requests before).
  const traces = ['6bf92f3577b34da6a3ce929d0e0e4738', '7bf92f3577b34da6a3ce929d0e0e4739'];
  for (const trace of traces) {
    const list = await fetch(`${liftoff.base}/v1/orgs/${org.id}/collections/notes/records`, {
      headers: { ...json(token), traceparent: `00-${trace}-00f067aa0ba902b7-01` },
    });
    assert.equal(list.status, 200);
  }
  const lookups = (trace) => spans().filter(({ span }) => hex(span.traceId) === trace && span.name.startsWith('cache ')).map(({ span }) => span);
  const found = await eventually(() => (traces.every((t) => lookups(t).length === 2) ? traces.map(lookups) : undefined));
  assert.ok(found, JSON.stringify(traces.map((t) => lookups(t).map((s) => s.name))));
  const hits = (list) => Object.fromEntries(list.map((span) => [span.name, attributes(span)['liftoff.cache.hit']]));
  assert.deepEqual(hits(found[0]), { 'cache session': true, 'cache record list': false });
  assert.deepEqual(hits(found[1]), { 'cache session': true, 'cache record list': true });
  for (const span of found.flat()) {
    assert.equal(span.kind, 'SPAN_KIND_INTERNAL');
    assert.ok(['session', 'record list'].includes(attributes(span)['liftoff.cache']));
  }
});

test('a collector that is gone costs requests nothing; the spans it lost are counted', deadline, async () => {
  const metric = async () => {
    const text = await (await fetch(`${liftoff.base}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('trace_spans_dropped_total{reason="export_failed"} '));
    return line ? Number(line.split(' ')[1]) : 0;
  };
  const before = await metric();
  await new Promise((resolve) => collector.close(resolve));
  collector.closeAllConnections?.();
  for (let i = 0; i < 20; ++i) {
    const answer = await fetch(`${liftoff.base}/healthz`, { headers: { traceparent: `00-${'ab'.repeat(15)}${String(i).padStart(2, '0')}-00f067aa0ba902b7-01` } });
    assert.equal(answer.status, 200);
  }
  // Each batch the collector did not take: tried once within the exporter's timeout, then counted.
  let after = before;
  const until = Date.now() + 15_000;
  while (after < before + 20 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    after = await metric();
  }
  assert.ok(after >= before + 20, `export_failed went from ${before} to ${after}`);
});
