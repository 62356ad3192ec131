/**
 * An onion service of the private Tor network: its own tor (a client of the network, SocksPort 0) with
 * one HiddenServicePort pointing at a local TCP server, in a network namespace or on loopback. Resolves
 * with the .onion name once tor has bootstrapped (it then publishes the descriptor to the HSDirs: the
 * network's authorities vote every relay HSDir, see index.ts); a client may need some seconds more before
 * the descriptor is found, so callers retry. stop() kills only the tor started here, by PID.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface OnionServiceOptions {
  /** Working directory (created; the caller removes it). No spaces or quotes. */
  readonly dir: string;
  /** torrc lines to join the network (Privnet.clientTorrcLines). */
  readonly networkLines: readonly string[];
  /** Where the service's port 80 goes: ADDRESS:PORT. */
  readonly target: string;
  readonly netns?: string;
  readonly timeoutMs?: number;
}

export interface OnionService {
  /** The v3 name, e.g. "abc...xyz.onion". */
  readonly hostname: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export async function startOnionService(opts: OnionServiceOptions): Promise<OnionService> {
  if (!/^\/[A-Za-z0-9_./-]+$/.test(opts.dir)) throw new Error('onion service: bad dir');
  if (!/^[0-9.]+:[0-9]{1,5}$/.test(opts.target)) throw new Error('onion service: bad target');
  const hsDir = join(opts.dir, 'hs');
  await mkdir(hsDir, { recursive: true, mode: 0o700 });
  const torrc = join(opts.dir, 'torrc');
  await writeFile(
    torrc,
    [
      ...opts.networkLines,
      `DataDirectory ${join(opts.dir, 'data')}`,
      'SocksPort 0',
      'ClientRejectInternalAddresses 0',
      `HiddenServiceDir ${hsDir}`,
      `HiddenServicePort 80 ${opts.target}`,
      'Log notice stdout',
      `__OwningControllerProcess ${process.pid}`,
      '',
    ].join('\n'),
  );
  const args = ['-f', torrc, '--ignore-missing-torrc'];
  const child: ChildProcess = opts.netns
    ? spawn('ip', ['netns', 'exec', opts.netns, 'tor', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('tor', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(undefined);
      }, 5000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });
  };
  let log = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `onion service: not bootstrapped within ${opts.timeoutMs ?? 120_000} ms\n${log.slice(-2000)}`,
            ),
          ),
        opts.timeoutMs ?? 120_000,
      );
      child.stdout?.on('data', (d: Buffer) => {
        log += d.toString();
        if (/Bootstrapped 100%/.test(log)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`onion service: tor exited (${code})\n${log.slice(-2000)}`));
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const hostname = (await readFile(join(hsDir, 'hostname'), 'utf8')).trim();
  return { hostname, pid: child.pid ?? -1, stop };
}
