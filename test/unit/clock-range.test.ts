/**
 * One clock range (issue 13): the page's clock form, the controller's setClock and firmware/tor/clock.ts
 * (the saved time and the owner's time) accept exactly the same times.
 */
import t from 'tap';
import { SimBoard } from '../../board/sim/board.js';
import { BoxController } from '../../firmware/box/controller.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { EventBus } from '../../firmware/events.js';
import { validEpochMs } from '../../firmware/tor/clock.js';
import { checkClock } from '../../web/lib/forms/settings.js';
import { tmpDir } from '../helpers/tmp.js';

const quiet = { info() {}, warn() {}, error() {} };

t.test('page, controller and clock service agree on every boundary', async (t) => {
  const config = new ConfigStore(tmpDir(t));
  await config.load();
  const bus = new EventBus();
  const set: number[] = [];
  const box = new BoxController({
    config,
    bus,
    board: new SimBoard(),
    tor: {
      status: () => ({ phase: 'stopped', progress: 0, summary: '', ready: false, warnings: [] }) as never,
      newIdentity: async () => undefined,
      circuits: async () => [],
      applySettings: async () => ({ ok: true, rolledBack: false, message: '' }),
      lastWarnings: () => [],
    },
    firewall: { apply: async () => undefined, counters: async () => ({}) },
    log: quiet,
    simulate: true,
    clock: { set: async (ms) => void set.push(ms) },
  });
  const samples = [
    Date.UTC(2024, 5, 1),
    Date.UTC(2025, 5, 1),
    Date.UTC(2026, 0, 1) - 1,
    Date.UTC(2026, 0, 1),
    Date.UTC(2027, 3, 4, 5, 6),
    Date.UTC(2100, 0, 1),
    Date.UTC(2100, 0, 1) + 1,
  ];
  for (const ms of samples) {
    const page = checkClock({ epochMs: String(ms) }).ok;
    const controller = await box.setClock(ms).then(
      () => true,
      () => false,
    );
    let service = true;
    try {
      validEpochMs(ms);
    } catch {
      service = false;
    }
    t.same({ page, controller }, { page: service, controller: service }, new Date(ms).toISOString());
  }
});
