/**
 * systemd readiness and watchdog, sent by onionboxd's main process itself: a Unix datagram to
 * NOTIFY_SOCKET through `unix-dgram` (a small native module: Node has no AF_UNIX datagram socket). The unit
 * says NotifyAccess=main, so systemd takes READY=1 and WATCHDOG=1 only from the main PID: a child (tor,
 * dnsmasq, hostapd, or an exploited parser's shell) cannot keep a stopped daemon "alive" (issue 23).
 * Without NOTIFY_SOCKET (simulator, tests, not under systemd) every call is a no-op.
 */
import { createRequire } from 'node:module';

export interface SdNotifier {
  ready(status?: string): Promise<void>;
  status(text: string): Promise<void>;
  stopping(): Promise<void>;
  /** Starts the watchdog keep-alive when the unit has WatchdogSec (WATCHDOG_USEC); returns a stop function. */
  startWatchdog(): () => void;
}

/** Closes the notification socket (it keeps the event loop alive while open); a later send reopens it. */
export function closeNotifySocket(): void {
  socket?.close();
  socket = null;
}

/** Sends one notification datagram (newline-separated assignments) to the socket's path. */
export type NotifySend = (socketPath: string, message: string) => Promise<void>;

/** The part of unix-dgram's socket this file uses (the package has no types). */
interface DgramSocket {
  close(): void;
  send(buf: Buffer, offset: number, length: number, path: string, cb: (err?: Error) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
}
interface UnixDgram {
  createSocket(type: 'unix_dgram'): DgramSocket;
}

let socket: DgramSocket | null = null;

/** unix-dgram's sendto from this process; loaded on first use (only under systemd). */
export const sendDatagram: NotifySend = (socketPath, message) =>
  new Promise((resolve) => {
    if (!socket) {
      const mod = createRequire(import.meta.url)('unix-dgram') as UnixDgram;
      socket = mod.createSocket('unix_dgram');
      socket.on('error', () => undefined); // a lost notification is retried by the next one
    }
    const buf = Buffer.from(message, 'utf8');
    // a failure is ignored: systemd's watchdog is the judge of a daemon that cannot notify
    socket.send(buf, 0, buf.length, socketPath, () => resolve());
  });

const SAFE_STATUS = /^[\x20-\x7e]{0,200}$/;

export function createSdNotifier(
  env: NodeJS.ProcessEnv = process.env,
  sendOne: NotifySend = sendDatagram,
): SdNotifier {
  const path = env.NOTIFY_SOCKET ?? '';
  // systemd gives services a path (/run/systemd/notify); an abstract socket (@...) is not supported here
  const enabled = path.startsWith('/');
  const send = (assignments: string[]): Promise<void> =>
    enabled ? sendOne(path, assignments.join('\n')) : Promise.resolve();
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
