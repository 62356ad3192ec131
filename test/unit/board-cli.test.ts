/**
 * `onionbox board switch on|off` and `onionbox board press` through the real CLI, the real control
 * socket and registerBoardIpc, against a BoxController with the simulated board.
 */
import t from 'tap';
import { SimBoard } from '../../board/sim/board.js';
import type { FirewallModeName } from '../../firmware/box/api.js';
import { BoxController } from '../../firmware/box/controller.js';
import { runCli } from '../../firmware/cli/index.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { registerBoardIpc } from '../../firmware/control/commands.js';
import { IpcServer, socketPath } from '../../firmware/control/socket.js';
import { EventBus } from '../../firmware/events.js';
import { unchangedClock } from '../helpers/clock.js';
import { tmpDir } from '../helpers/tmp.js';

t.test('board commands', async (t) => {
  const dir = tmpDir(t);
  const config = new ConfigStore(dir);
  await config.load();
  const bus = new EventBus();
  const board = new SimBoard();
  let kernel: FirewallModeName | null = null;
  const box = new BoxController({
    config,
    bus,
    board,
    tor: {
      status: () => ({ phase: 'ready', progress: 100, summary: 'Done', ready: true }),
      newIdentity: async () => undefined,
      circuits: async () => [],
      applySettings: async () => ({ ok: true, rolledBack: false, message: '' }),
      lastWarnings: () => [],
    },
    firewall: {
      apply: async (m) => {
        kernel = m;
      },
      counters: async () => ({}),
    },
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    simulate: true,
    clock: unchangedClock,
    sim: board.controls(),
  });
  await box.start();
  t.teardown(() => box.stop());
  const ipc = new IpcServer(socketPath(dir));
  registerBoardIpc(ipc, box);
  await ipc.start();
  t.teardown(() => ipc.stop());
  t.equal(kernel, 'routing');

  const out: string[] = [];
  const err: string[] = [];
  const ctx = { stateDir: dir, out: (s: string) => out.push(s), err: (s: string) => err.push(s) };
  t.equal(await runCli(['board', 'switch', 'on'], ctx), 0);
  t.match(out.join(''), /kill switch on: box killed, firewall killed/);
  t.equal(kernel, 'killed');
  t.equal(await runCli(['board', 'switch', 'off'], ctx), 0);
  t.equal(kernel, 'routing');
  const claim = box.startClaim();
  t.equal(await runCli(['board', 'press'], ctx), 0);
  t.equal(box.claimProgress(claim.ticket).state, 'approved', 'the press reached the box');
  t.equal(await runCli(['board', 'press', '--hold', '3'], ctx), 0);
  t.match(out.join(''), /held for 3 s/);

  t.equal(await runCli(['board', 'switch', 'sideways'], ctx), 2);
  t.equal(await runCli(['board', 'press', '--hold', 'x'], ctx), 2);
  t.equal(await runCli(['board', 'press', '--hold', '99'], ctx), 2);
  t.match(err.join(''), /OBX_ERR_CLI_USAGE/);
  t.equal(kernel, 'routing', 'bad input changed nothing');

  const none = tmpDir(t);
  t.equal(await runCli(['board', 'switch', 'on'], { ...ctx, stateDir: none }), 1);
  t.match(err.join(''), /OBX_ERR_DAEMON_NOT_RUNNING/);
});

t.test('createBoard: simulated with --simulate, GPIO otherwise', async (t) => {
  const { createBoard } = await import('../../board/index.js');
  const { defaultConfig } = await import('../../firmware/config/schema.js');
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const sim = await createBoard({ simulate: true, config: defaultConfig().board, log });
  t.equal(sim.board.kind, 'sim');
  t.ok(sim.sim);
  const real = await createBoard({ simulate: false, config: defaultConfig().board, log });
  t.equal(real.board.kind, 'gpio');
  t.equal(real.sim, undefined);
});
