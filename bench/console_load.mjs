// The operators' console's load (issue 23): its sign-in page opened in headless Chromium (Debian's,
// driven by puppeteer-core from tests/browser) against a Liftoff of its own, on loopback and on
// Chromium's emulated "Fast 3G" and "Slow 3G" links, cold (no cache) and warm (revalidated: 304s).
// For each: the median over ROUNDS loads of the time to the `load` event and to the sign-in form
// shown, and the bytes the page's requests took on the wire (headers included). Then, signed in as an
// operator, the overview's first chart drawn (two reads of /metrics, 2 s apart by design) and the
// organizations view's search answered.
//
// Run by bench/run-console with LIFTOFF_BINARY set (the release build).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startLiftoff } from '../tests/support/liftoff.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { default: puppeteer, PredefinedNetworkConditions } = await import(
  path.join(here, '../tests/browser/node_modules/puppeteer-core/lib/esm/puppeteer/puppeteer-core.js')
);
const rounds = Number(process.env.ROUNDS ?? 5);
const password = 'a long enough password';
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const liftoff = await startLiftoff({ LIFTOFF_RATE_LIMITS: 'false' });
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  await fetch(`${liftoff.base}/v1/auth/signup`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: 'operator@example.com', password, name: 'Operator' }),
  });
  const granted = await liftoff.command(['operators', 'grant', '--email', 'operator@example.com']);
  if (granted.code !== 0) throw new Error(granted.output);

  const page = await browser.newPage();
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  let bytes = 0;
  cdp.on('Network.loadingFinished', (event) => (bytes += event.encodedDataLength));

  console.log(`# the console's sign-in page, median of ${rounds} loads each`);
  console.log('link       cache  load (ms)  form shown (ms)  bytes on the wire');
  for (const [name, conditions] of [
    ['loopback', null],
    ['Fast 3G', PredefinedNetworkConditions['Fast 3G']],
    ['Slow 3G', PredefinedNetworkConditions['Slow 3G']],
  ]) {
    await page.emulateNetworkConditions(conditions);
    for (const cache of ['cold', 'warm']) {
      await page.setCacheEnabled(cache === 'warm');
      if (cache === 'warm') await page.goto(`${liftoff.base}/console`, { waitUntil: 'load' }); // fills it
      const loads = [];
      const shown = [];
      const sizes = [];
      for (let i = 0; i < rounds; ++i) {
        bytes = 0;
        const started = performance.now();
        await page.goto(`${liftoff.base}/console`, { waitUntil: 'load' });
        loads.push(performance.now() - started);
        await page.waitForSelector('#login-form', { visible: true });
        shown.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 50)); // the last loadingFinished
        sizes.push(bytes);
      }
      console.log(
        `${name.padEnd(10)} ${cache.padEnd(5)}  ${median(loads).toFixed(0).padStart(9)}  ` +
          `${median(shown).toFixed(0).padStart(15)}  ${String(median(sizes)).padStart(17)}`,
      );
    }
  }

  await page.emulateNetworkConditions(null);
  await page.setCacheEnabled(true);
  await page.goto(`${liftoff.base}/console`, { waitUntil: 'load' });
  await page.type('#login-form [name=email]', 'operator@example.com');
  await page.type('#login-form [name=password]', password);
  let started = performance.now();
  await page.click('#login-form button');
  await page.waitForFunction(() => Number(document.querySelector('#chart-requests').dataset.points ?? 0) >= 1);
  console.log(`# signed in to the first chart drawn (two reads of /metrics, 2 s apart): ${(performance.now() - started).toFixed(0)} ms`);
  await page.click('nav a[href="#orgs"]');
  await page.waitForSelector('#orgs', { visible: true });
  started = performance.now();
  await page.click('#orgs form button');
  await page.waitForSelector('#orgs-rows tr');
  console.log(`# an organizations search answered and drawn: ${(performance.now() - started).toFixed(0)} ms`);
} finally {
  await browser.close();
  await liftoff.stop();
}
