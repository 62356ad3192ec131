/**
 * The built-in bridge lines shipped with the release: the last entry of connection assist's try-list
 * (firmware/tor/assist.ts), after Moat's settings for the country and Moat's defaults. Taken from Tor
 * Browser's list of built-in bridges (its expert bundle's pt_config.json), which changes several times a
 * year: these are data to refresh with each release (and, once connected, over tor).
 *
 * Left out: the meek_lite line, which carries no fingerprint (the grammar requires one).
 */
import { parseBridgeLine } from './grammar.js';

export const BUILTIN_BRIDGES: Readonly<Record<'obfs4' | 'snowflake', readonly string[]>> = Object.freeze({
  obfs4: [
    'obfs4 192.95.36.142:443 CDF2E852BF539B82BD10E27E9115A31734E378C2 cert=qUVQ0srL1JI/vO6V6m/24anYXiJD3QP2HgzUKQtQ7GRqqUvs7P+tG43RtAqdhLOALP7DJQ iat-mode=1',
    'obfs4 37.218.245.14:38224 D9A82D2F9C2F65A18407B1D2B764F130847F8B5D cert=bjRaMrr1BRiAW8IE9U5z27fQaYgOhX1UCmOpg2pFpoMvo6ZgQMzLsaTzzQNTlm7hNcb+Sg iat-mode=0',
    'obfs4 85.31.186.98:443 011F2599C0E9B27EE74B353155E244813763C3E5 cert=ayq0XzCwhpdysn5o0EyDUbmSOx3X/oTEbzDMvczHOdBJKlvIdHHLJGkZARtT4dcBFArPPg iat-mode=0',
    'obfs4 85.31.186.26:443 91A6354697E6B02A386312F68D82CF86824D3606 cert=PBwr+S8JTVZo6MPdHnkTwXJPILWADLqfMGoVvhZClMq/Urndyd42BwX9YFJHZnBB3H0XCw iat-mode=0',
    'obfs4 193.11.166.194:27015 2D82C2E354D531A68469ADF7F878FA6060C6BACA cert=4TLQPJrTSaDffMK7Nbao6LC7G9OW/NHkUwIdjLSS3KYf0Nv4/nQiiI8dY2TcsQx01NniOg iat-mode=0',
    'obfs4 193.11.166.194:27020 86AC7B8D430DAC4117E9F42C9EAED18133863AAF cert=0LDeJH4JzMDtkJJrFphJCiPqKx7loozKN7VNfuukMGfHO0Z8OGdzHVkhVAOfo1mUdv9cMg iat-mode=0',
    'obfs4 193.11.166.194:27025 1AE2C08904527FEA90C4C4F8C1083EA59FBC6FAF cert=ItvYZzW5tn6v3G4UnQa6Qz04Npro6e81AP70YujmK/KXwDFPTs3aHXcHp4n8Vt6w/bv8cA iat-mode=0',
    'obfs4 209.148.46.65:443 74FAD13168806246602538555B5521A0383A1875 cert=ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw iat-mode=0',
    'obfs4 146.57.248.225:22 10A6CD36A537FCE513A322361547444B393989F0 cert=K1gDtDAIcUfeLqbstggjIw2rtgIKqdIhUlHp82XRqNSq/mtAjp1BIC9vHKJ2FAEpGssTPw iat-mode=0',
    'obfs4 45.145.95.6:27015 C5B7CD6946FF10C5B3E89691A7D3F2C122D2117C cert=TD7PbUO0/0k6xYHMPW3vJxICfkMZNdkRrb63Zhl5j9dW3iRGiCx0A7mPhe5T2EDzQ35+Zw iat-mode=0',
    'obfs4 51.222.13.177:80 5EDAC3B810E12B01F6FD8050D2FD3E277B289A08 cert=2uplIpLQ0q9+0qMFrK5pkaYRDOe460LL9WHBvatgkuRr/SL31wBOEupaMMJ6koRE6Ld0ew iat-mode=0',
  ],
  snowflake: [
    'snowflake 192.0.2.3:80 2B280B23E1107BB62ABFC40DDCC8824814F80A72 fingerprint=2B280B23E1107BB62ABFC40DDCC8824814F80A72 url=https://voluble-torrone-fc39bf.netlify.app/ fronts=vuejs.org ice=stun:stun.epygi.com:3478,stun:stun.uls.co.za:3478,stun:stun.voipgate.com:3478,stun:stun.mixvoip.com:3478,stun:stun.nextcloud.com:3478,stun:stun.bethesda.net:3478,stun:stun.nextcloud.com:443 utls-imitate=hellorandomizedalpn',
    'snowflake 192.0.2.4:80 8838024498816A039FCBBAB14E6F40A0843051FA fingerprint=8838024498816A039FCBBAB14E6F40A0843051FA url=https://voluble-torrone-fc39bf.netlify.app/ fronts=vuejs.org ice=stun:stun.epygi.com:3478,stun:stun.uls.co.za:3478,stun:stun.voipgate.com:3478,stun:stun.mixvoip.com:3478,stun:stun.nextcloud.com:3478,stun:stun.bethesda.net:3478,stun:stun.nextcloud.com:443 utls-imitate=hellorandomizedalpn',
  ],
});

/**
 * The built-in lines as try-list entries, one per transport (obfs4 first, as Tor Browser recommends; it
 * needs nothing of the firewall but the bridges' addresses). Every line passes the grammar (or throws).
 */
export function builtinCandidates(): { transport: string; lines: string[] }[] {
  return (['obfs4', 'snowflake'] as const).map((transport) => ({
    transport,
    lines: BUILTIN_BRIDGES[transport].map((l) => {
      parseBridgeLine(l);
      return l;
    }),
  }));
}

/** The transports the connection assist tries from built-in lines: the ones that can connect from the box today. */
export const ASSIST_TRANSPORTS: readonly string[] = Object.freeze(['obfs4']);

/** Why a transport's built-in lines are not tried (the page shows it; the box never pretends). */
export const LEFT_OUT_WHY: Readonly<Record<string, string>> = Object.freeze({
  snowflake:
    'The built-in snowflake bridges are not tried: snowflake has not connected end to end on the box yet.',
});

/** Why Moat (the Tor Project's bridge service for a country) is not asked: the box has no Moat client. */
export const MOAT_SKIPPED_WHY =
  'Asking the Tor Project which bridges work in your country (Moat) is not available here: ' +
  'the box tries the bridges it ships with.';

/** Why Moat's answer gave nothing to try (it did not answer, or named nothing the box can use). */
export const MOAT_FAILED_WHY =
  "The Tor Project's bridge service (Moat) could not be asked, or named no bridge the box can use: " +
  'the box tries the bridges it ships with.';

/**
 * The built-in part of the try-list: one setting per transport the assist tries (obfs4 today), and the
 * steps left out with their reasons (Moat, when the box has no Moat client; transports that cannot
 * connect). `lines` replaces the
 * release's list (a test network's own bridges, given as data); every line passes the grammar or this
 * throws.
 */
export function assistBuiltins(
  lines?: readonly string[],
  opts: { moat?: boolean } = {},
): {
  candidates: { transport: string; lines: string[] }[];
  skipped: { step: 'moat' | 'transport'; reason: string }[];
} {
  const groups =
    lines === undefined
      ? builtinCandidates()
      : [...new Set(lines.map((l) => parseBridgeLine(l).transport))].map((transport) => ({
          transport,
          lines: lines.filter((l) => parseBridgeLine(l).transport === transport),
        }));
  const skipped: { step: 'moat' | 'transport'; reason: string }[] = opts.moat
    ? []
    : [{ step: 'moat', reason: MOAT_SKIPPED_WHY }];
  const candidates: { transport: string; lines: string[] }[] = [];
  for (const g of groups) {
    if (ASSIST_TRANSPORTS.includes(g.transport)) candidates.push(g);
    else
      skipped.push({
        step: 'transport',
        reason: LEFT_OUT_WHY[g.transport] ?? `The built-in ${g.transport} bridges are not tried yet.`,
      });
  }
  return { candidates, skipped };
}
