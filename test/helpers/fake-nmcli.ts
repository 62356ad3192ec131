/**
 * Puts the fake nmcli (test/helpers/bin/fake-nmcli) on PATH as `nmcli` for one test, with a world
 * the test describes, and reads back what it recorded.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { tmpDir } from './tmp.js';

export interface FakeNetwork {
  ssid: string;
  bssid: string;
  chan: number;
  freq: number;
  signal: number;
  security: string;
  psk?: string;
  hidden?: boolean;
}

export interface FakeDevice {
  device: string;
  type: string;
  state: string;
  connection: string;
}

export interface FakeWorld {
  running: boolean;
  devices: FakeDevice[];
  networks: FakeNetwork[];
  appearing?: FakeNetwork[];
  profiles?: Record<string, unknown>[];
  quirks?: { secretsExit0?: boolean };
  lease?: string;
  gateway?: string;
}

export interface FakeCall {
  argv: string[];
  LC_ALL: string | null;
  LANGUAGE: string | null;
}

export const FAKE_NMCLI = fileURLToPath(new URL('./bin/fake-nmcli', import.meta.url));

export function fakeNmcli(t: Test, world: FakeWorld) {
  const dir = tmpDir(t, 'onionbox-nmcli-');
  const bin = join(dir, 'bin');
  const state = join(dir, 'state.json');
  mkdirSync(bin, { recursive: true });
  symlinkSync(FAKE_NMCLI, join(bin, 'nmcli'));
  writeFileSync(state, JSON.stringify(world));
  const saved = { PATH: process.env.PATH, FAKE_NMCLI_STATE: process.env.FAKE_NMCLI_STATE };
  process.env.PATH = `${bin}:${process.env.PATH ?? ''}`;
  process.env.FAKE_NMCLI_STATE = state;
  t.teardown(() => {
    process.env.PATH = saved.PATH;
    if (saved.FAKE_NMCLI_STATE === undefined) delete process.env.FAKE_NMCLI_STATE;
    else process.env.FAKE_NMCLI_STATE = saved.FAKE_NMCLI_STATE;
  });
  const read = () => JSON.parse(readFileSync(state, 'utf8')) as FakeWorld & { calls?: FakeCall[] };
  return {
    dir,
    read,
    calls: () => read().calls ?? [],
    update(fn: (w: FakeWorld) => void) {
      const w = read();
      fn(w);
      writeFileSync(state, JSON.stringify(w));
    },
  };
}
