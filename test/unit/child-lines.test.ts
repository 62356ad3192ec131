/** A child's output as lines (firmware/lib/child-lines.ts). */
import { PassThrough } from 'node:stream';
import t from 'tap';
import { followLines, LastLines } from '../../firmware/lib/child-lines.js';

t.test('lines split across chunks, per stream; a partial last line waits', async (t) => {
  const out = new PassThrough();
  const err = new PassThrough();
  const got: string[] = [];
  followLines([out, err, null], (l) => got.push(l));
  out.write('one\ntw');
  err.write('warn: x');
  out.write('o\nthree');
  err.write('\n');
  await new Promise((r) => setImmediate(r));
  t.same(got, ['one', 'two', 'warn: x']);
});

t.test('the last lines, oldest first', async (t) => {
  const last = new LastLines(2);
  for (const l of ['a', 'b', 'c']) last.push(l);
  t.same(last.last(), ['b', 'c']);
  t.same(last.last(1), ['c']);
});
