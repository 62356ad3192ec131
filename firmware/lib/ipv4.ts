/**
 * The one IPv4 rule: a dotted quad, four decimal octets 0-255, no leading zeros, nothing around it. The
 * config schema, the firewall's parameters, torrc's addresses and tor's replies all check it here.
 */

/** As a regular expression source (the JSON schema's `pattern` takes a string). */
export const IPV4_PATTERN =
  '^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$';

const IPV4 = new RegExp(IPV4_PATTERN);

export function isIpv4(v: unknown): v is string {
  return typeof v === 'string' && IPV4.test(v);
}

export function ipv4ToInt(a: string): number {
  return a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}
