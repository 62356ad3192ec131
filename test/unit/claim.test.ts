/**
 * The claim ledger against a LAN attacker (issue 23), on a fake clock: a flood of claims can neither push
 * the owner's claim out nor make the owner's press approve the attacker's; the code is 8 characters of
 * the id alphabet. (The box-wide wait between wrong codes is proven through the page in
 * web-claim-race.test.ts, with a guesser cycling source addresses.)
 */
import t from 'tap';
import { type ObxError, RETRY_AFTER } from '../../firmware/errors.js';
import {
  CLAIM_WINDOW_MS,
  ClaimLedger,
  CODE_LENGTH,
  ID_ALPHABET,
  MAX_PENDING_CLAIMS,
  newClaimCode,
  PRESS_NOTICE_MS,
  PRESS_SHOWN_MS,
} from '../../firmware/owner/claim.js';

function ledger() {
  let now = 1_000_000;
  const claims = new ClaimLedger({ now: () => now, firstCode: 'K7P2QXWM' });
  return {
    claims,
    now: () => now,
    tick(ms: number) {
      now += ms;
    },
  };
}

t.test(
  "a flood of claims is refused at the cap; the owner's claim stays (it used to be evicted)",
  async (t) => {
    const { claims, tick, now } = ledger();
    const owner = claims.start();
    const attacker: string[] = [];
    let refused = 0;
    // one new claim a second for a minute, as routes/auth.ts lets one address do
    for (let i = 0; i < 60; i++) {
      tick(1000);
      try {
        attacker.push(claims.start().ticket);
      } catch (err) {
        t.equal((err as { code?: string }).code, 'OBX_ERR_WEB_CLAIM_LIMIT');
        refused += 1;
      }
    }
    t.equal(attacker.length, MAX_PENDING_CLAIMS - 1, "the cap is box-wide and counts the owner's claim");
    t.equal(refused, 60 - (MAX_PENDING_CLAIMS - 1), 'every claim past the cap is refused');
    t.same(
      claims.progress(owner.ticket),
      { state: 'waiting', id: owner.id },
      "the owner's claim is still pending",
    );
    // the owner presses, long after the id appeared: several claims pending, so nothing is approved
    t.same(claims.press(now()), { refused: 'more than one claim' });
    for (const ticket of attacker)
      t.equal(claims.progress(ticket).state, 'waiting', 'no attacker claim approved');
    t.equal(claims.progress(owner.ticket).state, 'waiting');
    t.equal(claims.display().notice, 'press refused: more than one claim', 'the OLED says why');
    tick(PRESS_NOTICE_MS);
    t.equal(claims.display().notice, null, 'for a few seconds');
    // the owner can still type the code
    t.equal(claims.check(null, 'k7p2-qxwm'), 'code');
  },
);

t.test("a claim started just before the press is not approved in place of the owner's", async (t) => {
  const { claims, tick, now } = ledger();
  const owner = claims.start();
  tick(60_000);
  const late = claims.start(); // the attacker sees the owner walk to the box
  tick(500);
  t.same(claims.press(now()), { refused: 'more than one claim' });
  t.equal(claims.progress(late.ticket).state, 'waiting', "the attacker's claim is not approved");
  t.equal(claims.progress(owner.ticket).state, 'waiting');
});

t.test('one claim: the press approves it only once its id was on the OLED for 3 s', async (t) => {
  const { claims, tick, now } = ledger();
  t.same(claims.press(now()), { refused: 'no claim' });
  t.equal(claims.display().notice, null, 'a press with nothing pending changes nothing on the OLED');
  const a = claims.start();
  tick(PRESS_SHOWN_MS - 1);
  t.same(claims.press(now()), { refused: 'claim id too new' });
  t.equal(claims.progress(a.ticket).state, 'waiting');
  t.equal(claims.display().notice, 'press refused: claim id too new');
  tick(1);
  t.same(claims.press(now()), { approved: a.id });
  t.same(claims.progress(a.ticket), { state: 'approved', id: a.id });
  t.equal(claims.display().notice, null);
  t.equal(claims.check(a.ticket, null), 'press');
});

t.test('the id on the OLED changes when the newest claim expires: the 3 s start again', async (t) => {
  const { claims, tick, now } = ledger();
  const a = claims.start();
  tick(5 * 60_000);
  const b = claims.start();
  tick(5 * 60_000 + 1); // a expired: b alone, shown since it started
  t.same(claims.display().id, b.id);
  t.same(claims.press(now()), { approved: b.id });
  t.equal(claims.progress(a.ticket).state, 'none');
});

t.test(
  'a claim ends (claimed or reset) and makes room again; a press before it counts for nothing',
  async (t) => {
    const { claims, tick, now } = ledger();
    for (let i = 0; i < MAX_PENDING_CLAIMS; i++) claims.start();
    t.throws(() => claims.start(), { code: 'OBX_ERR_WEB_CLAIM_LIMIT' });
    tick(60_000);
    const full = (() => {
      try {
        claims.start();
      } catch (err) {
        return err as ObxError;
      }
      return null;
    })();
    t.equal(
      full?.details[RETRY_AFTER],
      String(CLAIM_WINDOW_MS / 1000 - 60),
      'the wait until the oldest expires',
    );
    claims.rotate();
    const fresh = claims.start();
    t.same(claims.press(now() - 1), { refused: 'claim id too new' }, 'a press from before the claim');
    tick(PRESS_SHOWN_MS);
    t.same(claims.press(now()), { approved: fresh.id });
  },
);

t.test('the code: 8 characters of the id alphabet (about 36 bits), typed in any case', async (t) => {
  const alphabet = new RegExp(`^[${ID_ALPHABET}]{${CODE_LENGTH}}$`);
  for (let i = 0; i < 200; i++) t.match(newClaimCode(), alphabet);
  t.ok(CODE_LENGTH * Math.log2(ID_ALPHABET.length) > 36, 'at least 36 bits');
  const claims = new ClaimLedger({ firstCode: newClaimCode() });
  t.equal(claims.check(null, claims.code.toLowerCase().replace(/(....)/, '$1-')), 'code');
});
