/**
 * The host browser's way onto the simulated LAN: run inside the LAN device's namespace, it accepts
 * connections on a Unix socket (reachable from the host through the file system) and connects each one
 * to the box's page from the LAN device's own address, so the box sees an ordinary LAN client. The
 * simulator's host side listens on 127.0.0.1 and pipes each connection into this socket.
 *
 * Usage: page-relay.ts --socket PATH --target A.B.C.D:PORT   (prints "RELAYING" once listening)
 */
import { rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { socket: { type: 'string' }, target: { type: 'string' } },
  strict: true,
});
const m = /^([0-9.]{7,15}):([0-9]{1,5})$/.exec(values.target ?? '');
if (!values.socket || !m) {
  process.stderr.write('usage: page-relay.ts --socket PATH --target A.B.C.D:PORT\n');
  process.exit(2);
}
const socketPath = values.socket;
const host = m[1] as string;
const port = Number(m[2]);

rmSync(socketPath, { force: true });
const server = createServer((client) => {
  const upstream = connect({ host, port });
  client.pipe(upstream).pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.once('error', close);
  upstream.once('error', close);
  client.once('close', close);
  upstream.once('close', close);
});
server.listen(socketPath, () => process.stdout.write('RELAYING\n'));
const stop = () => {
  server.close();
  rmSync(socketPath, { force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
