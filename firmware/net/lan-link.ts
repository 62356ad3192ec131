/**
 * The box's own address on the LAN: tor's TransPort and DNSPort and the web page listen on it, so it is
 * set (and the link brought up) before tor starts. Argument arrays only; the values were validated by
 * the config schema.
 */
import { exec } from '../lib/exec.js';

async function ip(args: string[]): Promise<void> {
  const r = await exec('ip', args, { timeoutMs: 10_000 });
  if (!r.ok) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim() || r.error}`);
}

export async function setLanAddress(lanIf: string, address: string, prefix: number): Promise<void> {
  await ip(['addr', 'replace', `${address}/${prefix}`, 'dev', lanIf]);
  await ip(['link', 'set', lanIf, 'up']);
}

/** Removes an address the box no longer uses on the LAN (a LAN change); one already gone is fine. */
export async function removeLanAddress(lanIf: string, address: string, prefix: number): Promise<void> {
  try {
    await ip(['addr', 'del', `${address}/${prefix}`, 'dev', lanIf]);
  } catch (err) {
    if (!/Cannot assign requested address|Cannot find device|does not exist/.test(String(err))) throw err;
  }
}
