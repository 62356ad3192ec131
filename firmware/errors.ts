/**
 * Every error the firmware reports carries a stable code (OBX_ERR_*), a message and an HTTP status.
 * Codes are grouped by subsystem and documented in firmware/ERRORS.md; test/unit/errors.test.ts checks
 * that every code here is documented there and every documented code exists (fastify's lib/errors.js idea).
 */

export interface ObxErrorSpec {
  readonly code: string;
  readonly message: string;
  readonly statusCode: number;
}

export class ObxError extends Error {
  readonly code: string;
  readonly statusCode: number;
  /** Field-level details for forms and CLIs (field path -> message). */
  readonly details: Readonly<Record<string, string>>;

  constructor(
    spec: ObxErrorSpec,
    detail?: string,
    options?: { cause?: unknown; details?: Record<string, string> },
  ) {
    super(detail ? `${spec.message}: ${detail}` : spec.message, { cause: options?.cause });
    this.name = 'ObxError';
    this.code = spec.code;
    this.statusCode = spec.statusCode;
    this.details = Object.freeze({ ...(options?.details ?? {}) });
  }
}

function spec(code: string, message: string, statusCode = 500): ObxErrorSpec {
  return Object.freeze({ code, message, statusCode });
}

export const Errors = Object.freeze({
  // config store
  CONFIG_INVALID: spec('OBX_ERR_CONFIG_INVALID', 'Configuration does not match the schema', 400),
  CONFIG_NOT_JSON: spec('OBX_ERR_CONFIG_NOT_JSON', 'Configuration file is not valid JSON', 500),
  CONFIG_UNKNOWN_VERSION: spec('OBX_ERR_CONFIG_UNKNOWN_VERSION', 'Configuration has an unknown version', 500),
  CONFIG_UNREADABLE: spec('OBX_ERR_CONFIG_UNREADABLE', 'No readable configuration (main and backup)', 500),
  CONFIG_WRITE_FAILED: spec('OBX_ERR_CONFIG_WRITE_FAILED', 'Configuration could not be written', 500),
  // command line
  CLI_USAGE: spec('OBX_ERR_CLI_USAGE', 'Bad command line', 400),
  SIM_NOT_RUNNING: spec('OBX_ERR_SIM_NOT_RUNNING', 'No simulator is running from this checkout', 503),
  // tor (firmware/tor/)
  TOR_BRIDGE_INVALID: spec('OBX_ERR_TOR_BRIDGE_INVALID', 'Bridge line rejected', 400),
  TOR_COUNTRY_INVALID: spec('OBX_ERR_TOR_COUNTRY_INVALID', 'Unknown country code', 400),
  TOR_VALUE_INVALID: spec('OBX_ERR_TOR_VALUE_INVALID', 'Value not allowed in torrc', 400),
  TOR_CONFIG_REJECTED: spec('OBX_ERR_TOR_CONFIG_REJECTED', 'tor refused the new configuration', 400),
  TOR_START_FAILED: spec('OBX_ERR_TOR_START_FAILED', 'tor failed to start', 500),
  TOR_NOT_RUNNING: spec(
    'OBX_ERR_TOR_NOT_RUNNING',
    'tor is not running or its control port is not connected',
    503,
  ),
  TOR_PROTOCOL: spec('OBX_ERR_TOR_PROTOCOL', 'Malformed reply on the tor control port', 502),
  TOR_OPERATION_FAILED: spec('OBX_ERR_TOR_OPERATION_FAILED', 'tor refused a control command', 502),
  TOR_CONTROL_CLOSED: spec('OBX_ERR_TOR_CONTROL_CLOSED', 'The tor control connection closed', 503),
  TOR_AUTH_FAILED: spec('OBX_ERR_TOR_AUTH_FAILED', 'Authentication to the tor control port failed', 500),
  TOR_AUTH_NULL_REFUSED: spec(
    'OBX_ERR_TOR_AUTH_NULL_REFUSED',
    'The tor control listener accepts no secret (NULL authentication): not our tor',
    500,
  ),
  TOR_COOKIE_PATH_REFUSED: spec(
    'OBX_ERR_TOR_COOKIE_PATH_REFUSED',
    'The tor control listener named a cookie file other than the configured one',
    500,
  ),
  TOR_CHECK_FAILED: spec('OBX_ERR_TOR_CHECK_FAILED', 'The "is this Tor?" check failed', 502),
  TOR_MOAT_FAILED: spec(
    'OBX_ERR_TOR_MOAT_FAILED',
    "Moat (the Tor Project's bridge service) did not answer",
    502,
  ),
  TOR_MOAT_ANSWER_INVALID: spec('OBX_ERR_TOR_MOAT_ANSWER_INVALID', "Moat's answer was refused", 502),
  TOR_BUILTIN_REFRESH_FAILED: spec(
    'OBX_ERR_TOR_BUILTIN_REFRESH_FAILED',
    'The built-in bridge lines could not be refreshed over Tor',
    502,
  ),
  TOR_BUILTIN_STORE_INVALID: spec(
    'OBX_ERR_TOR_BUILTIN_STORE_INVALID',
    'The stored built-in bridge lines are not valid',
    500,
  ),
  CLOCK_INVALID: spec('OBX_ERR_CLOCK_INVALID', 'Time rejected', 400),
  // firewall
  FIREWALL_INVALID_PARAMS: spec('OBX_ERR_FIREWALL_INVALID_PARAMS', 'Firewall parameters are not valid', 400),
  FIREWALL_APPLY_FAILED: spec(
    'OBX_ERR_FIREWALL_APPLY_FAILED',
    'The kernel refused the firewall ruleset; the previous one stays in force',
    500,
  ),
  FIREWALL_VERIFY_FAILED: spec(
    'OBX_ERR_FIREWALL_VERIFY_FAILED',
    'The firewall table in the kernel is not the one that was applied',
    500,
  ),
  FIREWALL_NOT_STARTED: spec('OBX_ERR_FIREWALL_NOT_STARTED', 'The firewall service is not started', 503),
  // networking (firmware/net/)
  NET_VALUE_INVALID: spec('OBX_ERR_NET_VALUE_INVALID', 'Network setting rejected', 400),
  NET_NM_NOT_RUNNING: spec('OBX_ERR_NET_NM_NOT_RUNNING', 'NetworkManager is not running', 503),
  NET_WIFI_NOT_FOUND: spec('OBX_ERR_NET_WIFI_NOT_FOUND', 'No such Wi-Fi network or device', 404),
  NET_WIFI_AUTH_FAILED: spec('OBX_ERR_NET_WIFI_AUTH_FAILED', 'The Wi-Fi network refused the passphrase', 400),
  NET_NMCLI_FAILED: spec('OBX_ERR_NET_NMCLI_FAILED', 'NetworkManager refused the request', 502),
  NET_DHCP_CONFIG_REJECTED: spec(
    'OBX_ERR_NET_DHCP_CONFIG_REJECTED',
    'dnsmasq refused the DHCP configuration; the previous one stays in force',
    500,
  ),
  NET_DHCP_FAILED: spec('OBX_ERR_NET_DHCP_FAILED', 'The LAN DHCP server (dnsmasq) is not running', 503),
  NET_AP_FAILED: spec(
    'OBX_ERR_NET_AP_FAILED',
    'The access point (hostapd) did not start; the last working settings are back',
    503,
  ),
  NET_UNAVAILABLE: spec('OBX_ERR_NET_UNAVAILABLE', 'This box has no network control', 503),
  NET_CHANGE_FAILED: spec(
    'OBX_ERR_NET_CHANGE_FAILED',
    'The network change failed; the box goes back to the old settings',
    503,
  ),
  NET_CHANGE_BUSY: spec('OBX_ERR_NET_CHANGE_BUSY', 'Another network change is running', 409),
  // leak self-test (firmware/leak-test/)
  LEAK_TEST_UNAVAILABLE: spec(
    'OBX_ERR_LEAK_TEST_UNAVAILABLE',
    'The leak self-test is not available on this box',
    503,
  ),
  // box controller and board (firmware/box/controller.ts, board/)
  BOX_BAD_INPUT: spec('OBX_ERR_BOX_BAD_INPUT', 'Bad request to the box', 400),
  BOX_APPLY_FAILED: spec(
    'OBX_ERR_BOX_APPLY_FAILED',
    'The firewall could not be changed; the box stays in its most closed mode',
    503,
  ),
  BOARD_NOT_SIMULATED: spec(
    'OBX_ERR_BOARD_NOT_SIMULATED',
    'Only the simulated board can be flipped from here',
    409,
  ),
  // updates (firmware/update/)
  UPDATE_MANIFEST_INVALID: spec('OBX_ERR_UPDATE_MANIFEST_INVALID', 'The update manifest is malformed', 400),
  UPDATE_SIGNATURE_INVALID: spec(
    'OBX_ERR_UPDATE_SIGNATURE_INVALID',
    'The update signature does not verify',
    400,
  ),
  UPDATE_KEY_UNKNOWN: spec(
    'OBX_ERR_UPDATE_KEY_UNKNOWN',
    'The update is signed by a key this box does not know',
    400,
  ),
  UPDATE_KEY_REVOKED: spec('OBX_ERR_UPDATE_KEY_REVOKED', 'The update is signed by a revoked key', 400),
  UPDATE_NOT_NEWER: spec(
    'OBX_ERR_UPDATE_NOT_NEWER',
    'The offered version is not newer than the running one',
    409,
  ),
  UPDATE_WRONG_BOARD: spec('OBX_ERR_UPDATE_WRONG_BOARD', 'The update is for another board', 409),
  UPDATE_EXPIRED: spec('OBX_ERR_UPDATE_EXPIRED', 'The update manifest has expired', 409),
  UPDATE_BELOW_MINIMUM: spec(
    'OBX_ERR_UPDATE_BELOW_MINIMUM',
    'The running version is too old to update to this release directly',
    409,
  ),
  UPDATE_FAILED_BEFORE: spec(
    'OBX_ERR_UPDATE_FAILED_BEFORE',
    'This version failed on this box before and is not retried automatically',
    409,
  ),
  UPDATE_TOO_LARGE: spec('OBX_ERR_UPDATE_TOO_LARGE', 'The update is larger than this box accepts', 413),
  UPDATE_DOWNLOAD_FAILED: spec('OBX_ERR_UPDATE_DOWNLOAD_FAILED', 'The update download failed', 502),
  UPDATE_DOWNLOAD_STALLED: spec('OBX_ERR_UPDATE_DOWNLOAD_STALLED', 'The update download stalled', 504),
  UPDATE_DOWNLOAD_OVERSIZE: spec(
    'OBX_ERR_UPDATE_DOWNLOAD_OVERSIZE',
    'The server sent more than the manifest announced',
    502,
  ),
  UPDATE_HASH_MISMATCH: spec(
    'OBX_ERR_UPDATE_HASH_MISMATCH',
    'The downloaded bundle does not match the manifest',
    502,
  ),
  UPDATE_SOCKS_FAILED: spec('OBX_ERR_UPDATE_SOCKS_FAILED', "tor's SOCKS port refused the connection", 502),
  UPDATE_FETCH_FAILED: spec('OBX_ERR_UPDATE_FETCH_FAILED', 'The update manifest could not be fetched', 502),
  UPDATE_NO_SPACE: spec('OBX_ERR_UPDATE_NO_SPACE', 'The data partition has no room for the update', 507),
  UPDATE_NOT_CONFIGURED: spec('OBX_ERR_UPDATE_NOT_CONFIGURED', 'Updates are not set up on this box', 409),
  UPDATE_BUSY: spec('OBX_ERR_UPDATE_BUSY', 'The updater is busy', 409),
  UPDATE_NOTHING_TO_INSTALL: spec(
    'OBX_ERR_UPDATE_NOTHING_TO_INSTALL',
    'No update is waiting to be installed',
    409,
  ),
  UPDATE_INSTALL_FAILED: spec('OBX_ERR_UPDATE_INSTALL_FAILED', 'RAUC did not install the update', 502),
  UPDATE_SLOT_STATUS_INVALID: spec(
    'OBX_ERR_UPDATE_SLOT_STATUS_INVALID',
    "RAUC's slot status could not be read",
    502,
  ),
  UPDATE_GOOD_RECORD_INVALID: spec(
    'OBX_ERR_UPDATE_GOOD_RECORD_INVALID',
    'The record of slots marked good is unreadable',
    500,
  ),
  UPDATE_ROLLBACK_FAILED: spec(
    'OBX_ERR_UPDATE_ROLLBACK_FAILED',
    'The rollback of a failed trial failed',
    500,
  ),
  // daemon
  INTERNAL: spec('OBX_ERR_INTERNAL', 'Internal error', 500),
  DAEMON_NOT_RUNNING: spec('OBX_ERR_DAEMON_NOT_RUNNING', 'onionboxd is not running or not reachable', 503),
  DAEMON_START_FAILED: spec('OBX_ERR_DAEMON_START_FAILED', 'Firmware failed to start', 500),
  // web page
  WEB_HOST_NOT_ALLOWED: spec(
    'OBX_ERR_WEB_HOST_NOT_ALLOWED',
    'This address is not one the box answers to',
    421,
  ),
  WEB_CSRF: spec('OBX_ERR_WEB_CSRF', 'The form expired or did not come from this page', 403),
  WEB_AUTH_REQUIRED: spec('OBX_ERR_WEB_AUTH_REQUIRED', 'Log in first', 401),
  WEB_NOT_CLAIMED: spec('OBX_ERR_WEB_NOT_CLAIMED', 'The box has not been claimed yet', 409),
  WEB_ALREADY_CLAIMED: spec('OBX_ERR_WEB_ALREADY_CLAIMED', 'The box is already claimed', 409),
  WEB_NO_PRESENCE: spec(
    'OBX_ERR_WEB_NO_PRESENCE',
    'Press the button on the box or type the code it shows',
    403,
  ),
  WEB_LOGIN_FAILED: spec('OBX_ERR_WEB_LOGIN_FAILED', 'Wrong password', 401),
  WEB_CLAIM_LIMIT: spec(
    'OBX_ERR_WEB_CLAIM_LIMIT',
    'Too many claims are waiting for a press of the button; try again later',
    429,
  ),
  WEB_THROTTLED: spec('OBX_ERR_WEB_THROTTLED', 'Too many attempts; wait before trying again', 429),
  WEB_FORM_INVALID: spec('OBX_ERR_WEB_FORM_INVALID', 'Some fields need attention', 400),
  WEB_BODY_TOO_LARGE: spec('OBX_ERR_WEB_BODY_TOO_LARGE', 'The form sent too much data', 413),
  WEB_BAD_CONTENT_TYPE: spec('OBX_ERR_WEB_BAD_CONTENT_TYPE', 'Only HTML forms are accepted', 415),
  WEB_NOT_FOUND: spec('OBX_ERR_WEB_NOT_FOUND', 'No such page', 404),
} as const);

export type ErrorName = keyof typeof Errors;

/** The details key a refusal to retry yet (429) carries its wait in, whole seconds: the page's Retry-After. */
export const RETRY_AFTER = 'retryAfter';

export function obxError(
  name: ErrorName,
  detail?: string,
  options?: { cause?: unknown; details?: Record<string, string> },
): ObxError {
  return new ObxError(Errors[name], detail, options);
}

export function isObxError(err: unknown, name?: ErrorName): err is ObxError {
  return err instanceof ObxError && (name === undefined || err.code === Errors[name].code);
}

/** Short, safe text for logs and CLIs: never the stack of a foreign error. */
export function describeError(err: unknown): string {
  if (err instanceof ObxError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
