/**
 * BoxController: the BoxApi the web page and the CLI use. It composes the config store, the board, the
 * state machine (firmware/state/machine.ts), tor and the firewall:
 *
 *   switch edge / tor:status event / web kill switch / fault
 *     -> state machine step -> desired firewall mode -> firewall.apply(mode) -> LEDs and OLED
 *
 * The reconcile core (the machine's state, the serialised apply loop, fail-closed on errors and the
 * retry) is ModeReconciler (firmware/box/reconcile.ts); a WAN/LAN change and the WAN lease's overlap
 * check are NetworkChanger (firmware/box/network-change.ts); what the box shows (LEDs, OLED, the page's
 * status, diagnostics, the recent events) is BoxView (firmware/box/view.ts); the control-socket commands
 * are in firmware/control/commands.ts. This file wires them to the board, tor, the config store and the page.
 *
 * A ruleset changed outside the box (Firewall's audit: flushed, edited) is a firewall fault like a failed
 * apply: the closed mode goes in at once (a whole new table), the event is logged, the page's status
 * carries `alert` from then on and the OLED shows the fault until the retry restores the target mode.
 *
 * Claim and password belong to the box (firmware/owner/claim.ts): while the box is unclaimed, a one-time
 * 8-character code is shown on the OLED with the id of the newest pending claim; a press of the claim
 * button approves that claim only when it is the one pending and its id has been shown for 3 s (else the
 * OLED says the press was refused), and nothing outside that browser learns of the press (no status event).
 * Holding the claim button for 10 s at boot (down when onionboxd starts, or pressed within the first
 * `bootResetWindowMs`, default 60 s) clears the password and rotates the session key (resetClaim()): the
 * box is unclaimed again, every session ends, the hold's own press approves nothing, and neither old
 * secret stays in config.json or its backup.
 *
 * Over 400 lines because it is the one implementation of BoxApi (about thirty short methods the page,
 * the CLI and the tests call, most a few lines handing over to the owner account, tor, the firewall,
 * the view, the network changer or firmware/net/box-network.ts) and documents each of its dependencies;
 * the logic with state of its own is in the modules named above.
 */
import type { Board, BoardLogger, ButtonEvent } from '../../board/types.js';
import { assistSettings, type TorConfig } from '../config/schema.js';
import type { ConfigStore } from '../config/store.js';
import { validateConfig } from '../config/validate.js';
import { describeError, obxError } from '../errors.js';
import type { EventBus } from '../events.js';
import { CLOCK_RANGE_TEXT, clockInRange } from '../lib/clock-range.js';
import * as net from '../net/box-network.js';
import { configuredNetwork, type NetworkShape } from '../net/change.js';
import type { ClaimDisplay, ClaimProgress, ClaimTicket } from '../owner/claim.js';
import { OwnerAccount } from '../owner/owner.js';
import { type MachineInput, type MachineState, type TorStatus, view } from '../state/machine.js';
import type {
  AccessPointInput,
  ApplyTorResult,
  AssistView,
  BoxApi,
  BoxStatus,
  CircuitInfo,
  ClaimRequest,
  DropCounters,
  FirewallModeName,
  JoinWifiInput,
  LeakReport,
  NetworkView,
  PageSettings,
  SimBoardControls,
  WifiNetworkView,
} from './api.js';
import { type NetworkChangeInput, NetworkChanger } from './network-change.js';
import { type Containment, type FirewallLike, ModeReconciler } from './reconcile.js';
import { BoxView } from './view.js';

export type { TorStatus } from '../state/machine.js';

/** Implemented by firmware/tor/ (the supervisor); it also emits 'tor:status' on the EventBus. */
export interface TorLike {
  status(): TorStatus;
  newIdentity(): Promise<void>;
  circuits(): Promise<CircuitInfo[]>;
  applySettings(t: TorConfig): Promise<ApplyTorResult>;
  lastWarnings(): string[];
}

export type { NetworkChangeSystem } from './network-change.js';
export type { FirewallLike } from './reconcile.js';

export interface SystemClock {
  set(epochMs: number): Promise<void>;
}

export interface BoxControllerDeps {
  config: ConfigStore;
  bus: EventBus;
  board: Board;
  tor: TorLike;
  firewall: FirewallLike;
  log: BoardLogger;
  simulate: boolean;
  /** Simulator controls (SimBoard.controls()) when the board is simulated. */
  sim?: SimBoardControls | undefined;
  /** Sets the system clock: the platform's choice (firmware/platform/platform.ts), through the clock service. */
  clock: SystemClock;
  /** Extra diagnostics text (e.g. recent daemon log lines, without secrets). */
  diagnostics?: (() => Promise<string>) | undefined;
  now?: () => number;
  retryMs?: number;
  bootResetWindowMs?: number;
  /** How often the OLED is refreshed for changes outside the machine (claimed, address); default 5 s. */
  refreshMs?: number;
  /**
   * Last resort when nft refuses every closed ruleset (the kernel keeps the previous one, maybe routing):
   * `engage` stops what the previous ruleset lets through (onionboxd stops tor, so TransPort/DNSPort have
   * no listener and nothing leaves), `release` undoes it once a ruleset loads again.
   */
  containment?: Containment | undefined;
  /** The first claim code (tests); later ones are random. */
  claimCode?: string | undefined;
  /**
   * The network the box runs on (BoxNetwork, firmware/net/network.ts): the page's network commands, and
   * its `change`: a WAN/LAN change's system steps (the box owns close, reconnect's firewall mode and
   * open: the state machine) and current(). Without it network commands say NET_UNAVAILABLE.
   */
  network?: net.NetworkLike | undefined;
  /** The leak self-test (firmware/leak-test/); without it the test answers LEAK_TEST_UNAVAILABLE. */
  leakTest?: { run(): Promise<LeakReport>; last(): LeakReport | null } | undefined;
}

const OWNER = 'box';

export class BoxController implements BoxApi {
  readonly #config: ConfigStore;
  readonly sim: SimBoardControls | undefined;
  readonly #core: ModeReconciler;
  #softSeq = 0;
  #refresh: NodeJS.Timeout | null = null;
  readonly #owner: OwnerAccount;
  readonly #view: BoxView;
  readonly #netChange: NetworkChanger;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #now: () => number;
  #assist: { consent(): boolean } | null = null;

  readonly #deps: BoxControllerDeps;
  constructor(deps: BoxControllerDeps) {
    this.#deps = deps;
    this.#config = deps.config;
    this.sim = deps.sim;
    this.#now = deps.now ?? Date.now;
    this.#owner = new OwnerAccount(deps.config, { now: this.#now, claimCode: deps.claimCode });
    this.#core = new ModeReconciler({
      firewall: deps.firewall,
      log: deps.log,
      retryMs: deps.retryMs,
      containment: deps.containment,
      record: (line) => this.#record(line),
      changed: () => this.#render(),
    });
    this.#view = new BoxView({
      core: this.#core,
      lanAddress: () => this.#currentNetwork().lanAddress,
      owner: this.#owner,
      board: deps.board,
      log: deps.log,
      simulate: deps.simulate,
      now: this.#now,
      // tor's warnings name the bridges it tried: redacted like the diagnostics (firmware/lib/redact.ts)
      // before any status leaves the box's core (the page, its live stream, the page process's Mirror)
      torWarnings: () => deps.tor.lastWarnings().map((w) => this.#owner.redact(w)),
      diagnostics: deps.diagnostics,
    });
    this.#netChange = new NetworkChanger({
      system: deps.network?.change,
      current: () => this.#currentNetwork(),
      core: this.#core,
      log: deps.log,
      reapply: () => this.reapply(),
      record: (line) => this.#record(line),
    });
  }

  /** The network the box runs on now: the network owner's (the config's in a box without one). */
  #currentNetwork(): NetworkShape {
    return this.#deps.network?.change?.current() ?? configuredNetwork(this.#config.get().network);
  }

  get #state(): MachineState {
    return this.#core.state;
  }

  /** Reads the switch (board start), applies the first mode, then follows events. Config must be loaded. */
  async start(): Promise<void> {
    const { board, bus, config, tor } = this.#deps;
    this.#view.started(this.#now());
    await this.#owner.ensureSessionKey();
    // The button first: a hold that began before power-on is reported during board.start().
    this.#unsubscribe.push(board.onButton((e) => this.#button(e)));
    await board.start();
    this.#core.begin([
      { type: 'switch', position: board.readSwitch() },
      { type: 'soft-kill', engaged: config.get().softKill },
      { type: 'tor', status: tor.status() },
    ]);
    const onTamper = this.#deps.firewall.onTamper?.((reason) => this.#tampered(reason));
    if (onTamper) this.#unsubscribe.push(onTamper);
    this.#unsubscribe.push(
      board.onSwitch((position) => this.#input({ type: 'switch', position })),
      bus.on('tor:status', OWNER, (status) => this.#input({ type: 'tor', status })),
    );
    this.#record(`start: switch ${board.readSwitch()}, soft kill ${config.get().softKill}`);
    this.#render();
    await this.#core.reconcile();
    this.#refresh = setInterval(() => this.#render(), this.#deps.refreshMs ?? 5000);
    this.#refresh.unref();
  }

  async stop(): Promise<void> {
    for (const u of this.#unsubscribe.splice(0)) u();
    this.#deps.bus.removeOwner(OWNER);
    if (this.#refresh) clearInterval(this.#refresh);
    this.#refresh = null;
    await this.#core.end();
    // The firewall keeps its last ruleset: stopping the firmware never opens anything.
    await this.#deps.board.stop();
  }

  /** The mode last loaded into the kernel (null before the first apply and after a failed one). */
  get appliedMode(): FirewallModeName | null {
    return this.#core.applied;
  }

  /** The state machine's current state (read-only snapshot, for tests and diagnostics). */
  machine(): MachineState {
    return this.#state;
  }

  /** Resolves once the firewall holds the mode the current state asks for (or an apply failed). */
  settled(): Promise<void> {
    return this.#core.settled();
  }

  status(): BoxStatus {
    return this.#view.status();
  }

  settings(): PageSettings {
    const c = this.#config.get();
    const ap = c.network.accessPoint;
    // The page never reads a secret back: not the owner's, not the access point's passphrase.
    const accessPoint = ap === null ? null : (({ passphrase: _, ...rest }) => rest)(ap);
    return { ...c, network: { ...c.network, accessPoint }, web: { port: c.web.port } };
  }

  isClaimed(): boolean {
    return this.#owner.isClaimed();
  }

  /** One line for the box's event log (the diagnostics' recent events), from another part of onionboxd. */
  record(line: string): void {
    this.#record(line);
  }

  onStatus(listener: (status: BoxStatus) => void): () => void {
    return this.#view.onStatus(listener);
  }

  /** The connection assist's state for the page and the OLED (firmware/tor/assist-runner.ts). */
  setAssist(view: (AssistView & { oled: string }) | null): void {
    this.#view.assist(view);
    this.#render();
  }

  /** Where the built-in bridge lines come from, in the page's words (phase `builtin`). */
  setBuiltinBridges(words: string | null): void {
    this.#view.builtinBridges(words);
    this.#render();
  }

  /** The connection assist, for the owner's consent (phase `assist`). */
  attachAssist(assist: { consent(): boolean } | null): void {
    this.#assist = assist;
  }

  /** The updater's warning for the OLED (tor no longer recommended, an old image), or null. */
  setUpdateWarning(text: string | null): void {
    this.#view.updateWarning(text);
    this.#render();
  }

  circuits(): Promise<CircuitInfo[]> {
    return this.#deps.tor.circuits();
  }

  counters(): Promise<DropCounters> {
    return this.#deps.firewall.counters();
  }

  newIdentity(): Promise<void> {
    return this.#deps.tor.newIdentity();
  }

  runLeakTest(): Promise<LeakReport> {
    if (!this.#deps.leakTest) return Promise.reject(obxError('LEAK_TEST_UNAVAILABLE'));
    return this.#deps.leakTest.run();
  }

  lastLeakTest(): LeakReport | null {
    return this.#deps.leakTest?.last() ?? null;
  }

  async setSoftKill(engaged: boolean): Promise<void> {
    if (typeof engaged !== 'boolean') throw obxError('BOX_BAD_INPUT', 'kill switch must be true or false');
    // Calls may overlap (two quick clicks): the config writes queue in call order, and a release that
    // was overtaken by a later call is not applied.
    const seq = ++this.#softSeq;
    const write = this.#config.update((c) => ({ ...c, softKill: engaged }));
    if (engaged) {
      // Cut first, then wait for the SD card.
      this.#input({ type: 'soft-kill', engaged: true });
      await this.#core.reconcile();
      await write;
    } else {
      await write;
      if (seq !== this.#softSeq) return;
      this.#input({ type: 'soft-kill', engaged: false });
      await this.#core.reconcile();
    }
    const want = view(this.#state).firewallMode;
    if (this.#core.applied !== want) {
      throw obxError(
        'BOX_APPLY_FAILED',
        `wanted ${want}, the firewall holds ${this.#core.applied ?? 'an unknown ruleset'}`,
      );
    }
  }

  async applyTorSettings(settings: TorConfig): Promise<ApplyTorResult> {
    // The store's own check, run before tor sees the settings (OBX_ERR_CONFIG_INVALID changes nothing):
    // the store writes them only once tor runs with them (refused or rolled back: nothing stored).
    validateConfig({ ...this.#config.get(), tor: settings });
    const result = await this.#deps.tor.applySettings(settings);
    if (result.ok) await this.#config.update((c) => ({ ...c, tor: settings }));
    this.#record(`tor settings: ${result.ok ? 'applied' : result.rolledBack ? 'rolled back' : 'refused'}`);
    return result;
  }

  async setClock(epochMs: number): Promise<void> {
    // The one range the page and the clock service use too (firmware/lib/clock-range.ts).
    if (!clockInRange(epochMs)) {
      throw obxError('CLOCK_INVALID', `${String(epochMs)} is not a time ${CLOCK_RANGE_TEXT}`);
    }
    await this.#deps.clock.set(epochMs);
    this.#record(`clock set to ${new Date(epochMs).toISOString()}`);
  }

  async setBlockedHere(blockedHere: boolean): Promise<void> {
    if (typeof blockedHere !== 'boolean')
      throw obxError('BOX_BAD_INPUT', 'blockedHere must be true or false');
    await this.#config.update((c) => ({ ...c, assist: { ...assistSettings(c), blockedHere } }));
    this.#record(`connection assist: Tor is blocked here ${blockedHere ? 'on' : 'off'}`);
  }

  async assistConsent(): Promise<void> {
    if (!this.#assist?.consent()) {
      throw obxError('BOX_BAD_INPUT', 'the connection assist is not asking to try its own bridges now');
    }
    this.#record('connection assist: the owner lets the box try its own bridges');
  }

  startClaim(): ClaimTicket {
    const ticket = this.#owner.startClaim();
    this.#record(`claim ${ticket.id} started`);
    this.#render();
    return ticket;
  }

  claimProgress(ticket: string | null | undefined): ClaimProgress {
    return this.#owner.claimProgress(ticket);
  }

  /** What the OLED shows while unclaimed (tests and diagnostics; the page never sees the code). */
  claimDisplay(): ClaimDisplay | null {
    return this.#owner.display();
  }

  async claim(request: ClaimRequest): Promise<'claimed' | 'no-presence'> {
    const proof = await this.#owner.claim(request);
    if (proof === null) {
      this.#record(`claim refused: no presence (${this.#owner.codeFailures} wrong codes on this code)`);
      this.#render();
      return 'no-presence';
    }
    this.#record(`box claimed (presence by ${proof})`);
    this.#render(true);
    return 'claimed';
  }

  verifyPassword(password: string): Promise<boolean> {
    return this.#owner.verifyPassword(password);
  }

  async changePassword(current: string, next: string): Promise<'changed' | 'wrong-password'> {
    const result = await this.#owner.changePassword(current, next);
    if (result === 'changed') this.#record('owner password changed');
    return result;
  }

  async resetClaim(): Promise<void> {
    await this.#owner.reset();
    this.#record('password cleared: the box can be claimed again');
    this.#render(true);
  }

  sessionKey(): string {
    return this.#owner.sessionKey();
  }

  diagnostics(): Promise<string> {
    return this.#view.diagnostics();
  }

  /**
   * Loads the current mode again with fresh parameters (the daemon's WAN lease changed): the same mode
   * the state machine wants, never another one, through the same serialised loop.
   */
  reapply(): Promise<void> {
    if (!this.#core.started) return Promise.resolve();
    this.#core.forget();
    return this.#core.reconcile();
  }

  // --- networking (firmware/net/box-network.ts, firmware/box/network-change.ts) ---

  /** A WAN/LAN change runs, its way back after a failure included (the connection assist waits meanwhile). */
  networkChanging(): boolean {
    return this.#netChange.changing;
  }

  /**
   * Changes the WAN and/or LAN through the state machine (firmware/box/network-change.ts). A WAN move away
   * from the upstream Wi-Fi (`onionbox net set --wan eth0` while on Wi-Fi) goes the way useCable goes: the
   * Wi-Fi's connection down first, otherwise its route metric keeps the default route and tor can never
   * leave by the new WAN.
   */
  changeNetwork(input: NetworkChangeInput): Promise<{ steps: string[] }> {
    const wifi = this.#config.get().network.upstreamWifi;
    const wanNow = this.#deps.network?.change?.current().wanInterface;
    if (
      wifi &&
      wifi.interface === wanNow &&
      input.wanInterface !== undefined &&
      input.wanInterface !== wanNow
    ) {
      return this.#offWifi(wifi.ssid, wanNow, input);
    }
    return this.#netChange.change(input);
  }

  /** The WAN's leased subnet, on every lease: one overlapping the LAN closes the box ('wan' fault). */
  wanLease(wanCidr: string | null): void {
    this.#netChange.wanLease(wanCidr);
  }

  networkStatus(): Promise<NetworkView> {
    return net.networkStatus(this.#config, this.#deps.network);
  }

  wifiScan(): Promise<WifiNetworkView[]> {
    return net.wifiScan(this.#deps.network);
  }

  /**
   * Joins; when the Wi-Fi client is not the WAN yet, the WAN then moves to it (changeNetwork). If that
   * move fails (tor cannot be reached over the new network: a captive portal, no internet behind it), the
   * network is forgotten again: its profile would otherwise carry the default route (firmware/net/render.ts,
   * WIFI_WAN_ROUTE_METRIC) away from the old WAN the box goes back to, now and at every boot.
   */
  async joinWifi(input: JoinWifiInput): Promise<void> {
    const network = this.#deps.network;
    const before = this.#config.get().network.upstreamWifi;
    await net.joinWifi(this.#config, network, input);
    const wifiIf = network?.wifiInterface ?? null;
    const system = network?.change;
    if (system && wifiIf !== null && system.current().wanInterface !== wifiIf) {
      try {
        await this.changeNetwork({ wanInterface: wifiIf });
      } catch (err) {
        await network
          ?.forget(input.ssid)
          .catch((e: unknown) =>
            this.#deps.log.error(
              { err: describeError(e) },
              'could not forget the Wi-Fi network after a failed join',
            ),
          );
        await this.#config.update((c) => ({ ...c, network: { ...c.network, upstreamWifi: before } }));
        this.#record(`Wi-Fi join undone: the WAN did not move to ${wifiIf} (${describeError(err)})`);
        throw err;
      }
    }
  }

  /**
   * The WAN from the upstream Wi-Fi back to the cable: the Wi-Fi's connection goes down first (its
   * profile's route metric would keep the default route: firmware/net/render.ts, WIFI_WAN_ROUTE_METRIC),
   * then the WAN moves (changeNetwork). Once tor works over the cable the Wi-Fi is forgotten; if the move
   * fails (no cable, nothing behind it), the Wi-Fi comes back up and the change's rollback reconnects tor
   * over it.
   */
  async useCable(): Promise<void> {
    const network = this.#deps.network;
    const system = network?.change;
    if (!network || !system) throw obxError('NET_UNAVAILABLE', 'this box cannot change its network');
    const wifi = this.#config.get().network.upstreamWifi;
    const wanNow = system.current().wanInterface;
    if (!wifi || wifi.interface !== wanNow) {
      throw obxError('NET_VALUE_INVALID', `the WAN is ${wanNow}, not a Wi-Fi network`, {
        details: { wan: 'The box does not use Wi-Fi for the internet now.' },
      });
    }
    const cable = await network.findCable();
    if (cable === null) {
      throw obxError(
        'NET_UNAVAILABLE',
        'this box has no cable port for the internet (NetworkManager manages none)',
      );
    }
    await this.#offWifi(wifi.ssid, wanNow, { wanInterface: cable });
  }

  /**
   * The WAN from the upstream Wi-Fi (ssid, on wanNow) to another port: the Wi-Fi down, the change, then
   * the Wi-Fi forgotten once tor works over the new WAN, or brought back up when the change failed (its
   * rollback reconnects tor over it).
   */
  async #offWifi(ssid: string, wanNow: string, input: NetworkChangeInput): Promise<{ steps: string[] }> {
    const network = this.#deps.network;
    if (!network) throw obxError('NET_UNAVAILABLE', 'this box cannot change its network');
    const to = input.wanInterface ?? wanNow;
    await network.deactivate(ssid);
    let result: { steps: string[] };
    try {
      result = await this.#netChange.change(input);
    } catch (err) {
      await network
        .activate(ssid)
        .catch((e: unknown) =>
          this.#deps.log.error(
            { err: describeError(e) },
            'could not bring the Wi-Fi back after a failed move',
          ),
        );
      this.#record(`moving the WAN to ${to} failed: the WAN stays on ${wanNow} (${describeError(err)})`);
      throw err;
    }
    await network
      .forget(ssid)
      .catch((e: unknown) =>
        this.#deps.log.error({ err: describeError(e) }, 'could not forget the Wi-Fi network'),
      );
    await this.#config.update((c) => ({ ...c, network: { ...c.network, upstreamWifi: null } }));
    this.#record(`WAN moved from the Wi-Fi to ${to}; the Wi-Fi network is forgotten`);
    return result;
  }

  setAccessPoint(input: AccessPointInput): Promise<void> {
    return net.setAccessPoint(this.#config, this.#deps.network, input);
  }

  // --- the pipeline ---

  #input(input: MachineInput): void {
    this.#core.input(input);
  }

  /** The kernel's table was flushed or changed by something else: fail closed now, tell the owner. */
  #tampered(reason: string): void {
    if (!this.#core.started) return;
    const at = new Date(this.#now()).toISOString().slice(0, 16).replace('T', ' ');
    this.#deps.log.error({ reason }, 'firewall ruleset changed outside the box: failing closed');
    this.#record(`firewall ruleset changed outside the box: ${reason}`);
    this.#view.alert(
      `At ${at} UTC something on the box other than onionboxd removed or changed its firewall rules ` +
        `(${reason.slice(0, 120)}). The box cut every device off at once and loaded its own rules again.`,
    );
    // Whatever the kernel holds now is not what was applied: the closed mode is loaded whole.
    this.#core.forget();
    this.#input({ type: 'fault', source: 'firewall', message: 'ruleset changed outside the box' });
  }

  #button(e: ButtonEvent): void {
    if (e.kind === 'press') {
      // Only the approved browser learns of the press: the OLED changes, no status event goes out.
      const outcome = this.#owner.press(e.at);
      this.#record(
        'approved' in outcome
          ? `claim button pressed: claim ${outcome.approved} approved`
          : `claim button pressed: ${outcome.refused === 'no claim' ? 'no claim pending' : `refused (${outcome.refused})`}`,
      );
      this.#render();
      return;
    }
    const inBootWindow =
      e.sinceBoot || e.at - this.#view.startedAt <= (this.#deps.bootResetWindowMs ?? 60_000);
    if (!inBootWindow) return;
    this.#deps.log.warn({}, 'claim button held at boot: clearing the password, the box is unclaimed again');
    this.#record('password reset by holding the claim button at boot');
    // The hold's own press approved nothing that survives: resetClaim() clears every pending claim.
    this.resetClaim().catch((err: unknown) =>
      this.#deps.log.error({ err: describeError(err) }, 'password reset failed'),
    );
  }

  #render(forceStatus = false): void {
    this.#view.render(forceStatus);
  }

  #record(line: string): void {
    this.#view.record(line);
  }
}
