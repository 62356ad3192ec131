/**
 * The one test double of BoxApi for the web layer, until the lead wires the real box (firmware/box.ts).
 * It behaves like the real one where the web can tell: a real ConfigStore in a temp directory, status
 * derived from (kill switches, tor state, bootstrap progress) the way the state machine does, tor
 * settings validated with the config store's own schema (bad input throws OBX_ERR_CONFIG_INVALID and
 * changes nothing) and rolled back when "tor" fails to start with them, every command recorded.
 */
import { PNG } from 'pngjs';
import type {
  AccessPointInput,
  ApplyTorResult,
  BoxApi,
  BoxStatus,
  CircuitInfo,
  DropCounters,
  JoinWifiInput,
  NetworkView,
  SimBoardControls,
  WifiNetworkView,
} from '../../firmware/box-api.js';
import type { TorConfig } from '../../firmware/config/schema.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { configProblems } from '../../firmware/config/validate.js';
import { obxError } from '../../firmware/errors.js';
import * as net from '../../firmware/net/box-network.js';
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
  readonly config: ConfigStore;
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
  readonly claimCode: string;
  readonly startedAt: number;
  readonly #now: () => number;
  readonly #simulate: boolean;
  readonly #listeners = new Set<(s: BoxStatus) => void>();

  private constructor(dir: string, opts: FakeBoxOptions) {
    this.config = new ConfigStore(dir);
    this.#now = opts.now ?? Date.now;
    this.#simulate = opts.simulate ?? true;
    this.claimCode = opts.claimCode ?? 'K7P2QX';
    this.startedAt = this.#now();
    this.sim = this.#simulate ? this.#simControls() : undefined;
  }

  static async create(dir: string, opts: FakeBoxOptions = {}): Promise<FakeBox> {
    const box = new FakeBox(dir, opts);
    await box.config.load();
    return box;
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
    if (!Number.isInteger(epochMs) || epochMs < Date.UTC(2024, 0, 1) || epochMs >= Date.UTC(2100, 0, 1)) {
      throw obxError('CONFIG_INVALID', 'clock value out of range');
    }
    this.calls.clock.push(epochMs);
  }

  claimPresence(): { code: string; buttonPressedAt: number | null } {
    return { code: this.claimCode, buttonPressedAt: this.buttonPressedAt };
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
    return [
      `onionbox diagnostics at ${new Date(this.#now()).toISOString()}`,
      `state=${s.state} firewall=${s.firewallMode} tor=${s.tor.progress}% ${s.tor.summary}`,
      `kill switch: hardware=${s.killSwitch.hardware} software=${s.killSwitch.software}`,
      this.extraDiagnostics,
    ].join('\n');
  }

  #simControls(): SimBoardControls {
    return {
      setSwitch: (engaged) => {
        this.hardwareSwitch = engaged;
        this.emit();
      },
      pressClaimButton: () => {
        this.buttonPressedAt = this.#now();
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
