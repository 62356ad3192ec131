/**
 * The one test double of BoxApi for the web layer, until the lead wires the real box (firmware/box.ts).
 * It behaves like the real one where the web can tell: a real ConfigStore in a temp directory, status
 * derived from (kill switches, tor state, bootstrap progress) the way the state machine does, tor
 * settings validated with the config store's own schema (bad input throws OBX_ERR_CONFIG_INVALID and
 * changes nothing) and rolled back when "tor" fails to start with them, every command recorded. The
 * claim, password and session key are the box's own OwnerAccount (firmware/owner.ts), as in
 * BoxController; the simulated button's press approves a pending claim, a hold of 10 s resets.
 */
import { PNG } from 'pngjs';
import { HOLD_MS } from '../../board/types.js';
import type {
  AccessPointInput,
  ApplyTorResult,
  BoxApi,
  BoxStatus,
  CircuitInfo,
  ClaimProgress,
  ClaimRequest,
  ClaimTicket,
  DropCounters,
  JoinWifiInput,
  LeakReport,
  NetworkView,
  PageSettings,
  SimBoardControls,
  WifiNetworkView,
} from '../../firmware/box-api.js';
import type { TorConfig } from '../../firmware/config/schema.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { configProblems } from '../../firmware/config/validate.js';
import { obxError } from '../../firmware/errors.js';
import { LeakTester } from '../../firmware/leak-test/leak-test.js';
import { clockInRange } from '../../firmware/lib/clock-range.js';
import * as net from '../../firmware/net/box-network.js';
import { OwnerAccount } from '../../firmware/owner.js';
import { FakeNetwork } from './fake-network.js';

export interface FakeBoxOptions {
  simulate?: boolean;
  now?: () => number;
  claimCode?: string;
}

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

export class FakeBox implements BoxApi {
  /** The box's own store (tests read it; the page cannot: it is not part of BoxApi). */
  readonly config: ConfigStore;
  readonly owner: OwnerAccount;
  readonly sim: SimBoardControls | undefined;
  readonly calls = {
    newIdentity: 0,
    softKill: [] as boolean[],
    clock: [] as number[],
    applied: [] as TorConfig[],
    rolledBack: 0,
  };
  /** Decides whether tor starts with the given settings: true, or the reason it fails. */
  torStarts: (tor: TorConfig) => true | string = () => true;
  /** Extra lines the diagnostics include (tests use it to prove the page redacts secrets). */
  extraDiagnostics = '';
  /** The network adapters' stand-in; the box's real networking logic (box-network.ts) runs on it. */
  network: FakeNetwork | undefined = new FakeNetwork();
  hardwareSwitch = false;
  torRunning = true;
  progress = 0;
  summary = 'Starting';
  warnings: string[] = [];
  buttonPressedAt: number | null = null;
  /** The reset a simulated 10 s hold started (tests await it). */
  lastReset: Promise<void> = Promise.resolve();
  /** Ids approved by presses, in order (what the OLED showed). */
  readonly approvals: (string | null)[] = [];
  readonly startedAt: number;
  readonly #now: () => number;
  readonly #simulate: boolean;
  readonly #listeners = new Set<(s: BoxStatus) => void>();

  private constructor(dir: string, opts: FakeBoxOptions) {
    this.config = new ConfigStore(dir);
    this.#now = opts.now ?? Date.now;
    this.#simulate = opts.simulate ?? true;
    this.owner = new OwnerAccount(this.config, { now: this.#now, claimCode: opts.claimCode ?? 'K7P2QX' });
    this.startedAt = this.#now();
    this.sim = this.#simulate ? this.#simControls() : undefined;
  }

  static async create(dir: string, opts: FakeBoxOptions = {}): Promise<FakeBox> {
    const box = new FakeBox(dir, opts);
    await box.config.load();
    await box.owner.ensureSessionKey();
    return box;
  }

  /** The code the OLED shows now ('' once claimed). */
  get claimCode(): string {
    return this.owner.display()?.code ?? '';
  }

  /** The claim id the OLED shows beside the code (null: none pending, or claimed). */
  get oledClaimId(): string | null {
    return this.owner.display()?.id ?? null;
  }

  settings(): PageSettings {
    const c = this.config.get();
    return { ...c, web: { port: c.web.port } };
  }

  isClaimed(): boolean {
    return this.owner.isClaimed();
  }

  startClaim(): ClaimTicket {
    return this.owner.startClaim();
  }

  claimProgress(ticket: string | null | undefined): ClaimProgress {
    return this.owner.claimProgress(ticket);
  }

  async claim(request: ClaimRequest): Promise<'claimed' | 'no-presence'> {
    return (await this.owner.claim(request)) === null ? 'no-presence' : 'claimed';
  }

  verifyPassword(password: string): Promise<boolean> {
    return this.owner.verifyPassword(password);
  }

  changePassword(current: string, next: string): Promise<'changed' | 'wrong-password'> {
    return this.owner.changePassword(current, next);
  }

  resetClaim(): Promise<void> {
    return this.owner.reset();
  }

  sessionKey(): string {
    return this.owner.sessionKey();
  }

  /** A press of the claim button (what the board's button event does in BoxController). */
  press(): string | null {
    this.buttonPressedAt = this.#now();
    const id = this.owner.press(this.buttonPressedAt);
    this.approvals.push(id);
    return id;
  }

  status(): BoxStatus {
    const cfg = this.config.get();
    const killed = this.hardwareSwitch || cfg.softKill;
    const ready = this.torRunning && this.progress >= 100;
    const state: BoxStatus['state'] = killed
      ? 'killed'
      : !this.torRunning
        ? 'tor-down'
        : ready
          ? 'routing'
          : 'connecting';
    const explanation = {
      killed: 'No device behind the box can reach the internet until the kill switch is off.',
      'tor-down': 'Tor stopped; devices are cut off while the box restarts it.',
      routing: 'Devices behind the box reach the internet only through Tor.',
      connecting: 'The box is connecting to the Tor network; devices wait, nothing leaks meanwhile.',
      booting: '',
      error: '',
    }[state];
    return {
      state,
      explanation,
      firewallMode: state === 'killed' ? 'killed' : state === 'routing' ? 'routing' : 'connecting',
      tor: {
        phase: ready ? 'done' : 'loading',
        progress: this.progress,
        summary: this.summary,
        ready,
        lastWarnings: [...this.warnings],
      },
      killSwitch: { hardware: this.hardwareSwitch, software: cfg.softKill },
      uptimeSeconds: Math.floor((this.#now() - this.startedAt) / 1000),
      claimed: cfg.web.passwordHash !== null,
      simulate: this.#simulate,
      at: this.#now(),
    };
  }

  onStatus(listener: (status: BoxStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  listenerCount(): number {
    return this.#listeners.size;
  }

  emit(): void {
    const s = this.status();
    for (const l of [...this.#listeners]) l(s);
  }

  /** Tor's bootstrap advancing (what STATUS_CLIENT BOOTSTRAP events do to the real box). */
  setBootstrap(progress: number, summary: string): void {
    this.progress = progress;
    this.summary = summary;
    this.emit();
  }

  async circuits(): Promise<CircuitInfo[]> {
    return this.status().state === 'routing' ? structuredClone(FAKE_CIRCUITS) : [];
  }

  async counters(): Promise<DropCounters> {
    return {
      ipv6: { packets: 12, bytes: 960 },
      udp: { packets: 40, bytes: 3200 },
      icmp: { packets: 3, bytes: 252 },
      invalid: { packets: 1, bytes: 40 },
      other: { packets: 0, bytes: 0 },
    };
  }

  /**
   * The real leak self-test (firmware/leak-test/) on stand-ins for the kernel: by default what a sound
   * box shows (the firewall audit passes, the probes are dropped inside the box). Tests replace it.
   */
  leakTest: LeakTester = new LeakTester({
    firewallMode: () => (this.torRunning && this.progress === 100 ? 'routing' : 'connecting'),
    audit: async () => undefined,
    routing: () => this.status().state === 'routing',
    torCheck: async () => ({ isTor: true, ip: '198.51.100.7' }),
    wanInterface: () => 'eth0',
    dhcpServers: () => ['192.168.1.1'],
    wanAddresses: () => ['192.168.1.23'],
    now: () => this.#now(),
    probes: {
      tcp: async () => ({ kind: 'silent', tracked: false }),
      udp: async () => ({ kind: 'error', code: 'EPERM' }),
      sysctls: async () => ({ ipForward: '0', allForwarding: '0', ipv6Disabled: '1', ipv6Present: true }),
      routeTable: async () => '',
    },
  });

  runLeakTest(): Promise<LeakReport> {
    return this.leakTest.run();
  }

  lastLeakTest(): LeakReport | null {
    return this.leakTest.last();
  }

  async newIdentity(): Promise<void> {
    if (!this.torRunning) throw obxError('INTERNAL', 'tor is not running');
    this.calls.newIdentity += 1;
  }

  async setSoftKill(engaged: boolean): Promise<void> {
    this.calls.softKill.push(engaged);
    await this.config.update((c) => ({ ...c, softKill: engaged }));
    this.emit();
  }

  async applyTorSettings(settings: TorConfig): Promise<ApplyTorResult> {
    const problems = configProblems({ ...this.config.get(), tor: settings });
    if (Object.keys(problems).length > 0) {
      throw obxError('CONFIG_INVALID', Object.keys(problems).join(', '), { details: problems });
    }
    const previous = structuredClone(this.config.get().tor);
    await this.config.update((c) => ({ ...c, tor: settings }));
    this.calls.applied.push(structuredClone(settings));
    this.setBootstrap(0, 'Starting');
    const verdict = this.torStarts(settings);
    if (verdict === true)
      return { ok: true, rolledBack: false, message: 'tor restarted with the new settings' };
    await this.config.update((c) => ({ ...c, tor: previous }));
    this.calls.rolledBack += 1;
    this.setBootstrap(100, 'Done');
    return { ok: false, rolledBack: true, message: verdict };
  }

  async setClock(epochMs: number): Promise<void> {
    if (!clockInRange(epochMs)) {
      throw obxError('CONFIG_INVALID', 'clock value out of range');
    }
    this.calls.clock.push(epochMs);
  }

  networkStatus(): Promise<NetworkView> {
    return net.networkStatus(this.config, this.network);
  }

  wifiScan(): Promise<WifiNetworkView[]> {
    return net.wifiScan(this.network);
  }

  joinWifi(input: JoinWifiInput): Promise<void> {
    return net.joinWifi(this.config, this.network, input);
  }

  setAccessPoint(input: AccessPointInput): Promise<void> {
    return net.setAccessPoint(this.config, this.network, input);
  }

  async diagnostics(): Promise<string> {
    const s = this.status();
    const text = [
      `onionbox diagnostics at ${new Date(this.#now()).toISOString()}`,
      `state=${s.state} firewall=${s.firewallMode} tor=${s.tor.progress}% ${s.tor.summary}`,
      `kill switch: hardware=${s.killSwitch.hardware} software=${s.killSwitch.software}`,
      this.extraDiagnostics,
    ].join('\n');
    return this.owner.redact(text);
  }

  #simControls(): SimBoardControls {
    return {
      setSwitch: (engaged) => {
        this.hardwareSwitch = engaged;
        this.emit();
      },
      pressClaimButton: (holdMs = 0) => {
        this.press();
        // The real box resets only within its boot window; the fake's whole life is that window.
        if (holdMs >= HOLD_MS) this.lastReset = this.owner.reset();
      },
      leds: () => {
        const st = this.status().state;
        return {
          green: st === 'routing' ? 'on' : 'off',
          amber: st === 'connecting' ? 'blink' : 'off',
          red: st === 'killed' || st === 'tor-down' ? 'on' : 'off',
        };
      },
      oledPng: () => {
        const png = new PNG({ width: 128, height: 64 });
        const lit = Math.round((this.progress / 100) * 120);
        for (let y = 0; y < 64; y++) {
          for (let x = 0; x < 128; x++) {
            const on = (y >= 40 && y < 48 && x >= 4 && x < 4 + lit) || y === 0 || y === 63;
            const i = (y * 128 + x) * 4;
            png.data[i] = on ? 0x9a : 0;
            png.data[i + 1] = on ? 0xd8 : 0;
            png.data[i + 2] = on ? 0xff : 0;
            png.data[i + 3] = 255;
          }
        }
        return PNG.sync.write(png);
      },
    };
  }
}
