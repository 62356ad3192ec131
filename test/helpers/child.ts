/**
 * For tests that start real children through a supervisor (SupervisedChild, LanDhcp, AccessPoint):
 * whether a PID still runs, and waiting until a condition about it holds.
 */
export { processAlive as alive } from '../../firmware/cli/sim.js';

/** Polls fn every 20 ms until it holds; throws after ms (a bound, not a timed assertion). */
export async function until(fn: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
