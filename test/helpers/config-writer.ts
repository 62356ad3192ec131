/**
 * Child process for the power-cut test: performs N config writes through the real store, printing the
 * counter after each completed write. The parent SIGKILLs it at random moments.
 */
import { ConfigStore } from '../../firmware/config/store.js';
import { bridgeLine } from './bridge.js';

const [dir, startArg, countArg] = process.argv.slice(2);
const start = Number(startArg);
const count = Number(countArg);
const store = new ConfigStore(dir ?? '');
await store.load();
for (let i = start; i < start + count; i++) {
  // bridges carry the counter; a long list makes each write bigger than one page
  await store.update((c) => ({
    ...c,
    tor: {
      ...c.tor,
      bridges: Array.from({ length: 24 }, (_, k) => bridgeLine(k, `counter-${i}-${'x'.repeat(300)}`)),
    },
  }));
  process.stdout.write(`${i}\n`);
}
