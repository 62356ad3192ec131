import t from 'tap';
import { Listeners } from '../../firmware/lib/listeners.js';

t.test('add returns the remover; emit calls the listeners registered when it starts', async (t) => {
  const l = new Listeners<number>();
  const seen: string[] = [];
  const offA = l.add((v) => {
    seen.push(`a${v}`);
    l.add((w) => seen.push(`late${w}`)); // added during an emit: runs from the next emit on
  });
  l.add((v) => seen.push(`b${v}`));
  t.equal(l.size, 2);
  l.emit(1);
  t.same(seen, ['a1', 'b1']);
  offA();
  t.equal(l.size, 2, 'a removed, the late listener added');
  seen.length = 0;
  l.emit(2);
  t.same(seen, ['b2', 'late2']);
});

t.test('emit lets a throwing listener stop it; emitEach reports it and goes on', async (t) => {
  const l = new Listeners<string>();
  const seen: string[] = [];
  l.add(() => {
    throw new Error('boom');
  });
  l.add((v) => seen.push(v));
  t.throws(() => l.emit('x'), /boom/);
  t.same(seen, [], 'the second listener did not run');
  const errors: unknown[] = [];
  l.emitEach('y', (err) => errors.push(err));
  t.same(seen, ['y']);
  t.equal(errors.length, 1);
  t.match(String(errors[0]), /boom/);
});
