/**
 * Debian's chromium driven by playwright-core, one fresh user-data-dir per context, and the real web app
 * listening on 127.0.0.1 (random port) in front of the real box (TestBox: BoxController on a SimBoard,
 * tor and the firewall faked at their interfaces).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import type { Test } from 'tap';
import type { TestBox } from './test-box.js';
import { webHarness } from './web.js';

export const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function browserContext(t: Test, javaScriptEnabled: boolean): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), 'onionbox-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    javaScriptEnabled,
    viewport: { width: 960, height: 900 },
    acceptDownloads: true,
    locale: 'en-GB',
    timezoneId: 'UTC',
  });
  t.teardown(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  return context;
}

export interface LiveApp {
  app: FastifyInstance;
  box: TestBox;
  base: string;
  logs: () => string;
}

/** The web harness's app (web.ts) listening on 127.0.0.1, a free port, for the browser. */
export async function liveApp(t: Test): Promise<LiveApp> {
  const { app, box, logs } = await webHarness(t);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return { app, box, base: `http://127.0.0.1:${port}`, logs };
}

/**
 * Screenshots: into docs/screenshots/ (shown in the README) with ONIONBOX_UPDATE_SCREENSHOTS=1, else into
 * test/artifacts/screenshots/ so a test run leaves the tree clean.
 */
export async function shot(page: Page, name: string): Promise<void> {
  const root = new URL('../../', import.meta.url).pathname;
  const dir =
    process.env.ONIONBOX_UPDATE_SCREENSHOTS === '1'
      ? join(root, 'docs/screenshots')
      : join(root, 'test/artifacts/screenshots');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}
