/**
 * onionboxd's `update` phase: the updater (firmware/update/service.ts) with the production adapters: the
 * image's release files (release.json, release keys), fetches through tor's SocksPort on loopback with the
 * updater's own SOCKS username (its circuits are never shared), RAUC over D-Bus, and the data directory
 * `<state dir>/updates`. A trial boot is kept when the box reaches `routing`; scheduled checks wait for it.
 * Its start only reads files and arms a timer: nothing is fetched before tor routes.
 */
import { join } from 'node:path';
import type { BoxController } from '../box/controller.js';
import { type UpdateConfig, updateSettings } from '../config/schema.js';
import type { ConfigStore } from '../config/store.js';
import { describeError, obxError } from '../errors.js';
import type { EventBus } from '../events.js';
import type { Phase } from '../lib/service.js';
import type { Logger } from '../log.js';
import { RaucDbusInstaller } from '../update/rauc.js';
import { DEFAULT_RELEASE_DIR, loadReleaseFiles } from '../update/release-files.js';
import {
  type ImageInfo,
  UPDATE_SOCKS_USERNAME,
  UpdateService,
  type UpdateStatus,
} from '../update/service.js';
import { torConnect } from '../update/socks5.js';
import { dangerousVersionWarning, imageAgeWarning } from '../update/words.js';
import { TOR_PORTS } from './tor.js';

export interface UpdatePhaseDeps {
  config: ConfigStore;
  box: BoxController;
  bus: EventBus;
  stateDir: string;
  releaseDir: string | undefined;
  /** onionboxd's RuntimeDirectory (/run/onionbox): where it asks for the restart after an install. */
  runtimeDir: string | undefined;
  log: Logger;
}

/** What the page, the CLI and `onionbox status` get: the updater, the owner's policy, the warnings. */
export interface Updates {
  status(): UpdateStatus;
  check(): Promise<UpdateStatus>;
  install(): Promise<UpdateStatus>;
  installFile(bundle: string, manifest: string, signature: string): Promise<UpdateStatus>;
  /** "install and restart at night" or "ask me first", stored in the configuration. */
  setPolicy(policy: UpdateConfig['policy']): Promise<void>;
  /** Warnings for the status page: tor no longer recommended, an old image. */
  warnings(): string[];
}

/** The OLED's short form of the warnings (21 characters a line). */
export function oledWarning(dangerousTor: boolean, oldImage: boolean): string | null {
  if (dangerousTor) return 'UPDATE: tor outdated';
  if (oldImage) return 'UPDATE: software old';
  return null;
}

const WARNING_REFRESH_MS = 60 * 60_000;

/** The updater when it could not start (its directory unwritable, ...): off, saying why; nothing runs. */
export function disabledUpdates(image: ImageInfo, reason: string): Updates {
  const status = (): UpdateStatus => ({
    enabled: false,
    disabledReason: reason,
    phase: 'idle',
    running: image.version,
    compatible: image.compatible,
    built: image.built?.toISOString() ?? null,
    target: null,
    result: null,
    failed: [],
    lastCheck: null,
    nextCheck: null,
    available: null,
    progress: null,
    policy: 'night',
  });
  const off = async (): Promise<UpdateStatus> => {
    throw obxError('UPDATE_NOT_CONFIGURED', reason);
  };
  return {
    status,
    check: off,
    install: off,
    installFile: off,
    setPolicy: async () => {
      throw obxError('UPDATE_NOT_CONFIGURED', reason);
    },
    warnings: () => {
      const old = imageAgeWarning(image.built, new Date());
      return old ? [old] : [];
    },
  };
}

export function updatePhase(deps: UpdatePhaseDeps): Phase<Updates> {
  const log = deps.log.child({ component: 'update' });
  let service: UpdateService | null = null;
  let unsubscribe: (() => void) | null = null;
  let dangerous: { current: string; reason: string } | null = null;
  let refresh: NodeJS.Timeout | null = null;
  return {
    name: 'update',
    start: async () => {
      const release = await loadReleaseFiles(deps.releaseDir ?? DEFAULT_RELEASE_DIR);
      if (release.problem) log.info({ reason: release.problem }, 'updates are off');
      const routing = () => deps.box.status().state === 'routing';
      const s = new UpdateService({
        dir: join(deps.stateDir, 'updates'),
        image: release.image,
        trust: release.trust,
        offReason: release.problem,
        settings: () => updateSettings(deps.config.get()),
        connect: torConnect({ socksPort: TOR_PORTS.socks, username: UPDATE_SOCKS_USERNAME }),
        installer: new RaucDbusInstaller({ runtimeDir: deps.runtimeDir }),
        torReady: routing,
        log,
      });
      try {
        await s.start();
      } catch (err) {
        // The updater must never keep the router from starting: it is off, with the reason.
        log.error({ err: describeError(err) }, 'the updater could not start; updates are off');
        return disabledUpdates(release.image, `the updater could not start: ${describeError(err)}`);
      }
      service = s;
      const kept = () => {
        if (routing())
          s.routing().catch((err: unknown) =>
            log.error({ err: describeError(err) }, 'update: keeping the trial failed'),
          );
      };
      const offStatus = deps.box.onStatus(kept);
      kept();
      const warnings = (): string[] => {
        const out: string[] = [];
        if (dangerous) out.push(dangerousVersionWarning(dangerous.current || null));
        const old = imageAgeWarning(release.image.built, new Date());
        if (old) out.push(old);
        return out;
      };
      const showWarning = () => {
        const old = imageAgeWarning(release.image.built, new Date()) !== null;
        deps.box.setUpdateWarning(oledWarning(dangerous !== null, old));
      };
      const offDangerous = deps.bus.on('tor:dangerous-version', 'update', (d) => {
        dangerous = d;
        log.warn(d, "tor's version is not recommended by the consensus");
        showWarning();
      });
      unsubscribe = () => {
        offStatus();
        offDangerous();
      };
      showWarning();
      refresh = setInterval(showWarning, WARNING_REFRESH_MS);
      refresh.unref();
      return {
        status: () => s.status(),
        check: () => s.check(),
        install: () => s.install(),
        installFile: (b, m, sig) => s.installFile(b, m, sig),
        setPolicy: async (policy) => {
          await deps.config.update((c) => ({ ...c, update: { ...updateSettings(c), policy } }));
        },
        warnings,
      };
    },
    stop: async () => {
      if (refresh) clearInterval(refresh);
      unsubscribe?.();
      await service?.stop();
      service = null;
    },
  };
}
