/**
 * When the running root slot is "good" (issue 24). U-Boot's boot script takes one of the slot's three tries
 * before every boot and falls back to the other slot when they run out (images/boot/boot.cmd); the running
 * system gives the tries back by marking the slot good. It does so only when the box does its job:
 *   - it reaches `routing` (tor ready, the firewall's ruleset verified), or
 *   - with no WAN (no link or no lease), onionboxd stays healthy for NO_WAN_MINUTES without a break, so a
 *     box that is simply unplugged from the internet does not roll back for ever.
 * A box with a WAN that never routes (its tor never bootstraps) is not marked good: after three such boots
 * the other slot gets its turn.
 *
 * `slotVerdict` is pure (tested); `SlotGoodReporter` is the thin adapter: it samples the box's state and
 * the WAN every interval and, once the verdict is good, writes /run/onionbox/slot-good. onionboxd is not
 * root: the file is only a request, and the root oneshot onionbox-mark-good.service (started by the path
 * unit onionbox-mark-good.path) runs `rauc status mark-good booted`. The file's content means nothing.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BoxStateName, WanView } from '../box/api.js';
import type { Phase } from '../lib/service.js';

/** Minutes a box without a WAN must stay healthy before its slot is marked good. */
export const NO_WAN_MINUTES = 10;
/** How often the adapter samples the box. */
export const SLOT_SAMPLE_MS = 15_000;
/** The request file in onionboxd's RuntimeDirectory (/run/onionbox). */
export const SLOT_GOOD_FILE = 'slot-good';

/** One sample of what the policy needs. */
export interface SlotSample {
  /** monotonic milliseconds */
  now: number;
  state: BoxStateName;
  /** the WAN has its link and an address (a lease) */
  wan: boolean;
}

export interface SlotPolicy {
  /** when the current unbroken healthy-without-WAN stretch began, or null */
  noWanSince: number | null;
  /** the verdict once it was good: it never goes back within one boot */
  good: boolean;
}

export type SlotReason =
  | 'routing'
  | 'healthy-without-wan'
  | 'waiting-for-routing'
  | 'waiting-offline'
  | 'unhealthy';

export const INITIAL_SLOT_POLICY: SlotPolicy = { noWanSince: null, good: false };

/** States in which onionboxd is doing its job as far as it can (error, a dead tor, booting are not). */
function healthy(state: BoxStateName): boolean {
  return state === 'routing' || state === 'connecting' || state === 'killed';
}

/** The next policy state and why. Pure. */
export function slotVerdict(
  prev: SlotPolicy,
  s: SlotSample,
  noWanMs: number = NO_WAN_MINUTES * 60_000,
): { policy: SlotPolicy; good: boolean; reason: SlotReason } {
  if (prev.good)
    return { policy: prev, good: true, reason: s.state === 'routing' ? 'routing' : 'healthy-without-wan' };
  if (s.state === 'routing')
    return { policy: { noWanSince: null, good: true }, good: true, reason: 'routing' };
  if (!healthy(s.state))
    return { policy: { noWanSince: null, good: false }, good: false, reason: 'unhealthy' };
  if (s.wan) return { policy: { noWanSince: null, good: false }, good: false, reason: 'waiting-for-routing' };
  const since = prev.noWanSince ?? s.now;
  if (s.now - since >= noWanMs) {
    return { policy: { noWanSince: since, good: true }, good: true, reason: 'healthy-without-wan' };
  }
  return { policy: { noWanSince: since, good: false }, good: false, reason: 'waiting-offline' };
}

/** A WAN that counts: link up (NetworkManager's "connected") and an address. Pure. */
export function wanPresent(wan: WanView | null): boolean {
  if (wan === null) return false;
  return wan.state.startsWith('connected') && wan.address !== null;
}

export interface SlotGoodReporterOptions {
  /** onionboxd's RuntimeDirectory; without one (the simulator, tests) nothing is written */
  runtimeDir: string | undefined;
  state: () => BoxStateName;
  wan: () => Promise<WanView | null>;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  now?: () => number;
  write?: (path: string, text: string) => Promise<void>;
  intervalMs?: number;
  noWanMs?: number;
}

/** Samples the box and asks once per boot for the running slot to be marked good. */
export class SlotGoodReporter {
  #o: SlotGoodReporterOptions;
  #policy: SlotPolicy = INITIAL_SLOT_POLICY;
  #timer: NodeJS.Timeout | null = null;
  #requested = false;

  constructor(o: SlotGoodReporterOptions) {
    this.#o = o;
  }

  get requested(): boolean {
    return this.#requested;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => void this.sample(), this.#o.intervalMs ?? SLOT_SAMPLE_MS);
    this.#timer.unref();
    void this.sample();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One sample; writes the request when the verdict first turns good. */
  async sample(): Promise<void> {
    if (this.#requested) return;
    const wan = await this.#o.wan().catch(() => null);
    const now = (this.#o.now ?? (() => performance.now()))();
    const v = slotVerdict(
      this.#policy,
      { now, state: this.#o.state(), wan: wanPresent(wan) },
      this.#o.noWanMs,
    );
    this.#policy = v.policy;
    if (!v.good || this.#requested) return;
    this.#requested = true;
    if (this.#o.runtimeDir === undefined) {
      this.#o.log.info({ reason: v.reason }, 'slot good (no runtime directory: nothing to ask)');
      return;
    }
    const file = join(this.#o.runtimeDir, SLOT_GOOD_FILE);
    try {
      await (this.#o.write ?? ((p, t) => writeFile(p, t, { mode: 0o600 })))(file, `${v.reason}\n`);
      this.#o.log.info({ reason: v.reason, file }, 'slot good: asked for the running slot to be marked good');
    } catch (err) {
      this.#requested = false; // try again at the next sample
      this.#o.log.warn({ file, err: String(err) }, 'could not ask for the slot to be marked good');
    }
  }
}

/** onionboxd's `slot` phase: the reporter runs from the page's start to the daemon's stop. */
export function slotPhase(deps: {
  runtimeDir: string | undefined;
  box: { status(): { state: BoxStateName } };
  network: { wanStatus(): Promise<WanView> };
  log: SlotGoodReporterOptions['log'];
}): Phase<SlotGoodReporter> {
  const reporter = new SlotGoodReporter({
    runtimeDir: deps.runtimeDir,
    state: () => deps.box.status().state,
    wan: () => deps.network.wanStatus(),
    log: deps.log,
  });
  return {
    name: 'slot',
    start: async () => {
      reporter.start();
      return reporter;
    },
    stop: async () => reporter.stop(),
  };
}
