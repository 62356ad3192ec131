/**
 * A stand-in for onionboxd's firewall side, run as its own process so the leak test can SIGKILL it in
 * the middle of its work: applies routing and killed alternately, as fast as it can, until killed.
 * Usage: firewall-driver.ts NETNS PARAMS_JSON. Prints "applied N MODE" after each verified apply.
 */
import { Firewall } from '../../firmware/firewall/apply.js';
import type { FirewallParams } from '../../firmware/firewall/params.js';

const [netns, json] = process.argv.slice(2);
if (!netns || !json) {
  process.stderr.write('usage: firewall-driver.ts NETNS PARAMS_JSON\n');
  process.exit(2);
}
const params = JSON.parse(json) as FirewallParams;
const fw = new Firewall({ netns });
await fw.start();
for (let i = 1; ; i++) {
  const mode = i % 2 === 0 ? 'routing' : 'killed';
  await fw.apply(mode, params);
  process.stdout.write(`applied ${i} ${mode}\n`);
}
