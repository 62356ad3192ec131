/**
 * The connection assist's view of the WAN's link (firmware/phases/assist.ts assistLink): while the box
 * changes its network (or goes back after a failed change) the link reads as missing, so the assist waits
 * instead of trying bridges in the middle of the change; otherwise it is the interface's carrier.
 */
import t from 'tap';
import { assistLink } from '../../firmware/phases/assist.js';

t.test('no link while a network change runs, the carrier otherwise', async (t) => {
  let changing = false;
  let reads = 0;
  let carrier = true;
  const link = assistLink({ networkChanging: () => changing }, async () => {
    reads += 1;
    return carrier;
  });
  t.equal(await link(), true, 'a carrier, no change: a link');
  carrier = false;
  t.equal(await link(), false, 'no carrier: no link');
  carrier = true;
  changing = true;
  const before = reads;
  t.equal(await link(), false, 'a change runs: no link, whatever the carrier says');
  t.equal(reads, before, 'and the carrier is not even read');
  changing = false;
  t.equal(await link(), true, 'the change is over: the carrier again');
});
