/**
 * The claim race (issue 13): a press of the claim button approves only the one claim a browser started
 * before it; nobody else can tell it happened; wrong codes are counted box-wide and replace the code.
 */
import t from 'tap';
import {
  CODE_BASE_DELAY_MS,
  CODE_FREE_FAILURES,
  CODE_MAX_DELAY_MS,
  MAX_CODE_FAILURES,
} from '../../firmware/owner/claim.js';
import { Client, csrfFrom, GOOD_PASSWORD, webHarness } from '../helpers/web.js';

/** The page without its per-request CSRF token. */
function masked(html: string): string {
  return html.replace(/name="_csrf" value="[^"]+"/g, 'name="_csrf" value=""');
}

const form = { password: GOOD_PASSWORD, confirm: GOOD_PASSWORD };

t.test('a press approves the claim browser A started; B learns nothing and cannot claim', async (t) => {
  const h = await webHarness(t);
  const a = new Client(h.app, '10.42.0.23');
  const b = new Client(h.app, '10.42.0.66');
  const bBefore = masked((await b.get('/claim')).body);

  const start = await a.post('/claim/start', {}, '/claim');
  t.equal(start.statusCode, 303, 'A starts a claim');
  const aPage = (await a.get('/claim')).body;
  const id = /id="claim-id">([A-Z0-9]{4})</.exec(aPage)?.[1];
  t.ok(id, 'A sees its claim id');
  t.equal(h.box.oledClaimId, id, 'the OLED shows the same id beside the code');
  t.notMatch(aPage, new RegExp(h.box.claimCode), 'the code itself is never on the page');

  h.box.pressWhenShown();

  const bAfter = masked((await b.get('/claim')).body);
  t.equal(bAfter, bBefore, "B's page is the same before and after the press");
  const bClaim = await b.post('/claim', form, '/claim');
  t.equal(bClaim.statusCode, 400, 'B cannot claim without the code');
  t.match(bClaim.body, /id="code-error"/);
  t.equal(h.box.config.get().web.passwordHash, null);
  // B starting its own claim after the press gets no approval from that press
  t.equal((await b.post('/claim/start', {}, '/claim')).statusCode, 303);
  t.notMatch((await b.get('/claim')).body, /was pressed/);
  t.equal((await b.post('/claim', form, '/claim')).statusCode, 400);

  t.match((await a.get('/claim')).body, /was pressed for this browser/);
  const done = await a.post('/claim', form, '/claim');
  t.equal(done.statusCode, 303, 'A completes the claim');
  t.equal(done.headers.location, '/?done=claimed');
  t.match(h.box.config.get().web.passwordHash, /^scrypt\$/);
});

t.test('the press of a reset hold approves nothing', async (t) => {
  const h = await webHarness(t);
  const a = new Client(h.app);
  await a.post('/claim/start', {}, '/claim');
  h.box.pressWhenShown(10_000);
  await h.box.settled();
  t.notMatch((await a.get('/claim')).body, /was pressed/);
  t.equal((await a.post('/claim', form, '/claim')).statusCode, 400);
  t.equal(h.box.config.get().web.passwordHash, null);
});

t.test('a guesser cycling source addresses waits box-wide after five wrong codes (issue 23)', async (t) => {
  const h = await webHarness(t);
  const statuses: number[] = [];
  for (let i = 0; i < 3 * CODE_FREE_FAILURES; i++) {
    // a new address for every guess: the per-address throttle never sees a second failure
    const c = new Client(h.app, `10.42.0.${100 + i}`);
    statuses.push((await c.post('/claim', { ...form, code: `WRONG${i}` }, '/claim')).statusCode);
  }
  t.same(statuses.slice(0, CODE_FREE_FAILURES), Array(CODE_FREE_FAILURES).fill(400), 'five free wrong codes');
  t.same(
    statuses.slice(CODE_FREE_FAILURES),
    Array(2 * CODE_FREE_FAILURES).fill(429),
    'then every address waits: the box checks no code',
  );
  // even the right code from a fresh address is not checked during the wait
  const owner = new Client(h.app, '10.42.0.250');
  const right = await owner.post('/claim', { ...form, code: h.box.claimCode }, '/claim');
  t.equal(right.statusCode, 429);
  t.match(right.body, /OBX_ERR_WEB_THROTTLED/);
  const wait = Number(right.headers['retry-after']);
  t.ok(wait >= 1 && wait < 60, `Retry-After is the box-wide wait (${wait} s), not the generic minute`);
  t.equal(h.box.config.get().web.passwordHash, null);
  // the wait doubles: one second after the sixth, two after the seventh (the box's clock moves)
  h.box.advance(CODE_BASE_DELAY_MS);
  t.equal((await owner.post('/claim', { ...form, code: 'WRONG99' }, '/claim')).statusCode, 400);
  h.box.advance(CODE_BASE_DELAY_MS);
  t.equal((await owner.post('/claim', { ...form, code: h.box.claimCode }, '/claim')).statusCode, 429);
  // a press-approved claim does not wait: the guesser cannot lock the owner out of the button
  await owner.post('/claim/start', {}, '/claim');
  h.box.pressWhenShown();
  t.equal((await owner.post('/claim', form, '/claim')).statusCode, 303, 'the press still claims');
});

t.test('wrong codes from many addresses replace the code after 10; claims and resets do too', async (t) => {
  const h = await webHarness(t);
  const first = h.box.claimCode;
  const seen = new Set([first]);
  for (let i = 0; i < 2 * MAX_CODE_FAILURES; i++) {
    const c = new Client(h.app, `10.42.0.${100 + i}`);
    const res = await c.post('/claim', { ...form, code: String(100000 + i) }, '/claim');
    t.equal(res.statusCode, 400);
    seen.add(h.box.claimCode);
    h.box.advance(CODE_MAX_DELAY_MS); // past the box-wide wait that follows each wrong code
  }
  t.equal(seen.size, 3, '20 wrong codes: two new codes');
  const late = new Client(h.app, '10.42.0.200');
  t.equal(
    (await late.post('/claim', { ...form, code: first }, '/claim')).statusCode,
    400,
    'the old code is dead',
  );
  h.box.advance(CODE_MAX_DELAY_MS);
  const current = h.box.claimCode;
  t.equal((await late.post('/claim', { ...form, code: current }, '/claim')).statusCode, 303);
  await h.box.controller.resetClaim();
  t.not(h.box.claimCode, current, 'a new code after the claim and the reset');
});

t.test('a claim ticket is useless to another browser and after a reset', async (t) => {
  const h = await webHarness(t);
  const a = new Client(h.app);
  await a.post('/claim/start', {}, '/claim');
  h.box.pressWhenShown();
  // a copied cookie without the box's signature key is refused: forge one with a made-up ticket
  const forged = new Client(h.app, '10.42.0.77');
  forged.cookies.set('obx_claim', 'made-up.ticket');
  const res = await forged.post('/claim', form, '/claim');
  t.equal(res.statusCode, 400);
  await h.box.controller.resetClaim();
  const token = csrfFrom((await a.get('/claim')).body);
  t.notMatch((await a.get('/claim')).body, /was pressed/, 'the reset ended the approval');
  t.equal((await a.post('/claim', { ...form, _csrf: token })).statusCode, 400);
});
