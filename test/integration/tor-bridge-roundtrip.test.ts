/**
 * Every bridge line the grammar accepts comes back unchanged from real tor: tor cuts a config line at
 * '#', so a value with '#' would silently lose its tail (issue 13). Random lines from a wide alphabet go
 * through parseBridgeLine; the accepted ones are written into a torrc and read back with
 * `tor --verify-config` and `tor --dump-config short`.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { formatBridgeLine, parseBridgeLine } from '../../firmware/tor/grammar.js';
import { tmpDir } from '../helpers/tmp.js';

function tor(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('tor', args, { timeout: 60_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
// Printable ASCII except space (the word separator): wider than the grammar's value set on purpose.
const valueChar = fc.constantFrom(...Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i)));
const value = fc.string({ unit: valueChar, minLength: 1, maxLength: 40 });
const candidate = fc.oneof(
  fc
    .tuple(value, fc.constantFrom('0', '1', '2'))
    .map(([cert, iat]) => `obfs4 192.0.2.1:443 ${FP} cert=${cert} iat-mode=${iat}`),
  fc.tuple(value, value).map(([url, front]) => `meek_lite 192.0.2.2:443 ${FP} url=${url} front=${front}`),
  fc.tuple(value, value).map(([url, fronts]) => `snowflake 192.0.2.3:443 ${FP} url=${url} fronts=${fronts}`),
);

t.test('accepted bridge lines survive a round trip through tor unchanged', async (t) => {
  const dir = tmpDir(t, 'obx-bridge-rt-');
  const accepted = new Set<string>();
  // Always include the characters tor treats specially, then random ones.
  const seeds = ['cert=abc#def', 'cert=abc;def', 'cert=a"b', 'cert=a\\b', "cert=a'b"].map(
    (arg) => `obfs4 192.0.2.1:443 ${FP} ${arg} iat-mode=0`,
  );
  for (const line of [...seeds, ...fc.sample(candidate, { numRuns: 400, seed: 13 })]) {
    try {
      accepted.add(formatBridgeLine(parseBridgeLine(line)));
    } catch {
      // refused by the grammar: never written
    }
  }
  t.ok(accepted.size >= 20, `${accepted.size} accepted lines to check`);
  t.notOk(
    [...accepted].some((l) => l.includes('#')),
    'no accepted line carries a #',
  );
  const lines = [...accepted];
  // tor takes any number of Bridge lines; check in batches to keep each torrc small.
  for (let i = 0; i < lines.length; i += 50) {
    const batch = lines.slice(i, i + 50);
    const torrc = join(dir, `torrc-${i}`);
    await writeFile(
      torrc,
      [
        `DataDirectory ${join(dir, 'data')}`,
        'SocksPort 0',
        'UseBridges 1',
        'ClientTransportPlugin obfs4,meek_lite exec /usr/bin/obfs4proxy',
        'ClientTransportPlugin snowflake exec /usr/bin/snowflake-client',
        ...batch.map((b) => `Bridge ${b}`),
        '',
      ].join('\n'),
    );
    const verify = await tor(['-f', torrc, '--verify-config']);
    t.equal(verify.code, 0, `tor --verify-config accepts batch ${i}`);
    if (verify.code !== 0) t.comment(verify.out.slice(-600));
    const dump = await tor(['-f', torrc, '--dump-config', 'short']);
    const back = dump.out
      .split('\n')
      .filter((l) => l.startsWith('Bridge '))
      .map((l) => l.slice('Bridge '.length));
    t.same(back, batch, `batch ${i} comes back from tor unchanged`);
  }
});
