/**
 * The simulated world's release server: serves one directory's files over HTTP (GET, HTTP Range), as a
 * release server holds them (`BOARD.manifest.json`, `.minisig`, the bundle). Started by the world in its
 * internet namespace; the onion service of the private Tor network points at it.
 *
 *   node update-server.ts --host ADDR --port PORT --dir DIR
 */
import { createServer } from 'node:http';
import { serveReleaseFile } from './release-handler.js';

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (v === undefined) {
    process.stderr.write(`update-server: --${name} is required\n`);
    process.exit(2);
  }
  return v;
}

const dir = arg('dir');
const server = createServer((req, res) => {
  process.stdout.write(`${req.method} ${req.url} ${req.headers.range ?? ''}\n`);
  serveReleaseFile(dir, req, res);
});
server.listen(Number(arg('port')), arg('host'), () => process.stdout.write('update-server listening\n'));
