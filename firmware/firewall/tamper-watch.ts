/**
 * When the Firewall (apply.ts) audits the kernel's table, and who hears that it changed: every
 * `everyMs` (30 s on the box), 250 ms after a mode switch (coalesced: the firewall has been quiet for
 * a moment), and whenever asked (a failed counters read, tests). A table found missing or changed
 * (Debian's nftables.service starts with `flush ruleset`; an admin's `nft` command) is logged and
 * reported to the onTamper listeners (BoxController fails closed at once); a throwing listener is
 * logged and the others still hear it. An audit that could not run (nft itself failing) is only
 * logged: the next apply reports that.
 */
import { describeError, isObxError } from '../errors.js';
import { Listeners } from '../lib/listeners.js';
import type { Log } from '../log.js';

/** How long after a mode switch its rule-level audit runs. */
const AFTER_SWITCH_MS = 250;

export class TamperWatch {
  /** Runs the audit; rejects with OBX_ERR_FIREWALL_VERIFY_FAILED when the table differs. */
  readonly #audit: () => Promise<void>;
  /** False while there is nothing to audit (before the first apply, after stop). */
  readonly #ready: () => boolean;
  readonly #log: Log | undefined;
  readonly #listeners = new Listeners<string>((err) => {
    this.#log?.error({ err: describeError(err) }, 'firewall tamper listener failed');
  });
  #periodic: NodeJS.Timeout | null = null;
  #afterSwitch: NodeJS.Timeout | null = null;

  constructor(opts: { audit: () => Promise<void>; ready: () => boolean; log?: Log | undefined }) {
    this.#audit = opts.audit;
    this.#ready = opts.ready;
    this.#log = opts.log;
  }

  /** Audits every everyMs (0: never by itself). */
  start(everyMs: number): void {
    if (everyMs <= 0 || this.#periodic) return;
    this.#periodic = setInterval(() => void this.check('periodic audit'), everyMs);
    this.#periodic.unref();
  }

  stop(): void {
    if (this.#periodic) clearInterval(this.#periodic);
    if (this.#afterSwitch) clearTimeout(this.#afterSwitch);
    this.#periodic = this.#afterSwitch = null;
  }

  onTamper(listener: (reason: string) => void): () => void {
    return this.#listeners.add(listener);
  }

  /** Audits now. False when the table is missing or differs (then the listeners have heard why). */
  async check(trigger = 'audit'): Promise<boolean> {
    if (!this.#ready()) return true;
    try {
      await this.#audit();
      return true;
    } catch (e) {
      if (!isObxError(e, 'FIREWALL_VERIFY_FAILED')) {
        this.#log?.warn({ trigger, err: describeError(e) }, 'firewall audit could not run');
        return true;
      }
      const reason = e.message.replace(/^[^:]*: /, '');
      this.#log?.error({ trigger, reason }, 'firewall ruleset changed outside onionboxd');
      this.#listeners.emit(reason);
      return false;
    }
  }

  /** After a mode switch: audit once the firewall has been quiet for AFTER_SWITCH_MS. */
  soon(): void {
    if (this.#afterSwitch) clearTimeout(this.#afterSwitch);
    this.#afterSwitch = setTimeout(() => {
      this.#afterSwitch = null;
      void this.check('after a mode switch'); // a difference is reported; the next apply replaces all
    }, AFTER_SWITCH_MS);
    this.#afterSwitch.unref();
  }
}
