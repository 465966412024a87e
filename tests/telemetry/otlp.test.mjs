// Liftoff's spans over OTLP/HTTP, received here and decoded with OpenTelemetry's own schema (the
// opentelemetry-proto .proto files, from npm, read by protobufjs): a request whose traceparent is
// sampled becomes a server span of the caller's trace, child of the caller's span, named by its
// route; an unsampled one becomes nothing; a collector that is gone costs requests nothing and the
// lost spans are counted.
//
// Run by CTest (tests/CMakeLists.txt) with LIFTOFF_BINARY set.
import assert from 'node:assert/strict';
import http from 'node:http';
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

let collector, liftoff;
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
  liftoff = await startLiftoff({
    LIFTOFF_OTLP_ENDPOINT: `http://127.0.0.1:${collector.address().port}`,
    LIFTOFF_TRACE_SAMPLE_RATIO: '0',
  });
}, deadline);

after(async () => {
  await liftoff?.stop();
  collector?.close();
}, deadline);

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
