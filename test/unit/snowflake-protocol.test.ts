import t from 'tap';
import {
  clientAnswer,
  clientError,
  decodeClientOffer,
  decodeProxyAnswer,
  decodeProxyPoll,
  proxyAnswerStatus,
  proxyMatch,
  proxyNoMatch,
  Rendezvous,
  relayHostAccepted,
  sdpCandidates,
  tlsClientHelloAt,
  WsFrameReader,
  wsAccept,
  wsFrame,
} from '../../scripts/privnet/snowflake-protocol.js';

const SDP = JSON.stringify({
  type: 'offer',
  sdp: 'v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=candidate:1 1 udp 2130706431 198.18.0.2 4000 typ host\r\na=candidate:2 1 UDP 1694498815 198.18.0.2 4001 typ srflx raddr 0.0.0.0 rport 4001\r\n',
});

t.test('client offers: the version line, then JSON', async (t) => {
  const body = `1.0\n${JSON.stringify({ offer: SDP, nat: 'unknown', fingerprint: 'AB'.repeat(20) })}`;
  t.same(decodeClientOffer(body), { offer: SDP, nat: 'unknown', fingerprint: 'AB'.repeat(20) });
  t.same(decodeClientOffer(`1.0\n${JSON.stringify({ offer: SDP })}`), {
    offer: SDP,
    nat: 'unknown',
    fingerprint: '',
  });
  t.throws(() => decodeClientOffer(JSON.stringify({ offer: SDP })), /no version line/);
  t.throws(() => decodeClientOffer(`2.0\n${JSON.stringify({ offer: SDP })}`), /unsupported version 2\.0/);
  t.throws(() => decodeClientOffer('1.0\n{"nat":"unknown"}'), /no offer/);
  t.throws(() => decodeClientOffer('1.0\n{"offer":"x","nat":"open"}'), /bad nat/);
  t.throws(() => decodeClientOffer('1.0\n[1]'), /not a JSON object/);
  t.throws(() => decodeClientOffer('1.0\n{'), /not JSON/);
  t.same(JSON.parse(clientAnswer('A')), { answer: 'A' });
  t.same(JSON.parse(clientError('none')), { error: 'none' });
});

t.test('proxy polls and answers', async (t) => {
  const poll = decodeProxyPoll(
    JSON.stringify({
      Sid: 's1',
      Version: '1.3',
      Type: 'standalone',
      NAT: 'unknown',
      Clients: 8,
      AcceptedRelayPattern: 'sim.test$',
    }),
  );
  t.same(poll, {
    sid: 's1',
    version: '1.3',
    type: 'standalone',
    nat: 'unknown',
    clients: 8,
    acceptedRelayPattern: 'sim.test$',
  });
  t.same(decodeProxyPoll('{"Sid":"s","Version":"1.0"}'), {
    sid: 's',
    version: '1.0',
    type: 'unknown',
    nat: 'unknown',
    clients: 0,
    acceptedRelayPattern: '',
  });
  t.throws(() => decodeProxyPoll('{"Sid":"s","Version":"2.0"}'), /unsupported version/);
  t.throws(() => decodeProxyPoll('{"Version":"1.3"}'), /no Sid/);
  t.same(JSON.parse(proxyMatch('O', 'unknown', 'ws://r/')), {
    Status: 'client match',
    Offer: 'O',
    NAT: 'unknown',
    RelayURL: 'ws://r/',
  });
  t.same(JSON.parse(proxyNoMatch()), { Status: 'no match' });
  t.same(decodeProxyAnswer('{"Sid":"s","Version":"1.3","Answer":"A"}'), { sid: 's', answer: 'A' });
  t.throws(() => decodeProxyAnswer('{"Sid":"s","Version":"1.3"}'), /no Answer/);
  t.same(JSON.parse(proxyAnswerStatus(true)), { Status: 'success' });
  t.same(JSON.parse(proxyAnswerStatus(false)), { Status: 'client gone' });
});

t.test('relay host patterns as the proxy reads them', async (t) => {
  t.ok(relayHostAccepted('sim.test$', 'snowflake-relay.sim.test'));
  t.notOk(relayHostAccepted('sim.test$', 'snowflake.torproject.net'));
  t.ok(relayHostAccepted('^relay.sim.test$', 'relay.sim.test'));
  t.notOk(relayHostAccepted('^relay.sim.test$', 'x.relay.sim.test'));
  t.notOk(relayHostAccepted('sim.test', 'relay.sim.test'), 'a pattern without $ accepts nothing');
  t.notOk(relayHostAccepted('', 'relay.sim.test'));
});

t.test('ICE candidates of an SDP', async (t) => {
  t.same(sdpCandidates(SDP), ['udp 198.18.0.2:4000 host', 'udp 198.18.0.2:4001 srflx']);
  t.same(sdpCandidates('a=candidate:1 1 udp 1 10.0.0.1 5 typ host'), ['udp 10.0.0.1:5 host'], 'a bare SDP');
  t.same(sdpCandidates('{}'), []);
});

t.test('rendezvous: one client to one proxy', async (t) => {
  const r = new Rendezvous(2000, 2000);
  const offer = { offer: 'O1', nat: 'unknown', fingerprint: '' };
  // the client first: the proxy's poll takes its offer, the proxy's answer goes back to that client
  const client = r.client(offer);
  const got = await r.proxy({
    sid: 'p1',
    version: '1.3',
    type: 'standalone',
    nat: 'unknown',
    clients: 0,
    acceptedRelayPattern: '',
  });
  t.same(got, offer);
  t.equal(r.answer({ sid: 'p1', answer: 'A1' }), true);
  t.equal(await client, 'A1');
  t.equal(r.answer({ sid: 'p1', answer: 'again' }), false, 'the client is gone once answered');
  // the proxy first: its poll waits for the next client
  const poll = r.proxy({
    sid: 'p2',
    version: '1.3',
    type: 'standalone',
    nat: 'unknown',
    clients: 0,
    acceptedRelayPattern: '',
  });
  const client2 = r.client({ offer: 'O2', nat: 'unknown', fingerprint: '' });
  t.same((await poll)?.offer, 'O2');
  t.equal(r.answer({ sid: 'unknown-proxy', answer: 'x' }), false, 'an answer from a proxy with no client');
  t.equal(r.answer({ sid: 'p2', answer: 'A2' }), true);
  t.equal(await client2, 'A2');
});

t.test('rendezvous: nobody comes', async (t) => {
  const r = new Rendezvous(20, 20);
  t.equal(await r.client({ offer: 'O', nat: 'unknown', fingerprint: '' }), null, 'no proxy: no answer');
  const p = { sid: 'p', version: '1.3', type: 'x', nat: 'unknown', clients: 0, acceptedRelayPattern: '' };
  t.equal(await r.proxy(p), null, 'no client: no match');
  // a matched proxy that never answers: the client gives up
  const c = r.client({ offer: 'O', nat: 'unknown', fingerprint: '' });
  t.ok(await r.proxy({ ...p, sid: 'q' }));
  t.equal(await c, null);
  t.equal(r.answer({ sid: 'q', answer: 'late' }), false, 'a late answer finds the client gone');
  const r2 = new Rendezvous(5000, 5000);
  const waiting = r2.proxy(p);
  const waitingClient = new Rendezvous(5000, 5000);
  const c2 = waitingClient.client({ offer: 'O', nat: 'unknown', fingerprint: '' });
  r2.close();
  waitingClient.close();
  t.equal(await waiting, null, 'close ends a waiting poll');
  t.equal(await c2, null, 'and a waiting client');
});

t.test('websocket: the accept key and client frames', async (t) => {
  // RFC 6455's own example
  t.equal(wsAccept('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = (opcode: number, payload: Buffer, len: Buffer) =>
    Buffer.concat([
      Buffer.from([0x80 | opcode]),
      len,
      mask,
      Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] ?? 0))),
    ]);
  const small = Buffer.from('1293605d278175f5', 'hex');
  const mid = Buffer.alloc(300, 7);
  const len16 = Buffer.from([0x80 | 126, 0, 0]);
  len16.writeUInt16BE(300, 1);
  const stream = Buffer.concat([masked(2, small, Buffer.from([0x80 | 8])), masked(2, mid, len16)]);
  const reader = new WsFrameReader();
  // fed in two pieces, split inside the second frame
  const first = reader.push(stream.subarray(0, 20));
  t.equal(first.length, 1);
  t.equal(first[0]?.payload.toString('hex'), '1293605d278175f5');
  const second = reader.push(stream.subarray(20));
  t.equal(second.length, 1);
  t.same(second[0]?.payload, mid);
  t.equal(second[0]?.opcode, 2);
  t.equal(second[0]?.fin, true);
  const len64 = Buffer.alloc(9);
  len64[0] = 0x80 | 127;
  len64.writeBigUInt64BE(5n, 1);
  t.same(new WsFrameReader().push(masked(1, Buffer.from('hello'), len64))[0]?.payload.toString(), 'hello');
  t.throws(() => new WsFrameReader().push(Buffer.from([0x82, 0x01, 0x00])), /unmasked/);
  len64.writeBigUInt64BE(1n << 40n, 1);
  t.throws(() => new WsFrameReader().push(Buffer.concat([Buffer.from([0x82]), len64])), /too long/);
  t.same(new WsFrameReader().push(Buffer.from([0x82])), [], 'half a header waits');
  t.same(wsFrame(0xa, Buffer.from('x')), Buffer.from([0x8a, 1, 0x78]));
  t.throws(() => wsFrame(0x2, Buffer.alloc(126)), /control frames only/);
});

t.test("a TLS ClientHello inside turbotunnel's bytes", async (t) => {
  const hello = Buffer.from('160301020001', 'hex');
  t.equal(tlsClientHelloAt(Buffer.concat([Buffer.from('6dc2454d5100ffff', 'hex'), hello])), 8);
  t.equal(tlsClientHelloAt(Buffer.from('160301020002', 'hex')), -1, 'a ServerHello is not one');
  t.equal(tlsClientHelloAt(Buffer.from('160301000501', 'hex')), -1, 'too short a record');
  t.equal(tlsClientHelloAt(Buffer.from('1605010200010000', 'hex')), -1, 'not a TLS version');
  t.equal(tlsClientHelloAt(Buffer.from('16160301020001', 'hex')), 1, 'found after a stray 0x16');
  t.equal(tlsClientHelloAt(Buffer.alloc(0)), -1);
});
