/**
 * The page in a real browser (Debian's chromium via playwright-core) against the real app on 127.0.0.1:
 * claim, login, wrong password, CSRF rejection, each settings form valid and invalid, live progress with
 * JavaScript, and the whole journey again with JavaScript off. Screenshots of every page.
 */
import { existsSync } from 'node:fs';
import t from 'tap';
import { PRESS_SHOWN_MS } from '../../firmware/owner/claim.js';
import { browserContext, CHROMIUM, liveApp, shot } from '../helpers/chromium.js';
import { BRIDGE } from '../helpers/web.js';

const PASSWORD = 'violet tractor umbrella 42';

if (!existsSync(CHROMIUM)) {
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} missing: run scripts/setup`);
  t.plan(0, `${CHROMIUM} is not installed (scripts/setup installs it)`);
} else {
  t.test('with JavaScript: claim by button, live progress, settings, CSRF, login', async (t) => {
    const { box, base, logs } = await liveApp(t);
    const context = await browserContext(t, true);
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      // HTTP 4xx answers are expected here (and asserted); anything else, e.g. a CSP refusal, is not.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource'))
        consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    if (process.env.DEBUG_E2E) {
      page.on('framenavigated', (f) => process.stderr.write(`NAV ${f.url()}\n`));
      page.on('response', async (r) =>
        process.stderr.write(
          `RES ${r.status()} ${r.request().method()} ${r.url()} ${r.status() === 400 ? (await r.text()).match(/role="alert"[^<]*/g) : ''} ${r.request().postData() ?? ''}\n`,
        ),
      );
      page.on('requestfailed', (r) => process.stderr.write(`FAIL ${r.url()} ${r.failure()?.errorText}\n`));
    }

    await page.goto(`${base}/`);
    t.equal(new URL(page.url()).pathname, '/claim');
    t.match(await page.textContent('main'), /has not been claimed yet/);
    await shot(page, 'claim');

    // no presence yet: refused with a field error, typed code kept
    await page.fill('#code', 'WRONG1');
    await page.fill('#password', PASSWORD);
    await page.fill('#confirm', PASSWORD);
    await page.click('button[type=submit]:has-text("Claim the box")');
    t.match(await page.textContent('#code-error'), /not the code/);
    t.equal(await page.inputValue('#code'), 'WRONG1');
    t.equal(box.config.get().web.passwordHash, null);
    await shot(page, 'claim-error');

    // start a claim: the OLED shows its id beside the code; then press the button on the simulator panel
    await page.click('button:has-text("Start a claim")');
    const claimId = await page.textContent('#claim-id');
    t.equal(claimId, box.oledClaimId, 'the page and the OLED show the same claim id');
    await page.click('nav >> text=Simulator');
    await shot(page, 'simulator');
    // the owner reads the id on the OLED before pressing (the box approves an id shown for 3 s)
    box.advance(PRESS_SHOWN_MS);
    await page.click('text=Press the claim button');
    t.not(box.buttonPressedAt, null);
    await page.goto(`${base}/claim`);
    t.match(await page.textContent('#presence'), /was pressed for this browser/);
    await page.fill('#password', PASSWORD);
    await page.fill('#confirm', PASSWORD);
    await page.click('button[type=submit]:has-text("Claim the box")');
    await page.waitForURL(`${base}/?done=claimed`);
    t.match(box.config.get().web.passwordHash, /^scrypt\$/);
    t.match(await page.textContent('h1'), /Connecting to Tor: 0 %/);
    await page.waitForSelector('[data-reload]', { state: 'hidden' });

    // live progress over Server-Sent Events, no reload
    await page.waitForSelector('section[data-state]');
    await page.evaluate('window.marker = 1');
    await t.resolves(
      waitForListener(() => box.listenerCount() > 0),
      'the page subscribed',
    );
    box.setBootstrap(45, 'Loading relay descriptors');
    await page.waitForSelector('h1:has-text("Connecting to Tor: 45 %")');
    t.equal(await page.evaluate("document.querySelector('progress').value"), 45);
    t.equal(await page.evaluate('window.marker'), 1, 'updated in place');
    await shot(page, 'status-connecting');
    box.setBootstrap(100, 'Done');
    await page.waitForSelector('h1:has-text("Protected")');
    await page.waitForSelector('text=guardian (DE)');
    await shot(page, 'status-routing');

    // settings: each form invalid, then valid (with the words the built-in refresh gives the page)
    box.controller.setBuiltinBridges(
      'Built-in bridges in use: refreshed through Tor on 2026-12-07 21:40 UTC (11 obfs4, 2 snowflake).',
    );
    await page.click('nav >> text=Settings');
    t.match(await page.textContent('#builtin-bridges'), /refreshed through Tor on 2026-12-07 21:40 UTC/);
    await shot(page, 'settings');
    await page.check('input[name=useBridges]');
    await page.fill('#bridges-lines', `${BRIDGE}\nnot\ta bridge`);
    await page.click('text=Save bridges');
    t.match(await page.textContent('#bridges-error'), /Line 2/);
    t.equal(await page.inputValue('#bridges-lines'), `${BRIDGE}\nnot\ta bridge`, 'input kept');
    t.same(box.tor.calls.applied, []);
    await shot(page, 'settings-error');
    await page.fill('#bridges-lines', BRIDGE);
    await page.click('text=Save bridges');
    await page.waitForSelector('text=Tor settings saved');
    t.same(box.config.get().tor.bridges, [BRIDGE]);
    box.setBootstrap(100, 'Done');
    await page.waitForSelector('h1:has-text("Protected")');

    await page.goto(`${base}/settings`);
    await page.fill('#exitNodes', 'de, germany');
    await page.click('text=Save exit countries');
    t.match(await page.textContent('#exitNodes-error'), /"germany" is not a two-letter country code/);
    await page.fill('#exitNodes', 'de nl');
    await page.click('text=Save exit countries');
    await page.waitForSelector('text=Tor settings saved');
    t.same(box.config.get().tor.exitNodes, ['de', 'nl']);
    box.setBootstrap(100, 'Done');
    await page.waitForSelector('h1:has-text("Protected")');

    await page.goto(`${base}/settings`);
    t.equal(await page.isVisible('[data-clock-hint]'), true, 'the script offers the browser time');
    const before = Date.now();
    await page.click('text=Set the clock');
    await page.waitForSelector('text=Clock set');
    const set = box.clockSets.at(-1) ?? 0;
    t.ok(set >= before - 5000 && set <= Date.now() + 5000, 'the clock came from the browser');

    await page.fill('#current', 'not my password');
    await page.fill('#new-password', 'a brand new passphrase');
    await page.fill('#new-confirm', 'a brand new passphrase');
    await page.click('text=Change password');
    t.match(await page.textContent('#current-error'), /not the current password/);
    await page.fill('#current', PASSWORD);
    await page.fill('#new-password', 'a brand new passphrase');
    await page.fill('#new-confirm', 'a brand new passphrase');
    await page.click('text=Change password');
    await page.waitForSelector('text=Password changed');

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('text=Download diagnostics'),
    ]);
    t.match(download.suggestedFilename(), /^onionbox-diagnostics-.*\.txt$/);

    // CSRF: a tampered token is refused and nothing changes
    await page.goto(`${base}/`);
    await page.evaluate("for (const i of document.querySelectorAll('input[name=_csrf]')) i.value = 'forged'");
    await page.click('text=Cut every device off now');
    t.match(await page.textContent('h1'), /form expired/);
    t.equal(box.config.get().softKill, false);
    await shot(page, 'error-csrf');

    // kill switch from the page, shown apart from the hardware switch
    await page.goto(`${base}/`);
    await page.click('text=Cut every device off now');
    await page.waitForSelector('h1:has-text("Cut off from this page")');
    t.equal(box.config.get().softKill, true);
    box.sim?.setSwitch(true);
    await page.waitForSelector('h1:has-text("Cut off by the switch on the box")');
    await shot(page, 'status-killed');
    box.sim?.setSwitch(false);
    await page.goto(`${base}/`);
    t.equal(box.config.get().softKill, true);
    await page.click('button:has-text("kill switch off")');
    await page.waitForSelector('text=Kill switch from this page is off');

    // logout, wrong password, login
    await page.click('text=Log out');
    await page.waitForURL(/\/login/);
    await page.fill('#password', 'definitely wrong password');
    await page.click('button:has-text("Log in")');
    t.match(await page.textContent('#password-error'), /Wrong password/);
    await shot(page, 'login-error');
    await page.fill('#password', 'a brand new passphrase');
    await page.click('button:has-text("Log in")');
    await page.waitForSelector('text=Protected');

    t.same(consoleErrors, [], 'no script errors and no CSP refusals');
    for (const secret of [PASSWORD, 'a brand new passphrase', box.config.get().web.sessionKey ?? 'x']) {
      t.notOk(logs().includes(secret), 'no secret in the logs');
    }
  });

  t.test('with JavaScript off: claim by OLED code, refresh while connecting, settings, login', async (t) => {
    const { box, base } = await liveApp(t);
    const context = await browserContext(t, false);
    const page = await context.newPage();
    await page.goto(`${base}/claim`);
    await page.fill('#code', box.claimCode.toLowerCase());
    await page.fill('#password', PASSWORD);
    await page.fill('#confirm', PASSWORD);
    await page.click('button[type=submit]:has-text("Claim the box")');
    await page.waitForURL(`${base}/?done=claimed`);
    t.match(await page.textContent('h1'), /Connecting to Tor: 0 %/);
    t.equal(await page.isVisible('text=Reload now'), true, 'a refresh link while connecting');
    t.equal(await page.locator('noscript meta[http-equiv=refresh]').count(), 1);
    t.equal(box.listenerCount(), 0, 'no script ran: no live stream');
    await shot(page, 'status-connecting-nojs');
    box.setBootstrap(100, 'Done');
    // the meta refresh (5 s) brings the new state without any script
    await page.waitForSelector('h1:has-text("Protected")', { timeout: 15_000 });
    t.equal(await page.locator('noscript meta[http-equiv=refresh]').count(), 0, 'no refresh once settled');

    await page.goto(`${base}/settings`);
    t.equal(await page.isVisible('[data-clock-hint]'), false);
    await page.fill('#clock-input', '2026-13-01 10:00');
    await page.click('text=Set the clock');
    t.match(await page.textContent('#clock-error'), /YYYY-MM-DD|does not exist/);
    await page.fill('#clock-input', '2026-11-29 01:45');
    await page.click('text=Set the clock');
    await page.waitForSelector('text=Clock set');
    t.equal(box.clockSets.at(-1), Date.UTC(2026, 10, 29, 1, 45));

    await page.fill('#excludeExitNodes', 'us');
    await page.check('input[name=strictNodes]');
    await page.click('text=Save exit countries');
    await page.waitForSelector('text=Tor settings saved');
    t.same(box.config.get().tor.excludeExitNodes, ['us']);
    box.setBootstrap(100, 'Done');

    await page.goto(`${base}/settings`);
    t.equal(
      await page.locator('input[name=builtinSnowflake]').count(),
      0,
      'no built-in snowflake (issue 21)',
    );

    await page.goto(`${base}/`);
    await page.click('text=New identity');
    await page.waitForSelector('text=new circuits');
    t.equal(box.tor.calls.newIdentity, 1);
    await shot(page, 'status-nojs');

    await page.click('text=Log out');
    await page.fill('#password', 'wrong wrong wrong');
    await page.click('button:has-text("Log in")');
    t.match(await page.textContent('#password-error'), /Wrong password/);
    await shot(page, 'login');
    await page.fill('#password', PASSWORD);
    await page.click('button:has-text("Log in")');
    await page.waitForSelector('h1:has-text("Protected")');
  });
}

async function waitForListener(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!cond()) throw new Error('condition not met');
}
