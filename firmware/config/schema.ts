/**
 * The one schema of the box's configuration document. Types come from the schema (TypeBox), so the
 * validator and the TypeScript types cannot drift apart. Owner-supplied strings that reach torrc, nft,
 * nmcli or hostapd are narrowed here by allowlist patterns; the stricter grammars of tor and networking
 * run after it (CONFIG_CHECKS in firmware/config/validate.ts).
 */
import { type Static, Type } from '@sinclair/typebox';
import { IPV4_PATTERN } from '../lib/ipv4.js';

export const CONFIG_VERSION = 4 as const;

/** Linux interface names: IFNAMSIZ-1 characters from a conservative set. */
export const InterfaceName = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$',
  description: 'Network interface name (1-15 characters: letters, digits, _ . -)',
  examples: ['eth0', 'wlan0'],
});

export const Ipv4Address = Type.String({
  pattern: IPV4_PATTERN,
  description: 'Dotted-quad IPv4 address',
  examples: ['10.42.0.1'],
});

export const Port = Type.Integer({ minimum: 1, maximum: 65535 });

/** Printable ASCII only: no newline, no control character can ever reach a rendered file. */
const PrintableLine = (maxLength: number, description: string) =>
  Type.String({ pattern: '^[\\x20-\\x7e]+$', minLength: 1, maxLength, description });

export const TorSettings = Type.Object(
  {
    useBridges: Type.Boolean({
      default: false,
      description: 'Connect through bridges instead of public guards',
    }),
    bridges: Type.Array(PrintableLine(1024, 'A bridge line as given by bridges.torproject.org'), {
      maxItems: 32,
      default: [],
    }),
    exitNodes: Type.Array(Type.String({ pattern: '^[a-z]{2}$' }), {
      maxItems: 64,
      uniqueItems: true,
      default: [],
      description: 'Only exit through these countries (ISO 3166-1 alpha-2, lower case)',
    }),
    excludeExitNodes: Type.Array(Type.String({ pattern: '^[a-z]{2}$' }), {
      maxItems: 64,
      uniqueItems: true,
      default: [],
      description: 'Never exit through these countries',
    }),
    strictNodes: Type.Boolean({ default: false, description: 'Fail rather than ignore the country lists' }),
  },
  { additionalProperties: false, requiresRestart: true },
);

/** The box's own access point. The byte length of the SSID and the passphrase grammar are checked by
 * firmware/net/config-check.ts (registered with the validator). null: no access point configured yet
 * (there is no default passphrase). */
export const AccessPointSettings = Type.Object(
  {
    ssid: Type.String({ minLength: 1, maxLength: 32, description: 'Network name (1-32 bytes of UTF-8)' }),
    passphrase: Type.String({
      minLength: 8,
      maxLength: 64,
      description: 'WPA passphrase: 8-63 printable ASCII characters, or 64 hex digits',
    }),
    country: Type.String({ pattern: '^[A-Z]{2}$', description: 'Regulatory country (ISO 3166-1 alpha-2)' }),
    channel: Type.Integer({ minimum: 1, maximum: 48, description: '1-13, or 36, 40, 44, 48' }),
    security: Type.Union([Type.Literal('wpa2'), Type.Literal('wpa2-wpa3')], {
      description: 'WPA2-PSK/CCMP, or WPA2/WPA3 (SAE) transition mode (the default)',
    }),
    isolateClients: Type.Boolean({
      description:
        "Devices on the box's Wi-Fi reach the box (and tor), not each other (hostapd ap_isolate). " +
        'Off only for households that cast to a TV or print over Wi-Fi: then any guest with the ' +
        "passphrase can reach (and ARP-spoof) the others, the owner's phone included.",
      default: true,
    }),
    bssid: Type.String({
      // the shape here; locally administered and unicast: firmware/net/grammar.ts parseBssid (config-check)
      pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$',
      description: 'Random locally administered unicast MAC, generated once per box (never the vendor MAC)',
    }),
  },
  { additionalProperties: false, requiresRestart: true },
);

/** The Wi-Fi network the box joins as its WAN (its passphrase lives only in NetworkManager's keyfile). */
export const UpstreamWifiSettings = Type.Object(
  {
    interface: InterfaceName,
    ssid: Type.String({ minLength: 1, maxLength: 32 }),
    hidden: Type.Boolean(),
  },
  { additionalProperties: false },
);

export const NetworkSettings = Type.Object(
  {
    accessPoint: Type.Union([Type.Null(), AccessPointSettings]),
    upstreamWifi: Type.Union([Type.Null(), UpstreamWifiSettings]),
    lanInterface: InterfaceName,
    wanInterface: InterfaceName,
    lanAddress: Ipv4Address,
    lanPrefix: Type.Integer({ minimum: 8, maximum: 30 }),
    hostname: Type.String({
      pattern: '^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$',
      description: 'Name the web page answers to besides the LAN address (Host header allowlist)',
    }),
  },
  { additionalProperties: false },
);

export const WebSettings = Type.Object(
  {
    port: Port,
    /** scrypt hash in the form `scrypt$N$r$p$salt_b64$hash_b64`; null until the box is claimed. */
    passwordHash: Type.Union([
      Type.String({ pattern: '^scrypt\\$[0-9]+\\$[0-9]+\\$[0-9]+\\$[A-Za-z0-9+/=]+\\$[A-Za-z0-9+/=]+$' }),
      Type.Null(),
    ]),
    /** 32 random bytes, hex; signs session cookies. Generated on first start. */
    sessionKey: Type.Union([Type.String({ pattern: '^[0-9a-f]{64}$' }), Type.Null()]),
  },
  { additionalProperties: false },
);

const Pin = Type.Integer({ minimum: 0, maximum: 53, description: 'BCM GPIO number (offset on the chip)' });

export const BoardSettings = Type.Object(
  {
    /**
     * Label of the GPIO controller the pins are offsets of (the `label` file of its gpiochip in /sys/class/gpio).
     * Absent on a Raspberry Pi (its own controller is found by label); set for another board, or for the
     * emulated image's PL061 ("9030000.pl061").
     */
    gpioChip: Type.Optional(
      Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$', description: 'GPIO controller label' }),
    ),
    killSwitchPin: Pin,
    claimButtonPin: Pin,
    ledPins: Type.Object({ green: Pin, amber: Pin, red: Pin }, { additionalProperties: false }),
    oled: Type.Object(
      {
        enabled: Type.Boolean(),
        bus: Type.Integer({ minimum: 0, maximum: 31 }),
        address: Type.Integer({ minimum: 0x03, maximum: 0x77 }),
        controller: Type.Union([Type.Literal('ssd1306'), Type.Literal('sh1106')]),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

/** An onion service's base URL: http (onion services are end-to-end already), a v3 address, a path ending in /. */
export const UPDATE_ONION_URL_PATTERN =
  '^http://[a-z2-7]{56}\\.onion(:[1-9][0-9]{0,4})?/([A-Za-z0-9._~-]+/)*$';
/** An HTTPS mirror's base URL: a DNS name (resolved by the exit), a path ending in /. No user, query or fragment. */
export const UPDATE_MIRROR_URL_PATTERN =
  '^https://[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+(:[1-9][0-9]{0,4})?/([A-Za-z0-9._~-]+/)*$';

export const UpdateSettings = Type.Object(
  {
    onion: Type.Union([Type.Null(), Type.String({ pattern: UPDATE_ONION_URL_PATTERN, maxLength: 256 })], {
      description: 'The release onion service, tried first (base URL ending in /)',
    }),
    mirror: Type.Union([Type.Null(), Type.String({ pattern: UPDATE_MIRROR_URL_PATTERN, maxLength: 256 })], {
      description: 'The HTTPS mirror, reached through a tor exit, tried second (base URL ending in /)',
    }),
    policy: Type.Union([Type.Literal('night'), Type.Literal('ask')], {
      description:
        '"night": download at once, install and restart between 02:00 and 05:00; "ask": wait for the owner',
    }),
  },
  { additionalProperties: false },
);

/**
 * Connection assist (firmware/tor/assist.ts): the owner's "Tor is blocked here", and the bridge setting
 * the box found by itself (kept so a power cut loses nothing; its lines are also `tor.bridges`, and
 * because they are listed here they count as the box's, not the owner's: the assist may replace them).
 */
export const AssistSettings = Type.Object(
  {
    blockedHere: Type.Boolean({
      description: 'Tor is blocked here: start with bridges at once instead of trying Tor directly first',
    }),
    found: Type.Union(
      [
        Type.Null(),
        Type.Object(
          {
            transport: Type.String({ pattern: '^[a-z][a-z0-9_]{0,31}$' }),
            lines: Type.Array(PrintableLine(1024, 'A bridge line the box found'), {
              minItems: 1,
              maxItems: 32,
            }),
            source: Type.Union([
              Type.Literal('moat-country'),
              Type.Literal('moat-defaults'),
              Type.Literal('builtin'),
            ]),
            /** When it first reached routing, ms since 1970. */
            at: Type.Integer({ minimum: 0 }),
          },
          { additionalProperties: false },
        ),
      ],
      { description: 'The bridge setting the connection assist found and kept, or null' },
    ),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    version: Type.Literal(CONFIG_VERSION),
    tor: TorSettings,
    network: NetworkSettings,
    web: WebSettings,
    board: BoardSettings,
    /** Kill switch engaged from the web page (the hardware switch is read live, never stored). */
    softKill: Type.Boolean(),
    /** Where updates come from and when they install; absent: updateSettings() defaults (no source yet). */
    update: Type.Optional(UpdateSettings),
    /** Connection assist; absent: assistSettings() defaults (not blocked, nothing found). */
    assist: Type.Optional(AssistSettings),
  },
  { additionalProperties: false, title: 'Onionbox configuration', $id: 'onionbox-config' },
);

export type Config = Static<typeof ConfigSchema>;
export type TorConfig = Static<typeof TorSettings>;
export type NetworkConfig = Static<typeof NetworkSettings>;
export type AccessPointConfig = Static<typeof AccessPointSettings>;
export type UpstreamWifiConfig = Static<typeof UpstreamWifiSettings>;
export type WebConfig = Static<typeof WebSettings>;
export type BoardConfig = Static<typeof BoardSettings>;
export type UpdateConfig = Static<typeof UpdateSettings>;
export type AssistConfig = Static<typeof AssistSettings>;

/** The connection assist's settings, with their defaults when the document has none. */
export function assistSettings(config: {
  readonly assist?: AssistConfig | undefined;
}): Readonly<AssistConfig> {
  return config.assist ?? { blockedHere: false, found: null };
}

/** The update settings, with their defaults when the document has none. */
export function updateSettings(config: Readonly<Config>): Readonly<UpdateConfig> {
  return config.update ?? { onion: null, mirror: null, policy: 'night' };
}

/** What a fresh box starts with. No password: the first owner claims the box (physical presence). */
export function defaultConfig(): Config {
  return {
    version: CONFIG_VERSION,
    tor: {
      useBridges: false,
      bridges: [],
      exitNodes: [],
      excludeExitNodes: [],
      strictNodes: false,
    },
    network: {
      lanInterface: 'wlan0',
      wanInterface: 'eth0',
      lanAddress: '10.42.0.1',
      lanPrefix: 24,
      hostname: 'onionbox.lan',
      accessPoint: null,
      upstreamWifi: null,
    },
    web: { port: 80, passwordHash: null, sessionKey: null },
    board: {
      killSwitchPin: 17,
      claimButtonPin: 27,
      ledPins: { green: 22, amber: 23, red: 24 },
      oled: { enabled: true, bus: 1, address: 0x3c, controller: 'ssd1306' },
    },
    softKill: false,
  };
}
