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
  // daemon
  INTERNAL: spec('OBX_ERR_INTERNAL', 'Internal error', 500),
  DAEMON_NOT_RUNNING: spec('OBX_ERR_DAEMON_NOT_RUNNING', 'onionboxd is not running or not reachable', 503),
  DAEMON_START_FAILED: spec('OBX_ERR_DAEMON_START_FAILED', 'Firmware failed to start', 500),
} as const);

export type ErrorName = keyof typeof Errors;

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
