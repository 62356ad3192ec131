/**
 * The private network's tiny "internet": run as its own process (so it can run inside a namespace with
 * `ip netns exec`). Prints `LISTENING <port>` on stdout once bound.
 *
 *   GET /           -> "onionbox privnet\n"
 *   GET /bytes/N    -> N bytes (N <= 1 GiB), streamed
 *   GET /api/ip     -> {"IsTor": bool, "IP": peer}  (check.torproject.org stand-in)
 *   GET /ip         -> the peer's address as plain text (what a web site sees)
 *
 * IsTor: with `--exit ADDR`, true iff the peer address is the exit's. On loopback every peer is 127.0.0.1
 * (tor never binds OutboundBindAddressExit for loopback destinations), so the harness writes
 * `EXIT-PID <pid>` on our stdin and IsTor is true iff the peer's socket belongs to that tor process
 * (found through /proc/net/tcp and /proc/PID/fd): the exit itself made the connection.
 *
 * Usage: http-server.ts --host ADDR --port N --exit ADDR|-
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { requiredArg } from './args.js';

const arg = (name: string): string => requiredArg('http-server', name);

const host = arg('host');
const port = Number(arg('port'));
const exit = arg('exit');
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

let exitPid = 0;

function peer(addr: string | undefined): string {
  return (addr ?? '').replace(/^::ffff:/, '');
}

/** /proc/net/tcp's little-endian hex form of an IPv4 address and port. */
function procAddr(ip: string, port: number): string {
  const hex = ip
    .split('.')
    .map((o) => Number(o).toString(16).padStart(2, '0'))
    .reverse()
    .join('')
    .toUpperCase();
  return `${hex}:${port.toString(16).padStart(4, '0').toUpperCase()}`;
}

/** Does the client end of this connection belong to the exit tor's process? */
function ownedByExit(req: IncomingMessage): boolean {
  if (exitPid <= 0) return false;
  const s = req.socket;
  const local = procAddr(peer(s.remoteAddress), s.remotePort ?? 0);
  const remote = procAddr(peer(s.localAddress), s.localPort ?? 0);
  let inode = '';
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[2] === remote) inode = f[9] ?? '';
  }
  if (!inode) return false;
  try {
    for (const fd of readdirSync(`/proc/${exitPid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${exitPid}/fd/${fd}`) === `socket:[${inode}]`) return true;
      } catch {
        // fd closed meanwhile
      }
    }
  } catch {
    return false;
  }
  return false;
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('onionbox privnet\n');
    return;
  }
  if (url === '/ip') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${peer(req.socket.remoteAddress)}\n`);
    return;
  }
  if (url === '/api/ip') {
    const ip = peer(req.socket.remoteAddress);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ IsTor: exit === '-' ? ownedByExit(req) : ip === exit, IP: ip }));
    return;
  }
  const m = /^\/bytes\/([0-9]{1,10})$/.exec(url);
  if (m) {
    let left = Number(m[1]);
    if (left > 2 ** 30) {
      res.writeHead(400).end('too large\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left) });
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, CHUNK.length);
        left -= n;
        if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
    return;
  }
  res.writeHead(404).end('not found\n');
});

server.listen(port, host, () => {
  const addr = server.address();
  process.stdout.write(`LISTENING ${addr && typeof addr === 'object' ? addr.port : port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
// The harness's process dies -> our stdin closes -> we go too (no orphan servers).
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c: string) => {
  input += c;
  const m = /EXIT-PID ([0-9]+)\n/.exec(input);
  if (m) exitPid = Number(m[1]);
});
process.stdin.on('end', () => process.exit(0));
