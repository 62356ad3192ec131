import { ipcCall, socketPath } from '../control/socket.js';
import { obxError } from '../errors.js';
import { parseCliArgs } from './args.js';
import type { CliCommand } from './types.js';

/** Calls onionboxd over its control socket; a clear error when it is not running. */
export async function daemonCall(
  stateDir: string,
  cmd: string,
  args: Record<string, unknown> = {},
  timeoutMs = 10_000,
): Promise<unknown> {
  let reply: Awaited<ReturnType<typeof ipcCall>>;
  try {
    reply = await ipcCall(socketPath(stateDir), cmd, args, timeoutMs);
  } catch (err) {
    throw obxError('DAEMON_NOT_RUNNING', (err as Error).message);
  }
  if (!reply.ok) throw new Error(`${reply.code}: ${reply.error}`);
  return reply.result;
}

/**
 * A command that asks onionboxd one thing and prints the answer: as JSON with --json, else in words
 * (`format`). Its exit status is `exitCode(answer)` (0 by default). The reply's type is the IPC
 * handler's; the CLI trusts its own daemon.
 */
export function daemonQueryCommand<T>(spec: {
  name: string;
  summary: string;
  /** Without the trailing ` [--json]`, which every such command takes. */
  usage: string;
  /** The IPC command (firmware/control/socket.ts handlers). */
  call: string;
  timeoutMs?: number;
  format: (answer: T) => string;
  exitCode?: (answer: T) => number;
}): CliCommand {
  return {
    name: spec.name,
    summary: spec.summary,
    usage: `${spec.usage} [--json]`,
    async run(argv, ctx) {
      const json = parseCliArgs(argv, { json: { type: 'boolean' } }).values.json === true;
      const answer = (await daemonCall(ctx.stateDir, spec.call, {}, spec.timeoutMs)) as T;
      ctx.out(json ? `${JSON.stringify(answer, null, 2)}\n` : spec.format(answer));
      return spec.exitCode?.(answer) ?? 0;
    },
  };
}

export const statusCommand = daemonQueryCommand<Record<string, unknown>>({
  name: 'status',
  summary: "Show the box's state as onionboxd sees it",
  usage: 'onionbox status',
  call: 'status',
  format: (result) =>
    Object.entries(result)
      .map(([k, v]) => `${k.padEnd(14)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`)
      .join(''),
});
