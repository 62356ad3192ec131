/**
 * The client side of the pluggable-transport managed protocol (pt-spec v1), as tor speaks it to lyrebird,
 * for the one place the box runs a transport itself: Moat over meek_lite (moat-client.ts). Pure: the
 * environment the child gets, its stdout lines parsed, and the per-connection arguments carried in the
 * SOCKS5 username and password.
 *
 *   environment  TOR_PT_MANAGED_TRANSPORT_VER=1, TOR_PT_STATE_LOCATION, TOR_PT_CLIENT_TRANSPORTS,
 *                TOR_PT_EXIT_ON_STDIN_CLOSE=1 (the child ends when its parent does)
 *   stdout       VERSION 1 | VERSION-ERROR | ENV-ERROR | CMETHOD NAME socks5 ADDR:PORT |
 *                CMETHOD-ERROR NAME MESSAGE | CMETHODS DONE | LOG ... | STATUS ...
 *   SOCKS args   k=v pairs joined by ';', with '\', ';' and '=' in values escaped by '\'; up to 255 bytes
 *                in the username (the password then one NUL byte), longer ones go on in the password
 */
import { obxError } from '../errors.js';

export function ptClientEnv(transport: string, stateDir: string): Record<string, string> {
  return {
    TOR_PT_MANAGED_TRANSPORT_VER: '1',
    TOR_PT_STATE_LOCATION: stateDir,
    TOR_PT_CLIENT_TRANSPORTS: transport,
    TOR_PT_EXIT_ON_STDIN_CLOSE: '1',
  };
}

export type PtLine =
  | { kind: 'version'; version: string }
  | { kind: 'cmethod'; transport: string; host: string; port: number }
  | { kind: 'done' }
  | { kind: 'error'; message: string }
  | { kind: 'other' };

/** One line of the child's stdout. */
export function parsePtLine(line: string): PtLine {
  const words = line.trim().split(/\s+/);
  const [keyword = '', ...rest] = words;
  switch (keyword) {
    case 'VERSION':
      return { kind: 'version', version: rest[0] ?? '' };
    case 'VERSION-ERROR':
    case 'ENV-ERROR':
    case 'PROXY-ERROR':
      return { kind: 'error', message: line.trim().slice(0, 300) };
    case 'CMETHOD-ERROR':
      return { kind: 'error', message: line.trim().slice(0, 300) };
    case 'CMETHODS':
      return rest[0] === 'DONE' ? { kind: 'done' } : { kind: 'other' };
    case 'CMETHOD': {
      const [transport = '', proto = '', addr = ''] = rest;
      const m = /^(127\.0\.0\.1):([0-9]{1,5})$/.exec(addr);
      const port = Number(m?.[2]);
      if (proto !== 'socks5' || !m || port < 1 || port > 65535)
        return { kind: 'error', message: `unusable CMETHOD: ${line.trim().slice(0, 200)}` };
      return { kind: 'cmethod', transport, host: '127.0.0.1', port };
    }
    default:
      return { kind: 'other' };
  }
}

/**
 * What the handshake so far says: the SOCKS port of `transport` once CMETHODS DONE came, an error, or
 * still waiting. Lines in the order the child printed them.
 */
export function ptHandshake(
  lines: readonly string[],
  transport: string,
): { state: 'ready'; port: number } | { state: 'failed'; message: string } | { state: 'waiting' } {
  let port: number | null = null;
  for (const l of lines) {
    const p = parsePtLine(l);
    if (p.kind === 'version' && p.version !== '1')
      return { state: 'failed', message: `transport speaks version ${p.version}` };
    if (p.kind === 'error') return { state: 'failed', message: p.message };
    if (p.kind === 'cmethod' && p.transport === transport) port = p.port;
    if (p.kind === 'done') {
      return port === null
        ? { state: 'failed', message: `no CMETHOD for ${transport}` }
        : { state: 'ready', port };
    }
  }
  return { state: 'waiting' };
}

const escapeArg = (v: string) => v.replace(/[\\;=]/g, (c) => `\\${c}`);

/** The SOCKS5 username and password that carry a connection's arguments (pt-spec 3.5). */
export function socksArgs(args: readonly (readonly [string, string])[]): {
  username: string;
  password: string;
} {
  if (args.length === 0) throw obxError('TOR_VALUE_INVALID', 'no transport arguments');
  const text = args.map(([k, v]) => `${k}=${escapeArg(v)}`).join(';');
  // printable ASCII only (the grammar's URLs and host names): a character is a byte
  if (!/^[\x21-\x7e]+$/.test(text))
    throw obxError('TOR_VALUE_INVALID', 'transport arguments must be printable ASCII');
  if (text.length > 510) throw obxError('TOR_VALUE_INVALID', 'transport arguments longer than 510 bytes');
  if (text.length <= 255) return { username: text, password: '\0' };
  return { username: text.slice(0, 255), password: text.slice(255) };
}
