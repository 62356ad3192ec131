/**
 * The network page in a real browser (Debian's chromium via playwright-core), with and without
 * JavaScript: scan, a wrong passphrase (field error, name kept, passphrase not echoed), joining, the
 * access point form with every field wrong then right, the LAN devices. Screenshots for the README.
 */
import { existsSync } from 'node:fs';
import type { Page } from 'playwright-core';
import t from 'tap';
import { browserContext, CHROMIUM, liveApp, shot } from '../helpers/chromium.js';

const PASSWORD = 'violet tractor umbrella 42';

async function claim(page: Page, base: string, code: string): Promise<void> {
  await page.goto(`${base}/claim`);
  await page.fill('#code', code);
  await page.fill('#password', PASSWORD);
  await page.fill('#confirm', PASSWORD);
  await page.click('button[type=submit]:has-text("Claim the box")');
  await page.waitForURL(`${base}/?done=claimed`);
}

if (!existsSync(CHROMIUM)) {
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} missing: run scripts/setup`);
  t.plan(0, `${CHROMIUM} is not installed (scripts/setup installs it)`);
} else {
  for (const js of [true, false]) {
    t.test(`network page, JavaScript ${js ? 'on' : 'off'}`, async (t) => {
      const { box, base } = await liveApp(t);
      const context = await browserContext(t, js);
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await claim(page, base, box.claimCode);

      await page.click('nav >> text=Network');
      t.equal(new URL(page.url()).pathname, '/network');
      t.match(await page.textContent('#wan-kind'), /Cable \(Ethernet\)/);
      t.match(await page.textContent('#device-list'), /kitchen-tablet/);
      await page.click('#scan-link');
      t.equal(new URL(page.url()).pathname, '/network/scan');
      t.equal(await page.locator('#scan-list li').count(), 3);
      if (js) await shot(page, 'network');

      // wrong passphrase from the scan list: the form below names the problem, keeps the name
      const home = page.locator('form[data-join]', { has: page.locator('input[name=ssid][value="Home"]') });
      await home.locator('input[name=passphrase]').fill('not the passphrase');
      await home.locator('button').click();
      t.match(await page.textContent('#join-passphrase-error'), /refused this passphrase/);
      t.equal(await page.inputValue('#join-ssid'), 'Home');
      t.equal(await page.inputValue('#join-passphrase'), '', 'the passphrase is not sent back');
      t.equal(box.config.get().network.upstreamWifi, null, 'nothing changed');
      if (js) await shot(page, 'network-join-error');
      await page.fill('#join-passphrase', 'correct horse battery');
      await page.click('text=Join this network');
      await page.waitForURL(`${base}/network?done=wifi-joined`);
      t.match(await page.textContent('#wan-ssid'), /Home, signal 82 %/);
      t.same(box.config.get().network.upstreamWifi, { interface: 'wlan1', ssid: 'Home', hidden: false });

      // the access point: every field wrong, then right
      await page.fill('#ap-ssid', 'é'.repeat(17));
      await page.fill('#ap-passphrase', 'short');
      await page.click("text=Save the box's Wi-Fi");
      t.match(await page.textContent('#ap-ssid-error'), /34 bytes/);
      t.match(await page.textContent('#ap-passphrase-error'), /8 to 63/);
      t.match(await page.textContent('#ap-country-error'), /country/);
      t.equal(await page.inputValue('#ap-ssid'), 'é'.repeat(17), 'input kept');
      t.equal(box.config.get().network.accessPoint, null);
      if (js) await shot(page, 'network-ap-error');
      await page.fill('#ap-ssid', 'Onionbox Küche');
      await page.fill('#ap-passphrase', 'correct horse battery');
      await page.selectOption('#ap-country', 'DE');
      await page.selectOption('#ap-channel', '44');
      await page.selectOption('#ap-security', 'wpa2-wpa3');
      await page.click("text=Save the box's Wi-Fi");
      await page.waitForURL(`${base}/network?done=ap-saved`);
      const { bssid, ...stored } = box.config.get().network.accessPoint ?? { bssid: '' };
      t.same(stored, {
        ssid: 'Onionbox Küche',
        passphrase: 'correct horse battery',
        country: 'DE',
        channel: 44,
        security: 'wpa2-wpa3',
        isolateClients: true,
      });
      // the box's own random BSSID: locally administered, unicast
      t.match(bssid, /^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/);
      t.equal(await page.inputValue('#ap-ssid'), 'Onionbox Küche');
      t.equal(await page.inputValue('#ap-passphrase'), '', 'the stored passphrase is never shown');
      await shot(page, js ? 'network-saved' : 'network-saved-nojs');
      t.same(errors, [], 'no script errors');
    });
  }
}
