/**
 * "Internet connection and Wi-Fi for your devices": the WAN's status, a scan list with join (passphrase,
 * hidden networks), the access point's settings and the LAN's devices from dnsmasq's leases. Same rules
 * as every form (web/lib/forms/network.ts): server-side checks, field errors, input kept (passphrases
 * never sent back), nothing changed on error, CSRF, works without JavaScript.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { NetworkView, WifiNetworkView } from '../../firmware/box/api.js';
import { describeError, isObxError } from '../../firmware/errors.js';
import { COUNTRY_CODES } from '../../firmware/tor/countries.js';
import { type FieldErrors, fieldErrors } from '../lib/forms/fields.js';
import {
  type AccessPointFormInput,
  CHANNELS,
  checkAccessPoint,
  checkJoin,
  DEFAULT_AP_SSID,
  type JoinInput,
} from '../lib/forms/network.js';
import { flashFor, type PluginOpts, page, requireOwner, type WebContext } from './common.js';

const COUNTRIES = [...COUNTRY_CODES].map((c) => c.toUpperCase()).sort();

interface NetworkState {
  scan?: WifiNetworkView[] | null;
  scanProblem?: string | null;
  join?: JoinInput;
  ap?: AccessPointFormInput;
  errors?: FieldErrors;
  form?: string | null;
  problem?: string | null;
  flash?: string | null;
}

async function networkPage(reply: FastifyReply, ctx: WebContext, state: NetworkState, statusCode = 200) {
  const view: NetworkView = await ctx.box.networkStatus();
  const ap = view.accessPoint;
  return page(
    reply,
    ctx,
    'network',
    {
      title: 'Network',
      net: view,
      scan: state.scan ?? null,
      scanProblem: state.scanProblem ?? null,
      join: state.join ?? { ssid: '', hidden: false },
      ap: state.ap ?? {
        // neutral: nothing in the name says "Tor router" to a wardriving database
        ssid: ap?.ssid ?? DEFAULT_AP_SSID,
        country: ap?.country ?? '',
        channel: String(ap?.channel ?? 6),
        security: ap?.security ?? 'wpa2-wpa3',
        casting: ap ? !ap.isolateClients : false,
      },
      apConfigured: ap !== null,
      countries: COUNTRIES,
      channels: CHANNELS,
      errors: state.errors ?? {},
      form: state.form ?? null,
      problem: state.problem ?? null,
      flash: state.flash ?? null,
      now: ctx.now(),
    },
    statusCode,
  );
}

/** A box refusal as field errors (what the owner can fix) or a problem sentence (what they cannot). */
function refusal(err: unknown): { errors: FieldErrors; problem: string | null } {
  if (isObxError(err, 'NET_WIFI_AUTH_FAILED')) {
    return {
      errors: { passphrase: 'The network refused this passphrase. Check it and try again.' },
      problem: null,
    };
  }
  if (isObxError(err, 'NET_WIFI_NOT_FOUND')) {
    return {
      errors: { ssid: 'The box cannot see this network (out of range, or the name is not exact).' },
      problem: null,
    };
  }
  if (isObxError(err, 'NET_VALUE_INVALID') || isObxError(err, 'CONFIG_INVALID')) {
    return { errors: fieldErrors(err.details), problem: null };
  }
  if (isObxError(err)) return { errors: {}, problem: describeError(err) };
  throw err;
}

export async function networkRoutes(app: FastifyInstance, { ctx }: PluginOpts): Promise<void> {
  app.addHook('onRequest', requireOwner(ctx));
  const csrf = { preValidation: app.csrfProtection };

  app.get('/network', async (req, reply) => networkPage(reply, ctx, { flash: flashFor(req.query) }));

  /** Scanning only reads (the radio listens), so it is a GET: a link works without JavaScript. */
  app.get('/network/scan', async (_req, reply) => {
    try {
      return await networkPage(reply, ctx, { scan: await ctx.box.wifiScan() });
    } catch (err) {
      return networkPage(
        reply,
        ctx,
        { scan: [], scanProblem: refusal(err).problem ?? 'The scan failed.' },
        503,
      );
    }
  });

  app.post('/network/join', csrf, async (req, reply) => {
    const checked = checkJoin(req.body);
    if (!checked.ok) {
      return networkPage(reply, ctx, { join: checked.input, errors: checked.errors, form: 'join' }, 400);
    }
    try {
      await ctx.box.joinWifi(checked.value);
    } catch (err) {
      const { errors, problem } = refusal(err);
      return networkPage(
        reply,
        ctx,
        { join: checked.input, errors, problem, form: 'join' },
        problem ? 503 : 400,
      );
    }
    req.log.info('joined a Wi-Fi network for the WAN');
    return reply.redirect('/network?done=wifi-joined', 303);
  });

  app.post('/network/use-cable', csrf, async (req, reply) => {
    try {
      await ctx.box.useCable();
    } catch (err) {
      const { errors, problem } = refusal(err);
      const why = problem ?? Object.values(errors)[0] ?? 'The box could not move to the cable.';
      return networkPage(reply, ctx, { problem: why }, problem ? 503 : 400);
    }
    req.log.info('the WAN moved back to the cable');
    return reply.redirect('/network?done=cable', 303);
  });

  app.post('/network/access-point', csrf, async (req, reply) => {
    const checked = checkAccessPoint(req.body);
    if (!checked.ok) {
      return networkPage(reply, ctx, { ap: checked.input, errors: checked.errors, form: 'ap' }, 400);
    }
    try {
      await ctx.box.setAccessPoint(checked.value);
    } catch (err) {
      const { errors, problem } = refusal(err);
      return networkPage(reply, ctx, { ap: checked.input, errors, problem, form: 'ap' }, problem ? 503 : 400);
    }
    return reply.redirect('/network?done=ap-saved', 303);
  });
}
