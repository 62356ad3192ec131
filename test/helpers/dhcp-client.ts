/**
 * A LAN device's DHCP client for tests and benches: ISC dhclient in a namespace we made, with its own
 * config, lease file, pid file and script (-cf/-lf/-pf/-sf), so it never reads /etc/dhcp or writes the
 * host's /etc/resolv.conf. The script only sets the leased address on the interface and writes the
 * lease's variables to a file. Stopped by its PID.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DhcpLease {
  /** From spawn to the BOUND script run. */
  ms: number;
  vars: Record<string, string>;
  child: ChildProcess;
  stop(): Promise<void>;
}

const SCRIPT = (out: string) => `#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
case "$reason" in
  PREINIT) ip link set dev "$interface" up ;;
  BOUND|RENEW|REBIND|REBOOT)
    ip -4 addr flush dev "$interface"
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
    env | grep -E '^(reason|interface|new_)' | sort > "${out}.tmp" && mv "${out}.tmp" "${out}" ;;
esac
exit 0
`;

export async function dhcpLease(
  ns: string,
  iface: string,
  dir: string,
  hostname = 'lan-device',
): Promise<DhcpLease> {
  const out = join(dir, `lease-${iface}.env`);
  const script = join(dir, 'dhclient-script');
  const conf = join(dir, 'dhclient.conf');
  writeFileSync(script, SCRIPT(out), { mode: 0o755 });
  writeFileSync(conf, `send host-name "${hostname}";\nrequest subnet-mask, routers, domain-name-servers;\n`);
  const started = performance.now();
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      'dhclient',
      '-d',
      '-1',
      '-cf',
      conf,
      '-sf',
      script,
      '-lf',
      join(dir, 'dhclient.leases'),
      '-pf',
      join(dir, 'dhclient.pid'),
      iface,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (c: Buffer) => {
    log = (log + c.toString('utf8')).slice(-2000);
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await done;
  };
  const deadline = Date.now() + 30_000;
  while (!existsSync(out)) {
    if (child.exitCode !== null) throw new Error(`dhclient exited ${child.exitCode}: ${log}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`no lease within 30 s: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const ms = performance.now() - started;
  const vars: Record<string, string> = {};
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) vars[line.slice(0, i)] = line.slice(i + 1);
  }
  return { ms, vars, child, stop };
}
