/** Constructors only set fields; start() and stop() own every side effect (zigbee2mqtt's rule). */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** One of onionboxd's start phases (firmware/daemon.ts): start() returns what later phases are handed. */
export interface Phase<T> {
  readonly name: string;
  start(): Promise<T>;
  stop(): Promise<void>;
}
