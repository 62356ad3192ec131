/**
 * An onion service of the private Tor network: its own tor (a client of the network, SocksPort 0) with
 * one HiddenServicePort pointing at a local TCP server, in a network namespace or on loopback. Resolves
 * with the .onion name once tor has bootstrapped (it then publishes the descriptor to the HSDirs: the
 * network's authorities vote every relay HSDir, see index.ts); a client may need some seconds more before
 * the descriptor is found, so callers retry. stop() kills only the tor started here, by PID.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
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

/** The torrc of an onion service of the private network. */
export function onionServiceTorrc(o: {
  dir: string;
  hsDir: string;
  networkLines: readonly string[];
  target: string;
}): string {
  return [
    ...o.networkLines,
    `DataDirectory ${join(o.dir, 'data')}`,
    'SocksPort 0',
    'ClientRejectInternalAddresses 0',
    `HiddenServiceDir ${o.hsDir}`,
    `HiddenServicePort 80 ${o.target}`,
    'Log notice stdout',
    `__OwningControllerProcess ${process.pid}`,
    '',
  ].join('\n');
}

export async function startOnionService(opts: OnionServiceOptions): Promise<OnionService> {
  if (!/^\/[A-Za-z0-9_./-]+$/.test(opts.dir)) throw new Error('onion service: bad dir');
  if (!/^[0-9.]+:[0-9]{1,5}$/.test(opts.target)) throw new Error('onion service: bad target');
  const hsDir = join(opts.dir, 'hs');
  await mkdir(hsDir, { recursive: true, mode: 0o700 });
  const torrc = join(opts.dir, 'torrc');
  await writeFile(
    torrc,
    onionServiceTorrc({ dir: opts.dir, hsDir, networkLines: opts.networkLines, target: opts.target }),
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

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** The v3 onion name of an Ed25519 public key (rend-spec-v3: key || checksum[:2] || version 3). */
export function onionName(publicKey: Uint8Array): string {
  const version = Buffer.from([3]);
  const checksum = createHash('sha3-256')
    .update(Buffer.concat([Buffer.from('.onion checksum'), publicKey, version]))
    .digest()
    .subarray(0, 2);
  return `${base32(Buffer.concat([publicKey, checksum, version]))}.onion`;
}

/**
 * Writes a fresh onion service key into `hsDir` in tor's format (hs_ed25519_secret_key: the expanded
 * Ed25519 secret key, hs_ed25519_public_key, hostname) and returns the name, so a caller knows the
 * address before tor starts (the simulator's box is configured with it).
 */
export async function makeOnionKeys(hsDir: string): Promise<string> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d ?? '', 'base64url');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  const expanded = createHash('sha512').update(seed).digest();
  expanded[0] = (expanded[0] ?? 0) & 248;
  expanded[31] = ((expanded[31] ?? 0) & 63) | 64;
  const header = (kind: string) => {
    const h = Buffer.alloc(32);
    h.write(`== ed25519v1-${kind}: type0 ==`);
    return h;
  };
  await mkdir(hsDir, { recursive: true, mode: 0o700 });
  await writeFile(join(hsDir, 'hs_ed25519_secret_key'), Buffer.concat([header('secret'), expanded]), {
    mode: 0o600,
  });
  await writeFile(join(hsDir, 'hs_ed25519_public_key'), Buffer.concat([header('public'), pub]), {
    mode: 0o600,
  });
  const name = onionName(pub);
  await writeFile(join(hsDir, 'hostname'), `${name}\n`, { mode: 0o600 });
  return name;
}
