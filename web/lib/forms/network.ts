/**
 * The network page's forms: joining a Wi-Fi network (the box's internet connection) and the box's own
 * access point. Parsed into the BoxApi's inputs and checked with the same grammars the renderers and
 * the config store use (firmware/net/grammar.ts), so the page cannot accept what the box would refuse.
 * Problems come back per field, in words; the input is kept as typed, except passphrases, which are
 * never sent back to the browser.
 */
import type { AccessPointInput, JoinWifiInput } from '../../../firmware/box/api.js';
import { isObxError } from '../../../firmware/errors.js';
import {
  CHANNELS_5,
  CHANNELS_24,
  parseChannel,
  parsePassphrase,
  parseSecurity,
  parseSsid,
  parseWifiCountry,
} from '../../../firmware/net/grammar.js';
import { type Checked, checkbox, type FieldErrors, field } from './fields.js';

export const CHANNELS: readonly number[] = [...CHANNELS_24, ...CHANNELS_5];

export interface JoinInput {
  ssid: string;
  hidden: boolean;
}

export interface AccessPointFormInput {
  ssid: string;
  country: string;
  channel: string;
  security: string;
}

/** A checked form with the input kept as typed (passphrases left out), for the page to show again. */
export type CheckedInput<T, I> = Checked<T> & { input: I };

function sentence(s: string): string {
  return `${s.charAt(0).toUpperCase()}${s.slice(1)}${/[.!?]$/.test(s) ? '' : '.'}`;
}

/** Runs one grammar check; a refusal becomes the field's message. */
function check<T>(errors: FieldErrors, name: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (!isObxError(e, 'NET_VALUE_INVALID')) throw e;
    errors[name] = sentence(Object.values(e.details)[0] ?? e.message);
    return undefined;
  }
}

export function checkJoin(body: unknown): CheckedInput<JoinWifiInput, JoinInput> {
  const input: JoinInput = {
    ssid: (field(body, 'ssid') ?? '').slice(0, 200),
    hidden: checkbox(body, 'hidden'),
  };
  const passphrase = field(body, 'passphrase') ?? '';
  const errors: FieldErrors = {};
  check(errors, 'ssid', () => parseSsid(input.ssid));
  if (passphrase !== '') check(errors, 'passphrase', () => parsePassphrase(passphrase));
  if (Object.keys(errors).length > 0) return { ok: false, errors, input };
  return {
    ok: true,
    value: { ssid: input.ssid, passphrase: passphrase === '' ? null : passphrase, hidden: input.hidden },
    input,
  };
}

export function accessPointInput(body: unknown): AccessPointFormInput {
  return {
    ssid: (field(body, 'ssid') ?? '').slice(0, 200),
    country: (field(body, 'country') ?? '').slice(0, 10),
    channel: (field(body, 'channel') ?? '').slice(0, 10),
    security: (field(body, 'security') ?? '').slice(0, 20),
  };
}

/** An empty passphrase keeps the current one (the box decides whether there is one). */
export function checkAccessPoint(body: unknown): CheckedInput<AccessPointInput, AccessPointFormInput> {
  const input = accessPointInput(body);
  const passphrase = field(body, 'passphrase') ?? '';
  const errors: FieldErrors = {};
  check(errors, 'ssid', () => parseSsid(input.ssid, { forAccessPoint: true }));
  if (passphrase !== '') check(errors, 'passphrase', () => parsePassphrase(passphrase));
  const country = check(errors, 'country', () => parseWifiCountry(input.country));
  const channel = check(errors, 'channel', () => parseChannel(input.channel));
  const security = check(errors, 'security', () => parseSecurity(input.security));
  if (
    Object.keys(errors).length > 0 ||
    country === undefined ||
    channel === undefined ||
    security === undefined
  ) {
    return { ok: false, errors, input };
  }
  return { ok: true, value: { ssid: input.ssid, passphrase, country, channel, security }, input };
}
