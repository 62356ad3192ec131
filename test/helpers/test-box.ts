/**
 * The real box for web tests: firmware/box/controller.ts's BoxController with its real ConfigStore (in a
 * temp directory), EventBus, state machine, OwnerAccount and a SimBoard. Only tor and the firewall are
 * stand-ins, at the interfaces the box takes (TorLike, FirewallLike: the tests' FakeTor and FakeFirewall),
 * plus the network adapters (FakeNetwork, at NetworkLike) and the system clock (SystemClock): everything
 * the page sees (status, sentences, claim, kill switches, settings) is the box's own logic.
 *
 *   const box = await TestBox.create(dir);
 *   box.tor.bootstrap(100, 'Done');     // tor reports ready: the box routes
 *   box.sim?.setSwitch(true);           // the board's kill switch
 */
import { SimBoard } from '../../board/sim/board.js';
import type { BoardLogger } from '../../board/types.js';
import type { BoxStatus, SimBoardControls } from '../../firmware/box/api.js';
import { BoxController, type SystemClock } from '../../firmware/box/controller.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { EventBus } from '../../firmware/events.js';
import { LeakTester } from '../../firmware/leak-test/leak-test.js';
import { PRESS_SHOWN_MS } from '../../firmware/owner/claim.js';
import { FakeFirewall } from './fake-firewall.js';
import { FakeNetwork } from './fake-network.js';
import { FakeTor } from './fake-tor.js';

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
  /** Added to the box's clock (advance()): a press can come seconds after a claim without a wait. */
  #skewMs = 0;

  private constructor(dir: string, opts: TestBoxOptions) {
    const base = opts.now ?? Date.now;
    const now = () => base() + this.#skewMs;
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

  /** Moves the box's clock (and its board's) forward. */
  advance(ms: number): void {
    this.#skewMs += ms;
  }

  /**
   * The owner's press: once the pending claim's id has been on the OLED for PRESS_SHOWN_MS (the box's
   * clock moves on instead of the test waiting), the claim button is pressed (held `holdMs`).
   */
  pressWhenShown(holdMs?: number): void {
    this.advance(PRESS_SHOWN_MS);
    this.board.pressButton(holdMs);
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
