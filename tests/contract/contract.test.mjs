// The server's answers against docs/openapi.json: every exchange the e2e suite had with a real
// Liftoff (recorded by tests/support/http_client.cpp into LIFTOFF_CONTRACT_LOG, one JSON object a
// line) must be one the document describes:
//   - its path and method name a documented operation (a path no route serves answers 404 or 405);
//   - its status is one of the operation's responses (or the operation's 4XX/5XX/default);
//   - its content type is one the response declares, and a response that declares none has no body;
//   - a JSON body (application/json, application/problem+json) validates against the response's
//     schema (JSON Schema 2020-12, as OpenAPI 3.1 says; formats checked); a compressed one is not
//     recorded, so not checked.
// Failures are grouped by operation and answer, each with the first exchange that showed it.
//
// Run by CTest (openapi_contract, after e2e_tests) as: node --test contract.test.mjs, with
// LIFTOFF_CONTRACT_LOG naming the exchanges.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const here = path.dirname(fileURLToPath(import.meta.url));
const documentPath = path.join(here, '../../docs/openapi.json');
const document = JSON.parse(readFileSync(documentPath, 'utf8'));
const methods = ['get', 'put', 'post', 'delete', 'patch'];

// "#/a/b~1c" -> the value it points to in the document.
function resolve(pointer) {
  return pointer
    .slice(2)
    .split('/')
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((node, key) => node?.[key], document);
}
const escape = (key) => key.replaceAll('~', '~0').replaceAll('/', '~1');

// Each documented path as a pattern; literal segments before parameters, so /v1/orgs/{org}/plan
// wins over /v1/orgs/{org}/{anything} when both match.
const templates = Object.keys(document.paths)
  .map((template) => {
    const segments = template.split('/');
    const pattern = segments
      .map((s) => (s.startsWith('{') ? '[^/]+' : s.replace(/[.*+?^$()|[\]\\]/g, '\\$&')))
      .join('/');
    return {
      template,
      regex: new RegExp(`^${pattern}$`),
      literals: segments.filter((s) => !s.startsWith('{')).length,
    };
  })
  .sort((a, b) => b.literals - a.literals);

function operationOf(pathname) {
  return templates.find(({ regex }) => regex.test(pathname))?.template;
}

// The documented response of `operation` for `status`, and its JSON pointer.
function responseOf(template, method, status) {
  const base = `#/paths/${escape(template)}/${method}/responses`;
  const responses = resolve(base);
  for (const key of [String(status), `${String(status)[0]}XX`, 'default']) {
    if (!responses?.[key]) continue;
    let pointer = `${base}/${escape(key)}`;
    while (resolve(pointer).$ref) pointer = resolve(pointer).$ref;
    return { pointer, response: resolve(pointer) };
  }
  return undefined;
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(document, 'openapi.json');
const validators = new Map();
function validatorFor(schemaPointer) {
  if (!validators.has(schemaPointer)) {
    validators.set(schemaPointer, ajv.compile({ $ref: `openapi.json${schemaPointer}` }));
  }
  return validators.get(schemaPointer);
}

// What is wrong with one exchange, as [kind, detail]; undefined when the document describes it.
export function check(exchange) {
  const { method, status } = exchange;
  const verb = method.toLowerCase();
  if (!methods.includes(verb)) return undefined; // OPTIONS, HEAD: CORS and probes, not operations
  const pathname = new URL(exchange.target, 'http://liftoff').pathname;
  const template = operationOf(pathname);
  if (!template) {
    return status === 404 ? undefined : [`${method} (no documented path) -> ${status}`, pathname];
  }
  const operation = `${method} ${template}`;
  if (!document.paths[template][verb]) {
    return status === 405 || status === 404 ? undefined : [`${operation} (undocumented) -> ${status}`, ''];
  }
  const found = responseOf(template, verb, status);
  if (!found) return [`${operation} -> ${status}: status not documented`, ''];
  const contentType = (exchange.content_type ?? '').split(';')[0].trim();
  const declared = found.response.content ?? {};
  if (Object.keys(declared).length === 0) {
    if (exchange.body) return [`${operation} -> ${status}: a body the document does not declare`, contentType];
    return undefined;
  }
  if (!declared[contentType]) {
    return [`${operation} -> ${status}: content type ${contentType || '(none)'} not documented`, ''];
  }
  const schema = declared[contentType].schema;
  const json = /^application\/([a-z.-]+\+)?json$/.test(contentType);
  if (!schema || !json || exchange.body === undefined) return undefined;
  let body;
  try {
    body = JSON.parse(exchange.body);
  } catch {
    return [`${operation} -> ${status}: not JSON`, exchange.body.slice(0, 200)];
  }
  const validate = validatorFor(`${found.pointer}/content/${escape(contentType)}/schema`);
  if (validate(body)) return undefined;
  const errors = validate.errors.map((e) => `${e.instancePath || '/'} ${e.message}`);
  return [`${operation} -> ${status}: body does not match its schema`, errors.slice(0, 5).join('; ')];
}

test('every answer the e2e suite received is one docs/openapi.json describes', () => {
  const log = process.env.LIFTOFF_CONTRACT_LOG;
  assert.ok(log, 'LIFTOFF_CONTRACT_LOG names the e2e suite exchanges');
  const exchanges = readFileSync(log, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line));
  // The e2e suite makes thousands of requests; far fewer means it did not run or record.
  assert.ok(exchanges.length > 1000, `only ${exchanges.length} exchanges recorded in ${log}`);
  const failures = new Map(); // kind -> { count, example }
  for (const exchange of exchanges) {
    const problem = check(exchange);
    if (!problem) continue;
    const [kind, detail] = problem;
    const seen = failures.get(kind) ?? { count: 0, example: `${exchange.method} ${exchange.target}: ${detail}` };
    seen.count += 1;
    failures.set(kind, seen);
  }
  const report = [...failures.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, { count, example }]) => `${kind} (${count}x)\n    e.g. ${example}`);
  assert.equal(report.length, 0, `${report.length} kinds of answers the document does not describe:\n${report.join('\n')}`);
});

// The checker itself: answers the document does not describe are caught.
test('answers the document does not describe are caught', () => {
  const problem = (status) =>
    JSON.stringify({ type: 'urn:liftoff:problem:x', title: 'X', status, detail: 'x', request_id: 'r' });
  const described = { method: 'GET', target: '/healthz', status: 200, content_type: 'application/json', body: '{"status":"ok"}' };
  assert.equal(check(described), undefined);
  // A status the operation does not list.
  assert.match(check({ ...described, status: 418, body: problem(418) })[0], /status not documented/);
  // A path no operation has, answered other than 404.
  assert.match(check({ ...described, target: '/v1/nowhere', status: 200 })[0], /no documented path/);
  assert.equal(check({ ...described, target: '/v1/nowhere', status: 404, content_type: 'application/problem+json', body: problem(404) }), undefined);
  // A content type the response does not declare.
  assert.match(check({ ...described, content_type: 'text/html' })[0], /content type text\/html/);
  // A body that breaks the response's schema: a problem without its required members.
  const bad = check({ method: 'GET', target: '/v1/me', status: 401, content_type: 'application/problem+json', body: '{"detail":1}' });
  assert.match(bad[0], /body does not match its schema/);
});
