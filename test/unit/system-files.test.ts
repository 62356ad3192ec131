/** The image's list of masked units (firmware/system/masked-units.txt) holds what would flush the ruleset. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';

export function readUnitList(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
}

t.test('masked units: nftables, ufw and firewalld, each a plain unit name', async (t) => {
  const file = fileURLToPath(new URL('../../firmware/system/masked-units.txt', import.meta.url));
  const units = readUnitList(readFileSync(file, 'utf8'));
  for (const u of ['nftables.service', 'ufw.service', 'firewalld.service']) t.ok(units.includes(u), u);
  for (const u of units) t.match(u, /^[a-zA-Z0-9@._-]+\.(service|socket|timer|target|path)$/, u);
  t.equal(new Set(units).size, units.length, 'no duplicates');
});
