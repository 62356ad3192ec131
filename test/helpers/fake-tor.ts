/**
 * The one stand-in for tor in tests: tor at the box's TorLike interface, as the supervisor
 * (firmware/tor/supervisor.ts) behaves there. It reports its status on the bus ('tor:status'), answers
 * circuits only when ready, refuses control commands while it does not run, and takes new settings the
 * supervisor's way: a torrc tor refuses changes nothing; otherwise tor restarts (bootstraps again) and
 * either runs with them or rolls back to the old ones.
 *
 *   const tor = new FakeTor(bus, { status: TOR_READY });
 *   tor.bootstrap(100, 'Done');          // tor reports ready (or tor.report(status))
 *   tor.starts = () => 'no consensus';   // the next settings fail: rolled back
 */
import type { ApplyTorResult, CircuitInfo } from '../../firmware/box/api.js';
import type { TorLike } from '../../firmware/box/controller.js';
import type { TorConfig } from '../../firmware/config/schema.js';
import { obxError } from '../../firmware/errors.js';
import type { EventBus } from '../../firmware/events.js';
import type { TorStatus } from '../../firmware/state/machine.js';

export const TOR_READY: TorStatus = { phase: 'ready', progress: 100, summary: 'Done', ready: true };

export const FAKE_CIRCUITS: CircuitInfo[] = [
  {
    id: '7',
    status: 'BUILT',
    purpose: 'GENERAL',
    hops: [
      { fingerprint: 'A'.repeat(40), nickname: 'guardian', country: 'de' },
      { fingerprint: 'B'.repeat(40), nickname: 'middleman', country: 'se' },
      { fingerprint: 'C'.repeat(40), nickname: 'exitus', country: 'nl' },
    ],
  },
  { id: '8', status: 'EXTENDED', purpose: 'GENERAL', hops: [] },
];

export interface FakeTorOptions {
  /** Its status before any report (default: bootstrapping from 0 %). */
  status?: TorStatus;
  /** Its recent warnings (lastWarnings). */
  warnings?: string[];
}

export class FakeTor implements TorLike {
  readonly calls = { newIdentity: 0, applied: [] as TorConfig[], rolledBack: 0 };
  /** Whether tor becomes ready with the given settings: true, or the reason it does not (rolled back). */
  starts: (tor: TorConfig) => true | string = () => true;
  /** Whether tor refuses the settings' torrc outright (nothing restarts): the reason, or null. */
  refuses: (tor: TorConfig) => string | null = () => null;
  warnings: string[];
  #status: TorStatus;

  constructor(
    private readonly bus: EventBus,
    opts: FakeTorOptions = {},
  ) {
    this.#status = {
      ...(opts.status ?? { phase: 'bootstrapping', progress: 0, summary: 'Starting', ready: false }),
    };
    this.warnings = [...(opts.warnings ?? [])];
  }

  status(): TorStatus {
    return { ...this.#status };
  }

  report(status: TorStatus): void {
    this.#status = { ...status };
    this.bus.emit('tor:status', this.status());
  }

  /** A bootstrap event; 100 % counts as ready (the supervisor's exit circuit is taken as built). */
  bootstrap(progress: number, summary: string): void {
    const ready = progress >= 100;
    this.report({ phase: ready ? 'ready' : 'bootstrapping', progress, summary, ready });
  }

  /** Like the supervisor: the control connection is there while tor runs, bootstrapping or not. */
  #requireControl(): void {
    const p = this.#status.phase;
    if (p === 'stopped' || p === 'crashed' || p === 'failed') {
      throw obxError('TOR_NOT_RUNNING', `tor is ${p}`);
    }
  }

  async newIdentity(): Promise<void> {
    this.#requireControl();
    this.calls.newIdentity += 1;
  }

  async circuits(): Promise<CircuitInfo[]> {
    this.#requireControl();
    return this.#status.ready ? structuredClone(FAKE_CIRCUITS) : [];
  }

  async applySettings(settings: TorConfig): Promise<ApplyTorResult> {
    this.calls.applied.push(structuredClone(settings));
    const refused = this.refuses(settings);
    if (refused !== null) return { ok: false, rolledBack: false, message: refused };
    this.bootstrap(0, 'Starting');
    const verdict = this.starts(settings);
    if (verdict === true)
      return { ok: true, rolledBack: false, message: 'tor restarted with the new settings' };
    this.calls.rolledBack += 1;
    this.bootstrap(100, 'Done');
    return { ok: false, rolledBack: true, message: verdict };
  }

  lastWarnings(): string[] {
    return [...this.warnings];
  }
}
