// The example web page (clients/typescript/example), built with the typed client, in headless
// Chromium against a real Liftoff: a user signs up on the page, which makes an org and its
// `tickets` collection; a colleague invited from here adds and changes tickets through the client
// in Node, and the page shows each change live; the page filters, adds and closes tickets, and
// shows the server's problem details. A screenshot of the end is kept in LIFTOFF_ARTIFACTS
// (build/dev/artifacts/example-app.png when CTest runs it).
//
// Run by CTest after client_typescript, which builds the client's bundle the page loads.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import puppeteer from 'puppeteer-core';

import { Liftoff, ok } from '../../clients/typescript/dist/index.js';
import { startExample } from '../../clients/typescript/example/serve.mjs';
import { startLiftoff } from '../support/liftoff.mjs';

const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const artifacts =
  process.env.LIFTOFF_ARTIFACTS ?? fileURLToPath(new URL('../../build/dev/artifacts', import.meta.url));
const deadline = { timeout: 120_000 };
const password = 'a long enough password';

let liftoff, example, browser, page;

before(async () => {
  liftoff = await startLiftoff();
  example = await startExample({ api: liftoff.base, port: 0 });
  browser = await puppeteer.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 700 });
}, deadline);

after(async () => {
  await browser?.close();
  await example?.close();
  await liftoff?.stop();
}, deadline);

// The titles in the page's table, top to bottom.
const titles = () => page.$$eval('#tickets tr', (rows) => rows.map((r) => r.cells[0].textContent));
// Waits until the page's table holds exactly `expected` (in any order).
async function waitForTitles(expected) {
  const sorted = [...expected].sort();
  await page
    .waitForFunction(
      (want) => JSON.stringify([...document.querySelectorAll('#tickets tr')].map((r) => r.cells[0].textContent).sort()) === want,
      { timeout: 15_000 },
      JSON.stringify(sorted),
    )
    .catch(async () => assert.deepEqual((await titles()).sort(), sorted));
}

let colleague, tickets;

test('a user signs up on the page, which makes the org and its tickets collection', deadline, async () => {
  await page.goto(example.url);
  await page.waitForSelector('#sign-in', { visible: true });
  await page.type('#sign-in [name=email]', 'owner@example.com');
  await page.type('#sign-in [name=password]', password);
  await page.type('#sign-in [name=name]', 'Page Owner');
  await page.click('#sign-in [name=signup]');
  await page.waitForSelector('#workspace', { visible: true });
  await page.waitForSelector('#sign-in', { hidden: true });
  assert.equal(await page.$eval('#who', (e) => e.textContent), 'owner@example.com');
  assert.equal(await page.$eval('#org', (e) => e.textContent), 'Example Co (owner)');

  // A colleague joins: invited with the page's session, signed up and accepted through the client.
  const owner = new Liftoff({ baseUrl: liftoff.base, token: await page.evaluate(() => sessionStorage.getItem('liftoff.token')) });
  const { orgs } = await ok(owner.api.GET('/v1/orgs'));
  const invitation = await ok(
    owner.api.POST('/v1/orgs/{org}/invitations', {
      params: { path: { org: orgs[0].id } },
      body: { email: 'colleague@example.com', role: 'member' },
    }),
  );
  colleague = new Liftoff({ baseUrl: liftoff.base });
  await colleague.signup({ email: 'colleague@example.com', password, name: 'Colleague' });
  await ok(colleague.api.POST('/v1/invitations/accept', { body: { token: invitation.token } }));
  tickets = colleague.records(orgs[0].id, 'tickets');
});

test('the page adds tickets, and shows the colleague\'s as they are made, changed and deleted', deadline, async () => {
  await page.type('#new-ticket [name=title]', 'Printer on fire');
  await page.click('#new-ticket button');
  await waitForTitles(['Printer on fire']);

  const vpn = await tickets.create({ title: 'VPN drops', priority: 3 });
  const wifi = await tickets.create({ title: 'Wifi slow', priority: 7 });
  await waitForTitles(['Printer on fire', 'VPN drops', 'Wifi slow']);
  await tickets.update(vpn.id, { title: 'VPN drops hourly' }, { ifMatch: vpn });
  await waitForTitles(['Printer on fire', 'VPN drops hourly', 'Wifi slow']);
  await tickets.delete(wifi.id);
  await waitForTitles(['Printer on fire', 'VPN drops hourly']);
});

test('a filter narrows the list and the live changes', deadline, async () => {
  await page.type('#search [name=filter]', 'priority >= 3');
  await page.click('#search button');
  await waitForTitles(['VPN drops hourly']);
  await tickets.create({ title: 'Low priority', priority: 1 });
  await tickets.create({ title: 'Server down', priority: 9 });
  await waitForTitles(['VPN drops hourly', 'Server down']);
});

test('closing a ticket writes at the version shown; a bad filter shows the server\'s detail', deadline, async () => {
  const [title, version] = await page.$eval('#tickets tr:last-child', (r) => [r.cells[0].textContent, Number(r.cells[3].textContent)]);
  await page.click('#tickets tr:last-child button');
  await page.waitForFunction(() => [...document.querySelectorAll('#tickets tr')].some((r) => r.cells[1].textContent === 'closed'));
  const closed = await page.$$eval('#tickets tr', (rows) =>
    rows.filter((r) => r.cells[1].textContent === 'closed').map((r) => [r.cells[0].textContent, r.cells[3].textContent]),
  );
  assert.deepEqual(closed, [[title, String(version + 1)]]);

  await page.$eval('#search [name=filter]', (input) => (input.value = 'priority >'));
  await page.click('#search button');
  await page.waitForSelector('#error', { visible: true });
  assert.match(await page.$eval('#error', (e) => e.textContent), /filter: expected a value/);

  mkdirSync(artifacts, { recursive: true });
  await page.$eval('#search [name=filter]', (input) => (input.value = ''));
  await page.click('#search button');
  await page.waitForSelector('#error', { hidden: true });
  await waitForTitles(['Printer on fire', 'VPN drops hourly', 'Low priority', 'Server down']);
  await page.screenshot({ path: path.join(artifacts, 'example-app.png'), fullPage: true });
});
