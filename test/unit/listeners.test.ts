import t from 'tap';
import { Listeners } from '../../firmware/lib/listeners.js';

t.test('add returns the remover; emit calls the listeners registered when it starts', async (t) => {
  const l = new Listeners<number>(() => undefined);
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

t.test('a throwing listener does not stop the others: emit reports it to onError and goes on', async (t) => {
  const errors: unknown[] = [];
  const l = new Listeners<string>((err) => errors.push(err));
  const seen: string[] = [];
  l.add(() => {
    throw new Error('boom');
  });
  l.add((v) => seen.push(v));
  t.doesNotThrow(() => l.emit('x'));
  t.same(seen, ['x'], 'the second listener ran');
  t.equal(errors.length, 1);
  t.match(String(errors[0]), /boom/);
});

t.test('an onError that throws does not stop the others either', async (t) => {
  const l = new Listeners<string>(() => {
    throw new Error('the report failed');
  });
  const seen: string[] = [];
  l.add(() => {
    throw new Error('boom');
  });
  l.add((v) => seen.push(v));
  t.doesNotThrow(() => l.emit('y'));
  t.same(seen, ['y']);
});
