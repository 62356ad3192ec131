/**
 * The networking grammars the config validator runs (CONFIG_CHECKS in firmware/config/validate.ts): a document
 * whose access point, upstream Wi-Fi or LAN range would not pass firmware/net/grammar.ts is refused at
 * load and at every write, so nothing the renderers would refuse is ever stored.
 */
import type { Config } from '../config/schema.js';
import { isObxError } from '../errors.js';
import { parseInterface, parseLanRange, parseSsid } from './grammar.js';
import { validateAccessPoint } from './render.js';

function problems(fn: () => unknown, base: string, out: Record<string, string>): void {
  try {
    fn();
  } catch (e) {
    if (!isObxError(e, 'NET_VALUE_INVALID')) throw e;
    const entries = Object.entries(e.details);
    if (entries.length === 0) out[base] = e.message;
    for (const [k, v] of entries) out[`${base}/${k}`] = v;
  }
}

export function networkProblems(config: Config): Record<string, string> {
  const n = config.network;
  const out: Record<string, string> = {};
  problems(() => parseLanRange(`${n.lanAddress}/${n.lanPrefix}`), '/network/lanAddress', out);
  if (n.accessPoint) {
    problems(
      () => validateAccessPoint({ ...n.accessPoint, interface: n.lanInterface }),
      '/network/accessPoint',
      out,
    );
  }
  if (n.upstreamWifi) {
    const w = n.upstreamWifi;
    problems(() => parseSsid(w.ssid), '/network/upstreamWifi', out);
    problems(() => parseInterface(w.interface), '/network/upstreamWifi', out);
    if (w.interface === n.lanInterface)
      out['/network/upstreamWifi/interface'] = 'must differ from the LAN interface';
  }
  return out;
}
