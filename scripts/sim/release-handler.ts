/**
 * How a release server answers: a file of one directory by its plain name, GET only, HTTP Range
 * (`bytes=N-`) honoured. Used by the simulator's release server (update-server.ts) and the tests' loopback
 * one (test/helpers/update-release.ts).
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';

export function serveReleaseFile(dir: string, req: IncomingMessage, res: ServerResponse): void {
  const name = (req.url ?? '/').slice(1);
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
}
