/**
 * `onionbox moat ask --job FILE --answer FILE [--lyrebird PATH] [--timeout-seconds N]` (each request's
 * limit, default 45): onionbox-moat.service's command (as
 * tor's user, debian-tor). Reads the job onionboxd wrote, asks Moat over lyrebird's meek_lite client and
 * writes the raw answers for onionboxd, which validates them (firmware/tor/moat-ask.ts). Exit 0 when the
 * answer file was written, whatever Moat said.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { obxError } from '../errors.js';
import { atomicWriteFile } from '../lib/atomic-write.js';
import { parseMoatJob, runMoatJob } from '../tor/moat-ask.js';
import { parseCliArgs, stringOption } from './args.js';
import type { CliCommand } from './types.js';

export const moatAskCommand: CliCommand = {
  name: 'moat ask',
  summary: "onionbox-moat.service: ask Moat over meek_lite for onionboxd's job",
  usage: 'onionbox moat ask --job FILE --answer FILE [--lyrebird PATH] [--timeout-seconds N]',
  async run(argv, ctx) {
    const { values } = parseCliArgs(
      argv,
      {
        job: { type: 'string' },
        answer: { type: 'string' },
        lyrebird: { type: 'string' },
        'timeout-seconds': { type: 'string' },
      },
      { required: ['job', 'answer'] },
    );
    const jobFile = stringOption(values, 'job') as string;
    const answerFile = stringOption(values, 'answer') as string;
    const timeout = stringOption(values, 'timeout-seconds');
    if (timeout !== undefined && !/^[1-9][0-9]{0,2}$/.test(timeout))
      throw obxError('CLI_USAGE', '--timeout-seconds must be 1-999');
    const job = parseMoatJob(await readFile(jobFile, 'utf8'));
    const answer = await runMoatJob(job, {
      lyrebird: stringOption(values, 'lyrebird') ?? '/usr/bin/lyrebird',
      stateDir: join(dirname(answerFile), 'pt'),
      ...(timeout !== undefined ? { timeoutMs: Number(timeout) * 1000 } : {}),
    });
    // group-readable: onionboxd reads it as a member of tor's group
    await atomicWriteFile(answerFile, `${JSON.stringify(answer)}\n`, 0o640);
    ctx.out(`moat: ${answer.results.map((r) => `${r.kind} ${r.status ?? r.error ?? ''}`).join(', ')}\n`);
    return 0;
  },
};
