import t from 'tap';
import { parseRelayEndpoints } from '../../firmware/firewall/relays.js';

t.test('relay endpoints from tor network status (full and microdescriptor flavours)', async (t) => {
  const ns = [
    '250+ns/all=',
    'r auth0 AAAAAAAAAAAAAAAAAAAAAAAAAAA BBBBBBBBBBBBBBBBBBBBBBBBBBB 2026-11-29 00:39:27 198.18.0.10 5000 7000',
    'a [2001:db8::1]:5000',
    's Authority Fast Guard Running Stable V2Dir Valid',
    'w Bandwidth=0',
    'r middle0 CCCCCCCCCCCCCCCCCCCCCCCCCCC DDDDDDDDDDDDDDDDDDDDDDDDDDD 2026-11-29 00:39:27 198.18.0.13 5003 0',
    's Fast Guard Running Valid',
    '.',
    '250 OK',
  ].join('\r\n');
  t.same(parseRelayEndpoints(ns), [
    { address: '198.18.0.10', port: 5000 },
    { address: '198.18.0.13', port: 5003 },
  ]);
  const micro =
    'network-status-version 3 microdesc\nr exit0 EEEEEEEEEEEEEEEEEEEEEEEEEEE 2026-11-29 00:39:27 198.18.0.15 5005 7005\nm FFFF\n';
  t.same(parseRelayEndpoints(micro), [{ address: '198.18.0.15', port: 5005 }]);
  // malformed and hostile lines are skipped, never passed on
  const bad = [
    'r x A 2026-11-29 00:39:27 198.18.0.300 5000 0',
    'r x A 2026-11-29 00:39:27 198.18.0.1 0 0',
    'r x A 2026-11-29 00:39:27 198.18.0.1 } 0',
    'r x A B C',
    'rr x A 2026-11-29 00:39:27 198.18.0.1 9001 0',
    'r x A 2026-11-29 00:39:27 224.0.0.1 9001 0',
  ].join('\n');
  t.same(parseRelayEndpoints(bad), []);
});
