/**
 * The box as the page process (web/main.ts) sees it: the PageApi over onionboxd's page socket
 * (firmware/control/web-commands.ts). The getters the page calls on every request (status, settings,
 * isClaimed, sessionKey, lastLeakTest) answer from a Mirror that onionboxd keeps current over one
 * long-lived `web.watch` connection and with every command's reply; every other method is one request.
 * Every reply is checked against the command's schema (firmware/control/web-protocol.ts) before the page
 * sees it, and a refused command throws the same ObxError (code, message, field details) onionboxd threw,
 * so the page shows the same words as when it ran inside onionboxd. `updates` is the updater (the page's
 * Updates section) when the Mirror says onionboxd runs one, as `sim` is the simulated board.
 *
 * When onionboxd goes away the watch reconnects every second; meanwhile status() says so (state `error`)
 * and commands fail with OBX_ERR_DAEMON_NOT_RUNNING.
 */
import { createConnection, type Socket } from 'node:net';
import { type TSchema, Type } from '@sinclair/typebox';
import type {
  AccessPointInput,
  ApplyTorResult,
  BoxStatus,
  CircuitInfo,
  ClaimProgress,
  ClaimRequest,
  ClaimTicket,
  DropCounters,
  JoinWifiInput,
  LeakReport,
  NetworkView,
  PageApi,
  PageSettings,
  PageUpdatesApi,
  SimBoardApi,
  WifiNetworkView,
} from '../../firmware/box/api.js';
import type { TorConfig } from '../../firmware/config/schema.js';
import { ipcCall } from '../../firmware/control/socket.js';
import {
  checked,
  type Mirror,
  MirrorSchema,
  replyOf,
  WATCH_COMMAND,
  type WebArgs,
  type WebCommand,
  type WebResult,
} from '../../firmware/control/web-protocol.js';
import { Errors, ObxError, obxError } from '../../firmware/errors.js';
import type { UpdateStatus } from '../../firmware/update/service.js';

/** The reply's envelope (firmware/control/socket.ts IpcReply). */
const EnvelopeSchema = Type.Union([
  Type.Object({ ok: Type.Literal(true), result: Type.Unknown() }, { additionalProperties: false }),
  Type.Object(
    {
      ok: Type.Literal(false),
      code: Type.String({ maxLength: 64 }),
      error: Type.String({ maxLength: 8192 }),
      message: Type.Optional(Type.String({ maxLength: 8192 })),
      details: Type.Optional(Type.Record(Type.String({ maxLength: 256 }), Type.String({ maxLength: 4096 }))),
    },
    { additionalProperties: false },
  ),
]);

/** Commands that wait for tor, NetworkManager or the leak test's probes. */
const SLOW: ReadonlySet<WebCommand> = new Set([
  'web.runLeakTest',
  'web.applyTorSettings',
  'web.joinWifi',
  'web.useCable',
  'web.setAccessPoint',
  'web.wifiScan',
  'web.newIdentity',
]);
const SLOW_MS = 180_000;
const QUICK_MS = 15_000;
/**
 * The updater's long commands wait as long as the CLI's (`onionbox update check|install`): a check goes
 * through tor to two sources; an install downloads the bundle through tor first.
 */
const LONG: Partial<Record<WebCommand, number>> = {
  'web.update.check': 10 * 60_000,
  'web.update.install': 60 * 60_000,
};
/** A Mirror line longer than this ends the watch connection (it reconnects). */
const MAX_LINE = 4 * 1024 * 1024;

export interface BoxClientOptions {
  /** Delay before the watch reconnects (ms, default 1000). */
  reconnectMs?: number;
  /** How long start() waits for the first Mirror (ms, default 30000). */
  startTimeoutMs?: number;
}

/** The ObxError a refused command's reply stands for (OBX_ERR_INTERNAL keeps no foreign words). */
export function errorFromReply(reply: {
  code: string;
  message?: string | undefined;
  details?: Record<string, string> | undefined;
}): ObxError {
  const spec = Object.values(Errors).find((s) => s.code === reply.code);
  if (!spec || spec.code === Errors.INTERNAL.code) return obxError('INTERNAL');
  return new ObxError({ ...spec, message: reply.message ?? spec.message }, undefined, {
    details: reply.details ?? {},
  });
}

export class BoxClient implements PageApi {
  readonly #path: string;
  readonly #opts: Required<BoxClientOptions>;
  readonly #listeners = new Set<(status: BoxStatus) => void>();
  readonly #changed = new Set<() => void>();
  #mirror: Mirror | null = null;
  #watch: Socket | null = null;
  #connected = false;
  #stopped = false;
  #retry: NodeJS.Timeout | null = null;
  #sim: SimBoardApi | undefined;
  #updates: PageUpdatesApi | undefined;

  constructor(path: string, opts: BoxClientOptions = {}) {
    this.#path = path;
    this.#opts = { reconnectMs: opts.reconnectMs ?? 1000, startTimeoutMs: opts.startTimeoutMs ?? 30_000 };
  }

  /** Opens the watch and resolves with the first Mirror (rejects when none comes in time). */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => {
        reject(obxError('DAEMON_NOT_RUNNING', `no answer on ${this.#path}`));
      }, this.#opts.startTimeoutMs);
      const first = (): void => {
        clearTimeout(deadline);
        this.#sim = this.#mirror?.sim ? this.#simControls() : undefined;
        this.#updates = this.#mirror?.updates ? this.#updateCommands() : undefined;
        resolve();
      };
      this.#connect(first);
    });
  }

  stop(): void {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#watch?.destroy();
    this.#watch = null;
  }

  /** True while the watch is connected. */
  get connected(): boolean {
    return this.#connected;
  }

  get sim(): SimBoardApi | undefined {
    return this.#sim;
  }

  /** The updater, when onionboxd runs one (its first Mirror said so). */
  get updates(): PageUpdatesApi | undefined {
    return this.#updates;
  }

  // ---- the Mirror

  status(): BoxStatus {
    const status = this.#m().status as BoxStatus;
    if (this.#connected) return status;
    return {
      ...status,
      state: 'error',
      explanation: "The box's firmware (onionboxd) is not answering; this page reconnects on its own.",
    };
  }

  settings(): PageSettings {
    return this.#m().settings;
  }

  isClaimed(): boolean {
    return this.#m().claimed;
  }

  sessionKey(): string {
    return this.#m().sessionKey;
  }

  lastLeakTest(): LeakReport | null {
    return this.#m().lastLeakTest;
  }

  onStatus(listener: (status: BoxStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Called after every new Mirror (status or settings changed); returns the unsubscribe. */
  onMirror(listener: () => void): () => void {
    this.#changed.add(listener);
    return () => this.#changed.delete(listener);
  }

  // ---- commands

  circuits(): Promise<CircuitInfo[]> {
    return this.#call('web.circuits', {});
  }

  counters(): Promise<DropCounters> {
    return this.#call('web.counters', {});
  }

  async newIdentity(): Promise<void> {
    await this.#call('web.newIdentity', {});
  }

  runLeakTest(): Promise<LeakReport> {
    return this.#call('web.runLeakTest', {});
  }

  async setSoftKill(engaged: boolean): Promise<void> {
    await this.#call('web.setSoftKill', { engaged });
  }

  applyTorSettings(settings: TorConfig): Promise<ApplyTorResult> {
    return this.#call('web.applyTorSettings', { settings });
  }

  async setClock(epochMs: number): Promise<void> {
    await this.#call('web.setClock', { epochMs });
  }

  async setBlockedHere(blockedHere: boolean): Promise<void> {
    await this.#call('web.setBlockedHere', { blockedHere });
  }

  async assistConsent(): Promise<void> {
    await this.#call('web.assistConsent', {});
  }

  startClaim(): Promise<ClaimTicket> {
    return this.#call('web.startClaim', {});
  }

  claimProgress(ticket: string | null | undefined): Promise<ClaimProgress> {
    return this.#call('web.claimProgress', { ticket: ticket ?? null });
  }

  claim(request: ClaimRequest): Promise<'claimed' | 'no-presence'> {
    return this.#call('web.claim', {
      password: request.password,
      code: request.code ?? null,
      ticket: request.ticket ?? null,
    });
  }

  verifyPassword(password: string): Promise<boolean> {
    return this.#call('web.verifyPassword', { password });
  }

  changePassword(current: string, next: string): Promise<'changed' | 'wrong-password'> {
    return this.#call('web.changePassword', { current, next });
  }

  diagnostics(): Promise<string> {
    return this.#call('web.diagnostics', {});
  }

  networkStatus(): Promise<NetworkView> {
    return this.#call('web.networkStatus', {});
  }

  wifiScan(): Promise<WifiNetworkView[]> {
    return this.#call('web.wifiScan', {});
  }

  async joinWifi(input: JoinWifiInput): Promise<void> {
    await this.#call('web.joinWifi', {
      ssid: input.ssid,
      passphrase: input.passphrase,
      hidden: input.hidden,
    });
  }

  async useCable(): Promise<void> {
    await this.#call('web.useCable', {});
  }

  async setAccessPoint(input: AccessPointInput): Promise<void> {
    const { isolateClients, ...rest } = input;
    await this.#call('web.setAccessPoint', isolateClients === undefined ? rest : { ...rest, isolateClients });
  }

  #simControls(): SimBoardApi {
    return {
      setSwitch: async (engaged) => {
        await this.#call('web.sim.switch', { engaged });
      },
      pressClaimButton: async (holdMs = 0) => {
        await this.#call('web.sim.press', { holdMs });
      },
      leds: () => this.#call('web.sim.leds', {}),
      oledPng: async () => Buffer.from(await this.#call('web.sim.oled', {}), 'base64'),
    };
  }

  #updateCommands(): PageUpdatesApi {
    return {
      status: (): Promise<UpdateStatus> => this.#call('web.update.status', {}),
      warnings: () => this.#call('web.update.warnings', {}),
      check: (): Promise<UpdateStatus> => this.#call('web.update.check', {}),
      install: (): Promise<UpdateStatus> => this.#call('web.update.install', {}),
      setPolicy: async (policy) => {
        await this.#call('web.update.setPolicy', { policy });
      },
    };
  }

  #m(): Mirror {
    if (!this.#mirror) throw obxError('DAEMON_NOT_RUNNING', 'the page has not heard from onionboxd yet');
    return this.#mirror;
  }

  #take(mirror: Mirror): void {
    const before = this.#mirror;
    this.#mirror = mirror;
    for (const listener of this.#changed) listener();
    if (before && JSON.stringify(before.status) === JSON.stringify(mirror.status)) return;
    for (const listener of this.#listeners) {
      try {
        listener(mirror.status as BoxStatus);
      } catch {
        // a listener's failure is its own (the SSE stream ends itself)
      }
    }
  }

  async #call<C extends WebCommand>(cmd: C, args: WebArgs<C>): Promise<WebResult<C>> {
    let raw: unknown;
    try {
      raw = await ipcCall(
        this.#path,
        cmd,
        args as Record<string, unknown>,
        LONG[cmd] ?? (SLOW.has(cmd) ? SLOW_MS : QUICK_MS),
      );
    } catch (err) {
      throw obxError('DAEMON_NOT_RUNNING', err instanceof Error ? err.message : undefined);
    }
    const envelope = checked(EnvelopeSchema, raw, `${cmd} reply`, 'INTERNAL');
    if (!envelope.ok) throw errorFromReply(envelope);
    const reply = checked(replyOf(cmd) as TSchema, envelope.result, `${cmd} reply`, 'INTERNAL') as {
      value: WebResult<C>;
      mirror: Mirror;
    };
    this.#take(reply.mirror);
    return reply.value;
  }

  #connect(onFirst?: () => void): void {
    if (this.#stopped) return;
    const sock = createConnection(this.#path);
    this.#watch = sock;
    let buf = '';
    let first = onFirst;
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify({ cmd: WATCH_COMMAND, args: {} })}\n`));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const envelope = checked(EnvelopeSchema, JSON.parse(line), 'web.watch', 'INTERNAL');
          if (!envelope.ok) throw errorFromReply(envelope);
          this.#take(checked(MirrorSchema, envelope.result, 'web.watch', 'INTERNAL'));
        } catch {
          sock.destroy();
          return;
        }
        this.#connected = true;
        first?.();
        first = undefined;
      }
      if (buf.length > MAX_LINE) sock.destroy();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (this.#watch === sock) this.#watch = null;
      const was = this.#connected;
      this.#connected = false;
      if (was && this.#mirror) this.#take({ ...this.#mirror, status: this.status() });
      if (this.#stopped) return;
      this.#retry = setTimeout(() => this.#connect(first), this.#opts.reconnectMs);
      this.#retry.unref();
    });
  }
}
