/**
 * The real box for web tests: firmware/box/controller.ts's BoxController with its real ConfigStore (in a temp
 * directory), EventBus, state machine, OwnerAccount and a SimBoard. Only tor and the firewall are
 * stand-ins, at the interfaces the box takes (TorLike, FirewallLike), plus the network adapters
 * (FakeNetwork, at NetworkLike) and the system clock (SystemClock): everything the page sees (status,
 * sentences, claim, kill switches, settings) is the box's own logic.
 *
 *   const box = await TestBox.create(dir);
 *   box.tor.bootstrap(100, 'Done');     // tor reports ready: the box routes
 *   box.sim?.setSwitch(true);           // the board's kill switch
 */
import { SimBoard } from '../../board/sim/board.js';
import type { BoardLogger } from '../../board/types.js';
import type {
  ApplyTorResult,
  BoxStatus,
  CircuitInfo,
  DropCounters,
  FirewallModeName,
  SimBoardControls,
} from '../../firmware/box/api.js';
import {
  BoxController,
  type FirewallLike,
  type SystemClock,
  type TorLike,
} from '../../firmware/box/controller.js';
import type { TorConfig } from '../../firmware/config/schema.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { obxError } from '../../firmware/errors.js';
import { EventBus } from '../../firmware/events.js';
import { LeakTester } from '../../firmware/leak-test/leak-test.js';
import type { TorStatus } from '../../firmware/state/machine.js';
import { FakeNetwork } from './fake-network.js';

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

export const FAKE_COUNTERS: DropCounters = {
  ipv6: { packets: 12, bytes: 960 },
  udp: { packets: 40, bytes: 3200 },
  icmp: { packets: 3, bytes: 252 },
  invalid: { packets: 1, bytes: 40 },
  other: { packets: 0, bytes: 0 },
};

/**
 * tor at the box's TorLike interface, as the supervisor behaves there: it reports its status on the
 * bus ('tor:status'), answers circuits only when ready, and restarts with new settings (then
 * bootstraps again) or rolls back to the old ones when they fail (`starts` decides).
 */
export class FakeTor implements TorLike {
  readonly calls = { newIdentity: 0, applied: [] as TorConfig[], rolledBack: 0 };
  /** Whether tor starts with the given settings: true, or the reason it fails. */
  starts: (tor: TorConfig) => true | string = () => true;
  warnings: string[] = [];
  #status: TorStatus = { phase: 'bootstrapping', progress: 0, summary: 'Starting', ready: false };

  constructor(private readonly bus: EventBus) {}

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

/** The firewall at the box's FirewallLike interface: every mode applied at once, in order. */
export class FakeFirewall implements FirewallLike {
  readonly modes: FirewallModeName[] = [];

  async apply(mode: FirewallModeName): Promise<void> {
    this.modes.push(mode);
  }

  async counters(): Promise<DropCounters> {
    return structuredClone(FAKE_COUNTERS);
  }
}

export interface TestBoxOptions {
  /** The simulated board's controls on the page (default true). */
  simulate?: boolean;
  now?: () => number;
  claimCode?: string;
  /** false: the box runs without network control (its network commands say NET_UNAVAILABLE). */
  network?: boolean;
  /** The box's boot window for a reset hold (default: the box's 60 s). */
  bootResetWindowMs?: number;
}

const quiet: BoardLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export class TestBox {
  readonly config: ConfigStore;
  readonly bus = new EventBus();
  readonly board: SimBoard;
  readonly tor: FakeTor;
  readonly firewall = new FakeFirewall();
  readonly network: FakeNetwork | undefined;
  readonly controller: BoxController;
  /** Times the system clock was set to (the box's SystemClock). */
  readonly clockSets: number[] = [];
  /** Extra lines the box's diagnostics include (tests prove the page redacts secrets). */
  extraDiagnostics = '';
  /** When the claim button was last pressed (null: never). */
  buttonPressedAt: number | null = null;
  /**
   * The real leak self-test (firmware/leak-test/) on stand-ins for the kernel: by default what a sound
   * box shows (the audit passes, the probes are stopped inside the box). Tests replace it.
   */
  leakTest: LeakTester;
  #listeners = 0;

  private constructor(dir: string, opts: TestBoxOptions) {
    const now = opts.now ?? Date.now;
    this.config = new ConfigStore(dir);
    this.board = new SimBoard({ now });
    this.tor = new FakeTor(this.bus);
    this.network = opts.network === false ? undefined : new FakeNetwork();
    const clock: SystemClock = { set: async (ms) => void this.clockSets.push(ms) };
    const simulate = opts.simulate ?? true;
    this.leakTest = new LeakTester({
      firewallMode: () => this.firewall.modes.at(-1) ?? null,
      audit: async () => undefined,
      routing: () => this.controller.status().state === 'routing',
      torCheck: async () => ({ isTor: true, ip: '198.51.100.7' }),
      wanInterface: () => 'eth0',
      dhcpServers: () => ['192.168.1.1'],
      wanAddresses: () => ['192.168.1.23'],
      now,
      probes: {
        tcp: async () => ({ kind: 'silent', tracked: false }),
        udp: async () => ({ kind: 'error', code: 'EPERM' }),
        sysctls: async () => ({ ipForward: '0', allForwarding: '0', ipv6Disabled: '1', ipv6Present: true }),
        routeTable: async () => '',
      },
    });
    this.controller = new BoxController({
      config: this.config,
      bus: this.bus,
      board: this.board,
      tor: this.tor,
      firewall: this.firewall,
      log: quiet,
      simulate,
      sim: simulate ? this.board.controls() : undefined,
      clock,
      diagnostics: async () => this.extraDiagnostics,
      now,
      claimCode: opts.claimCode ?? 'K7P2QX',
      network: this.network,
      leakTest: { run: () => this.leakTest.run(), last: () => this.leakTest.last() },
      bootResetWindowMs: opts.bootResetWindowMs ?? Number.POSITIVE_INFINITY,
    });
    this.board.onButton((e) => {
      if (e.kind === 'press') this.buttonPressedAt = e.at;
    });
    // The page's live streams subscribe here: count them (tests check that they unsubscribe).
    const onStatus = this.controller.onStatus.bind(this.controller);
    this.controller.onStatus = (listener: (s: BoxStatus) => void) => {
      const off = onStatus(listener);
      this.#listeners += 1;
      let on = true;
      return () => {
        if (on) this.#listeners -= 1;
        on = false;
        off();
      };
    };
  }

  static async create(dir: string, opts: TestBoxOptions = {}): Promise<TestBox> {
    const box = new TestBox(dir, opts);
    await box.config.load();
    await box.controller.start();
    await box.controller.settled();
    return box;
  }

  stop(): Promise<void> {
    return this.controller.stop();
  }

  get sim(): SimBoardControls | undefined {
    return this.controller.sim;
  }

  /** The code the OLED shows now ('' once claimed). */
  get claimCode(): string {
    return this.controller.claimDisplay()?.code ?? '';
  }

  /** The claim id the OLED shows beside the code (null: none pending, or claimed). */
  get oledClaimId(): string | null {
    return this.controller.claimDisplay()?.id ?? null;
  }

  get hardwareSwitch(): boolean {
    return this.board.readSwitch() !== 'released';
  }

  /** A press of the claim button on the board. */
  press(): void {
    this.board.pressButton();
  }

  /** tor's bootstrap advancing, as its STATUS_CLIENT events reach the box. */
  setBootstrap(progress: number, summary: string): void {
    this.tor.bootstrap(progress, summary);
  }

  /** Live status subscriptions open now. */
  listenerCount(): number {
    return this.#listeners;
  }

  /** Waits until the box's firewall work and config writes (a reset hold's, say) are done. */
  async settled(): Promise<void> {
    await this.controller.settled();
    await this.config.update((c) => c);
  }
}
