/**
 * The owner's account on the box: the claim (presence ledger, firmware/owner/claim.ts), the password hash and
 * the session key, all in the config store. BoxController wraps it (adds the OLED and the event log).
 * Every write of a secret forgets the
 * previous document (config.json.bak holds the new one too): an old hash or key never stays on disk.
 */
import { randomBytes } from 'node:crypto';
import type { ClaimRequest } from '../box/api.js';
import type { ConfigStore } from '../config/store.js';
import { obxError } from '../errors.js';
import { hashPassword, passwordProblem, verifyPassword } from '../lib/password.js';
import {
  type ClaimDisplay,
  ClaimLedger,
  type ClaimProgress,
  type ClaimTicket,
  type PresenceProof,
} from './claim.js';

export function newSessionKey(): string {
  return randomBytes(32).toString('hex');
}

export class OwnerAccount {
  readonly #config: ConfigStore;
  readonly #claims: ClaimLedger;

  constructor(config: ConfigStore, opts: { now?: () => number; claimCode?: string | undefined } = {}) {
    this.#config = config;
    this.#claims = new ClaimLedger({ now: opts.now, firstCode: opts.claimCode });
  }

  /** Gives a box without a session key one (the store loaded; before the page starts). */
  async ensureSessionKey(): Promise<void> {
    if (this.#config.get().web.sessionKey !== null) return;
    await this.#config.update((c) =>
      c.web.sessionKey === null ? { ...c, web: { ...c.web, sessionKey: newSessionKey() } } : c,
    );
  }

  isClaimed(): boolean {
    return this.#config.get().web.passwordHash !== null;
  }

  startClaim(): ClaimTicket {
    if (this.isClaimed()) throw obxError('WEB_ALREADY_CLAIMED');
    return this.#claims.start();
  }

  claimProgress(ticket: string | null | undefined): ClaimProgress {
    return this.isClaimed() ? { state: 'none', id: null } : this.#claims.progress(ticket);
  }

  /** A press of the claim button: approves one pending claim; returns its id (null: nothing pending). */
  press(at: number): string | null {
    return this.isClaimed() ? null : this.#claims.press(at);
  }

  /** What the OLED shows, null once claimed. */
  display(): ClaimDisplay | null {
    return this.isClaimed() ? null : this.#claims.display();
  }

  /** Wrong codes since the code was last replaced. */
  get codeFailures(): number {
    return this.#claims.failures;
  }

  async claim(request: ClaimRequest): Promise<PresenceProof | null> {
    if (this.isClaimed()) throw obxError('WEB_ALREADY_CLAIMED');
    const password = typeof request.password === 'string' ? request.password : '';
    const weak = passwordProblem(password);
    if (weak) throw obxError('WEB_FORM_INVALID', weak);
    const proof = this.#claims.check(request.ticket, request.code);
    if (proof === null) return null;
    const hash = await hashPassword(password);
    await this.#config.update(
      (c) => {
        if (c.web.passwordHash !== null) throw obxError('WEB_ALREADY_CLAIMED');
        return { ...c, web: { ...c.web, passwordHash: hash } };
      },
      { forgetPrevious: true },
    );
    this.#claims.rotate();
    return proof;
  }

  verifyPassword(password: string): Promise<boolean> {
    return verifyPassword(password, this.#config.get().web.passwordHash);
  }

  async changePassword(current: string, next: string): Promise<'changed' | 'wrong-password'> {
    const stored = this.#config.get().web.passwordHash;
    if (stored === null) throw obxError('WEB_NOT_CLAIMED');
    const weak = passwordProblem(next);
    if (weak) throw obxError('WEB_FORM_INVALID', weak);
    if (!(await verifyPassword(current, stored))) return 'wrong-password';
    const hash = await hashPassword(next);
    await this.#config.update(
      (c) => {
        // A reset (or another change) in between wins: this request was checked against the old hash.
        if (c.web.passwordHash !== stored)
          throw obxError('WEB_LOGIN_FAILED', 'the password changed meanwhile');
        return { ...c, web: { ...c.web, passwordHash: hash } };
      },
      { forgetPrevious: true },
    );
    return 'changed';
  }

  /** Unclaimed again: no password, a new session key, a new code, no pending claim. */
  async reset(): Promise<void> {
    this.#claims.rotate();
    await this.#config.update(
      (c) => ({ ...c, web: { ...c.web, passwordHash: null, sessionKey: newSessionKey() } }),
      { forgetPrevious: true },
    );
  }

  sessionKey(): string {
    const key = this.#config.get().web.sessionKey;
    if (key === null) throw obxError('INTERNAL', 'no session key yet (ensureSessionKey() first)');
    return key;
  }

  /** `text` with the password hash and the session key replaced by [redacted]. */
  redact(text: string): string {
    const { passwordHash, sessionKey } = this.#config.get().web;
    let out = text;
    for (const secret of [passwordHash, sessionKey]) if (secret) out = out.split(secret).join('[redacted]');
    return out;
  }
}
