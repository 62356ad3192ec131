/**
 * systemd readiness and watchdog. Node cannot send on a Unix datagram socket by itself, so this calls
 * systemd's own `systemd-notify` (argument array, no shell; the unit sets NotifyAccess=all). Without
 * NOTIFY_SOCKET (simulator, tests, not under systemd) every call is a no-op.
 */
import { exec } from './exec.js';

export interface SdNotifier {
  ready(status?: string): Promise<void>;
  status(text: string): Promise<void>;
  stopping(): Promise<void>;
  /** Starts the watchdog keep-alive when the unit has WatchdogSec (WATCHDOG_USEC); returns a stop function. */
  startWatchdog(): () => void;
}

const SAFE_STATUS = /^[\x20-\x7e]{0,200}$/;

export function createSdNotifier(
  env: NodeJS.ProcessEnv = process.env,
  binary = 'systemd-notify',
): SdNotifier {
  const enabled = typeof env.NOTIFY_SOCKET === 'string' && env.NOTIFY_SOCKET !== '';
  const send = (assignments: string[]): Promise<void> =>
    enabled
      ? // --pid: the message is about onionboxd, not the short-lived helper process; a failure is ignored
        exec(binary, [`--pid=${process.pid}`, ...assignments], { env, timeoutMs: 5000 }).then(() => undefined)
      : Promise.resolve();
  const statusLine = (text: string) => `STATUS=${SAFE_STATUS.test(text) ? text : 'status unavailable'}`;
  return {
    ready: (status) => send(['READY=1', ...(status ? [statusLine(status)] : [])]),
    status: (text) => send([statusLine(text)]),
    stopping: () => send(['STOPPING=1']),
    startWatchdog() {
      const usec = Number(env.WATCHDOG_USEC);
      if (!enabled || !Number.isFinite(usec) || usec <= 0) return () => undefined;
      const timer = setInterval(() => void send(['WATCHDOG=1']), Math.max(1000, usec / 1000 / 2));
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}
