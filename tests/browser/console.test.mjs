// The operators' console (/console; docs/decisions/0025-operators-console.md) in headless Chromium
// against a real Liftoff: a user who is not a platform operator is turned away at sign-in; an
// operator (granted with `liftoff operators grant`) sees the live charts draw this server's own
// traffic, finds an organization and a user, and reads the business figures. No page may log a
// console error or fail a request. Screenshots of each view are kept in LIFTOFF_ARTIFACTS
// (build/dev/artifacts/console-*.png when CTest runs it).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import puppeteer from 'puppeteer-core';

import { startLiftoff } from '../support/liftoff.mjs';

const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const artifacts =
  process.env.LIFTOFF_ARTIFACTS ?? fileURLToPath(new URL('../../build/dev/artifacts', import.meta.url));
const deadline = { timeout: 120_000 };
const password = 'a long enough password';

let liftoff, browser, page, customer, acme;
const problems = []; // console errors, page errors and failed requests, from every page
const tokens = []; // the sessions the page signed in with, in order

async function signUp(email, name) {
  const res = await fetch(`${liftoff.base}/v1/auth/signup`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password, name }),
  });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  return JSON.parse(text);
}

before(async () => {
  // Statements of 1 ms or more are slow: the database view has some to show.
  liftoff = await startLiftoff({ LIFTOFF_SLOW_STATEMENT_THRESHOLD: '1ms' });
  await signUp('operator@example.com', 'Olga Operator');
  customer = await signUp('customer@example.com', 'Carl Customer');
  const org = await fetch(`${liftoff.base}/v1/orgs`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${customer.token}` },
    body: JSON.stringify({ name: 'Acme Anvils' }),
  });
  assert.equal(org.status, 201);
  acme = await org.json();
  const granted = await liftoff.command(['operators', 'grant', '--email', 'operator@example.com']);
  assert.equal(granted.code, 0, granted.output);

  browser = await puppeteer.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  page.on('console', (msg) => {
    // Chromium logs each answer of 4xx as an error: the refused sign-in's 403 is the one expected.
    const refusal = msg.location()?.url?.endsWith('/v1/operator/me') && msg.text().includes('403');
    if (msg.type() === 'error' && !refusal) problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page: ${error.message}`));
  page.on('requestfailed', (req) => {
    // Chromium ends a fetch answered 204 (the sign-out's) as net::ERR_ABORTED after its answer.
    if (req.response()?.status() !== 204) problems.push(`request: ${req.url()} ${req.failure()?.errorText}`);
  });
  page.on('response', async (res) => {
    if (res.url().endsWith('/v1/auth/login') && res.status() === 200) tokens.push((await res.json()).token);
    if (res.status() >= 400 && !res.url().endsWith('/v1/operator/me')) problems.push(`response: ${res.status()} ${res.url()}`);
  });
  mkdirSync(artifacts, { recursive: true });
}, deadline);

after(async () => {
  await browser?.close();
  await liftoff?.stop();
}, deadline);

async function signIn(email) {
  await page.waitForSelector('#login', { visible: true });
  await page.$eval('#login-form [name=email]', (input) => (input.value = ''));
  await page.type('#login-form [name=email]', email);
  await page.$eval('#login-form [name=password]', (input) => (input.value = ''));
  await page.type('#login-form [name=password]', password);
  await page.click('#login-form button');
}

test('a user who is not a platform operator is turned away at sign-in', deadline, async () => {
  await page.goto(`${liftoff.base}/console`);
  await signIn('customer@example.com');
  await page.waitForFunction(() => document.querySelector('#login-error').textContent !== '');
  assert.equal(await page.$eval('#login-error', (e) => e.textContent), 'This account is not a platform operator.');
  assert.equal(await page.$eval('#nav', (e) => e.hidden), true);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('liftoff.console.token')), null);
  // The refused session was ended, not only forgotten: its token no longer signs anything.
  assert.ok(tokens.length === 1, 'one sign-in answered');
  for (let i = 0; i < 50; ++i) {
    const res = await fetch(`${liftoff.base}/v1/sessions`, { headers: { Authorization: `Bearer ${tokens[0]}` } });
    if (res.status === 401) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(i < 49, 'the refused session was logged out');
  }
});

test('an operator signs in and the live charts draw this server\'s traffic', deadline, async () => {
  await signIn('operator@example.com');
  await page.waitForSelector('#overview', { visible: true });
  assert.equal(await page.$eval('#who', (e) => e.textContent), 'operator@example.com');

  // Traffic while the charts read /metrics: requests answered 200 and 404.
  const traffic = setInterval(() => {
    for (let i = 0; i < 20; ++i) fetch(`${liftoff.base}/healthz`).catch(() => {});
    fetch(`${liftoff.base}/v1/no-such-route`).catch(() => {});
  }, 100);
  try {
    await page.waitForFunction(
      () => {
        const points = (id) => Number(document.querySelector(id).dataset.points ?? 0);
        return points('#chart-requests') >= 3 && points('#chart-latency') >= 3 && points('#chart-database') >= 3;
      },
      { timeout: 30_000 },
    );
  } finally {
    clearInterval(traffic);
  }
  // The latest rates are what the server counted: requests, and the 404s among them.
  const latest = await page.$eval('#chart-requests .latest', (e) => e.textContent);
  const rate = (name) => Number(new RegExp(`${name}: ([0-9.]+)`).exec(latest)?.[1]);
  assert.ok(rate('all') > 50, latest);
  assert.ok(rate('4xx') > 1, latest);
  assert.ok(await page.$$eval('#chart-requests polyline', (lines) => lines.length) >= 3);
  const latency = await page.$eval('#chart-latency .latest', (e) => e.textContent);
  assert.match(latency, /p50: [0-9.]+, p95: [0-9.]+, p99: [0-9.]+/);
  assert.match(await page.$eval('#chart-replicas .latest', (e) => e.textContent), /No replicas configured/);
  assert.match(await page.$eval('#chart-jobs .latest', (e) => e.textContent), /ready: [0-9.]+, running: [0-9.]+/);
  await page.screenshot({ path: path.join(artifacts, 'console-overview.png'), fullPage: true });
});

test('the operator finds an organization, sets its plan, and finds a user', deadline, async () => {
  await page.click('nav a[href="#orgs"]');
  await page.waitForSelector('#orgs', { visible: true });
  await page.type('#orgs [name=q]', 'ANVIL');
  await page.click('#orgs form button');
  await page.waitForFunction(() => document.querySelector('#orgs-rows tr td')?.textContent === 'Acme Anvils');
  const row = await page.$eval('#orgs-rows tr', (r) => [...r.cells].map((c) => c.textContent));
  assert.deepEqual(row.slice(0, 4), ['Acme Anvils', 'free', '1', 'main']);
  assert.equal(row[5], 'active');

  // Suspended from its row, with a reason asked in a dialog: the customer is refused at once.
  await page.click('button[aria-label="Suspend Acme Anvils"]');
  await page.waitForSelector('#suspend-dialog[open]');
  await page.type('#suspend-form [name=reason]', 'unpaid invoices');
  await page.click('#suspend-form button[value=suspend]');
  await page.waitForFunction(() => document.querySelector('#orgs-rows tr').cells[5].textContent.startsWith('suspended'));
  assert.match(await page.$eval('#orgs-rows tr', (r) => r.cells[5].textContent), /^suspended \d{4}-\d\d-\d\d: unpaid invoices$/);
  const asCustomer = () => fetch(`${liftoff.base}/v1/orgs/${acme.id}`, { headers: { Authorization: `Bearer ${customer.token}` } });
  assert.equal((await asCustomer()).status, 403);
  await page.screenshot({ path: path.join(artifacts, 'console-orgs.png'), fullPage: true });
  await page.click('button[aria-label="Restore Acme Anvils"]');
  await page.waitForFunction(() => document.querySelector('#orgs-rows tr').cells[5].textContent === 'active');
  assert.equal((await asCustomer()).status, 200);

  // Its page: plan, limits and usage; the operator puts it on a contract (Enterprise, 50 seats).
  await page.click('#orgs-rows a');
  await page.waitForFunction(() => document.querySelector('#chart-org-requests').dataset.points === '30');
  assert.equal(await page.$eval('#org-title', (e) => e.textContent), 'Acme Anvils');
  const orgFigures = async () =>
    page.$$eval('#org-figures div', (divs) =>
      Object.fromEntries(divs.map((d) => [d.querySelector('dt').textContent, d.querySelector('dd').textContent])),
    );
  assert.deepEqual(
    Object.entries(await orgFigures()).slice(0, 4),
    [['Plan', 'free'], ['Price a month', '$0.00'], ['Members', '1'], ['Shard', 'main']],
  );
  const seats = () => page.$$eval('#org-limits tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)).find((c) => c[0] === 'seats'));
  assert.deepEqual(await seats(), ['seats', '1', '5', '20.0%']);
  await page.type('#plan-form [name=limits]', 'fifty seats');
  await page.click('#plan-form button');
  await page.waitForFunction(() => document.querySelector('#plan-status').textContent !== '');
  assert.match(await page.$eval('#plan-status', (e) => e.textContent), /not JSON/);
  await page.select('#plan-form [name=plan]', 'enterprise');
  await page.$eval('#plan-form [name=limits]', (input) => (input.value = '{"seats": 50}'));
  await page.click('#plan-form button');
  await page.waitForFunction(() => document.querySelector('#plan-status').textContent === 'The plan is enterprise.');
  assert.equal((await orgFigures()).Plan, 'enterprise');
  assert.deepEqual(await seats(), ['seats', '1', '50 (contract)', '2.0%']);
  const customersPlan = await fetch(`${liftoff.base}/v1/orgs/${acme.id}/plan`, { headers: { Authorization: `Bearer ${customer.token}` } });
  assert.equal((await customersPlan.json()).plan, 'enterprise');
  await page.screenshot({ path: path.join(artifacts, 'console-org.png'), fullPage: true });

  await page.click('nav a[href="#users"]');
  await page.waitForSelector('#users', { visible: true });
  await page.type('#users [name=q]', 'carl');
  await page.click('#users form button');
  await page.waitForFunction(() => document.querySelector('#users-rows tr td')?.textContent === 'customer@example.com');
  const user = await page.$eval('#users-rows tr', (r) => [...r.cells].map((c) => c.textContent));
  assert.deepEqual(user.slice(0, 4), ['customer@example.com', 'Carl Customer', 'no', '1']);
});

test('the database view shows slow statements, the statements with the most time and index advice', deadline, async () => {
  await page.click('nav a[href="#database"]');
  await page.waitForFunction(() => document.querySelector('#slow-note').textContent !== '');
  assert.match(await page.$eval('#slow-note', (e) => e.textContent), /^Statements of 1 ms or more/);
  // This server's slow statements: each names its statement and node, and opens to its SQL.
  for (let i = 0; i < 20 && !(await page.$('#slow-rows details')); ++i) {
    await page.click('nav a[href="#overview"]');
    await page.click('nav a[href="#database"]');
    await page.waitForFunction(() => document.querySelector('#slow-rows tr'));
    if (!(await page.$('#slow-rows details'))) await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const slow = await page.$eval('#slow-rows tr', (r) => [...r.cells].map((c) => c.textContent));
  assert.match(slow[0], /^[a-z_]+\.[a-z_]+/, `a statement's name: ${slow}`);
  assert.match(slow[1], /primary/);
  assert.ok(Number(slow[2].replaceAll(',', '')) >= 1, slow[2]);

  // Advice on every cluster (creating pg_stat_statements and hypopg in the embedded PostgreSQL),
  // then the statements with the most time, which pg_stat_statements now counts.
  await page.click('#advise');
  await page.waitForFunction(() => document.querySelector('#advice-status').textContent.startsWith('Advised'), { timeout: 60_000 });
  assert.equal(await page.$$eval('#advice .cluster', (c) => c.map((e) => e.dataset.cluster).join()), 'main');
  assert.equal(await page.$('#advice .cluster .error'), null, await page.$eval('#advice', (e) => e.textContent));
  assert.match(await page.$eval('#advice .cluster .note', (e) => e.textContent), /^\d+ statements considered/);
  await page.waitForFunction(() => document.querySelector('#statements .cluster[data-cluster=main] td.sql'));
  const top = await page.$eval('#statements .cluster tbody tr', (r) => [...r.cells].map((c) => c.textContent));
  assert.match(top[0], /^(SELECT|WITH|INSERT|UPDATE|DELETE)/i);
  assert.match(top[4], /^\d+\.\d%$/);
  await page.screenshot({ path: path.join(artifacts, 'console-database.png'), fullPage: true });
});

test('the business view counts signups, active users and organizations by plan', deadline, async () => {
  await page.click('nav a[href="#business"]');
  await page.waitForFunction(() => document.querySelector('#chart-signups').dataset.points === '30');
  const figures = await page.$$eval('#business-figures div', (divs) =>
    Object.fromEntries(divs.map((d) => [d.querySelector('dt').textContent, d.querySelector('dd').textContent])),
  );
  assert.equal(figures.Users, '2');
  assert.equal(figures.Organizations, '1');
  assert.equal(figures['Active today'], '2');
  assert.equal(figures['Conversion to paid'], '100.0%'); // Acme is on Enterprise now
  assert.match(await page.$eval('#chart-signups .latest', (e) => e.textContent), /^2 signups in 30 days/);
  const plans = await page.$$eval('#plans-rows tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  assert.deepEqual(plans, [['enterprise', '1', '100.0%']]);
  // This month's signups converted: Acme, created this month, is on Enterprise now.
  const cohorts = await page.$$eval('#cohort-rows tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  assert.equal(cohorts.length, 12);
  assert.deepEqual(cohorts[0], [new Date().toISOString().slice(0, 7), '1', '0', '1', '100.0%', 'enterprise 1']);
  assert.deepEqual(cohorts[1].slice(1, 5), ['0', '0', '0', '-']);
  await page.screenshot({ path: path.join(artifacts, 'console-business.png'), fullPage: true });
});

test('signing out ends the session; no page logged an error or failed a request', deadline, async () => {
  await page.click('#signout');
  await page.waitForSelector('#login', { visible: true });
  assert.equal(await page.evaluate(() => sessionStorage.getItem('liftoff.console.token')), null);
  assert.deepEqual(problems, []);
});
