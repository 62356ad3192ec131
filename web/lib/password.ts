/** The password rules and scrypt hashing live with the box (firmware/lib/password.ts); the page shows them. */
export {
  hashPassword,
  MAX_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  passwordProblem,
  verifyPassword,
} from '../../firmware/lib/password.js';
