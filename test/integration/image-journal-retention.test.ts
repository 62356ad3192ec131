/**
 * The image's journal on the data partition: a new machine id every boot means a new journal directory
 * every boot, which journald's own limits never remove. The image's tmpfiles rule removes past boots'
 * directories once they are 15 days old; checked here with the real systemd-tmpfiles on a scratch root.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';

const run = promisify(execFile);
const conf = new URL('../../images/system/onionbox-journal.tmpfiles', import.meta.url).pathname;
const journald = new URL('../../images/system/onionbox-journald.conf', import.meta.url).pathname;

t.test("past boots' journal directories go after 15 days; the current one stays", async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'obx-journal-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const journal = join(root, 'var/log/journal');
  const old = join(journal, '0123456789abcdef0123456789abcdef');
  const recent = join(journal, 'fedcba9876543210fedcba9876543210');
  for (const d of [old, recent]) {
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'system.journal'), 'x');
  }
  const past = new Date(Date.now() - 20 * 24 * 3600 * 1000);
  for (const p of [join(old, 'system.journal'), old]) utimesSync(p, past, past);
  await run('systemd-tmpfiles', ['--clean', `--root=${root}`, conf]);
  t.notOk(existsSync(old), 'the 20-day-old boot directory is gone');
  t.ok(existsSync(join(recent, 'system.journal')), "this boot's journal stays");
  t.ok(existsSync(journal), 'the journal directory itself stays');
});

t.test("journald's limits keep one boot's journal small", (t) => {
  const text = readFileSync(journald, 'utf8');
  const value = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(text)?.[1];
  t.equal(value('Storage'), 'persistent');
  t.equal(value('SystemMaxUse'), '32M');
  t.equal(value('SystemKeepFree'), '256M', 'never eats into the room the settings and tor need');
  t.match(value('MaxRetentionSec') ?? '', /^[0-9]+day$/);
  t.end();
});
