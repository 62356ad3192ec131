/**
 * Control-protocol parsing from real tor 0.4.9 transcripts (test/fixtures/tor/, recorded by
 * test/fixtures/tor/record.ts against a private network), plus fuzzing with random bytes.
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import t from 'tap';
import { isObxError } from '../../firmware/errors.js';
import {
  type ControlReply,
  dangerousVersionOf,
  parseBootstrap,
  parseCircuitLine,
  parseCircuitStatus,
  parseEvent,
  parseGetInfo,
  parseKeywords,
  parseNetworkStatus,
  parseStatusEvent,
  parseTranscript,
  quoteString,
  ReplySplitter,
} from '../../firmware/tor/protocol.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/tor/${name}`, import.meta.url), 'latin1');
const one = (name: string): ControlReply => {
  const replies = parseTranscript(fixture(name));
  if (replies.length !== 1 || !replies[0])
    throw new Error(`${name}: expected one reply, got ${replies.length}`);
  return replies[0];
};

t.test('PROTOCOLINFO: methods and cookie file', async (t) => {
  const r = one('protocolinfo.txt');
  t.equal(r.code, 250);
  const auth = r.lines.find((l) => l.text.startsWith('AUTH '));
  t.ok(auth);
  const { keywords } = parseKeywords(auth?.text.slice(5) ?? '');
  t.same(keywords.METHODS?.split(','), ['COOKIE', 'SAFECOOKIE']);
  t.match(keywords.COOKIEFILE, /\/control_auth_cookie$/);
});

t.test(
  'AUTHCHALLENGE: the recorded server hash verifies with the recorded cookie (SAFECOOKIE math)',
  async (t) => {
    const r = one('authchallenge.txt');
    const { keywords } = parseKeywords(r.lines[0]?.text.replace(/^AUTHCHALLENGE /, '') ?? '');
    const cookie = Buffer.from(fixture('control_auth_cookie.hex').trim(), 'hex');
    const clientNonce = Buffer.from('ab'.repeat(32), 'hex');
    const serverNonce = Buffer.from(keywords.SERVERNONCE ?? '', 'hex');
    const msg = Buffer.concat([cookie, clientNonce, serverNonce]);
    const expected = createHmac('sha256', 'Tor safe cookie authentication server-to-controller hash')
      .update(msg)
      .digest('hex')
      .toUpperCase();
    t.equal(keywords.SERVERHASH, expected);
    const wrong = createHmac('sha256', 'Tor safe cookie authentication server-to-controller hash')
      .update(Buffer.concat([Buffer.alloc(32), clientNonce, serverNonce]))
      .digest('hex')
      .toUpperCase();
    t.not(keywords.SERVERHASH, wrong, 'a different cookie gives a different hash');
  },
);

t.test('error replies keep tor code and text', async (t) => {
  t.same(one('authenticate-bad.txt').code, 515);
  t.same(one('getinfo-unknown.txt').code, 552);
  t.same(one('setconf-bad.txt').code, 513);
  t.same(one('unknown-command.txt').code, 510);
  t.match(one('getinfo-unknown.txt').lines[0]?.text, /Unrecognized key "no-such-key"/);
});

t.test('GETINFO: single, multiple keys and data blocks', async (t) => {
  t.match(parseGetInfo(one('getinfo-version.txt')).version, /^0\.4\.9\./);
  const multi = parseGetInfo(one('getinfo-multi.txt'));
  t.equal(multi['status/circuit-established'], '1');
  t.ok(multi['config-file']);
  const phase = parseGetInfo(one('getinfo-bootstrap-phase.txt'))['status/bootstrap-phase'] ?? '';
  t.same(parseBootstrap(phase), { progress: 100, tag: 'done', summary: 'Done', warning: undefined });
  const circuits = parseCircuitStatus(
    parseGetInfo(one('getinfo-circuit-status.txt'))['circuit-status'] ?? '',
  );
  t.ok(circuits.length >= 3);
  const exitCirc = circuits.find((c) => c.hops.length === 3 && c.status === 'BUILT');
  t.ok(exitCirc, 'a 3-hop built circuit');
  t.equal(exitCirc?.hops[2]?.nickname, 'exit0');
  t.match(exitCirc?.hops[0]?.fingerprint, /^[0-9A-F]{40}$/);
});

t.test('ns/all: every relay with address, ports and flags', async (t) => {
  const relays = parseNetworkStatus(parseGetInfo(one('getinfo-ns-all.txt'))['ns/all'] ?? '');
  t.equal(relays.length, 6);
  t.same(relays.map((r) => r.nickname).sort(), ['auth0', 'auth1', 'auth2', 'exit0', 'middle0', 'middle1']);
  for (const r of relays) {
    t.equal(r.address, '127.0.0.1');
    t.ok(r.orPort > 0);
    t.ok(r.flags.includes('Running'));
  }
  t.ok(relays.find((r) => r.nickname === 'exit0')?.flags.includes('Exit'));
  t.notOk(
    relays.find((r) => r.nickname === 'exit0')?.flags.includes('Guard'),
    'the exit is no guard (DESIGN §4b)',
  );
});

t.test('EXTENDCIRCUIT and SIGNAL replies', async (t) => {
  t.match(one('extendcircuit.txt').lines[0]?.text, /^EXTENDED [0-9]+$/);
  t.same(one('signal-newnym.txt'), { code: 250, lines: [{ code: 250, sep: ' ', text: 'OK' }] });
});

t.test('recorded event stream: bootstrap, circuits, streams, log events', async (t) => {
  const replies = parseTranscript(fixture('events.txt'));
  const events = replies.filter((r) => r.code === 650).map(parseEvent);
  const types = new Set(events.map((e) => e.type));
  for (const ty of ['STATUS_CLIENT', 'CIRC', 'STREAM', 'NOTICE']) t.ok(types.has(ty), `has ${ty}`);
  const progress = events
    .filter((e) => e.type === 'STATUS_CLIENT')
    .map(parseStatusEvent)
    .filter((s) => s.action === 'BOOTSTRAP')
    .map((s) => Number(s.args.PROGRESS));
  t.ok(progress.length > 3);
  t.equal(progress[progress.length - 1], 100);
  t.same(
    progress,
    [...progress].sort((a, b) => a - b),
    'bootstrap progress only grows',
  );
  const built = events.filter((e) => e.type === 'CIRC').map((e) => parseCircuitLine(e.body));
  t.ok(built.some((c) => c.status === 'BUILT' && c.hops.length === 3));
  t.ok(built.every((c) => /^[0-9]+$/.test(c.id)));
});

t.test('CLOCK_SKEW (control-spec example form)', async (t) => {
  const r = parseTranscript('650 STATUS_GENERAL WARN CLOCK_SKEW SKEW=-3600 SOURCE=OR:127.0.0.1:5000\r\n');
  const st = parseStatusEvent(parseEvent(r[0] as ControlReply));
  t.same(st, {
    kind: 'STATUS_GENERAL',
    severity: 'WARN',
    action: 'CLOCK_SKEW',
    args: { SKEW: '-3600', SOURCE: 'OR:127.0.0.1:5000' },
  });
  const c = parseStatusEvent(
    parseEvent(
      parseTranscript(
        '650 STATUS_GENERAL WARN CLOCK_SKEW MIN_SKEW=-7200 SOURCE=CONSENSUS\r\n',
      )[0] as ControlReply,
    ),
  );
  t.equal(c.args.MIN_SKEW, '-7200');
});

t.test('DANGEROUS_VERSION: the version and the reason; other events are not it', async (t) => {
  const ev = (line: string) => parseEvent(parseTranscript(`${line}\r\n`)[0] as ControlReply);
  t.same(
    dangerousVersionOf(
      ev(
        '650 STATUS_GENERAL WARN DANGEROUS_VERSION CURRENT=0.4.7.16 REASON=OBSOLETE RECOMMENDED="0.4.8.9,0.4.9.1-alpha"',
      ),
    ),
    { current: '0.4.7.16', reason: 'OBSOLETE' },
  );
  t.equal(dangerousVersionOf(ev('650 STATUS_GENERAL WARN CLOCK_SKEW SKEW=-3600 SOURCE=CONSENSUS')), null);
  t.equal(
    dangerousVersionOf(ev('650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"')),
    null,
  );
});

t.test('quoted strings: escapes both ways', async (t) => {
  const value = 'a "quoted" \\ value\nwith newline';
  const { keywords } = parseKeywords(`K=${quoteString(value)} X=1`);
  t.equal(keywords.K, value);
  t.equal(keywords.X, '1');
  t.throws(() => parseKeywords('K="unterminated'), { code: 'OBX_ERR_TOR_PROTOCOL' });
});

t.test('malformed input is a protocol error, and poisons the splitter', async (t) => {
  for (const bad of ['hello\r\n', '25 OK\r\n', '2500 OK\r\n', '250*OK\r\n', '250 a\x01b\r\n']) {
    t.throws(() => parseTranscript(bad), { code: 'OBX_ERR_TOR_PROTOCOL' }, JSON.stringify(bad));
  }
  const s = new ReplySplitter();
  t.throws(() => s.push('nonsense\r\n'));
  t.throws(() => s.push('250 OK\r\n'), 'stays broken after an error');
  t.throws(
    () => new ReplySplitter().push('2'.repeat(70_000)),
    { code: 'OBX_ERR_TOR_PROTOCOL' },
    'overlong line',
  );
});

t.test('fuzz: random bytes never crash the parser with anything but a protocol error', async (t) => {
  let parsed = 0;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
      try {
        const replies = new ReplySplitter().push(Buffer.from(bytes).toString('latin1'));
        for (const r of replies) {
          if (r.code === 650) {
            try {
              parseEvent(r);
            } catch (err) {
              if (!isObxError(err, 'TOR_PROTOCOL')) throw err;
            }
          }
        }
        parsed++;
      } catch (err) {
        if (!isObxError(err, 'TOR_PROTOCOL')) throw err;
      }
    }),
    { numRuns: 3000 },
  );
  t.ok(parsed > 0);
});

t.test('fuzz: replies-like text and random chunking give the same replies as one push', async (t) => {
  const line = fc
    .tuple(
      fc.constantFrom('250', '650', '552'),
      fc.constantFrom('-', ' ', '+'),
      fc.string({ unit: fc.constantFrom('a', 'b', '=', '"', ' ', '.', 'Z'), maxLength: 30 }),
    )
    .map(([c, s, text]) => (s === '+' ? `${c}+${text}\r\nx\r\n..dot\r\n.\r\n` : `${c}${s}${text}\r\n`));
  fc.assert(
    fc.property(fc.array(line, { maxLength: 12 }), fc.array(fc.nat(40), { maxLength: 10 }), (lines, cuts) => {
      const text = lines.join('');
      let whole: ControlReply[] | Error;
      try {
        whole = new ReplySplitter().push(text);
      } catch (err) {
        whole = err as Error;
      }
      const s = new ReplySplitter();
      let chunked: ControlReply[] | Error = [];
      try {
        let pos = 0;
        for (const c of cuts) {
          (chunked as ControlReply[]).push(...s.push(text.slice(pos, pos + c)));
          pos += c;
        }
        (chunked as ControlReply[]).push(...s.push(text.slice(pos)));
      } catch (err) {
        chunked = err as Error;
      }
      if (whole instanceof Error) return chunked instanceof Error;
      return JSON.stringify(whole) === JSON.stringify(chunked);
    }),
    { numRuns: 1000 },
  );
  t.pass('chunking never changes the result');
  const data = parseTranscript('250+k=\r\nline one\r\n..starts with dot\r\n.\r\n250 OK\r\n');
  t.equal(
    parseGetInfo(data[0] as ControlReply).k,
    'line one\n.starts with dot',
    'dot-unescaping of data lines',
  );
});
