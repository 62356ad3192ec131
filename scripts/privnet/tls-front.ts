/**
 * The web server in front of the private network's webtunnel bridge (test code, its own process so it
 * can run inside a namespace with `ip netns exec`): TLS on --host:--port with a certificate of the
 * private network's test CA, each connection's plaintext piped to webtunnel-server's listener (--backend
 * HOST:PORT), which reads the HTTP upgrade request on its secret path, as nginx's proxy_pass would hand it
 * on. Prints `LISTENING <port>` on stdout once bound; exits when its stdin closes (its harness is gone).
 *
 * Usage: tls-front.ts --host ADDR --port N --cert FILE --key FILE --backend HOST:PORT
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createServer } from 'node:tls';
import { requiredArg } from './args.js';

const arg = (name: string): string => requiredArg('tls-front', name);

const backend = /^([0-9.]{7,15}):([0-9]{1,5})$/.exec(arg('backend'));
if (!backend?.[1] || !backend[2]) {
  process.stderr.write('tls-front: --backend must be ADDR:PORT\n');
  process.exit(2);
}
const [backendHost, backendPort] = [backend[1], Number(backend[2])];

const server = createServer(
  { cert: readFileSync(arg('cert')), key: readFileSync(arg('key')), minVersion: 'TLSv1.2' },
  (client) => {
    const upstream = connect(backendPort, backendHost);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.once('error', close);
      s.once('close', close);
    }
  },
);
server.on('tlsClientError', () => undefined);
server.listen(Number(arg('port')), arg('host'), () => {
  const a = server.address();
  process.stdout.write(`LISTENING ${a && typeof a === 'object' ? a.port : 0}\n`);
});
process.stdin.resume();
process.stdin.once('end', () => process.exit(0));
