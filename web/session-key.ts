/** The session-cookie signing key lives in the config store (web.sessionKey, mode 0600). */
import { randomBytes } from 'node:crypto';
import type { ConfigStore } from '../firmware/config/store.js';

export async function ensureSessionKey(config: ConfigStore): Promise<string> {
  const existing = config.get().web.sessionKey;
  if (existing !== null) return existing;
  const key = randomBytes(32).toString('hex');
  const next = await config.update((c) =>
    c.web.sessionKey === null ? { ...c, web: { ...c.web, sessionKey: key } } : structuredClone(c),
  );
  return next.web.sessionKey ?? key;
}
