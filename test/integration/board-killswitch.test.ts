/**
 * The kill switch end to end, in network namespaces with the real Firewall (nft) and the real
 * BoxController, state machine and simulated board: flipping the switch cuts a LAN device's running
 * download; releasing it restores the download only once tor is ready. Tor's status comes from a test
 * double on the event bus (the real supervisor needs the private Tor network; the e2e leak test covers
 * that path).
 */
import t from 'tap';
import { Firewall } from '../../firmware/firewall/apply.js';
import type { TorStatus } from '../../firmware/state/machine.js';
import { startFirewallBox } from '../helpers/firewall-box.js';
import { buildKillswitchNet } from '../helpers/killswitch-net.js';
import { rootSkipReason } from '../helpers/netns.js';

const skip = rootSkipReason(['ip', 'nft', 'conntrack', 'python3']);
const READY: TorStatus = { phase: 'ready', progress: 100, summary: 'Done', ready: true };
const BOOTSTRAPPING: TorStatus = { phase: 'bootstrapping', progress: 40, summary: 'Loading', ready: false };

t.test(
  'kill switch cuts a running LAN download; release restores it only when tor is ready',
  { skip },
  async (t) => {
    const net = await buildKillswitchNet(t);
    const fw = new Firewall({ netns: net.box });
    await fw.start();
    t.teardown(() => fw.stop());
    const { box, board, tor, applies } = await startFirewallBox(t, {
      firewall: fw,
      params: net.params,
      initialTor: { phase: 'starting', progress: 0, summary: '', ready: false },
      log: {
        info: () => undefined,
        warn: () => undefined,
        error: (o, m) => t.comment(`${m} ${JSON.stringify(o)}`),
      },
    });
    t.equal(fw.current(), 'connecting', 'first ruleset loaded before any link is up');
    await net.up();
    await net.startServer();
    const flows = await net.startFlows(1);

    // connecting: the LAN gets nothing
    await flows.quiet(600, 5000);
    t.equal(flows.bytes(), 0, 'no LAN bytes while tor is connecting');

    tor.report(READY);
    await box.settled();
    t.equal(fw.current(), 'routing');
    await flows.grows(512 * 1024, 10_000);
    t.pass('download running in routing');

    board.setSwitch(true);
    await box.settled();
    t.equal(fw.current(), 'killed');
    t.equal(box.status().state, 'killed');
    const table = await net.table();
    t.notMatch(table, /dnat ip to/, 'the kernel holds no redirect');
    t.match(table, /th dport \{ 5353, 9040 \}.*drop/, 'LAN to TransPort dropped');
    const cutAt = await flows.quiet(700, 5000);
    await flows.quiet(1000, 5000);
    t.equal(flows.bytes(), cutAt, 'the running download stopped and stays stopped');

    tor.report(BOOTSTRAPPING);
    board.setSwitch(false);
    await box.settled();
    t.equal(fw.current(), 'connecting', 'switch released while tor is not ready: still cut');
    await flows.quiet(1000, 5000);
    t.equal(flows.bytes(), cutAt, 'no bytes while tor is not ready');

    tor.report(READY);
    await box.settled();
    t.equal(fw.current(), 'routing');
    await flows.grows(512 * 1024, 10_000);
    t.pass('download restored once tor is ready');
    t.same(
      applies.map((a) => a.mode),
      ['connecting', 'routing', 'killed', 'connecting', 'routing'],
    );
  },
);
