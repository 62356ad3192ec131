/**
 * Network namespaces for tests: unique names per run (pid + random suffix), removed in teardown even on
 * failure. Every command is an argument array (execFile), never a shell.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { Test } from 'tap';

const execFileP = promisify(execFile);

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Under CI=true the test must run (and fail if a tool is missing); outside CI it may skip when not root. */
export function rootSkipReason(tools: string[] = ['ip', 'nft']): string | false {
  if (process.env.CI === 'true') return false;
  if (!isRoot()) return 'needs root (network namespaces); runs under CI=true';
  for (const tool of tools) {
    if (spawnSync('sh', ['-c', 'command -v "$0"', tool]).status !== 0) return `${tool} not installed`;
  }
  return false;
}

/** A short unique suffix: 4 hex chars of randomness plus the pid in base 36. */
export function uniqueSuffix(): string {
  return `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
}

export async function run(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const { stdout } = await execFileP(cmd, args, {
    timeout: opts.timeoutMs ?? 30_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** Runs a command inside a namespace. */
export function nsRun(ns: string, cmd: string, args: string[], opts: { timeoutMs?: number } = {}) {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/** Creates a namespace with lo up; deleted in teardown. */
export async function makeNetns(t: Test, base: string): Promise<string> {
  const name = `obx-${base}-${uniqueSuffix()}`;
  await run('ip', ['netns', 'add', name]);
  t.teardown(async () => {
    await run('ip', ['netns', 'del', name]).catch(() => undefined);
  });
  await nsRun(name, 'ip', ['link', 'set', 'lo', 'up']);
  return name;
}

/** A veth pair between two namespaces (names <= 15 chars), both ends left DOWN. */
export async function makeVeth(nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
  if (ifA.length > 15 || ifB.length > 15) throw new Error(`veth name too long: ${ifA} ${ifB}`);
  await run('ip', ['link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
}

export async function addAddr(ns: string, ifName: string, cidr: string): Promise<void> {
  await nsRun(ns, 'ip', ['addr', 'add', cidr, 'dev', ifName]);
}

export async function linkUp(ns: string, ifName: string): Promise<void> {
  await nsRun(ns, 'ip', ['link', 'set', ifName, 'up']);
}

export async function sysctl(ns: string, key: string, value: string): Promise<void> {
  await nsRun(ns, 'sysctl', ['-q', '-w', `${key}=${value}`]);
}
