/**
 * The simulated world's release server: serves one directory's files over HTTP (GET, HTTP Range), as a
 * release server holds them (`BOARD.manifest.json`, `.minisig`, the bundle). Started by the world in its
 * internet namespace; the onion service of the private Tor network points at it.
 *
 *   node update-server.ts --host ADDR --port PORT --dir DIR
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

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
  const name = (req.url ?? '/').slice(1);
  process.stdout.write(`${req.method} ${req.url} ${req.headers.range ?? ''}\n`);
  if (req.method !== 'GET' || !/^[A-Za-z0-9._-]+$/.test(name)) {
    res.writeHead(404).end();
    return;
  }
  let body: Buffer;
  try {
    body = readFileSync(join(dir, name));
  } catch {
    res.writeHead(404).end();
    return;
  }
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = range ? Number(range[1]) : 0;
  if (range && start < body.length) {
    res.writeHead(206, {
      'Content-Length': body.length - start,
      'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`,
    });
    res.end(body.subarray(start));
    return;
  }
  res.writeHead(200, { 'Content-Length': body.length });
  res.end(body);
});
server.listen(Number(arg('port')), arg('host'), () => process.stdout.write('update-server listening\n'));
