/**
 * What the web page (and the CLI) may see and ask of the box. The web layer depends on this interface
 * only; onionboxd implements it by composing the config store, tor supervisor, firewall, state machine
 * and board. The web never touches the system directly.
 */

import type { AccessPointConfig, Config, NetworkConfig, TorConfig } from '../config/schema.js';
import type { FirewallMode } from '../firewall/params.js';
import type { LeakReport } from '../leak-test/judge.js';
import type { ClaimProgress, ClaimTicket } from '../owner/claim.js';
import type { UpdateStatus } from '../update/service.js';

export type { LeakCheck, LeakCheckId, LeakOutcome, LeakReport } from '../leak-test/judge.js';
export type { ClaimProgress, ClaimTicket } from '../owner/claim.js';

/**
 * The box's settings as the page may read them: everything but the owner's secrets (password hash,
 * session key) and the access point's passphrase (the page never shows it back).
 */
export type PageSettings = Readonly<
  Omit<Config, 'web' | 'network'> & {
    web: { readonly port: number };
    network: Omit<NetworkConfig, 'accessPoint'> & {
      accessPoint: Omit<AccessPointConfig, 'passphrase'> | null;
    };
  }
>;

/** A value, or a promise of it: what the box answers in-process, and what the page's client answers over
 * the page socket. */
export type Awaitable<T> = T | Promise<T>;

/** A claim request from the page: the new password and one proof of presence. */
export interface ClaimRequest {
  password: string;
  /** The code typed from the OLED. */
  code?: string | null | undefined;
  /** The browser's claim ticket (approved by a press of the claim button). */
  ticket?: string | null | undefined;
}

export type BoxStateName = 'booting' | 'connecting' | 'routing' | 'killed' | 'tor-down' | 'error';
/** The firewall's mode, declared once in firmware/firewall/params.ts (the name the page knows). */
export type FirewallModeName = FirewallMode;

export interface CircuitHop {
  fingerprint: string;
  nickname: string;
  /** Two-letter country code when known (GETINFO ip-to-country), else undefined. */
  country?: string | undefined;
  address?: string | undefined;
}

export interface CircuitInfo {
  id: string;
  status: string;
  purpose: string;
  hops: CircuitHop[];
}

export interface DropCounters {
  [drop: string]: { packets: number; bytes: number };
}

export interface BoxStatus {
  state: BoxStateName;
  /** One sentence for a household: what is happening and what to do. */
  explanation: string;
  firewallMode: FirewallModeName;
  tor: {
    phase: string;
    progress: number;
    summary: string;
    ready: boolean;
    lastWarnings: string[];
  };
  killSwitch: {
    /** Hardware switch position (true = engaged, devices cut off). Unreadable pin reads as engaged. */
    hardware: boolean;
    /** Engaged from the web page. */
    software: boolean;
  };
  uptimeSeconds: number;
  claimed: boolean;
  simulate: boolean;
  /** Time of this snapshot, ms since epoch. */
  at: number;
  /** Something the owner should know happened (e.g. the firewall rules were changed outside the box). */
  alert?: string | undefined;
  /** What the connection assist makes of tor's connecting (firmware/tor/assist.ts), once it runs. */
  assist?: AssistView;
  /** Where the built-in bridge lines come from and when they were refreshed (phase `builtin`), once it runs. */
  builtinBridges?: string;
}

/** The connection assist's state in words, for the page (no JavaScript needed) and the OLED. */
export interface AssistView {
  /** The assist's phase (firmware/tor/assist.ts AssistPhase). */
  phase: string;
  /** One sentence for a household: "Your internet provider seems to block Tor. Trying a bridge (2 of 4)..." */
  words: string;
  /** While a bridge setting is tried: which one, of how many; else null. */
  attempt: number | null;
  of: number | null;
  /** Steps of the try-list the box left out, each with why (Moat not built, snowflake not working). */
  skipped: string[];
  /** The owner's own bridges do not get through: the page may let the box try its own (assistConsent). */
  askOwner: boolean;
}

export interface ApplyTorResult {
  ok: boolean;
  /** When tor failed with the new settings and the last working ones were restored. */
  rolledBack: boolean;
  message: string;
}

/** The simulated board as the page uses it (in-process, or over the page socket). */
export interface SimBoardApi {
  setSwitch(engaged: boolean): Awaitable<void>;
  pressClaimButton(holdMs?: number): Awaitable<void>;
  leds(): Awaitable<Record<string, 'off' | 'on' | 'blink'>>;
  /** The OLED framebuffer as a PNG. */
  oledPng(): Awaitable<Buffer>;
}

/** Controls of the simulated board, present only with --simulate. */
export interface SimBoardControls extends SimBoardApi {
  setSwitch(engaged: boolean): void;
  pressClaimButton(holdMs?: number): void;
  leds(): Record<string, 'off' | 'on' | 'blink'>;
  /** The OLED framebuffer as a PNG. */
  oledPng(): Buffer;
}

export interface BoxApi extends BoxNetworkApi {
  status(): BoxStatus;
  /** Settings the page shows and validates its forms against (no password hash, no session key). */
  settings(): PageSettings;
  /** True once an owner has set a password. */
  isClaimed(): boolean;
  /** Subscribe to status changes (state, bootstrap progress, switch); returns an unsubscribe function. */
  onStatus(listener: (status: BoxStatus) => void): () => void;
  circuits(): Promise<CircuitInfo[]>;
  counters(): Promise<DropCounters>;
  newIdentity(): Promise<void>;
  /** Runs the leak self-test (firmware/leak-test/); a run under way is joined. */
  runLeakTest(): Promise<LeakReport>;
  /** The last leak self-test's report, or null when none has run since the box started. */
  lastLeakTest(): LeakReport | null;
  setSoftKill(engaged: boolean): Promise<void>;
  /** Validates, writes and applies tor settings; rolls back to the last working ones if tor fails. */
  applyTorSettings(settings: TorConfig): Promise<ApplyTorResult>;
  /** Sets the system clock from the owner's browser (ms since epoch); rejects absurd values. */
  setClock(epochMs: number): Promise<void>;
  /** "Tor is blocked here": the connection assist starts with bridges at once (stored; never the owner's lines). */
  setBlockedHere(blockedHere: boolean): Promise<void>;
  /**
   * The owner lets the connection assist try the box's bridges although the owner's own do not get
   * through (the assist never replaces them otherwise). OBX_ERR_BOX_BAD_INPUT when it is not asking.
   */
  assistConsent(): Promise<void>;
  /**
   * Starts a claim for one browser: a press of the claim button approves the newest claim started
   * before it (its id is shown on the OLED beside the code). Throws OBX_ERR_WEB_ALREADY_CLAIMED once
   * claimed.
   */
  startClaim(): Awaitable<ClaimTicket>;
  /** What the holder of `ticket` may know about its own claim; nothing about anyone else's. */
  claimProgress(ticket: string | null | undefined): Awaitable<ClaimProgress>;
  /**
   * Sets the first owner's password when the request shows presence (an approved ticket or the OLED
   * code; wrong codes count box-wide). 'no-presence' changes nothing. Throws
   * OBX_ERR_WEB_ALREADY_CLAIMED once claimed, OBX_ERR_WEB_FORM_INVALID for a password the policy refuses.
   */
  claim(request: ClaimRequest): Promise<'claimed' | 'no-presence'>;
  /** Checks the owner's password (false when unclaimed). */
  verifyPassword(password: string): Promise<boolean>;
  /** Replaces the owner's password when `current` is right; the old hash is gone from disk afterwards. */
  changePassword(current: string, next: string): Promise<'changed' | 'wrong-password'>;
  /**
   * Clears the password and rotates the session key (what holding the claim button at boot does): the
   * box is unclaimed again and every session ends; neither old secret stays on disk.
   */
  resetClaim(): Promise<void>;
  /** The key that signs the page's cookies (changes on reset). */
  sessionKey(): string;
  /** Recent log lines without secrets, for the diagnostics download. */
  diagnostics(): Promise<string>;
  readonly sim?: SimBoardApi | undefined;
}

/**
 * The updater as the page uses it (issue 20): in onionboxd the `update` phase's Updates
 * (firmware/phases/update.ts), in the page process the page socket's client.
 */
export interface PageUpdatesApi {
  status(): Awaitable<UpdateStatus>;
  /** Warnings for the status page: tor no longer recommended, an old image. */
  warnings(): Awaitable<string[]>;
  /** "Check now": resolves with the status after the check. */
  check(): Promise<UpdateStatus>;
  /** "Install now": downloads an available update if needed, installs it and restarts the box. */
  install(): Promise<UpdateStatus>;
  /** "install and restart at night" (night, the default) or "ask me first" (ask). */
  setPolicy(policy: UpdateStatus['policy']): Promise<void>;
}

/**
 * What the page may ask: the BoxApi but the claim-button reset (a physical act only). The page process's
 * client (web/lib/box-client.ts) implements exactly this over the page socket.
 */
export type PageApi = Omit<BoxApi, 'resetClaim'>;

// ---- networking (issue 12): what the page's "Internet connection and Wi-Fi for your devices" shows

/** The WAN as NetworkManager reports it. */
export interface WanView {
  interface: string;
  /** ethernet | wifi */
  type: string;
  /** connected, connecting, disconnected, unavailable, ... */
  state: string;
  /** A.B.C.D/N or null */
  address: string | null;
  gateway: string | null;
  /** The DHCP server that leased the address, when known (the box's WAN lease watcher). */
  dhcpServer?: string | null;
  /** Wi-Fi only */
  ssid: string | null;
  signal: number | null;
}

export interface WifiNetworkView {
  /** Display text of the SSID ('' for a hidden network). */
  ssid: string;
  ssidHex: string;
  signal: number;
  /** "WPA2", "WPA2 WPA3", "" (open) */
  security: string;
  channel: number;
  inUse: boolean;
}

export interface LanDeviceView {
  address: string;
  mac: string;
  /** The name the device sent, or '' */
  hostname: string;
  /** Lease expiry, ms since epoch (0: never) */
  expiresAt: number;
}

/** The access point's settings, without its passphrase (the page never shows it back). */
export interface AccessPointView {
  ssid: string;
  country: string;
  channel: number;
  security: 'wpa2' | 'wpa2-wpa3';
  /** Devices on the box's Wi-Fi cannot reach each other (false: local casting allowed). */
  isolateClients: boolean;
}

export interface NetworkView {
  wan: WanView | null;
  /** Why `wan` is null (e.g. NetworkManager is not running), in words. */
  wanProblem: string | null;
  /** null until the owner sets the access point up (there is no default passphrase). */
  accessPoint: AccessPointView | null;
  lan: { interface: string; address: string; prefix: number; devices: LanDeviceView[] };
  /** The access point and the Wi-Fi client share one radio (and so one channel). */
  sharedRadio: boolean;
  /** Set when the WAN's lease overlaps the LAN range (checked on every status): what to do, in words. */
  lanConflict: string | null;
}

export interface JoinWifiInput {
  ssid: string;
  /** null or '' for an open network */
  passphrase: string | null;
  hidden: boolean;
}

export interface AccessPointInput {
  ssid: string;
  /** '' keeps the current passphrase */
  passphrase: string;
  country: string;
  channel: number;
  security: 'wpa2' | 'wpa2-wpa3';
  /** false: devices on the box's Wi-Fi may reach each other (casting); true by default. */
  isolateClients?: boolean | undefined;
}

/** Networking commands; a box started without network control rejects them with OBX_ERR_NET_UNAVAILABLE. */
export interface BoxNetworkApi {
  networkStatus(): Promise<NetworkView>;
  /** Forces a rescan on the WAN Wi-Fi interface. */
  wifiScan(): Promise<WifiNetworkView[]>;
  /** Validates, joins (NetworkManager), then records the network in the config. */
  joinWifi(input: JoinWifiInput): Promise<void>;
  /**
   * Moves the WAN from the upstream Wi-Fi back to the cable port and forgets the Wi-Fi once tor works over
   * the cable; if it does not, the box stays on (and goes back to) the Wi-Fi.
   */
  useCable(): Promise<void>;
  /** Validates and stores the access point's settings, then applies them. */
  setAccessPoint(input: AccessPointInput): Promise<void>;
}
