/**
 * The page's commands on the page socket (issue 23: the page runs in its own process, onionbox-web, and
 * reaches the box only through these): each command's arguments and its reply, as TypeBox schemas. The
 * one table, WEB_COMMANDS, is read by both ends: onionboxd checks every request's arguments against it
 * before anything runs (firmware/control/web-commands.ts), the page's client checks every reply against it
 * before the page sees it (web/lib/box-client.ts). `web.watch` is the one stream: a Mirror each time the
 * box's status changes; every other reply carries the Mirror too, so what the page reads back after a
 * command (settings after a save, claimed after a claim) is never older than the command.
 *
 * The updater's commands (`web.update.*`, issue 20) are the page's Updates section: the updater's status
 * (firmware/update/service.ts UpdateStatus), the status page's warnings, "Check now", "Install now" and
 * the owner's policy. The Mirror says whether the box runs an updater (`updates`), as it says `sim`.
 *
 * The arguments' schemas check shapes and sizes only; the values are the box's own checks' (the config
 * store, tor's grammar, firmware/net's), which give the page its field-level messages as before.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import type { ApplyTorResult, BoxStatus, ClaimProgress, ClaimTicket, LeakReport } from '../box/api.js';
import {
  AccessPointSettings,
  AssistSettings,
  BoardSettings,
  CONFIG_VERSION,
  NetworkSettings,
  Port,
  type TorConfig,
  TorSettings,
  UpdateSettings,
} from '../config/schema.js';
import { type ErrorName, obxError } from '../errors.js';
import { problemSummary, schemaProblems } from '../lib/schema-problems.js';
import { UPDATE_PHASES } from '../update/machine.js';
import { NOTES_MAX_LENGTH } from '../update/manifest.js';
import type { UpdateStatus } from '../update/service.js';

const Str = (maxLength = 4096) => Type.String({ maxLength });
const Nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()]);
const OptionalNullable = <T extends TSchema>(s: T) =>
  Type.Optional(Type.Union([s, Type.Null(), Type.Undefined()]));
const Literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)));
/** A command without arguments (`web.watch` too). */
export const NoArgs = Type.Object({}, { additionalProperties: false });

// ---- what the page reads: the Mirror

export const BoxStatusSchema = Type.Object(
  {
    state: Literals(['booting', 'connecting', 'routing', 'killed', 'tor-down', 'error'] as const),
    explanation: Str(),
    firewallMode: Literals(['lockdown', 'connecting', 'routing', 'killed'] as const),
    tor: Type.Object(
      {
        phase: Str(64),
        progress: Type.Number(),
        summary: Str(),
        ready: Type.Boolean(),
        lastWarnings: Type.Array(Str(), { maxItems: 64 }),
      },
      { additionalProperties: false },
    ),
    killSwitch: Type.Object(
      { hardware: Type.Boolean(), software: Type.Boolean() },
      { additionalProperties: false },
    ),
    uptimeSeconds: Type.Number(),
    claimed: Type.Boolean(),
    simulate: Type.Boolean(),
    at: Type.Number(),
    alert: Type.Optional(Str()),
    // the connection assist (issue 21)
    assist: Type.Optional(
      Type.Object(
        {
          phase: Str(32),
          words: Str(),
          attempt: Nullable(Type.Integer({ minimum: 1 })),
          of: Nullable(Type.Integer({ minimum: 1 })),
          skipped: Type.Array(Str(), { maxItems: 16 }),
          askOwner: Type.Boolean(),
        },
        { additionalProperties: false },
      ),
    ),
    // where the built-in bridge lines come from (issue 21)
    builtinBridges: Type.Optional(Str()),
  },
  { additionalProperties: false },
);

/** The settings the page may read: the configuration without the owner's secrets and the AP passphrase. */
export const PageSettingsSchema = Type.Object(
  {
    version: Type.Literal(CONFIG_VERSION),
    tor: TorSettings,
    network: Type.Object(
      {
        ...NetworkSettings.properties,
        accessPoint: Nullable(
          Type.Omit(AccessPointSettings, ['passphrase'], { additionalProperties: false }),
        ),
      },
      { additionalProperties: false },
    ),
    web: Type.Object({ port: Port }, { additionalProperties: false }),
    board: BoardSettings,
    softKill: Type.Boolean(),
    // the updater's sources and policy (issue 20): nothing secret
    update: Type.Optional(UpdateSettings),
    // the connection assist's "Tor is blocked here" and the bridge it found (issue 21)
    assist: Type.Optional(AssistSettings),
  },
  { additionalProperties: false },
);

const LeakCheckSchema = Type.Object(
  {
    id: Literals(['firewall', 'forwarding', 'ipv6', 'clearnet-tcp', 'clearnet-udp', 'tor-exit'] as const),
    title: Str(),
    outcome: Literals(['pass', 'fail', 'not-run'] as const),
    detail: Str(),
  },
  { additionalProperties: false },
);

export const LeakReportSchema = Type.Object(
  {
    at: Type.Number(),
    durationMs: Type.Number(),
    ok: Type.Boolean(),
    checks: Type.Array(LeakCheckSchema, { maxItems: 32 }),
  },
  { additionalProperties: false },
);

/** Everything the page reads without asking: kept current by `web.watch` and every command's reply. */
export const MirrorSchema = Type.Object(
  {
    status: BoxStatusSchema,
    settings: PageSettingsSchema,
    claimed: Type.Boolean(),
    /** Signs the page's cookies: the one secret the page holds. */
    sessionKey: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    lastLeakTest: Nullable(LeakReportSchema),
    /** The simulated board's controls exist (onionboxd --simulate). */
    sim: Type.Boolean(),
    /** The box runs an updater: the `web.update.*` commands answer (the page shows its Updates section). */
    updates: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type Mirror = Static<typeof MirrorSchema>;

// ---- the commands' replies

const CircuitsSchema = Type.Array(
  Type.Object(
    {
      id: Str(64),
      status: Str(64),
      purpose: Str(64),
      hops: Type.Array(
        Type.Object(
          {
            fingerprint: Str(64),
            nickname: Str(64),
            country: Type.Optional(Str(8)),
            address: Type.Optional(Str(64)),
          },
          { additionalProperties: false },
        ),
        { maxItems: 16 },
      ),
    },
    { additionalProperties: false },
  ),
  { maxItems: 4096 },
);

const CountersSchema = Type.Record(
  Type.String({ maxLength: 64 }),
  Type.Object({ packets: Type.Number(), bytes: Type.Number() }, { additionalProperties: false }),
);

const NetworkViewSchema = Type.Object(
  {
    wan: Nullable(
      Type.Object(
        {
          interface: Str(64),
          type: Str(64),
          state: Str(64),
          address: Nullable(Str(64)),
          gateway: Nullable(Str(64)),
          dhcpServer: OptionalNullable(Str(64)),
          ssid: Nullable(Str(128)),
          signal: Nullable(Type.Number()),
        },
        { additionalProperties: false },
      ),
    ),
    wanProblem: Nullable(Str()),
    accessPoint: Nullable(
      Type.Object(
        {
          ssid: Str(128),
          country: Str(8),
          channel: Type.Number(),
          security: Literals(['wpa2', 'wpa2-wpa3'] as const),
          isolateClients: Type.Boolean(),
        },
        { additionalProperties: false },
      ),
    ),
    lan: Type.Object(
      {
        interface: Str(64),
        address: Str(64),
        prefix: Type.Number(),
        devices: Type.Array(
          Type.Object(
            { address: Str(64), mac: Str(64), hostname: Str(256), expiresAt: Type.Number() },
            { additionalProperties: false },
          ),
          { maxItems: 4096 },
        ),
      },
      { additionalProperties: false },
    ),
    sharedRadio: Type.Boolean(),
    lanConflict: Nullable(Str()),
  },
  { additionalProperties: false },
);

const WifiListSchema = Type.Array(
  Type.Object(
    {
      ssid: Str(128),
      ssidHex: Str(128),
      signal: Type.Number(),
      security: Str(64),
      channel: Type.Number(),
      inUse: Type.Boolean(),
    },
    { additionalProperties: false },
  ),
  { maxItems: 1024 },
);

const UpdatePolicySchema = Literals(['night', 'ask'] as const);
const IsoTime = Str(40);
const VersionText = Str(64);
const Bytes = Type.Integer({ minimum: 0 });

/** The updater's status (firmware/update/service.ts UpdateStatus): what the Updates section shows. */
export const UpdateStatusSchema = Type.Object(
  {
    enabled: Type.Boolean(),
    disabledReason: Nullable(Str()),
    phase: Literals(UPDATE_PHASES),
    running: VersionText,
    compatible: Str(64),
    built: Nullable(IsoTime),
    target: Nullable(VersionText),
    result: Nullable(Str()),
    failed: Type.Array(VersionText, { maxItems: 256 }),
    lastCheck: Nullable(
      Type.Object({ at: IsoTime, ok: Type.Boolean(), result: Str() }, { additionalProperties: false }),
    ),
    nextCheck: Nullable(IsoTime),
    available: Nullable(
      Type.Object(
        {
          version: VersionText,
          released: IsoTime,
          expires: IsoTime,
          notes: Str(NOTES_MAX_LENGTH),
          size: Bytes,
          source: Str(300),
        },
        { additionalProperties: false },
      ),
    ),
    progress: Nullable(Type.Object({ done: Bytes, total: Bytes }, { additionalProperties: false })),
    policy: UpdatePolicySchema,
  },
  { additionalProperties: false },
);

// ---- the commands' arguments (shapes and sizes; the box checks the values)

const TorSettingsShape = Type.Object(
  {
    useBridges: Type.Boolean(),
    bridges: Type.Array(Str(4096), { maxItems: 256 }),
    exitNodes: Type.Array(Str(16), { maxItems: 512 }),
    excludeExitNodes: Type.Array(Str(16), { maxItems: 512 }),
    strictNodes: Type.Boolean(),
  },
  { additionalProperties: false },
);

function command<A extends TSchema, R extends TSchema>(args: A, result: R) {
  return { args, result };
}

/** Every command the page may send, with its arguments and its reply's value. */
export const WEB_COMMANDS = {
  'web.circuits': command(NoArgs, CircuitsSchema),
  'web.counters': command(NoArgs, CountersSchema),
  'web.newIdentity': command(NoArgs, Type.Null()),
  'web.runLeakTest': command(NoArgs, LeakReportSchema),
  'web.setSoftKill': command(
    Type.Object({ engaged: Type.Boolean() }, { additionalProperties: false }),
    Type.Null(),
  ),
  'web.applyTorSettings': command(
    Type.Object({ settings: TorSettingsShape }, { additionalProperties: false }),
    Type.Object(
      { ok: Type.Boolean(), rolledBack: Type.Boolean(), message: Str() },
      { additionalProperties: false },
    ),
  ),
  'web.setClock': command(
    Type.Object({ epochMs: Type.Number() }, { additionalProperties: false }),
    Type.Null(),
  ),
  'web.startClaim': command(
    NoArgs,
    Type.Object({ id: Str(64), ticket: Str(256) }, { additionalProperties: false }),
  ),
  'web.claimProgress': command(
    Type.Object({ ticket: Nullable(Str(256)) }, { additionalProperties: false }),
    Type.Object(
      { state: Literals(['none', 'waiting', 'approved'] as const), id: Nullable(Str(64)) },
      { additionalProperties: false },
    ),
  ),
  'web.claim': command(
    Type.Object(
      { password: Str(1024), code: Nullable(Str(256)), ticket: Nullable(Str(256)) },
      { additionalProperties: false },
    ),
    Literals(['claimed', 'no-presence'] as const),
  ),
  'web.verifyPassword': command(
    Type.Object({ password: Str(1024) }, { additionalProperties: false }),
    Type.Boolean(),
  ),
  'web.changePassword': command(
    Type.Object({ current: Str(1024), next: Str(1024) }, { additionalProperties: false }),
    Literals(['changed', 'wrong-password'] as const),
  ),
  'web.diagnostics': command(NoArgs, Type.String({ maxLength: 4 * 1024 * 1024 })),
  'web.networkStatus': command(NoArgs, NetworkViewSchema),
  'web.wifiScan': command(NoArgs, WifiListSchema),
  'web.joinWifi': command(
    Type.Object(
      { ssid: Str(1024), passphrase: Nullable(Str(1024)), hidden: Type.Boolean() },
      { additionalProperties: false },
    ),
    Type.Null(),
  ),
  'web.useCable': command(NoArgs, Type.Null()),
  'web.setAccessPoint': command(
    Type.Object(
      {
        ssid: Str(1024),
        passphrase: Str(1024),
        country: Str(16),
        channel: Type.Number(),
        security: Literals(['wpa2', 'wpa2-wpa3'] as const),
        isolateClients: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
    Type.Null(),
  ),
  /** The simulated board (onionboxd --simulate; else OBX_ERR_BOARD_NOT_SIMULATED). */
  'web.sim.switch': command(
    Type.Object({ engaged: Type.Boolean() }, { additionalProperties: false }),
    Type.Null(),
  ),
  'web.sim.press': command(
    Type.Object({ holdMs: Type.Integer({ minimum: 0, maximum: 60_000 }) }, { additionalProperties: false }),
    Type.Null(),
  ),
  'web.sim.leds': command(
    NoArgs,
    Type.Record(Type.String({ maxLength: 32 }), Literals(['off', 'on', 'blink'] as const)),
  ),
  /** The OLED's PNG, base64. */
  'web.sim.oled': command(NoArgs, Type.String({ maxLength: 1024 * 1024 })),
  /** The updater (issue 20; a box without one: OBX_ERR_UPDATE_NOT_CONFIGURED). */
  'web.update.status': command(NoArgs, UpdateStatusSchema),
  /** The status page's warnings: tor no longer recommended, an old image. */
  'web.update.warnings': command(NoArgs, Type.Array(Str(), { maxItems: 16 })),
  /** "Check now": the reply comes when the check is over (through tor: minutes at most). */
  'web.update.check': command(NoArgs, UpdateStatusSchema),
  /** "Install now": download if needed, install, restart; the reply comes when RAUC has written. */
  'web.update.install': command(NoArgs, UpdateStatusSchema),
  /** "Install and restart at night" (night) or "ask me first" (ask), stored in the configuration. */
  'web.update.setPolicy': command(
    Type.Object({ policy: UpdatePolicySchema }, { additionalProperties: false }),
    Type.Null(),
  ),
  // ---- the connection assist (issue 21)
  'web.setBlockedHere': command(
    Type.Object({ blockedHere: Type.Boolean() }, { additionalProperties: false }),
    Type.Null(),
  ),
  'web.assistConsent': command(NoArgs, Type.Null()),
} as const;

export type WebCommand = keyof typeof WEB_COMMANDS;
export type WebArgs<C extends WebCommand> = Static<(typeof WEB_COMMANDS)[C]['args']>;
export type WebResult<C extends WebCommand> = Static<(typeof WEB_COMMANDS)[C]['result']>;

/** The stream's command: one Mirror line now, then one at each status change. */
export const WATCH_COMMAND = 'web.watch';

/** A command's reply: its value and the Mirror after it. */
export function replySchema<C extends WebCommand>(cmd: C) {
  return Type.Object(
    { value: WEB_COMMANDS[cmd].result, mirror: MirrorSchema },
    { additionalProperties: false },
  );
}

const compiled = new Map<TSchema, TypeCheck<TSchema>>();
const replies = new Map<WebCommand, ReturnType<typeof replySchema>>();

/** The reply schema of `cmd`, made once. */
export function replyOf<C extends WebCommand>(cmd: C): ReturnType<typeof replySchema<C>> {
  let schema = replies.get(cmd);
  if (!schema) {
    schema = replySchema(cmd);
    replies.set(cmd, schema);
  }
  return schema as ReturnType<typeof replySchema<C>>;
}

/**
 * Checks `value` against `schema` (compiled once) and returns it typed, or throws `code` with the first
 * problems. The one check at each end of the socket.
 */
export function checked<T extends TSchema>(
  schema: T,
  value: unknown,
  what: string,
  code: ErrorName = 'BOX_BAD_INPUT',
): Static<T> {
  let check = compiled.get(schema);
  if (!check) {
    check = TypeCompiler.Compile(schema);
    compiled.set(schema, check);
  }
  if (check.Check(value)) return value as Static<T>;
  const problems = schemaProblems(check, value);
  throw obxError(code, `${what}: ${problemSummary(problems)}`, { details: problems });
}

// ---- the schemas and the BoxApi's types say the same (a compile error when one changes alone)

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Expect<T extends true> = T;
export type ProtocolMatchesApi = [
  Expect<Same<Static<typeof BoxStatusSchema>, Omit<BoxStatus, 'alert'> & { alert?: string }>>,
  Expect<Same<Static<typeof LeakReportSchema>, LeakReport>>,
  Expect<Same<WebResult<'web.startClaim'>, ClaimTicket>>,
  Expect<Same<WebResult<'web.claimProgress'>, ClaimProgress>>,
  Expect<Same<WebResult<'web.applyTorSettings'>, ApplyTorResult>>,
  Expect<Same<WebArgs<'web.applyTorSettings'>['settings'], TorConfig>>,
  // UpdateStatus's `failed` is a readonly array, the schema's a plain one: the same elements
  Expect<
    Same<
      Static<typeof UpdateStatusSchema>,
      Omit<UpdateStatus, 'failed'> & { failed: UpdateStatus['failed'][number][] }
    >
  >,
  Expect<Same<WebArgs<'web.update.setPolicy'>['policy'], UpdateStatus['policy']>>,
];
