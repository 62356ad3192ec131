/**
 * The box's side of a WAN/LAN change and of the WAN's lease (firmware/net/change.ts has the pure plan
 * and the executor). BoxController (firmware/box/controller.ts) hands both calls here:
 *
 *   changeNetwork(input): plan (bad values throw, nothing ran) -> close (state machine: lockdown) ->
 *     firewall (the new names; lockdown again) -> the network's system steps the difference needs (WAN
 *     watcher, LAN address, DHCP, access point, tor's and the page's listen address) -> reconnect
 *     (firewall `connecting`, tor proves a new circuit) -> commit (config) -> open (the machine routes
 *     again once tor is ready): the order of planNetworkChange (firmware/net/change.ts). A failing step
 *     closes the box with a 'network' fault and puts the system back to the old network; the old config
 *     is kept. When every step back worked, the fault goes and the box reconnects tor over the old
 *     network (`reconnecting`, then routing once tor is ready); when one did not, it stays closed.
 *   wanLease(cidr): a leased WAN subnet overlapping the LAN range closes the box with a 'wan' fault.
 *
 * The box owns close, reconnect's firewall mode and open (the state machine, through the reconciler);
 * the network's owner (BoxNetwork.change, firmware/net/network.ts) owns the system steps.
 */
import type { BoardLogger } from '../../board/types.js';
import { describeError, obxError } from '../errors.js';
import { isClosed } from '../firewall/params.js';
import { lanConflict } from '../net/box-network.js';
import {
  type ChangeHandlers,
  type ChangeStep,
  executeNetworkChange,
  type NetworkShape,
  planNetworkChange,
} from '../net/change.js';
import type { ModeReconciler } from './reconcile.js';

/** The daemon's executors for the system steps of a network change (one per step kind). */
export type NetworkChangeSystem = Omit<ChangeHandlers, 'close' | 'open' | 'commit' | 'reconnect'> & {
  /** The network the box runs on now. */
  current(): NetworkShape;
  /** Stores the wanted network (the config store's atomic write). */
  commit(wanted: NetworkShape): Promise<void>;
  /** tor over the new network: fresh circuits, resolves once a new exit circuit is built. */
  reconnect(): Promise<void>;
};

/** What a network change may ask for (the access point is set apart, by setAccessPoint). */
export type NetworkChangeInput = Partial<Omit<NetworkShape, 'accessPoint'>>;

export interface NetworkChangerDeps {
  /** The system steps; without them changeNetwork() says NET_UNAVAILABLE. */
  system: NetworkChangeSystem | undefined;
  /** The network the box runs on now (the network's owner, firmware/net/network.ts). */
  current(): NetworkShape;
  core: ModeReconciler;
  log: BoardLogger;
  /** The current mode again with fresh parameters (BoxController.reapply). */
  reapply(): Promise<void>;
  /** One line for the box's event log. */
  record(line: string): void;
}

export class NetworkChanger {
  readonly #deps: NetworkChangerDeps;
  #changing = false;

  constructor(deps: NetworkChangerDeps) {
    this.#deps = deps;
  }

  /** A change runs (its way back to the old network included). */
  get changing(): boolean {
    return this.#changing;
  }

  /** See the top of this file; returns the steps that ran. */
  async change(input: NetworkChangeInput): Promise<{ steps: string[] }> {
    const { system, core, log, record } = this.#deps;
    if (!system) throw obxError('NET_UNAVAILABLE', 'this box cannot change its network');
    if (this.#changing) throw obxError('NET_CHANGE_BUSY');
    const current = system.current();
    const wanted: NetworkShape = { ...current, ...pickShape(input) };
    const steps = planNetworkChange(current, wanted); // bad values throw here, nothing ran
    if (steps.length === 0) return { steps: [] };
    this.#changing = true;
    let rolledBack = false;
    try {
      const done = await executeNetworkChange(steps, this.#handlers(system, wanted), log);
      core.input({ type: 'fault-cleared', source: 'network' });
      record(`network changed: ${done.join(', ')}`);
      return { steps: done };
    } catch (err) {
      const why = describeError(err);
      record(`network change failed: ${why}`);
      // Closed first (the fault), then the system back to the old network, as far as it goes.
      core.input({ type: 'fault', source: 'network', message: why });
      core.input({ type: 'net-change', phase: null });
      await core.settled();
      const back = await this.#rollBack(system, wanted, current);
      if (back) {
        // Every step is back: the box reopens the old network's way (tor reconnects in the background;
        // the next change waits for it). Otherwise it stays closed with the fault.
        this.#reconnectOld(system, current, why);
        rolledBack = true;
      }
      throw err;
    } finally {
      if (!rolledBack) this.#changing = false;
    }
  }

  /**
   * The WAN's leased subnet (A.B.C.D/N, or null), on every lease: a subnet overlapping the LAN range
   * closes the box with a 'wan' fault saying what to do; a lease that no longer overlaps clears it.
   */
  wanLease(wanCidr: string | null): void {
    const { core, log } = this.#deps;
    const n = this.#deps.current();
    const conflict = lanConflict(`${n.lanAddress}/${n.lanPrefix}`, wanCidr);
    const had = core.state.faults.wan !== undefined;
    if (conflict !== null) {
      if (core.state.faults.wan !== conflict) log.error({ wan: wanCidr }, conflict);
      core.input({ type: 'fault', source: 'wan', message: conflict });
    } else if (had) {
      log.info({ wan: wanCidr }, 'the WAN subnet no longer overlaps the LAN');
      core.input({ type: 'fault-cleared', source: 'wan' });
    }
  }

  #handlers(system: NetworkChangeSystem, wanted: NetworkShape): ChangeHandlers {
    const { core, reapply } = this.#deps;
    const closed = async (what: string) => {
      await core.settled();
      if (!isClosed(core.applied)) throw new Error(`the firewall did not close (${what})`);
    };
    return {
      ...system,
      close: async (step) => {
        core.input({ type: 'net-change', phase: 'closed', reason: step.reason });
        // this attempt replaces a failed one (cleared only now: the change itself keeps the box closed)
        core.input({ type: 'fault-cleared', source: 'network' });
        await closed('lockdown');
      },
      firewall: async (step) => {
        await system.firewall(step);
        // the closed mode again, rendered with the new names
        await reapply();
        await closed('lockdown with the new names');
      },
      commit: () => system.commit(wanted),
      reconnect: async () => {
        core.input({ type: 'net-change', phase: 'reconnecting', reason: 'reconnecting tor' });
        await core.settled();
        if (core.applied !== 'connecting' && core.applied !== 'killed') {
          throw new Error(`the firewall holds ${core.applied ?? 'an unknown ruleset'}, not connecting`);
        }
        await system.reconnect();
      },
      open: async () => {
        core.input({ type: 'net-change', phase: null });
        await core.settled();
      },
    };
  }

  /**
   * After a failed change: the old network's system steps, each tried (the box stays closed). True when
   * every one of them worked, so the system is the old network again.
   */
  async #rollBack(
    system: NetworkChangeSystem,
    wanted: NetworkShape,
    current: NetworkShape,
  ): Promise<boolean> {
    const { log, reapply, record } = this.#deps;
    let back: ChangeStep[];
    try {
      back = planNetworkChange(wanted, current);
    } catch {
      return false;
    }
    let ok = true;
    for (const step of back) {
      if (
        step.kind === 'close' ||
        step.kind === 'commit' ||
        step.kind === 'reconnect' ||
        step.kind === 'open'
      )
        continue;
      try {
        const handler = system[step.kind] as (s: ChangeStep) => Promise<void>;
        await handler(step);
        if (step.kind === 'firewall') await reapply();
      } catch (err) {
        ok = false;
        log.error({ step: step.kind, err: describeError(err) }, 'network rollback step failed');
        record(`network rollback failed at ${step.kind}: ${describeError(err)}; the box stays closed`);
      }
    }
    return ok;
  }

  /**
   * The old network is back in place: the 'network' fault goes, and the box goes through a change's
   * `reconnecting` phase on the old network (firewall `connecting` with the old names: tor may reach the
   * WAN, the LAN gets nothing) while tor proves a fresh circuit over it; then the change is over and the
   * machine routes once tor is ready, as on any boot (if tor is not ready yet, the box stays `connecting`
   * until it is). Leaving the box closed for good instead would cut every device off over a failed
   * change with no way back from the page (a Wi-Fi without internet behind it, say).
   */
  #reconnectOld(system: NetworkChangeSystem, current: NetworkShape, why: string): void {
    const { core, log, record } = this.#deps;
    // the phase first, then the fault away: never a moment with neither (tor may still say ready)
    core.input({
      type: 'net-change',
      phase: 'reconnecting',
      reason: `the change failed; back on WAN ${current.wanInterface}, reconnecting tor`,
    });
    core.input({ type: 'fault-cleared', source: 'network' });
    const over = () => {
      this.#changing = false; // before the machine hears of it: the next change may start at once
      core.input({ type: 'net-change', phase: null });
    };
    void (async () => {
      try {
        await core.settled();
        if (core.applied !== 'connecting' && core.applied !== 'killed') {
          throw new Error(`the firewall holds ${core.applied ?? 'an unknown ruleset'}, not connecting`);
        }
        await system.reconnect();
        record(`network change undone (${why}): back on WAN ${current.wanInterface}`);
        over();
      } catch (err) {
        // The old network is in place and tor keeps trying over it: the box routes once tor is ready
        // (another fault, if one closed the firewall meanwhile, keeps it closed on its own).
        const e = describeError(err);
        log.error({ err: e }, 'tor did not reconnect over the old network after the rollback');
        record(
          `network change undone (${why}): back on WAN ${current.wanInterface}, tor not ready yet (${e})`,
        );
        over();
      }
    })();
  }
}

function pickShape(input: NetworkChangeInput): Partial<NetworkShape> {
  const out: Partial<NetworkShape> = {};
  if (input.wanInterface !== undefined) out.wanInterface = input.wanInterface;
  if (input.lanInterface !== undefined) out.lanInterface = input.lanInterface;
  if (input.lanAddress !== undefined) out.lanAddress = input.lanAddress;
  if (input.lanPrefix !== undefined) out.lanPrefix = input.lanPrefix;
  return out;
}
