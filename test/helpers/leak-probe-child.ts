/**
 * Runs the leak self-test's two direct probes from the namespace it is started in (the tests start it
 * with `ip netns exec`) and prints their raw results as JSON: {"tcp": ..., "udp": ...}.
 */
import { tcpProbe, udpProbe } from '../../firmware/leak-test/probes.js';

const target = process.argv[2] ?? '';
const [tcp, udp] = await Promise.all([
  tcpProbe(target, { timeoutMs: 1000 }),
  udpProbe(target, { timeoutMs: 1000 }),
]);
process.stdout.write(`${JSON.stringify({ tcp, udp })}\n`);
