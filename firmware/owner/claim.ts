/**
 * The first-boot claim's physical-presence ledger: pure logic with an injected clock and random source,
 * used by the owner's account (firmware/owner/owner.ts), which BoxController holds.
 *
 * Two ways to show presence:
 *   - a press of the claim button approves exactly one pending claim: the newest one a browser started
 *     before the press. Its short id is shown on the OLED next to the code ("id K7P2"), so the owner
 *     sees whose claim the press approves. Only the browser holding that claim's ticket (a random
 *     secret kept in its cookie) learns of the approval: nobody else can tell that the button was pressed.
 *   - the one-time code on the OLED. Wrong codes are counted box-wide (whatever address they come
 *     from); after MAX_CODE_FAILURES the code is replaced. The code is also replaced after every claim
 *     and every reset.
 * The press that starts a reset hold does not count: the reset clears every pending claim.
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** How long a pending claim waits for a press, and how long an approval stays valid. */
export const CLAIM_WINDOW_MS = 10 * 60_000;
/** Wrong codes (from anywhere) after which the code on the OLED is replaced. */
export const MAX_CODE_FAILURES = 10;
/** Pending claims kept at once (the oldest goes first). */
export const MAX_PENDING_CLAIMS = 16;

/** Unambiguous on a 5x7 font: no 0/O, 1/I/L, 2/Z, 5/S, 8/B. */
const ID_ALPHABET = 'ACDEFHJKMNPRTUVWXY34679';

export interface ClaimTicket {
  /** Short id shown on the page and, while it is the newest pending claim, on the OLED. */
  id: string;
  /** The secret the browser keeps (in a signed cookie); never shown. */
  ticket: string;
}

export interface ClaimProgress {
  state: 'none' | 'waiting' | 'approved';
  id: string | null;
}

/** What the OLED shows while the box is unclaimed. */
export interface ClaimDisplay {
  code: string;
  /** The id a press would approve now (or the one it approved), null when no claim is pending. */
  id: string | null;
  approved: boolean;
}

export type PresenceProof = 'press' | 'code';

interface Pending {
  id: string;
  ticket: string;
  startedAt: number;
  approvedAt: number | null;
}

export interface ClaimLedgerOptions {
  now?: () => number;
  /** The first code (tests); later ones are random. */
  firstCode?: string;
  newCode?: () => string;
}

export function newClaimCode(): string {
  return String(randomInt(0, 1_000_000)).padStart(6, '0');
}

function newId(): string {
  let id = '';
  for (let i = 0; i < 4; i++) id += ID_ALPHABET[randomInt(0, ID_ALPHABET.length)];
  return id;
}

/** Uppercase, without spaces and dashes (codes are read off a small screen). */
function normalise(code: string): string {
  return code.replace(/[\s-]/g, '').toUpperCase();
}

export class ClaimLedger {
  #code: string;
  #failures = 0;
  #pending: Pending[] = [];
  readonly #now: () => number;
  readonly #newCode: () => string;

  constructor(opts: ClaimLedgerOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#newCode = opts.newCode ?? newClaimCode;
    this.#code = opts.firstCode ?? this.#newCode();
  }

  /** The code the OLED shows now. */
  get code(): string {
    return this.#code;
  }

  /** Wrong codes since the code was last replaced. */
  get failures(): number {
    return this.#failures;
  }

  /** A browser starts a claim; the returned id is what the OLED will show beside the code. */
  start(): ClaimTicket {
    this.#expire();
    let id = newId();
    while (this.#pending.some((p) => p.id === id)) id = newId();
    const entry: Pending = {
      id,
      ticket: randomBytes(24).toString('base64url'),
      startedAt: this.#now(),
      approvedAt: null,
    };
    this.#pending.push(entry);
    while (this.#pending.length > MAX_PENDING_CLAIMS) this.#pending.shift();
    return { id: entry.id, ticket: entry.ticket };
  }

  /**
   * A press of the claim button at `at`: approves the newest pending claim started at or before it
   * (any earlier approval ends: one press, one claim). Returns the approved id, or null.
   */
  press(at: number): string | null {
    this.#expire();
    let chosen: Pending | undefined;
    for (const p of this.#pending) if (p.startedAt <= at) chosen = p;
    if (!chosen) return null;
    for (const p of this.#pending) p.approvedAt = null;
    chosen.approvedAt = this.#now();
    return chosen.id;
  }

  /** What the holder of `ticket` may know about its own claim (and nothing about anyone else's). */
  progress(ticket: string | null | undefined): ClaimProgress {
    const p = this.#find(ticket);
    if (!p) return { state: 'none', id: null };
    return { state: p.approvedAt === null ? 'waiting' : 'approved', id: p.id };
  }

  /**
   * Whether this request shows presence: the ticket's claim was approved by a press, or `code` is the
   * code on the OLED. A wrong non-empty code counts as a failure box-wide.
   */
  check(ticket: string | null | undefined, code: string | null | undefined): PresenceProof | null {
    if (this.#find(ticket)?.approvedAt != null) return 'press';
    const typed = normalise(code ?? '');
    if (typed.length === 0) return null;
    const want = normalise(this.#code);
    if (typed.length === want.length && timingSafeEqual(Buffer.from(typed), Buffer.from(want))) {
      return 'code';
    }
    this.#failures += 1;
    if (this.#failures >= MAX_CODE_FAILURES) this.#replaceCode();
    return null;
  }

  /** After a claim or a reset: a new code, no pending claims, no failures. */
  rotate(): void {
    this.#replaceCode();
    this.#pending = [];
  }

  display(): ClaimDisplay {
    this.#expire();
    const newest = this.#pending.at(-1);
    return { code: this.#code, id: newest?.id ?? null, approved: newest?.approvedAt != null };
  }

  #replaceCode(): void {
    let next = this.#newCode();
    for (let i = 0; i < 5 && next === this.#code; i++) next = this.#newCode();
    this.#code = next;
    this.#failures = 0;
  }

  #find(ticket: string | null | undefined): Pending | undefined {
    if (typeof ticket !== 'string' || ticket.length === 0) return undefined;
    this.#expire();
    return this.#pending.find((p) => p.ticket === ticket);
  }

  #expire(): void {
    const now = this.#now();
    this.#pending = this.#pending.filter((p) =>
      p.approvedAt === null ? now - p.startedAt <= CLAIM_WINDOW_MS : now - p.approvedAt <= CLAIM_WINDOW_MS,
    );
  }
}
