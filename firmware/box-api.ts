/**
 * What the web page (and the CLI) may see and ask of the box. The web layer depends on this interface
 * only; onionboxd implements it by composing the config store, tor supervisor, firewall, state machine
 * and board. The web never touches the system directly.
 */

import type { ClaimProgress, ClaimTicket } from './claim.js';
import type { Config, TorConfig } from './config/schema.js';

export type { ClaimProgress, ClaimTicket } from './claim.js';

/** The box's settings as the page may read them: everything but the owner's secrets. */
export type PageSettings = Readonly<Omit<Config, 'web'> & { web: { readonly port: number } }>;

/** A claim request from the page: the new password and one proof of presence. */
export interface ClaimRequest {
  password: string;
  /** The code typed from the OLED. */
  code?: string | null | undefined;
  /** The browser's claim ticket (approved by a press of the claim button). */
  ticket?: string | null | undefined;
}

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
  /** Something the owner should know happened (e.g. the firewall rules were changed outside the box). */
  alert?: string | undefined;
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
  setSoftKill(engaged: boolean): Promise<void>;
  /** Validates, writes and applies tor settings; rolls back to the last working ones if tor fails. */
  applyTorSettings(settings: TorConfig): Promise<ApplyTorResult>;
  /** Sets the system clock from the owner's browser (ms since epoch); rejects absurd values. */
  setClock(epochMs: number): Promise<void>;
  /**
   * Starts a claim for one browser: a press of the claim button approves the newest claim started
   * before it (its id is shown on the OLED beside the code). Throws OBX_ERR_WEB_ALREADY_CLAIMED once
   * claimed.
   */
  startClaim(): ClaimTicket;
  /** What the holder of `ticket` may know about its own claim; nothing about anyone else's. */
  claimProgress(ticket: string | null | undefined): ClaimProgress;
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
  readonly sim?: SimBoardControls | undefined;
}
