/**
 * The owner's password forms: the claim (a first password) and the change on the settings page share one
 * check of a new password and its confirmation. The rules themselves live with the box
 * (firmware/lib/password.ts), which checks them again when it stores the hash.
 */
import { passwordProblem } from '../password.js';
import type { FieldErrors } from './fields.js';

/**
 * A new password and its confirmation, in the owner's words: too weak, the two differ, or (a change,
 * `current` given) the same as the current one. No errors: the box may take it.
 */
export function newPasswordErrors(password: string, confirm: string, current?: string): FieldErrors {
  const weak = passwordProblem(password);
  if (weak) return { password: weak };
  const change = current !== undefined;
  if (confirm !== password) return { confirm: `The two ${change ? 'new ' : ''}passwords differ.` };
  if (change && password === current) {
    return { password: 'The new password is the same as the current one.' };
  }
  return {};
}
