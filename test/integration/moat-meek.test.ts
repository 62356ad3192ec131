/**
 * Moat over lyrebird's real meek_lite client (issue 21), without the whole simulated world: the test
 * reflector with its mock Moat (scripts/privnet/meek-moat.ts) on 443 in a namespace of the test's own,
 * and `onionbox moat ask` (what onionbox-moat.service runs) in the same namespace. With the test CA in its
 * environment (SSL_CERT_FILE for lyrebird, NODE_EXTRA_CA_CERTS for node), the answers pass onionboxd's
 * checks and name the mock's bridge; without it, lyrebird refuses the front's certificate and the
 * answer holds only errors (nothing to try).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { assistJob, moatParts, parseMoatJobAnswer } from '../../firmware/tor/moat-ask.js';
import { testCert } from '../../scripts/privnet/index.js';
import { makeNetns, rootSkipReason } from '../helpers/netns.js';
import { nodeTsArgs } from '../helpers/node-ts.js';
import { tmpDir } from '../helpers/tmp.js';

const execFileP = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const skip = rootSkipReason(['ip', 'lyrebird', 'openssl']);
const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const LINE = `obfs4 198.18.0.17:4430 ${FP} cert=AAAABBBBCCCC iat-mode=0`;

t.test('onionbox moat ask: meek_lite through the test reflector to the mock Moat', { skip }, async (t) => {
  const dir = tmpDir(t);
  const ns = await makeNetns(t, 'moat');
  const front = await testCert(dir, 'front', ['IP:127.0.0.1', 'DNS:meek.sim.test']);
  const moat = await testCert(dir, 'moat', ['DNS:moat.sim.test']);
  const setting = { settings: [{ bridges: { type: 'obfs4', source: 'bridgedb', bridge_strings: [LINE] } }] };
  writeFileSync(join(dir, 'answers.json'), JSON.stringify({ settings: setting, defaults: { settings: [] } }));
  const server: ChildProcess = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      ...nodeTsArgs(),
      join(root, 'scripts/privnet/meek-moat.ts'),
      '--host',
      '127.0.0.1',
      '--port',
      '443',
      '--cert',
      front.certFile,
      '--key',
      front.keyFile,
      '--moat-cert',
      moat.certFile,
      '--moat-key',
      moat.keyFile,
      '--answers',
      join(dir, 'answers.json'),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let serverOut = '';
  await new Promise<void>((resolve, reject) => {
    server.stdout?.on('data', (d: Buffer) => {
      serverOut += d.toString();
      if (/LISTENING 443/.test(serverOut)) resolve();
    });
    server.once('exit', (code) => reject(new Error(`meek-moat exited ${code}`)));
  });
  t.teardown(() => {
    server.stdin?.end();
    server.kill();
  });

  const ask = async (name: string, env: NodeJS.ProcessEnv) => {
    const job = assistJob({
      service: 'https://moat.sim.test/moat',
      url: 'https://meek.sim.test/',
      front: '127.0.0.1',
    });
    const jobFile = join(dir, `${name}-job.json`);
    const answerFile = join(dir, name, 'answer.json');
    writeFileSync(jobFile, JSON.stringify(job));
    await execFileP('mkdir', ['-p', join(dir, name)]);
    await execFileP(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        ...nodeTsArgs(),
        join(root, 'firmware/cli/main.ts'),
        'moat',
        'ask',
        '--job',
        jobFile,
        '--answer',
        answerFile,
        '--timeout-seconds',
        '10',
      ],
      { env, timeout: 120_000 },
    );
    const answer = parseMoatJobAnswer(readFileSync(answerFile, 'utf8'), job.id);
    if (!answer) throw new Error('no answer to this job');
    return answer;
  };

  const { SSL_CERT_FILE: _s, NODE_EXTRA_CA_CERTS: _n, ...plain } = process.env;
  const trusted = await ask('trusted', {
    ...plain,
    SSL_CERT_FILE: front.caFile,
    NODE_EXTRA_CA_CERTS: front.caFile,
  });
  t.same(
    trusted.results.map((r) => [r.kind, r.status]),
    [
      ['settings', 200],
      ['defaults', 200],
    ],
    'both requests answered through meek_lite',
  );
  const parts = moatParts(trusted);
  t.same(parts.country, [{ transport: 'obfs4', lines: [LINE] }], "the country's setting, checked");
  t.same(parts.defaults, []);
  t.match(serverOut, /MOAT POST \/moat\/circumvention\/settings \{"transports":\["obfs4"\]\}/);

  const untrusted = await ask('untrusted', plain);
  t.ok(
    untrusted.results.every((r) => r.error !== undefined && r.status === undefined),
    "without the test CA: lyrebird refuses the front's certificate, nothing is answered",
  );
  t.match(untrusted.results[1]?.error, /^not sent: /, 'after the first failure the rest is not sent');
  t.same(moatParts(untrusted).country, [], 'nothing to try');
});
