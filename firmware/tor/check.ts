/**
 * "Is this Tor?": one GET of a fixed URL (check.torproject.org's /api/ip on the box, the private network's
 * stand-in in tests) through tor's SOCKS port, with tor-request. Containment (docs/architecture.md):
 *   - the URL is fixed at construction (firmware configuration, never owner or request input) and checked;
 *   - tor-request's control-port helper is never used (it does not escape the password);
 *   - its old transitive dependencies are overridden in package.json ("overrides") where compatible;
 *   - `socks://` means SOCKS5 with the hostname resolved by tor (no DNS outside tor);
 *   - a proxy environment variable (which `request` would honour) makes the check refuse to run;
 *   - redirects are never followed (`request` drops the SOCKS agent on an http<->https redirect,
 *     CVE-2023-28155: the next hop would leave outside tor); a redirect is a failed check.
 */
import { createRequire } from 'node:module';
import { obxError } from '../errors.js';

export const DEFAULT_CHECK_URL = 'https://check.torproject.org/api/ip';

interface TorRequestResponse {
  statusCode: number;
}
type TorRequestCallback = (err: Error | null, res: TorRequestResponse | undefined, body: unknown) => void;
interface TorRequestModule {
  setTorAddress(ipaddress: string, port: number): void;
  request(
    options: { uri: string; timeout: number; json: boolean; followRedirect: boolean },
    cb: TorRequestCallback,
  ): unknown;
}

let torRequest: TorRequestModule | null = null;
function lib(): TorRequestModule {
  // Loaded lazily: `request` is heavy (docs/architecture.md footprint).
  torRequest ??= createRequire(import.meta.url)('tor-request') as TorRequestModule;
  return torRequest;
}

export interface TorCheckResult {
  isTor: boolean;
  /** The address the check service saw. */
  ip: string;
}

export interface TorCheckOptions {
  /** tor's SocksPort (127.0.0.1:9050 on the box). */
  socks: { host: string; port: number };
  url?: string;
  timeoutMs?: number;
}

const PROXY_ENV = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'];

/** Validates the fixed check URL: http(s), no credentials, printable. */
export function checkUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw obxError('TOR_VALUE_INVALID', 'check URL is not a URL');
  }
  if (
    (u.protocol !== 'http:' && u.protocol !== 'https:') ||
    u.username ||
    u.password ||
    !/^[\x21-\x7e]+$/.test(url)
  ) {
    throw obxError('TOR_VALUE_INVALID', 'check URL must be plain http(s) without credentials');
  }
  return u.toString();
}

export class TorCheck {
  readonly url: string;

  readonly #opts: TorCheckOptions;
  constructor(opts: TorCheckOptions) {
    this.#opts = opts;
    this.url = checkUrl(opts.url ?? DEFAULT_CHECK_URL);
    if (!/^127\.[0-9]+\.[0-9]+\.[0-9]+$/.test(opts.socks.host)) {
      throw obxError('TOR_VALUE_INVALID', 'the SOCKS port must be on loopback');
    }
  }

  /** One check. Resolves with the service's verdict; OBX_ERR_TOR_CHECK_FAILED when it cannot be reached. */
  run(): Promise<TorCheckResult> {
    const proxyVar = PROXY_ENV.find((v) => process.env[v]);
    if (proxyVar) return Promise.reject(obxError('TOR_CHECK_FAILED', `refusing to run with ${proxyVar} set`));
    const tr = lib();
    tr.setTorAddress(this.#opts.socks.host, this.#opts.socks.port);
    return new Promise((resolve, reject) => {
      const options = {
        uri: this.url,
        timeout: this.#opts.timeoutMs ?? 30_000,
        json: true,
        followRedirect: false,
      };
      tr.request(options, (err, res, body) => {
        if (err) return reject(obxError('TOR_CHECK_FAILED', err.message.split('\n')[0] ?? 'request failed'));
        if (!res || res.statusCode !== 200) {
          return reject(
            obxError('TOR_CHECK_FAILED', `HTTP ${res?.statusCode ?? '?'} from the check service`),
          );
        }
        const doc = body as { IsTor?: unknown; IP?: unknown } | null;
        if (!doc || typeof doc.IsTor !== 'boolean') {
          return reject(obxError('TOR_CHECK_FAILED', 'the check service sent no IsTor verdict'));
        }
        resolve({ isTor: doc.IsTor, ip: typeof doc.IP === 'string' ? doc.IP.slice(0, 64) : '' });
      });
    });
  }
}
