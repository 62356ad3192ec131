/**
 * The first-boot claim's physical-presence ledger: pure logic with an injected clock and random source,
 * used by the owner's account (firmware/owner/owner.ts), which BoxController holds.
 *
 * Two ways to show presence:
 *   - a press of the claim button approves a claim only when it is the one claim pending and its short
 *     id has been on the OLED next to the code ("id K7P2") for PRESS_SHOWN_MS: the owner sees whose
 *     claim the press approves, and a LAN device cannot swap its own claim in just before the press.
 *     With more than one claim pending (or a brand-new one) the press approves nothing and the OLED says
 *     so. Only the browser holding the approved claim's ticket (a random secret kept in its cookie)
 *     learns of the approval: nobody else can tell that the button was pressed.
 *   - the one-time code on the OLED: CODE_LENGTH characters of the id alphabet (about 36 bits). Wrong
 *     codes are counted box-wide (whatever address they come from): after CODE_FREE_FAILURES each one
 *     doubles the wait before the next code is even checked, and after MAX_CODE_FAILURES the code is
 *     replaced. The code is also replaced after every claim and every reset.
 * At most MAX_PENDING_CLAIMS claims wait at once, box-wide; a new one at the cap is refused
 * (OBX_ERR_WEB_CLAIM_LIMIT), never by pushing out an older one.
 * The press that starts a reset hold does not count: the reset clears every pending claim.
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { obxError, RETRY_AFTER } from '../errors.js';

/** How long a pending claim waits for a press, and how long an approval stays valid. */
export const CLAIM_WINDOW_MS = 10 * 60_000;
/** Wrong codes (from anywhere) after which the code on the OLED is replaced. */
export const MAX_CODE_FAILURES = 10;
/** Pending claims at once, box-wide; a new claim at the cap is refused until one expires or ends. */
export const MAX_PENDING_CLAIMS = 16;
/** How long the one pending claim's id must have been on the OLED before a press approves it. */
export const PRESS_SHOWN_MS = 3000;
/** Characters in the one-time code (23^8: about 36 bits). */
export const CODE_LENGTH = 8;
/** Wrong codes (box-wide, since the last claim or reset) that cost no wait. */
export const CODE_FREE_FAILURES = 5;
/** The wait after the first wrong code past the free ones; it doubles with each further one. */
export const CODE_BASE_DELAY_MS = 1000;
/** The longest wait between two checked codes. */
export const CODE_MAX_DELAY_MS = 15 * 60_000;
/** How long the OLED says why a press approved nothing. */
export const PRESS_NOTICE_MS = 10_000;

/** Unambiguous on a 5x7 font: no 0/O, 1/I/L, 2/Z, 5/S, 8/B. */
export const ID_ALPHABET = 'ACDEFHJKMNPRTUVWXY34679';

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
  /** The id of the newest pending claim (the one a press could approve), null when none is pending. */
  id: string | null;
  approved: boolean;
  /** Why the last press approved nothing, for PRESS_NOTICE_MS after it (null otherwise). */
  notice: string | null;
}

/** What a press did: approved one claim, or nothing (and why). */
export type PressOutcome =
  | { approved: string }
  | { refused: 'no claim' | 'more than one claim' | 'claim id too new' };

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

function randomFromAlphabet(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ID_ALPHABET[randomInt(0, ID_ALPHABET.length)];
  return out;
}

export function newClaimCode(): string {
  return randomFromAlphabet(CODE_LENGTH);
}

function newId(): string {
  return randomFromAlphabet(4);
}

/** Uppercase, without spaces and dashes (codes are read off a small screen). */
function normalise(code: string): string {
  return code.replace(/[\s-]/g, '').toUpperCase();
}

export class ClaimLedger {
  #code: string;
  #failures = 0;
  /** Wrong codes since the last claim or reset (the box-wide wait grows with them). */
  #backoffFailures = 0;
  #lastFailureAt = 0;
  #pending: Pending[] = [];
  /** The id the OLED shows and since when. */
  #shown: { id: string | null; since: number } = { id: null, since: 0 };
  #notice: { text: string; until: number } | null = null;
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

  /**
   * A browser starts a claim; the returned id is what the OLED will show beside the code. At the cap
   * the claim is refused (OBX_ERR_WEB_CLAIM_LIMIT): an older claim is never pushed out.
   */
  start(): ClaimTicket {
    this.#expire();
    if (this.#pending.length >= MAX_PENDING_CLAIMS) {
      // The first slot frees when the oldest waiting claim expires (a pressed one may end sooner).
      const oldest = Math.min(...this.#pending.map((p) => p.approvedAt ?? p.startedAt));
      const wait = Math.max(1, Math.ceil((oldest + CLAIM_WINDOW_MS - this.#now()) / 1000));
      throw obxError('WEB_CLAIM_LIMIT', `${MAX_PENDING_CLAIMS} claims are waiting; type the code instead`, {
        details: { [RETRY_AFTER]: String(wait) },
      });
    }
    let id = newId();
    while (this.#pending.some((p) => p.id === id)) id = newId();
    const entry: Pending = {
      id,
      ticket: randomBytes(24).toString('base64url'),
      startedAt: this.#now(),
      approvedAt: null,
    };
    this.#pending.push(entry);
    this.#track();
    return { id: entry.id, ticket: entry.ticket };
  }

  /**
   * A press of the claim button at `at`: approves the one pending claim when its id has been on the
   * OLED for PRESS_SHOWN_MS by then; with none, several, or one shown too briefly it approves nothing
   * (the OLED says why for PRESS_NOTICE_MS).
   */
  press(at: number): PressOutcome {
    this.#expire();
    const [only, ...others] = this.#pending;
    let refused: 'no claim' | 'more than one claim' | 'claim id too new' | null = null;
    if (!only) refused = 'no claim';
    else if (others.length > 0) refused = 'more than one claim';
    else if (this.#shown.id !== only.id || at - this.#shown.since < PRESS_SHOWN_MS)
      refused = 'claim id too new';
    if (refused !== null || !only) {
      const why = refused ?? 'no claim';
      this.#notice =
        why === 'no claim' ? null : { text: `press refused: ${why}`, until: this.#now() + PRESS_NOTICE_MS };
      return { refused: why };
    }
    this.#notice = null;
    only.approvedAt = this.#now();
    return { approved: only.id };
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
    // Box-wide: a guesser cycling through source addresses waits like one address would.
    const wait = this.codeWaitMs();
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw obxError(
        'WEB_THROTTLED',
        `wrong codes from the LAN: the box checks the next one in ${seconds} s`,
        {
          details: { [RETRY_AFTER]: String(seconds) },
        },
      );
    }
    const want = normalise(this.#code);
    if (typed.length === want.length && timingSafeEqual(Buffer.from(typed), Buffer.from(want))) {
      return 'code';
    }
    this.#failures += 1;
    this.#backoffFailures += 1;
    this.#lastFailureAt = this.#now();
    if (this.#failures >= MAX_CODE_FAILURES) this.#replaceCode();
    return null;
  }

  /** How long until the box checks a typed code again (0: now). */
  codeWaitMs(): number {
    const n = this.#backoffFailures;
    if (n < CODE_FREE_FAILURES) return 0;
    const delay = Math.min(CODE_MAX_DELAY_MS, CODE_BASE_DELAY_MS * 2 ** Math.min(30, n - CODE_FREE_FAILURES));
    return Math.max(0, this.#lastFailureAt + delay - this.#now());
  }

  /** After a claim or a reset: a new code, no pending claims, no failures. */
  rotate(): void {
    this.#replaceCode();
    this.#backoffFailures = 0;
    this.#pending = [];
    this.#notice = null;
    this.#track();
  }

  display(): ClaimDisplay {
    this.#expire();
    const newest = this.#pending.at(-1);
    const notice = this.#notice !== null && this.#now() < this.#notice.until ? this.#notice.text : null;
    return { code: this.#code, id: newest?.id ?? null, approved: newest?.approvedAt != null, notice };
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
    this.#track();
  }

  /** Notes when the id on the OLED (the newest pending claim's) changed. */
  #track(): void {
    const id = this.#pending.at(-1)?.id ?? null;
    if (id !== this.#shown.id) this.#shown = { id, since: this.#now() };
  }
}
