// What the client costs over raw fetch: sequential GETs of one record, one at a time on one
// keep-alive connection (Node's fetch, undici), raw fetch against records.get() (the client's
// whole path: openapi-fetch, middleware, the retrying fetch, the typed error check) and against
// api.GET (the generated layer alone). The three alternate in rounds so the machine's drift hits
// them alike; each round's calls are timed together; the medians of the rounds are reported.
// Also the bundle a browser loads: dist/liftoff.min.js, minified and gzipped.
//   node bench/overhead.mjs BASE_URL TOKEN ORG RECORD_ID [calls per kind, 10000] [rounds, 10]
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

import { Liftoff, ok } from '../dist/index.js';

const [base, token, org, id, callsArg = '10000', roundsArg = '10'] = process.argv.slice(2);
const calls = Number(callsArg);
const rounds = Number(roundsArg);
const perRound = Math.ceil(calls / rounds);
const url = `${base}/v1/orgs/${org}/collections/tickets/records/${id}`;
const liftoff = new Liftoff({ baseUrl: base, token });
const tickets = liftoff.records(org, 'tickets');

const kinds = {
  'raw fetch': async () => {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) throw new Error(`raw fetch: ${response.status}`);
    return (await response.json()).id;
  },
  'client records.get': async () => (await tickets.get(id)).id,
  'client api.GET': async () =>
    (
      await ok(
        liftoff.api.GET('/v1/orgs/{org}/collections/{collection}/records/{id}', {
          params: { path: { org, collection: 'tickets', id } },
        }),
      )
    ).id,
};

// Each kind answers what it says, and warms up (connections, JIT) before anything is timed.
for (const [name, call] of Object.entries(kinds)) {
  for (let i = 0; i < 500; ++i) if ((await call()) !== id) throw new Error(`${name} read another record`);
}

const perCall = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
for (let round = 0; round < rounds; ++round) {
  for (const [name, call] of Object.entries(kinds)) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < perRound; ++i) await call();
    perCall[name].push(Number(process.hrtime.bigint() - start) / 1e6 / perRound);
  }
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const raw = median(perCall['raw fetch']);
console.log(`${perRound * rounds} sequential GETs of one record per kind, ${rounds} interleaved rounds (median of rounds)`);
for (const [name, values] of Object.entries(perCall)) {
  const m = median(values);
  const extra = name === 'raw fetch' ? '' : `  overhead ${(m - raw).toFixed(3)} ms/call (${(m / raw).toFixed(2)}x)`;
  console.log(`  ${name.padEnd(20)} ${m.toFixed(3)} ms/call  (rounds ${Math.min(...values).toFixed(3)}-${Math.max(...values).toFixed(3)})${extra}`);
}
const bundle = readFileSync(new URL('../dist/liftoff.min.js', import.meta.url));
console.log(`bundle dist/liftoff.min.js: ${bundle.length} bytes minified, ${gzipSync(bundle, { level: 9 }).length} bytes gzipped`);
