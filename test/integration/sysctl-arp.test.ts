/**
 * The box answers ARP only for the addresses of the interface a request arrives on (arp_ignore=1) and
 * picks the source of its own ARP requests from the outgoing interface (arp_announce=2): a device on the
 * WAN side cannot find the LAN address (10.42.0.1) behind the box's WAN port (issue 13). The sysctl file
 * is read like the image installs it and applied with `sysctl -p` inside a namespace.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { addAddr, linkUp, makeNetns, makeVeth, nsRun, rootSkipReason } from '../helpers/netns.js';

const SYSCTL = fileURLToPath(new URL('../../firmware/system/60-onionbox.conf', import.meta.url));

/** `key = value` lines of a sysctl.d file (comments and blanks skipped); a malformed line throws. */
export function parseSysctl(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^([a-z0-9_.-]+)\s*=\s*(\S+)$/.exec(line);
    if (!m?.[1] || m[2] === undefined) throw new Error(`bad sysctl line: ${line}`);
    out[m[1]] = m[2];
  }
  return out;
}

t.test('the sysctl file sets arp_ignore=1 and arp_announce=2 for every interface', async (t) => {
  const kv = parseSysctl(readFileSync(SYSCTL, 'utf8'));
  for (const scope of ['all', 'default']) {
    t.equal(kv[`net.ipv4.conf.${scope}.arp_ignore`], '1', scope);
    t.equal(kv[`net.ipv4.conf.${scope}.arp_announce`], '2', scope);
  }
});

t.test(
  'a device on the WAN side gets no ARP answer for the LAN address',
  { skip: rootSkipReason(['ip', 'sysctl', 'ping']) },
  async (t) => {
    const box = await makeNetns(t, 'arpbox');
    const wan = await makeNetns(t, 'arpwan');
    const lan = await makeNetns(t, 'arplan');
    await nsRun(box, 'sysctl', ['-q', '-p', SYSCTL]);
    await makeVeth(box, 'wan0', wan, 'up0');
    await makeVeth(box, 'lan0', lan, 'dev0');
    await addAddr(box, 'wan0', '198.18.0.1/24');
    await addAddr(wan, 'up0', '198.18.0.2/24');
    await addAddr(box, 'lan0', '10.42.0.1/24');
    await addAddr(lan, 'dev0', '10.42.0.23/24');
    for (const [ns, dev] of [
      [box, 'wan0'],
      [box, 'lan0'],
      [wan, 'up0'],
      [lan, 'dev0'],
    ] as const) {
      await linkUp(ns, dev);
    }
    // The WAN-side device asks for 10.42.0.1 on its own link (as if it guessed the box's LAN address).
    await nsRun(wan, 'ip', ['route', 'add', '10.42.0.1/32', 'dev', 'up0']);
    const pingWan = await nsRun(wan, 'ping', ['-c', '2', '-W', '1', '10.42.0.1']).then(
      () => 'answered',
      () => 'no answer',
    );
    t.equal(pingWan, 'no answer', 'no reply from the WAN side');
    const neigh = await nsRun(wan, 'ip', ['neigh', 'show', '10.42.0.1', 'dev', 'up0']);
    t.notMatch(neigh, /lladdr/, `no ARP answer learned: ${neigh.trim()}`);
    // The same address still answers on its own side, and the WAN address on the WAN side.
    await nsRun(lan, 'ping', ['-c', '1', '-W', '2', '10.42.0.1']);
    await nsRun(wan, 'ping', ['-c', '1', '-W', '2', '198.18.0.1']);
    t.pass('each side reaches the address of its own interface');
  },
);
