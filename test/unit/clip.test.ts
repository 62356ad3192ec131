/**
 * Text cut for the owner to read (firmware/lib/clip.ts), and tor's warnings on the status page: a long
 * line from tor is cut at a word and says that text is missing.
 */
import { once } from 'node:events';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { clipText } from '../../firmware/lib/clip.js';
import { TorProcess } from '../../firmware/tor/process.js';
import { tmpDir } from '../helpers/tmp.js';

/** What tor 0.4.8 logs when the torrc names its own directory authorities (377 characters). */
const AUTHORITY_WARNING =
  "You have used DirAuthority or AlternateDirAuthority to specify alternate directory authorities in your configuration. This is potentially dangerous: it can make you look different from all other Tor users, and hurt your anonymity. Even if you've specified the same authorities as Tor uses by default, the defaults could change in the future. Be sure you know what you're doing.";

t.test('text that fits is unchanged; longer text ends at a word with an ellipsis', async (t) => {
  t.equal(clipText('short enough', 12), 'short enough');
  t.equal(clipText('', 5), '');
  t.equal(clipText('one two three', 12), 'one two…');
  t.equal(clipText('one two three', 8), 'one two…', 'the cut falls right after a word');
  t.equal(clipText('one two, three', 10), 'one two…', 'no dangling comma');
  t.equal(clipText('abcdefghijklmnop', 8), 'abcdefg…', 'one long word is cut inside');
  t.equal(clipText('a bcdefghijklmnop', 8), 'a bcdef…', 'a word boundary too early is not used');
  const cut = clipText(AUTHORITY_WARNING, 273);
  t.ok(cut.length <= 273);
  t.ok(cut.endsWith('specified the same…'), cut.slice(-40));
});

t.test("tor's long warning lines are cut at a word, with an ellipsis", async (t) => {
  const dir = tmpDir(t);
  const fakeTor = join(dir, 'tor');
  writeFileSync(join(dir, 'log-line'), `Dec 07 06:00:00.000 [warn] ${AUTHORITY_WARNING}\n`);
  writeFileSync(fakeTor, '#!/bin/sh\ncat "$(dirname "$0")/log-line"\n');
  chmodSync(fakeTor, 0o755);
  const got: string[] = [];
  const proc = new TorProcess(fakeTor, join(dir, 'torrc'), (l) => got.push(l));
  await once(proc.child, 'close');
  t.equal(got.length, 1);
  const shown = got[0] ?? '';
  t.ok(shown.length <= 300, 'still at most 300 characters');
  t.ok(shown.endsWith(' specified the same…'), `ends at a word, with an ellipsis: ...${shown.slice(-30)}`);
  t.same(proc.lastLines(1), [shown]);
});
