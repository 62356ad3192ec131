/**
 * The snowflake broker's HTTP messages and its one-client-to-one-proxy matching, and the least of
 * WebSocket a relay needs (test code for the simulated world's snowflake broker, scripts/privnet/
 * snowflake-broker.ts). Pure, apart from the timers of `Rendezvous`. Written from the message formats
 * snowflake documents (its broker spec and common/messages), not from its code:
 *
 *   POST /client  body `1.0\n{"offer": SDP, "nat": NAT, "fingerprint": FP}` (the version line, then
 *                 JSON; SDP is itself JSON, {"type":"offer","sdp":...}); the answer
 *                 `{"answer": SDP}` or `{"error": "..."}`, HTTP 200 either way.
 *   POST /proxy   body `{"Sid", "Version": "1.x", "Type", "NAT", "Clients", "AcceptedRelayPattern"}`;
 *                 the answer `{"Status": "client match", "Offer": SDP, "NAT", "RelayURL"}` or
 *                 `{"Status": "no match"}`.
 *   POST /answer  body `{"Sid", "Version": "1.x", "Answer": SDP}`; the answer `{"Status": "success"}`
 *                 or `{"Status": "client gone"}`.
 */
import { createHash } from 'node:crypto';

export const CLIENT_VERSION = '1.0';

export interface ClientOffer {
  offer: string;
  nat: string;
  fingerprint: string;
}

export interface ProxyPoll {
  sid: string;
  version: string;
  type: string;
  nat: string;
  clients: number;
  /** The relay host pattern the proxy accepts (`suffix$` or `^exact$`), '' when it sent none. */
  acceptedRelayPattern: string;
}

export interface ProxyAnswer {
  sid: string;
  answer: string;
}

function object(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`${what}: not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what}: not a JSON object`);
  return v as Record<string, unknown>;
}

function str(o: Record<string, unknown>, key: string, what: string, required = true): string {
  const v = o[key];
  if (v === undefined && !required) return '';
  if (typeof v !== 'string' || (required && v === '')) throw new Error(`${what}: no ${key}`);
  return v;
}

function majorOne(version: string, what: string): void {
  if (version.split('.')[0] !== '1') throw new Error(`${what}: unsupported version ${version.slice(0, 10)}`);
}

/** A client's POST /client body: the version line, then JSON. */
export function decodeClientOffer(body: string): ClientOffer {
  const nl = body.indexOf('\n');
  if (nl < 0) throw new Error('client offer: no version line');
  const version = body.slice(0, nl);
  if (version !== CLIENT_VERSION)
    throw new Error(`client offer: unsupported version ${version.slice(0, 10)}`);
  const o = object(body.slice(nl + 1), 'client offer');
  const nat = str(o, 'nat', 'client offer', false) || 'unknown';
  if (!['unknown', 'restricted', 'unrestricted'].includes(nat)) throw new Error('client offer: bad nat');
  return {
    offer: str(o, 'offer', 'client offer'),
    nat,
    fingerprint: str(o, 'fingerprint', 'client offer', false),
  };
}

export function clientAnswer(answer: string): string {
  return JSON.stringify({ answer });
}

export function clientError(error: string): string {
  return JSON.stringify({ error });
}

/** A proxy's POST /proxy body. */
export function decodeProxyPoll(body: string): ProxyPoll {
  const o = object(body, 'proxy poll');
  const version = str(o, 'Version', 'proxy poll');
  majorOne(version, 'proxy poll');
  const clients = o.Clients;
  const pattern = o.AcceptedRelayPattern;
  return {
    sid: str(o, 'Sid', 'proxy poll'),
    version,
    type: str(o, 'Type', 'proxy poll', false) || 'unknown',
    nat: str(o, 'NAT', 'proxy poll', false) || 'unknown',
    clients: typeof clients === 'number' ? clients : 0,
    acceptedRelayPattern: typeof pattern === 'string' ? pattern : '',
  };
}

export function proxyMatch(offer: string, nat: string, relayURL: string): string {
  return JSON.stringify({ Status: 'client match', Offer: offer, NAT: nat, RelayURL: relayURL });
}

export function proxyNoMatch(): string {
  return JSON.stringify({ Status: 'no match' });
}

/** A proxy's POST /answer body. */
export function decodeProxyAnswer(body: string): ProxyAnswer {
  const o = object(body, 'proxy answer');
  majorOne(str(o, 'Version', 'proxy answer'), 'proxy answer');
  return { sid: str(o, 'Sid', 'proxy answer'), answer: str(o, 'Answer', 'proxy answer') };
}

export function proxyAnswerStatus(delivered: boolean): string {
  return JSON.stringify({ Status: delivered ? 'success' : 'client gone' });
}

/**
 * Whether a relay host is one the proxy accepts: its pattern is a suffix ending in `$`, or `^exact$`;
 * no pattern accepts nothing (the broker then gives the proxy no relay of its choosing).
 */
export function relayHostAccepted(pattern: string, host: string): boolean {
  if (!pattern.endsWith('$')) return false;
  const rule = pattern.slice(0, -1);
  return rule.startsWith('^') ? host === rule.slice(1) : host.endsWith(rule);
}

/** The ICE candidates' `address:port typ` of an SDP given as snowflake sends it (JSON with an `sdp`). */
export function sdpCandidates(sdpJson: string): string[] {
  let sdp = sdpJson;
  try {
    const o = JSON.parse(sdpJson) as { sdp?: unknown };
    if (typeof o.sdp === 'string') sdp = o.sdp;
  } catch {
    // a bare SDP
  }
  const out: string[] = [];
  for (const line of sdp.split(/\r?\n/)) {
    // a=candidate:FOUNDATION COMPONENT PROTO PRIORITY ADDRESS PORT typ TYPE ...
    const m = /^a=candidate:\S+ \d+ (\S+) \d+ (\S+) (\d+) typ (\S+)/.exec(line);
    if (m) out.push(`${m[1]?.toLowerCase()} ${m[2]}:${m[3]} ${m[4]}`);
  }
  return out;
}

interface WaitingClient {
  offer: ClientOffer;
  done: (answer: string | null) => void;
  sid: string | null;
}

interface WaitingProxy {
  poll: ProxyPoll;
  done: (client: WaitingClient | null) => void;
}

/**
 * One client to one proxy: a client's offer waits (up to clientWaitMs) for a proxy's poll and then for
 * that proxy's answer; a proxy's poll waits (up to pollWaitMs) for a client. First come, first served.
 */
export class Rendezvous {
  #clients: WaitingClient[] = [];
  #proxies: WaitingProxy[] = [];
  #matched = new Map<string, WaitingClient>();

  constructor(
    private readonly clientWaitMs: number,
    private readonly pollWaitMs: number,
  ) {}

  /** Resolves with the proxy's answer, or null when no proxy took the offer or answered in time. */
  client(offer: ClientOffer): Promise<string | null> {
    return new Promise((resolve) => {
      const c: WaitingClient = { offer, sid: null, done: () => undefined };
      const timer = setTimeout(() => finish(null), this.clientWaitMs);
      const finish = (answer: string | null) => {
        clearTimeout(timer);
        this.#clients = this.#clients.filter((x) => x !== c);
        if (c.sid !== null) this.#matched.delete(c.sid);
        c.done = () => undefined;
        resolve(answer);
      };
      c.done = finish;
      const proxy = this.#proxies.shift();
      if (proxy) {
        c.sid = proxy.poll.sid;
        this.#matched.set(proxy.poll.sid, c);
        proxy.done(c);
      } else this.#clients.push(c);
    });
  }

  /** Resolves with the client's offer for this proxy, or null (no match) after pollWaitMs. */
  proxy(poll: ProxyPoll): Promise<ClientOffer | null> {
    return new Promise((resolve) => {
      const waiting = this.#clients.shift();
      if (waiting) {
        waiting.sid = poll.sid;
        this.#matched.set(poll.sid, waiting);
        resolve(waiting.offer);
        return;
      }
      const p: WaitingProxy = { poll, done: () => undefined };
      const timer = setTimeout(() => {
        this.#proxies = this.#proxies.filter((x) => x !== p);
        resolve(null);
      }, this.pollWaitMs);
      p.done = (c) => {
        clearTimeout(timer);
        resolve(c ? c.offer : null);
      };
      this.#proxies.push(p);
    });
  }

  /** Hands a proxy's answer to the client it was matched with; false when that client is gone. */
  answer(a: ProxyAnswer): boolean {
    const c = this.#matched.get(a.sid);
    if (!c) return false;
    c.done(a.answer);
    return true;
  }

  /** Stops every wait (no match, no answer). */
  close(): void {
    for (const p of this.#proxies.splice(0)) p.done(null);
    for (const c of this.#clients.splice(0)) c.done(null);
  }
}

// ---- the least of WebSocket (RFC 6455) a relay that only records needs ----

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The handshake's Sec-WebSocket-Accept for a client's Sec-WebSocket-Key. */
export function wsAccept(key: string): string {
  return createHash('sha1').update(`${key}${WS_GUID}`).digest('base64');
}

export interface WsFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** Reads client frames (masked, as RFC 6455 requires of clients) from a byte stream. */
export class WsFrameReader {
  #buf: Buffer = Buffer.alloc(0);

  /** Feeds bytes; returns every frame now complete. Throws on an unmasked or oversized frame. */
  push(chunk: Buffer, maxPayload = 1 << 20): WsFrame[] {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    const out: WsFrame[] = [];
    for (;;) {
      const b = this.#buf;
      if (b.length < 2) break;
      const b0 = b[0] ?? 0;
      const b1 = b[1] ?? 0;
      if ((b1 & 0x80) === 0) throw new Error('websocket: unmasked client frame');
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        const big = b.readBigUInt64BE(2);
        if (big > BigInt(maxPayload)) throw new Error('websocket: frame too long');
        len = Number(big);
        off = 10;
      }
      if (len > maxPayload) throw new Error('websocket: frame too long');
      if (b.length < off + 4 + len) break;
      const mask = b.subarray(off, off + 4);
      const payload = Buffer.alloc(len);
      for (let i = 0; i < len; i++) payload[i] = (b[off + 4 + i] ?? 0) ^ (mask[i % 4] ?? 0);
      out.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload });
      this.#buf = b.subarray(off + 4 + len);
    }
    return out;
  }
}

/** A server frame (unmasked), e.g. a pong or a close. */
export function wsFrame(opcode: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  if (payload.length > 125) throw new Error('websocket: control frames only (125 bytes at most)');
  return Buffer.concat([Buffer.from([0x80 | opcode, payload.length]), payload]);
}

/**
 * Where a TLS ClientHello starts in some bytes (a handshake record, 0x16 0x03 0x0X, whose first message
 * is type 1), or -1: tor's link handshake to its bridge, carried inside snowflake's turbotunnel framing.
 */
export function tlsClientHelloAt(buf: Buffer): number {
  for (let i = buf.indexOf(0x16); i >= 0 && i + 5 < buf.length; i = buf.indexOf(0x16, i + 1)) {
    const len = i + 5 <= buf.length ? buf.readUInt16BE(i + 3) : 0;
    if (buf[i + 1] === 0x03 && (buf[i + 2] ?? 9) <= 0x04 && len >= 40 && len <= 16384 && buf[i + 5] === 0x01)
      return i;
  }
  return -1;
}
