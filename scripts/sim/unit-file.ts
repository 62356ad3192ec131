/**
 * systemd unit files, read the one way for the simulator's unit runner (scripts/sim/units.ts) and the
 * tests that check the units: section -> key -> the values of every line of that key, in order.
 */

/** Parses a unit into section -> key -> the raw value of each line (keys may repeat). */
export function parseUnitLines(text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s?.[1]) {
      section = s[1];
      out[section] ??= {};
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv?.[1] || !section) throw new Error(`bad unit line: ${line}`);
    const sec = out[section] ?? {};
    out[section] = sec;
    sec[kv[1]] = [...(sec[kv[1]] ?? []), (kv[2] ?? '').trim()];
  }
  return out;
}

/** The same, each key's lines split into whitespace-separated words (for lists such as capabilities). */
export function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  for (const [section, keys] of Object.entries(parseUnitLines(text))) {
    out[section] = {};
    for (const [key, lines] of Object.entries(keys)) {
      out[section][key] = lines.flatMap((l) => l.split(/\s+/).filter((v) => v !== ''));
    }
  }
  return out;
}
