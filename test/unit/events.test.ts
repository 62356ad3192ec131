import t from 'tap';
import { EventBus } from '../../firmware/events.js';

interface TestEvents {
  ping: { n: number };
  other: string;
}

t.test('typed bus: owners, removal, contained listener errors', async (t) => {
  const errors: string[] = [];
  const bus = new EventBus<TestEvents>({ error: (o: object) => errors.push(JSON.stringify(o)) } as never);
  const seen: number[] = [];
  const off = bus.on('ping', 'a', (p) => {
    seen.push(p.n);
  });
  bus.on('ping', 'b', () => {
    throw new Error('boom');
  });
  bus.on('ping', 'c', async () => {
    throw new Error('async boom');
  });
  bus.on('other', 'b', () => undefined);
  bus.emit('ping', { n: 1 });
  await new Promise((r) => setImmediate(r));
  t.same(seen, [1], 'a throwing listener does not stop the others');
  t.equal(errors.length, 2);
  t.match(errors[0], /boom/);
  t.equal(bus.listenerCount('ping'), 3);
  bus.removeOwner('b');
  t.equal(bus.listenerCount('ping'), 2);
  t.equal(bus.listenerCount('other'), 0);
  off();
  bus.emit('ping', { n: 2 });
  t.same(seen, [1]);
  bus.emit('other', 'nobody listens');
  t.equal(bus.listenerCount('other'), 0);
});
