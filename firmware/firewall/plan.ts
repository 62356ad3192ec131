/**
 * The firewall's choice of how to reach a wanted mode, as a pure plan: (what the applier knows the
 * kernel holds, the wanted model) -> the batches to try in order and what follows a success.
 * firmware/firewall/apply.ts executes the plan; test/unit/firewall-plan.test.ts covers every branch.
 *
 * - A mode switch (a small batch: chains flushed and refilled, relay set and counters kept) when the
 *   kernel holds our table as last verified (its generation marker known) and its relay set holds the
 *   wanted list. If the switch fails, the whole table is replaced (the fallback: someone else changed it).
 * - Otherwise the whole table at once (first apply, relay list changed, after a failed verification).
 * - Leaving `routing` (or the unknown state before the first apply) for any other mode deletes the LAN's
 *   conntrack entries that were redirected to tor; the rules already cut those flows, so this runs after
 *   the new table is verified, never before.
 */
import { relayKey } from './kernel-table.js';
import type { FirewallMode } from './params.js';
import type { RulesetModel } from './render.js';

/** What the applier knows of the kernel (all null before the first verified apply). */
export interface AppliedState {
  mode: FirewallMode | null;
  /** The generation marker of the last verified batch; null when unknown (first apply, failed verify). */
  generation: string | null;
  /** relayKey() of the list the kernel's relay set holds as verified; null when unknown. */
  relaysKey: string | null;
}

/** One batch: `switch` deletes the previous generation marker (proof the table is ours) and keeps the set. */
export type ApplyStep = { kind: 'switch'; previous: string } | { kind: 'full' };

export interface ApplyPlan {
  /** Tried in order; a later step runs only when the one before failed. The last one's error is final. */
  steps: ApplyStep[];
  /** Delete the LAN's conntrack entries redirected to tor, after the new table is verified. */
  flushLanConntrack: boolean;
}

export function planApply(current: AppliedState, wanted: RulesetModel): ApplyPlan {
  const canSwitch =
    current.mode !== null && current.generation !== null && current.relaysKey === relayKey(wanted.relays);
  const steps: ApplyStep[] =
    canSwitch && current.generation !== null
      ? [{ kind: 'switch', previous: current.generation }, { kind: 'full' }]
      : [{ kind: 'full' }];
  const leavingRouting = current.mode === 'routing' || current.mode === null;
  return { steps, flushLanConntrack: wanted.mode !== 'routing' && leavingRouting };
}
