/**
 * The diagnostics' one redaction (firmware/lib/redact.ts, issue 23): secrets, configured bridges and
 * bridge-shaped text in tor's warnings never leave the box.
 */
import t from 'tap';
import { bridgeSecrets, REDACTED, redact } from '../../firmware/lib/redact.js';

const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const CERT = 'ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw';
const OBFS4 = `obfs4 192.0.2.1:443 ${FP} cert=${CERT} iat-mode=0`;

t.test('a configured bridge: address, host, fingerprint and cert, wherever they appear', async (t) => {
  t.same(bridgeSecrets(OBFS4), ['192.0.2.1:443', '192.0.2.1', FP, CERT]);
  const text = [
    `tor warning: Problem bootstrapping. Stuck at 10% (conn_done): Connected to a relay. (DONE; DONE; count 3; recommendation warn; host ${FP} at 192.0.2.1:443)`,
    'event: bridge 192.0.2.1 unreachable',
    `echo ${CERT}`,
    `line: ${OBFS4}`,
  ].join('\n');
  const out = redact(text, { bridges: [OBFS4] });
  for (const secret of ['192.0.2.1', FP, CERT]) t.notOk(out.includes(secret), secret);
  t.match(out, 'iat-mode=0', 'short argument values are not secrets');
  t.match(out, 'Stuck at 10%', 'the rest of the warning stays');
});

t.test('bridge-shaped text no configured line names (tor names the bridge it tried)', async (t) => {
  const warning =
    'Proxy Client: unable to connect OR connection (handshaking (proxy)) with 198.51.100.9:9001 ID=<none> RSA_ID=$ABCDEF0123456789ABCDEF0123456789ABCDEF01 ("general SOCKS server failure")';
  const out = redact(
    `${warning}\nBridge line webtunnel [2001:db8::7]:443 url=https://example.org/secret-path ver=0.0.1 cert=AbCdEf+/==`,
  );
  t.notMatch(out, /198\.51\.100\.9|ABCDEF0123456789ABCDEF0123456789ABCDEF01|2001:db8::7|secret-path|AbCdEf/);
  t.match(out, `RSA_ID=${REDACTED}`);
  t.match(out, `url=${REDACTED}`);
  t.match(out, `cert=${REDACTED}`);
  t.match(out, 'general SOCKS server failure');
});

t.test('exact secrets go; the LAN address without a port stays; nothing else changes', async (t) => {
  const hash = 'scrypt$16384$8$1$c2FsdA==$aGFzaA==';
  const key = 'a'.repeat(64);
  const text = `hash=${hash} key=${key} web: 10.42.0.1 state routing`;
  t.equal(
    redact(text, { secrets: [hash, key, null, ''] }),
    `hash=${REDACTED} key=${REDACTED} web: 10.42.0.1 state routing`,
  );
  t.equal(redact('nothing to hide here'), 'nothing to hide here');
});
