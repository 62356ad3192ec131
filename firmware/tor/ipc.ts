/**
 * onionboxd's control-socket handlers for tor, used by `onionbox tor status|newnym|circuits`.
 * The lead wires it: `registerTorIpc(daemon.ipc, supervisor)` before `ipc.start()`.
 */
import type { CircuitInfo } from '../box/api.js';
import type { IpcServer } from '../control/socket.js';
import type { TorStatus } from './supervisor.js';

/** What the handlers need from the supervisor (TorSupervisor implements it). */
export interface TorIpcTarget {
  status(): TorStatus;
  lastWarnings(): string[];
  newIdentity(): Promise<void>;
  circuits(): Promise<CircuitInfo[]>;
}

export interface TorStatusReply extends TorStatus {
  warnings: string[];
  /** Built circuits when tor is connected, else absent. */
  circuits?: CircuitInfo[];
}

export function registerTorIpc(ipc: IpcServer, sup: TorIpcTarget): void {
  ipc.register('tor.status', async (): Promise<TorStatusReply> => {
    const status = sup.status();
    const reply: TorStatusReply = { ...status, warnings: sup.lastWarnings() };
    if (status.phase !== 'stopped' && status.phase !== 'crashed' && status.phase !== 'failed') {
      reply.circuits = (await sup.circuits().catch(() => [])).filter((c) => c.status === 'BUILT');
    }
    return reply;
  });
  ipc.register('tor.newnym', async () => {
    await sup.newIdentity();
    return { ok: true };
  });
  ipc.register('tor.circuits', async () => sup.circuits());
}
