/**
 * The simulated world's release server: serves one directory's files over HTTP (GET, HTTP Range), as a
 * release server holds them (`BOARD.manifest.json`, `.minisig`, the bundle). Started by the world in its
 * internet namespace; the onion service of the private Tor network points at it.
 *
 *   node update-server.ts --host ADDR --port PORT --dir DIR
 */
import { createServer } from 'node:http';
import { requiredArg } from '../privnet/args.js';
import { serveReleaseFile } from './release-handler.js';

const arg = (name: string): string => requiredArg('update-server', name);

const dir = arg('dir');
const server = createServer((req, res) => {
  process.stdout.write(`${req.method} ${req.url} ${req.headers.range ?? ''}\n`);
  serveReleaseFile(dir, req, res);
});
server.listen(Number(arg('port')), arg('host'), () => process.stdout.write('update-server listening\n'));
