import { parseCliArgs } from '../args.js';
import { obxError } from '../errors.js';
import { ipcCall, socketPath } from '../ipc.js';
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

export const statusCommand: CliCommand = {
  name: 'status',
  summary: "Show the box's state as onionboxd sees it",
  usage: 'onionbox status [--json]',
  async run(argv, ctx) {
    const json = parseCliArgs(argv, { json: { type: 'boolean' } }).values.json === true;
    const result = (await daemonCall(ctx.stateDir, 'status')) as Record<string, unknown>;
    if (json) {
      ctx.out(`${JSON.stringify(result, null, 2)}\n`);
      return 0;
    }
    for (const [k, v] of Object.entries(result)) {
      ctx.out(`${k.padEnd(14)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`);
    }
    return 0;
  },
};
