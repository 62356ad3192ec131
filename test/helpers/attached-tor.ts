/**
 * The e2e topology's box tor as the BoxController sees it: a TorLike over that running tor's control
 * socket (it is started by firewall-topology.ts, not by the TorSupervisor, so this attaches to it instead of
 * spawning one). It reports status the way firmware/tor/supervisor.ts defines it (docs/architecture.md): bootstrap
 * progress from STATUS_CLIENT, and `ready` only once a general-purpose circuit asked for with
 * EXTENDCIRCUIT 0 after Bootstrapped 100% is BUILT with three hops; CIRCUIT_NOT_ESTABLISHED or
 * NOT_ENOUGH_DIR_INFO drop readiness and probe again; the control socket closing (tor gone) is `crashed`.
 * Every change is emitted as 'tor:status' on the bus, as the supervisor does. It never takes ownership:
 * closing it leaves the test's tor running.
 */
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TorLike } from '../../firmware/box/controller.js';
import type { EventBus } from '../../firmware/events.js';
import { connectControl, type TorControl } from '../../firmware/tor/control.js';
import {
  parseBootstrap,
  parseCircuitLine,
  parseKeywords,
  parseStatusEvent,
  type TorEvent,
} from '../../firmware/tor/protocol.js';
import type { TorStatus } from '../../firmware/tor/supervisor.js';
import type { Teardown } from './netns.js';

/**
 * A directory for tor's control socket, private to the tor user (tor refuses a socket in a directory
 * others can read), and the torrc lines for it. The test process (root) reaches the socket from outside
 * the box's namespace: unix sockets live in the file system, not in the network namespace.
 */
export function controlSocketLines(
  t: Teardown,
  ids: { uid: number; gid: number },
): AttachedControl & { lines: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'onionbox-boxctl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chownSync(dir, ids.uid, ids.gid);
  const socket = join(dir, 'control');
  // the cookie's path is pinned on both sides: the client refuses a listener naming another
  const cookieFile = join(dir, 'control_auth_cookie');
  return {
    socket,
    cookieFile,
    lines: [`ControlPort unix:${socket}`, 'CookieAuthentication 1', `CookieAuthFile ${cookieFile}`],
  };
}

export interface AttachedTor extends TorLike {
  status(): TorStatus;
  /** Resolves true once ready, false after timeoutMs. */
  waitReady(timeoutMs: number): Promise<boolean>;
  /** Every status emitted, in order. */
  readonly history: TorStatus[];
  close(): void;
}

/** A tor's control socket and the cookie file its torrc pins. */
export interface AttachedControl {
  socket: string;
  cookieFile: string;
}

export async function attachTor(bus: EventBus, ctl: AttachedControl, pid: number): Promise<AttachedTor> {
  const control: TorControl = await connectControl(
    { endpoint: { path: ctl.socket }, cookieFile: ctl.cookieFile },
    30_000,
  );
  let status: TorStatus = { phase: 'starting', progress: 0, summary: 'attaching', ready: false, pid };
  const history: TorStatus[] = [];
  const waiters = new Set<() => void>();
  let probeCircuit: string | null = null;
  let probeTimer: NodeJS.Timeout | null = null;
  let closed = false;

  const set = (next: TorStatus) => {
    const prev = status;
    status = next;
    if (
      prev.phase !== next.phase ||
      prev.progress !== next.progress ||
      prev.summary !== next.summary ||
      prev.ready !== next.ready
    ) {
      history.push({ ...next });
      bus.emit('tor:status', { ...next });
    }
    if (next.ready) for (const w of [...waiters]) w();
  };
  const scheduleProbe = (ms: number) => {
    if (probeTimer || closed) return;
    probeTimer = setTimeout(() => {
      probeTimer = null;
      void probe();
    }, ms);
    probeTimer.unref();
  };
  const probe = async () => {
    if (closed || status.ready || probeCircuit) return;
    try {
      const reply = await control.command('EXTENDCIRCUIT 0');
      const { positional } = parseKeywords(reply.lines[0]?.text ?? '');
      if (positional[0] !== 'EXTENDED' || !positional[1]) throw new Error('unexpected EXTENDCIRCUIT reply');
      const id = positional[1];
      probeCircuit = id;
      setTimeout(() => {
        if (probeCircuit === id && !status.ready) {
          probeCircuit = null;
          scheduleProbe(0);
        }
      }, 10_000).unref();
    } catch {
      scheduleProbe(2000);
    }
  };
  const bootstrap = (progress: number, summary: string) => {
    if (status.ready) {
      set({ ...status, progress });
      return;
    }
    set({ phase: 'bootstrapping', progress, summary, ready: false, pid });
    if (progress === 100) scheduleProbe(0);
  };
  const notReady = (summary: string) => {
    set({ phase: 'bootstrapping', progress: status.progress, summary, ready: false, pid });
    scheduleProbe(2000);
  };
  const onEvent = (ev: TorEvent) => {
    if (ev.type === 'STATUS_CLIENT') {
      const st = parseStatusEvent(ev);
      if (st.action === 'BOOTSTRAP') {
        const progress = Number(st.args.PROGRESS);
        if (Number.isInteger(progress)) bootstrap(progress, st.args.SUMMARY ?? '');
      } else if (st.action === 'CIRCUIT_NOT_ESTABLISHED' || st.action === 'NOT_ENOUGH_DIR_INFO') {
        notReady(st.args.REASON ?? st.action.toLowerCase().replace(/_/g, ' '));
      }
    } else if (ev.type === 'CIRC') {
      const c = parseCircuitLine(ev.body);
      if (c.id !== probeCircuit) return;
      if (c.status === 'BUILT' && c.hops.length >= 3) {
        probeCircuit = null;
        set({
          phase: 'ready',
          progress: 100,
          summary: `Connected: exit circuit ${c.id} built through ${c.hops.map((h) => h.nickname).join(',')}`,
          ready: true,
          pid,
        });
      } else if (c.status === 'FAILED' || c.status === 'CLOSED') {
        probeCircuit = null;
        scheduleProbe(1000);
      }
    }
  };

  control.onEvent(onEvent);
  control.onClose(() => {
    if (closed) return;
    closed = true;
    set({ phase: 'crashed', progress: 0, summary: 'the control socket closed (tor exited)', ready: false });
  });
  await control.setEvents(['STATUS_CLIENT', 'CIRC']);
  const b = parseBootstrap((await control.getInfo('status/bootstrap-phase'))['status/bootstrap-phase'] ?? '');
  bootstrap(b.progress, b.summary);

  return {
    history,
    status: () => ({ ...status }),
    waitReady(timeoutMs) {
      if (status.ready) return Promise.resolve(true);
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(done);
          resolve(true);
        };
        const timer = setTimeout(() => {
          waiters.delete(done);
          resolve(false);
        }, timeoutMs);
        waiters.add(done);
      });
    },
    newIdentity: () => control.signal('NEWNYM'),
    circuits: async () =>
      (await control.circuits()).map((c) => ({
        id: c.id,
        status: c.status,
        purpose: c.purpose,
        hops: c.hops.map((h) => ({ fingerprint: h.fingerprint, nickname: h.nickname })),
      })),
    applySettings: async () => ({ ok: false, rolledBack: false, message: 'not supported on the e2e tor' }),
    lastWarnings: () => [],
    close() {
      closed = true;
      if (probeTimer) clearTimeout(probeTimer);
      control.close();
    },
  };
}
