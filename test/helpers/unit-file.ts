/** systemd unit files for tests. */

/** Parses a systemd unit into section -> key -> values (keys may repeat). */
export function parseUnit(text: string): Record<string, Record<string, string[]>> {
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
    sec[kv[1]] = [...(sec[kv[1]] ?? []), ...(kv[2] ?? '').split(/\s+/).filter((v) => v !== '')];
  }
  return out;
}
