/**
 * The "done when" journey against the real firmware: onionboxd --simulate (BoxController, simulated
 * board, firewall in its own namespace, a private Tor network) and Chromium. A new owner goes from a
 * fresh box to a claimed, routing box using only the page: once with JavaScript off (meta refresh), once
 * with JavaScript on (live progress). Needs root (namespaces, nft).
 */
import { existsSync } from 'node:fs';
import type { Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { browserContext, CHROMIUM, shot } from '../browser/chromium.js';
import { startDaemon } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/tmp.js';

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
    const d = await startDaemon(
      t,
      ['--simulate', '--state-dir', tmpDir(t), '--listen', '127.0.0.1:0'],
      60_000,
    );
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
  },
);

t.test(
  'JavaScript on: the same journey with live progress, and the box switch shown live',
  { skip: needs },
  async (t) => {
    const d = await startDaemon(
      t,
      ['--simulate', '--state-dir', tmpDir(t), '--listen', '127.0.0.1:0'],
      60_000,
    );
    const context = await browserContext(t, true);
    const page = await context.newPage();
    await claimThroughThePage(t, page, d.address);
    await page.evaluate('window.marker = 1');
    const first = (await page.textContent('h1')) ?? '';
    const headlines = new Set<string>();
    let liveChange = false;
    const started = Date.now();
    while (Date.now() - started < 150_000) {
      const h1 = (await page.textContent('h1').catch(() => '')) ?? '';
      headlines.add(h1);
      if (h1 !== first && !h1.startsWith('Protected') && (await page.evaluate('window.marker')) === 1)
        liveChange = true;
      if (h1.startsWith('Protected')) break;
      await page.waitForTimeout(200);
    }
    t.ok(
      [...headlines].some((h) => h.startsWith('Protected')),
      `reached routing (saw: ${[...headlines].join(' | ')})`,
    );
    t.ok(liveChange, 'the headline changed in place (no reload) while tor connected');
    await shot(page, 'real-status');
    await page.click('nav >> text=Simulator');
    await page.click('text=Flip the switch on');
    await page.click('nav >> text=Status');
    await page.waitForSelector('h1:has-text("Cut off by the switch on the box")', { timeout: 30_000 });
    await shot(page, 'real-status-killed');
  },
);
