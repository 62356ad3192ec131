/**
 * The page process started as its unit starts it (firmware/system/systemd/onionbox-web.service): the
 * unit's ExecStart with /opt/onionbox read as this checkout (dist/ from `npm run build`) and its
 * Environment=; only `--listen` is added, so a test picks the address. It runs as this test's user, not
 * the unit's User= (no such user on a development machine): a stand-in until the simulator's unit runner
 * (scripts/sim/units.ts) starts units as systemd would.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseUnit } from '../../scripts/sim/unit-file.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const WEB_UNIT_FILE = `${ROOT}firmware/system/systemd/onionbox-web.service`;

export interface WebProcess {
  child: ChildProcess;
  /** What the process said when it listened (http://HOST:PORT). */
  address: string;
  /** Its output so far (JSON lines). */
  output: () => string;
  stop: () => Promise<number | null>;
}

/** The unit's command line with this checkout for /opt/onionbox and `stateDir` for the state directory. */
export function webCommand(
  stateDir: string,
  listen: string,
  root = ROOT,
): { argv: string[]; env: Record<string, string> } {
  const svc = parseUnit(readFileSync(WEB_UNIT_FILE, 'utf8')).Service ?? {};
  const argv = (svc.ExecStart ?? []).map((a) => a.replace('/opt/onionbox/', root));
  const at = argv.indexOf('--state-dir');
  if (at >= 0) argv[at + 1] = stateDir;
  argv.push('--listen', listen);
  const env: Record<string, string> = {};
  for (const kv of svc.Environment ?? []) {
    const i = kv.indexOf('=');
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return { argv, env };
}

export function startWebProcess(
  stateDir: string,
  listen = '127.0.0.1:0',
  timeoutMs = 30_000,
  /** What /opt/onionbox is (a directory holding dist/ and node_modules); default this checkout. */
  root = ROOT,
): Promise<WebProcess> {
  const { argv, env } = webCommand(stateDir, listen, root);
  const [cmd, ...rest] = argv;
  if (!cmd) throw new Error('onionbox-web.service has no ExecStart');
  const child = spawn(cmd, rest, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: 'pipe',
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const stop = () =>
    new Promise<number | null>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
      child.once('exit', (code) => resolve(code));
      child.kill('SIGTERM');
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`onionbox-web did not listen within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const check = () => {
      const m = /"address":"(http:\/\/[0-9.]+:[0-9]+)"[^\n]*"msg":"onionbox-web listening"/.exec(out);
      if (!m?.[1]) return;
      clearTimeout(timer);
      child.stdout?.off('data', check);
      resolve({ child, address: m[1], output: () => out, stop });
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`onionbox-web exited (${code}) before listening:\n${out}`));
    });
  });
}
