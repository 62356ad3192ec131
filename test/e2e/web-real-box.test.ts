/**
 * The "done when" journey against the real firmware in the whole-box simulator (onionboxd in its own
 * namespace as on a Pi, with the simulated board, a private Tor network) and Chromium, which reaches the
 * page through the LAN device as the host's browser does under `npm start`. A new owner goes from a
 * fresh box to a claimed, routing box using only the page: once with JavaScript off (meta refresh), once
 * with JavaScript on (live progress). Needs root (namespaces, nft).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { browserContext, CHROMIUM, shot } from '../browser/chromium.js';
import { nodeTsArgs } from '../helpers/node-ts.js';
import { startSimBox } from '../helpers/sim-box.js';

const root = new URL('../../', import.meta.url).pathname;
const PASSWORD = 'violet tractor umbrella 42';
const needs =
  process.env.CI === 'true'
    ? false
    : process.getuid?.() !== 0
      ? 'the simulator needs root'
      : !existsSync(CHROMIUM)
        ? `${CHROMIUM} is not installed`
        : false;

async function claimThroughThePage(t: Test, page: Page, base: string): Promise<void> {
  await page.goto(base);
  t.equal(new URL(page.url()).pathname, '/claim');
  await page.click('button:has-text("Start a claim")');
  t.match(await page.textContent('#claim-id'), /^[A-Z0-9]{4}$/);
  await page.click('nav >> text=Simulator');
  await page.click('text=Press the claim button');
  await page.goto(new URL('/claim', base).href);
  t.match(await page.textContent('#presence'), /was pressed for this browser/);
  await page.fill('#password', PASSWORD);
  await page.fill('#confirm', PASSWORD);
  await page.click('button[type=submit]:has-text("Claim the box")');
  await page.waitForURL(/\/\?done=claimed$/);
}

t.test(
  'JavaScript off: fresh simulated box -> claimed -> routing, using only the page',
  { skip: needs },
  async (t) => {
    const d = await startSimBox(t);
    const context = await browserContext(t, false);
    const page = await context.newPage();
    await claimThroughThePage(t, page, d.address);
    // the page refreshes itself (meta refresh inside <noscript>) until tor is ready and the LAN is routed
    await page.waitForSelector('h1:has-text("Protected")', { timeout: 150_000 });
    t.equal(await page.locator('noscript meta[http-equiv=refresh]').count(), 0);
    await page.waitForSelector('table >> text=Web and apps', { timeout: 30_000 }).catch(() => undefined);
    await shot(page, 'real-status-nojs');
    await page.click('text=New identity');
    await page.waitForSelector('text=new circuits');
    // the leak self-test, a plain form post: every check passes on the real box
    await page.click('nav >> text=Leak test');
    await page.click('#run-leak-test');
    await page.waitForSelector('#leak-headline', { timeout: 60_000 });
    t.equal(await page.textContent('#leak-headline'), 'No leak found: every check passed.');
    t.equal(await page.locator('#leak-checks li[data-outcome="Passed"]').count(), 6);
    await shot(page, 'real-leak-test');
  },
);

t.test('JavaScript on: the same journey, and the box switch shown live', { skip: needs }, async (t) => {
  const d = await startSimBox(t);
  const context = await browserContext(t, true);
  const page = await context.newPage();
  await claimThroughThePage(t, page, d.address);
  // The simulated box bootstraps in seconds: by now it is (nearly) routing.
  await page.waitForSelector('h1:has-text("Protected")', { timeout: 150_000 });
  await shot(page, 'real-status');
  // Live: the box's own switch, flipped from outside the page, changes the headline in place.
  await page.evaluate('window.marker = 1');
  const flip = (on: boolean) =>
    spawnSync(
      process.execPath,
      [
        ...nodeTsArgs(),
        `${root}firmware/cli/main.ts`,
        '--state-dir',
        d.world.boxStateDir,
        'board',
        'switch',
        on ? 'on' : 'off',
      ],
      {
        encoding: 'utf8',
      },
    );
  t.equal(flip(true).status, 0);
  await page.waitForSelector('h1:has-text("Cut off by the switch on the box")', { timeout: 30_000 });
  t.equal(await page.evaluate('window.marker'), 1, 'the headline changed in place (no reload)');
  await shot(page, 'real-status-killed');
  t.equal(flip(false).status, 0);
  await page.waitForSelector('h1:has-text("Protected")', { timeout: 30_000 });
  t.equal(await page.evaluate('window.marker'), 1, 'and back, still without a reload');
});
