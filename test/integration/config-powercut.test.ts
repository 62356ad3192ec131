import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import t from 'tap';
import { ConfigStore } from '../../firmware/config/store.js';
import { nodeTsArgs } from '../helpers/node-ts.js';
import { tmpDir } from '../helpers/tmp.js';

const TOTAL_WRITES = 1000;
const child = new URL('../helpers/config-writer.ts', import.meta.url).pathname;

/** Runs the writer until it has written `count` times or is killed after `killAfterMs`. */
function runWriter(dir: string, start: number, count: number, killAfterMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...nodeTsArgs(), child, dir, String(start), String(count)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const done: number[] = [];
    let buf = '';
    let timer: NodeJS.Timeout | undefined;
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      buf += chunk;
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) done.push(Number(l));
      // arm the kill once the child is writing, so it lands inside the write loop
      if (!timer && killAfterMs >= 0) timer = setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
    });
    proc.on('error', reject);
    proc.on('exit', () => {
      if (timer) clearTimeout(timer);
      resolve(done);
    });
  });
}

function counterOf(bridges: readonly string[]): number {
  const m = /counter-(\d+)-/.exec(bridges[0] ?? '');
  return m ? Number(m[1]) : -1;
}

t.test(`SIGKILL at random points of ${TOTAL_WRITES} writes never leaves a broken config`, async (t) => {
  const dir = tmpDir(t);
  let written = 0;
  let kills = 0;
  let lastConfirmed = -1;
  while (written < TOTAL_WRITES) {
    const batch = Math.min(TOTAL_WRITES - written, 80);
    const confirmed = await runWriter(dir, written, batch, Math.floor(Math.random() * 150));
    if (confirmed.length < batch) kills++;
    const store = new ConfigStore(dir);
    const r = await store.load(); // throws if neither file is readable
    t.equal(r.source, 'main', 'main file always readable (rename is atomic)');
    const counter = counterOf(r.config.tor.bridges);
    const last = confirmed.at(-1) ?? lastConfirmed;
    // the file holds the last confirmed write, or the one in flight when the kill landed
    t.ok(counter === last || counter === last + 1, `counter ${counter} after confirmed ${last}`);
    t.ok(counter >= lastConfirmed, 'never goes back past a confirmed write');
    lastConfirmed = Math.max(counter, last);
    written = lastConfirmed + 1; // the kill timer is armed after the first confirmed write: always progress
  }
  t.ok(kills >= 5, `the child was killed mid-run ${kills} times`);
  t.same(
    readdirSync(dir).filter((f) => f.includes('broken') || f.includes('.tmp-')),
    [],
    'no file was ever found broken; temp files of killed writers are cleaned at load',
  );
});
