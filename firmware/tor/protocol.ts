/**
 * Tor control protocol (control-spec.txt), parsing only: no I/O here (Stem's split: the socket layer only
 * feeds bytes, replies are built from strings). Every function is pure and throws only ObxError
 * OBX_ERR_TOR_PROTOCOL for malformed input, whatever the bytes.
 *
 * Reply grammar:  Reply = *(MidReplyLine / DataReplyLine) EndReplyLine
 *   MidReplyLine  = StatusCode "-" text CRLF
 *   DataReplyLine = StatusCode "+" text CRLF  data lines ... "." CRLF   (leading ".." unescaped to ".")
 *   EndReplyLine  = StatusCode " " text CRLF
 */
import { obxError } from '../errors.js';
import { isIpv4 } from '../lib/ipv4.js';

export interface ReplyLine {
  code: number;
  /** '-' mid, '+' data follows, ' ' end. */
  sep: '-' | '+' | ' ';
  text: string;
  /** Data block of a '+' line (dot-unescaped, lines joined with '\n'). */
  data?: string;
}

export interface ControlReply {
  /** Status of the end line (250 ok, 5xx error, 650 async event). */
  code: number;
  lines: ReplyLine[];
}

/** A single line may not exceed this; a reply may not exceed MAX_REPLY (ns/all on the real network is ~3 MB). */
export const MAX_LINE = 64 * 1024;
export const MAX_REPLY = 32 * 1024 * 1024;

function protocolError(detail: string): Error {
  return obxError('TOR_PROTOCOL', detail);
}

/**
 * Splits a byte stream into replies. Feed it chunks; it returns every reply completed by the chunk.
 * After a protocol error the parser is poisoned (the connection must be dropped).
 */
export class ReplySplitter {
  #buf = '';
  #lines: ReplyLine[] = [];
  #data: string[] | null = null;
  #size = 0;
  #broken: Error | null = null;

  push(chunk: string): ControlReply[] {
    if (this.#broken) throw this.#broken;
    this.#buf += chunk;
    const out: ControlReply[] = [];
    try {
      for (;;) {
        const nl = this.#buf.indexOf('\n');
        if (nl < 0) {
          if (this.#buf.length > MAX_LINE) throw protocolError(`line longer than ${MAX_LINE} bytes`);
          break;
        }
        let line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line.length > MAX_LINE) throw protocolError(`line longer than ${MAX_LINE} bytes`);
        this.#size += line.length + 2;
        if (this.#size > MAX_REPLY) throw protocolError(`reply longer than ${MAX_REPLY} bytes`);
        const reply = this.#line(line);
        if (reply) out.push(reply);
      }
    } catch (err) {
      this.#broken = err as Error;
      throw err;
    }
    return out;
  }

  #line(line: string): ControlReply | null {
    if (this.#data) {
      if (line === '.') {
        const last = this.#lines[this.#lines.length - 1];
        if (last) last.data = this.#data.join('\n');
        this.#data = null;
        return null;
      }
      this.#data.push(line.startsWith('.') ? line.slice(1) : line);
      return null;
    }
    const parsed = parseReplyLine(line);
    this.#lines.push(parsed);
    if (parsed.sep === '+') {
      this.#data = [];
      return null;
    }
    if (parsed.sep === '-') return null;
    const lines = this.#lines;
    this.#lines = [];
    this.#size = 0;
    for (const l of lines) {
      if (l.code !== parsed.code && !(Math.floor(l.code / 100) === Math.floor(parsed.code / 100))) {
        throw protocolError(`status codes differ inside one reply (${l.code} vs ${parsed.code})`);
      }
    }
    return { code: parsed.code, lines };
  }
}

export function parseReplyLine(line: string): ReplyLine {
  const m = /^([0-9]{3})([- +])(.*)$/s.exec(line);
  if (!m) throw protocolError(`not a reply line: ${JSON.stringify(line.slice(0, 80))}`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point.
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(m[3] ?? '')) throw protocolError('control character in reply line');
  return { code: Number(m[1]), sep: m[2] as ReplyLine['sep'], text: m[3] ?? '' };
}

/** Parses whole replies from a complete transcript (test fixtures, fuzzing). */
export function parseTranscript(text: string): ControlReply[] {
  const splitter = new ReplySplitter();
  const replies = splitter.push(text);
  return replies;
}

export function isOk(reply: ControlReply): boolean {
  return reply.code >= 200 && reply.code < 300;
}

export function replyText(reply: ControlReply): string {
  return reply.lines.map((l) => l.text).join('\n');
}

/** Splits `KEY=VALUE KEY="quoted value"` into a map (control-spec 2.1 QuotedString with \ escapes). */
export function parseKeywords(text: string): { positional: string[]; keywords: Record<string, string> } {
  const positional: string[] = [];
  const keywords: Record<string, string> = {};
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && text[i] === ' ') i++;
    if (i >= n) break;
    const start = i;
    while (i < n && text[i] !== ' ' && text[i] !== '=') i++;
    const key = text.slice(start, i);
    if (text[i] !== '=') {
      positional.push(key);
      continue;
    }
    i++; // '='
    if (text[i] === '"') {
      i++;
      let value = '';
      let closed = false;
      while (i < n) {
        const c = text[i];
        if (c === '\\' && i + 1 < n) {
          const e = text[i + 1];
          value += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : (e ?? '');
          i += 2;
          continue;
        }
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        value += c;
        i++;
      }
      if (!closed) throw protocolError(`unterminated quoted value for ${key}`);
      keywords[key] = value;
    } else {
      const vs = i;
      while (i < n && text[i] !== ' ') i++;
      keywords[key] = text.slice(vs, i);
    }
  }
  return { positional, keywords };
}

/** GETINFO reply -> key/value map (`250-key=value`, `250+key=` + data, final `250 OK`). */
export function parseGetInfo(reply: ControlReply): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of reply.lines) {
    if (line.sep === ' ' && line.text === 'OK') continue;
    const eq = line.text.indexOf('=');
    if (eq <= 0)
      throw protocolError(`GETINFO line without key=value: ${JSON.stringify(line.text.slice(0, 80))}`);
    const key = line.text.slice(0, eq);
    out[key] = line.sep === '+' ? (line.data ?? '') : line.text.slice(eq + 1);
  }
  return out;
}

/** An async event (650): its type and the rest of its first line, plus following lines. */
export interface TorEvent {
  type: string;
  body: string;
  /** Further lines of a multi-line event (e.g. NS, or data). */
  extra: string[];
}

export function parseEvent(reply: ControlReply): TorEvent {
  if (reply.code !== 650) throw protocolError(`not an event: ${reply.code}`);
  const first = reply.lines[0];
  if (!first) throw protocolError('empty event');
  const sp = first.text.indexOf(' ');
  const type = sp < 0 ? first.text : first.text.slice(0, sp);
  const body = sp < 0 ? '' : first.text.slice(sp + 1);
  const extra: string[] = [];
  if (first.data !== undefined) extra.push(...first.data.split('\n'));
  for (const l of reply.lines.slice(1)) {
    if (l.sep === ' ' && l.text === 'OK') continue;
    extra.push(l.text);
    if (l.data !== undefined) extra.push(...l.data.split('\n'));
  }
  return { type, body, extra };
}

export interface StatusEvent {
  /** STATUS_CLIENT, STATUS_GENERAL or STATUS_SERVER */
  kind: string;
  severity: string;
  action: string;
  args: Record<string, string>;
}

/** `650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=50 TAG=loading_descriptors SUMMARY="..."` */
export function parseStatusEvent(ev: TorEvent): StatusEvent {
  const { positional, keywords } = parseKeywords(ev.body);
  const [severity, action] = positional;
  if (!severity || !action) throw protocolError(`malformed ${ev.type} event`);
  return { kind: ev.type, severity, action, args: keywords };
}

/**
 * `650 STATUS_GENERAL WARN DANGEROUS_VERSION CURRENT=0.4.7.16 REASON=OBSOLETE RECOMMENDED="..."`: tor's
 * version is not in the consensus's recommended list (REASON NEW, OBSOLETE or UNRECOMMENDED). Null for any
 * other event.
 */
export function dangerousVersionOf(ev: TorEvent): { current: string; reason: string } | null {
  if (ev.type !== 'STATUS_GENERAL') return null;
  const st = parseStatusEvent(ev);
  if (st.action !== 'DANGEROUS_VERSION') return null;
  return { current: st.args.CURRENT ?? '', reason: st.args.REASON ?? '' };
}

export interface Bootstrap {
  progress: number;
  tag: string;
  summary: string;
  warning?: string | undefined;
}

/** From `status/bootstrap-phase` or a STATUS_CLIENT BOOTSTRAP event body (severity first). */
export function parseBootstrap(text: string): Bootstrap {
  const { positional, keywords } = parseKeywords(text);
  if (!positional.includes('BOOTSTRAP')) throw protocolError('not a bootstrap status');
  const progress = Number(keywords.PROGRESS);
  if (!Number.isInteger(progress) || progress < 0 || progress > 100) {
    throw protocolError(`bad bootstrap progress ${JSON.stringify(keywords.PROGRESS ?? '')}`);
  }
  return {
    progress,
    tag: keywords.TAG ?? '',
    summary: keywords.SUMMARY ?? '',
    warning: keywords.WARNING,
  };
}

export interface CircHop {
  fingerprint: string;
  nickname: string;
}

export interface Circuit {
  id: string;
  status: string;
  hops: CircHop[];
  purpose: string;
  buildFlags: string[];
  reason?: string | undefined;
}

/** `$FP~nick` or `$FP=nick` or `$FP` (control-spec LongName). */
export function parseLongName(name: string): CircHop {
  const m = /^\$([0-9A-Fa-f]{40})(?:[~=]([A-Za-z0-9]{1,19}))?$/.exec(name);
  if (!m) throw protocolError(`bad relay name ${JSON.stringify(name.slice(0, 80))}`);
  return { fingerprint: (m[1] ?? '').toUpperCase(), nickname: m[2] ?? '' };
}

/** One line of `circuit-status` or a CIRC event body: `ID STATUS [PATH] [KEY=VALUE...]`. */
export function parseCircuitLine(line: string): Circuit {
  const { positional, keywords } = parseKeywords(line);
  const [id, status, path] = positional;
  if (!id || !/^[0-9]{1,10}$/.test(id) || !status || !/^[A-Z]+$/.test(status)) {
    throw protocolError(`bad circuit line ${JSON.stringify(line.slice(0, 80))}`);
  }
  const hops = path ? path.split(',').map(parseLongName) : [];
  return {
    id,
    status,
    hops,
    purpose: keywords.PURPOSE ?? '',
    buildFlags: keywords.BUILD_FLAGS ? keywords.BUILD_FLAGS.split(',') : [],
    reason: keywords.REASON,
  };
}

export function parseCircuitStatus(text: string): Circuit[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(parseCircuitLine);
}

export interface RouterStatus {
  nickname: string;
  /** Hex, upper case. */
  fingerprint: string;
  address: string;
  orPort: number;
  dirPort: number;
  flags: string[];
  /** IPv6 OR addresses from `a` lines, as `[addr]:port`. */
  orAddresses: string[];
}

function b64ToHex(b64: string): string {
  const buf = Buffer.from(b64, 'base64');
  if (buf.length !== 20) throw protocolError(`bad identity digest ${JSON.stringify(b64.slice(0, 40))}`);
  return buf.toString('hex').toUpperCase();
}

function port(text: string | undefined): number {
  const n = Number(text);
  if (!text || !/^[0-9]{1,5}$/.test(text) || n > 65535)
    throw protocolError(`bad port ${JSON.stringify(text)}`);
  return n;
}

/** One router status line, as tor writes it in a consensus, `ns/all`, `ns/id/FP` or NEWCONSENSUS. */
export interface RouterLine {
  nickname: string;
  /** Base64 identity digest (as written; no padding). */
  identity: string;
  address: string;
  orPort: number;
  dirPort: number;
}

/**
 * The one parser of router (`r`) lines, both flavours:
 *   full:  r nickname identity digest YYYY-MM-DD HH:MM:SS IP ORPort DirPort
 *   micro: r nickname identity YYYY-MM-DD HH:MM:SS IP ORPort DirPort
 * The digest is absent with microdescriptor consensuses, so the address and ports are the last three
 * fields, after the publication time. Anything else: a protocol error.
 */
export function parseRouterLine(line: string): RouterLine {
  const f = line.trimEnd().split(' ');
  const short = JSON.stringify(line.slice(0, 80));
  if (f[0] !== 'r' || f.length < 8 || f.length > 9) throw protocolError(`bad r line ${short}`);
  if (
    !/^\d{4}-\d{2}-\d{2}$/.test(f[f.length - 5] ?? '') ||
    !/^\d{2}:\d{2}:\d{2}$/.test(f[f.length - 4] ?? '')
  ) {
    throw protocolError(`bad time in r line ${short}`);
  }
  const address = f[f.length - 3] ?? '';
  if (!isIpv4(address)) throw protocolError(`bad address in r line ${JSON.stringify(address)}`);
  return {
    nickname: f[1] ?? '',
    identity: f[2] ?? '',
    address,
    orPort: port(f[f.length - 2]),
    dirPort: port(f[f.length - 1]),
  };
}

/**
 * `GETINFO ns/all` (v3 network status entries): `r ...` (parseRouterLine), `a [v6]:port`, `s Flags...`.
 */
export function parseNetworkStatus(text: string): RouterStatus[] {
  const out: RouterStatus[] = [];
  let cur: RouterStatus | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line.startsWith('r ')) {
      const r = parseRouterLine(line);
      cur = {
        nickname: r.nickname,
        fingerprint: b64ToHex(r.identity),
        address: r.address,
        orPort: r.orPort,
        dirPort: r.dirPort,
        flags: [],
        orAddresses: [],
      };
      out.push(cur);
    } else if (line.startsWith('s ') && cur) {
      cur.flags = line.slice(2).split(' ').filter(Boolean);
    } else if (line.startsWith('a ') && cur) {
      cur.orAddresses.push(line.slice(2));
    }
  }
  return out;
}

/** Escapes a value for a control-port QuotedString (SETCONF, LOADCONF). */
export function quoteString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}
