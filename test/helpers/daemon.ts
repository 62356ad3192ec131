import { type ChildProcess, spawn } from 'node:child_process';
import type { Test } from 'tap';
import { nodeTsArgs } from './node-ts.js';

const root = new URL('../../', import.meta.url).pathname;

export interface RunningDaemon {
  proc: ChildProcess;
  address: string;
  output: () => string;
  /** SIGTERM, and the exit code. */
  stop: () => Promise<number | null>;
}

/** Starts onionboxd from source (tsx) and waits for its "ready" log line. Stopped by PID at teardown. */
export function startDaemon(
  t: Test,
  args: string[],
  timeoutMs = 20_000,
  cwd?: string,
): Promise<RunningDaemon> {
  const proc = spawn(process.execPath, [...nodeTsArgs(), `${root}firmware/main.ts`, ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CI: 'true' },
  });
  let out = '';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      // a clean stop first (it removes the simulator's namespace), SIGKILL if it hangs
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`onionboxd not ready in ${timeoutMs} ms:\n${out}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"onionboxd ready"')) continue;
        clearTimeout(timer);
        const address = (JSON.parse(line) as { address: string }).address;
        resolve({
          proc,
          address,
          output: () => out,
          stop: async () => {
            proc.kill('SIGTERM');
            return exited;
          },
        });
        return;
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`onionboxd exited with ${code} before ready:\n${out}`));
    });
  });
}
