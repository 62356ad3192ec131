/**
 * What the web page (and the CLI) may see and ask of the box. The web layer depends on this interface
 * only; onionboxd implements it by composing the config store, tor supervisor, firewall, state machine
 * and board. The web never touches the system directly.
 */

import type { TorConfig } from './config/schema.js';
import type { ConfigStore } from './config/store.js';

export type BoxStateName = 'booting' | 'connecting' | 'routing' | 'killed' | 'tor-down' | 'error';
export type FirewallModeName = 'lockdown' | 'connecting' | 'routing' | 'killed';

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
}

export interface ApplyTorResult {
  ok: boolean;
  /** When tor failed with the new settings and the last working ones were restored. */
  rolledBack: boolean;
  message: string;
}

/** Controls of the simulated board, present only with --simulate. */
export interface SimBoardControls {
  setSwitch(engaged: boolean): void;
  pressClaimButton(holdMs?: number): void;
  leds(): Record<string, 'off' | 'on' | 'blink'>;
  /** The OLED framebuffer as a PNG. */
  oledPng(): Buffer;
}

export interface BoxApi {
  readonly config: ConfigStore;
  status(): BoxStatus;
  /** Subscribe to status changes (state, bootstrap progress, switch); returns an unsubscribe function. */
  onStatus(listener: (status: BoxStatus) => void): () => void;
  circuits(): Promise<CircuitInfo[]>;
  counters(): Promise<DropCounters>;
  newIdentity(): Promise<void>;
  setSoftKill(engaged: boolean): Promise<void>;
  /** Validates, writes and applies tor settings; rolls back to the last working ones if tor fails. */
  applyTorSettings(settings: TorConfig): Promise<ApplyTorResult>;
  /** Sets the system clock from the owner's browser (ms since epoch); rejects absurd values. */
  setClock(epochMs: number): Promise<void>;
  /**
   * Physical presence for the first-boot claim: resolves true once the claim button was pressed within
   * the window, or when `code` matches the one-time code shown on the OLED.
   */
  claimPresence(): { code: string; buttonPressedAt: number | null };
  /** Recent log lines without secrets, for the diagnostics download. */
  diagnostics(): Promise<string>;
  readonly sim?: SimBoardControls | undefined;
}
