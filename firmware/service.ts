/** Constructors only set fields; start() and stop() own every side effect (zigbee2mqtt's rule). */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}
