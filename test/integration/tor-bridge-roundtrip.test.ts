/**
 * Every bridge line the grammar accepts, of every transport lyrebird runs (obfs4, webtunnel, meek_lite,
 * snowflake), comes back unchanged from real tor: tor cuts a config line at
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
import { TRANSPORT_LINES } from '../helpers/bridge.js';
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
// Values shaped like each key's grammar, with random characters mixed in: most pass, the odd ones show
// the grammar refusing.
const hostName = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,6}){1,2}$/);
const mixed = (shaped: fc.Arbitrary<string>) => fc.oneof({ arbitrary: shaped, weight: 4 }, value);
const httpsUrl = fc
  .tuple(hostName, fc.stringMatching(/^[A-Za-z0-9._~/-]{0,20}$/))
  .map(([h, p]) => `https://${h}/${p}`);
const base64 = fc.stringMatching(/^[A-Za-z0-9+/]{20,80}$/);
const candidate = fc.oneof(
  fc
    .tuple(mixed(base64), fc.constantFrom('0', '1', '2'))
    .map(([cert, iat]) => `obfs4 192.0.2.1:443 ${FP} cert=${cert} iat-mode=${iat}`),
  fc
    .tuple(mixed(httpsUrl), fc.constantFrom('0.0.1', '0.0.2', '1.2'))
    .map(([url, ver]) => `webtunnel [2001:db8::5]:443 ${FP} url=${url} ver=${ver}`),
  fc
    .tuple(mixed(httpsUrl), mixed(hostName))
    .map(
      ([url, front]) => `meek_lite 192.0.2.2:443 ${FP} url=${url} front=${front} utls=hellorandomizedalpn`,
    ),
  fc
    .tuple(mixed(httpsUrl), fc.array(hostName, { minLength: 1, maxLength: 3 }), hostName)
    .map(
      ([url, fronts, stun]) =>
        `snowflake 192.0.2.3:443 ${FP} fingerprint=${FP} url=${url} fronts=${fronts.join(',')} ice=stun:${stun}:3478 utls-imitate=hellorandomizedalpn`,
    ),
);

t.test('accepted bridge lines survive a round trip through tor unchanged', async (t) => {
  const dir = tmpDir(t, 'obx-bridge-rt-');
  const accepted = new Set<string>();
  // Always include the characters tor treats specially, then random ones.
  const seeds = ['cert=abc#def', 'cert=abc;def', 'cert=a"b', 'cert=a\\b', "cert=a'b"].map(
    (arg) => `obfs4 192.0.2.1:443 ${FP} ${arg} iat-mode=0`,
  );
  const shipped = Object.values(TRANSPORT_LINES);
  for (const line of [...seeds, ...shipped, ...fc.sample(candidate, { numRuns: 400, seed: 13 })]) {
    try {
      accepted.add(formatBridgeLine(parseBridgeLine(line)));
    } catch {
      // refused by the grammar: never written
    }
  }
  t.ok(accepted.size >= 100, `${accepted.size} accepted lines to check`);
  for (const transport of ['obfs4 ', 'webtunnel ', 'meek_lite ', 'snowflake ']) {
    t.ok(
      [...accepted].filter((l) => l.startsWith(transport)).length >= 10,
      `${transport.trim()}: at least 10 accepted lines`,
    );
  }
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
        'ClientTransportPlugin obfs4,webtunnel,meek_lite exec /usr/bin/lyrebird',
        'ClientTransportPlugin snowflake exec /usr/bin/lyrebird',
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
