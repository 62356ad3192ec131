/**
 * Asking Moat from the box (issue 21), across the privilege split: onionboxd (user `onionbox`, no
 * CAP_SETUID) cannot run anything as tor's user, so the Moat client runs in a unit of its own,
 * onionbox-moat.service (User=debian-tor, tor's private resolv.conf bound over /etc/resolv.conf, as
 * onionbox-tor.service), started by onionbox-moat.path whenever onionboxd writes a new job file. The
 * firewall's opening for it is tor's uid's (firmware/tor/transports.ts: `MOAT_NEEDS`), only while a job
 * runs.
 *
 *   onionboxd   writes the job (/var/lib/onionbox/moat-job.json: an id, the endpoint, the requests),
 *               opens the window, waits for the answer with that id, closes the window, and validates
 *               every answer (moat.ts: one schema, then the bridge grammar) before anything reaches torrc
 *   the unit    `onionbox moat ask`: checks the job (its own schema), runs lyrebird's meek_lite client,
 *               sends each request, writes the raw answers to /run/onionbox-moat/answer.json (group
 *               debian-tor, which onionboxd is in)
 *
 * The pure parts (the job and answer schemas, what the answers give the try-list) are here with the two
 * thin adapters.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { describeError, obxError } from '../errors.js';
import { atomicWriteFile } from '../lib/atomic-write.js';
import { parseJsonChecked } from '../lib/schema-problems.js';
import {
  checkMoatEndpoint,
  type MoatEndpoint,
  type MoatKind,
  type MoatSetting,
  moatRequest,
  parseMoatSettings,
} from './moat.js';
import { moatFetch, startMeekClient } from './moat-client.js';

const Kind = Type.Union([Type.Literal('settings'), Type.Literal('defaults'), Type.Literal('builtin')]);
const Id = Type.String({ pattern: '^[0-9a-f]{32}$' });

export const MoatJobSchema = Type.Object(
  {
    id: Id,
    endpoint: Type.Object(
      {
        service: Type.String({ maxLength: 300 }),
        url: Type.String({ maxLength: 300 }),
        front: Type.String({ maxLength: 253 }),
      },
      { additionalProperties: false },
    ),
    requests: Type.Array(
      Type.Object(
        { kind: Kind, country: Type.Optional(Type.String({ pattern: '^[a-z]{2}$' })) },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 3 },
    ),
  },
  { additionalProperties: false },
);
export type MoatJob = Static<typeof MoatJobSchema>;

export const MoatJobAnswerSchema = Type.Object(
  {
    id: Id,
    results: Type.Array(
      Type.Object(
        {
          kind: Kind,
          status: Type.Optional(Type.Integer({ minimum: 0, maximum: 999 })),
          body: Type.Optional(Type.String({ maxLength: 256 * 1024 })),
          error: Type.Optional(Type.String({ maxLength: 500 })),
        },
        { additionalProperties: false },
      ),
      { maxItems: 3 },
    ),
  },
  { additionalProperties: false },
);
export type MoatJobAnswer = Static<typeof MoatJobAnswerSchema>;

const jobCheck = TypeCompiler.Compile(MoatJobSchema);
const answerCheck = TypeCompiler.Compile(MoatJobAnswerSchema);

/** A job file's text checked (its schema, the endpoint's grammar). Throws OBX_ERR_TOR_VALUE_INVALID. */
export function parseMoatJob(text: string): MoatJob {
  const doc = parseJsonChecked(text, jobCheck, 'TOR_VALUE_INVALID', { what: 'moat job' });
  checkMoatEndpoint(doc.endpoint);
  return doc;
}

/** An answer file's text checked; null when it is not (yet) the answer to job `id`. */
export function parseMoatJobAnswer(text: string, id: string): MoatJobAnswer | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  if (!answerCheck.Check(doc) || doc.id !== id) return null;
  return doc;
}

/** What one Moat job gave the try-list: the country's settings, the defaults, and what went wrong. */
export interface MoatParts {
  country: MoatSetting[];
  defaults: MoatSetting[];
  /** Why a part gave nothing (for the log and the page). */
  notes: string[];
}

/**
 * The try-list parts of a job's answer (pure): settings for the country first, Moat's defaults second;
 * each answer through the schema and the grammar (moat.ts). A request that failed, an HTTP error or an
 * answer the schema refuses gives nothing and a note; nothing of it reaches torrc.
 */
export function moatParts(
  answer: MoatJobAnswer,
  builtin?: (transport: string) => readonly string[],
): MoatParts {
  const parts: MoatParts = { country: [], defaults: [], notes: [] };
  for (const r of answer.results) {
    if (r.kind === 'builtin') continue;
    if (r.error !== undefined || r.body === undefined) {
      parts.notes.push(`${r.kind}: ${r.error ?? 'no answer'}`);
      continue;
    }
    if (r.status !== 200) {
      parts.notes.push(`${r.kind}: HTTP ${r.status ?? '?'}`);
      continue;
    }
    try {
      const got = parseMoatSettings(r.body, builtin ? { builtin } : {});
      if (got.errors.length > 0)
        parts.notes.push(`${r.kind}: Moat says ${got.errors.map((e) => e.code).join(', ')}`);
      if (got.settings.length === 0 && got.errors.length === 0) parts.notes.push(`${r.kind}: no setting`);
      (r.kind === 'settings' ? parts.country : parts.defaults).push(...got.settings);
    } catch (err) {
      parts.notes.push(`${r.kind}: ${(err as Error).message}`);
    }
  }
  return parts;
}

/** The job the assist sends: settings (for the owner's country, or the one Moat sees), then the defaults. */
export function assistJob(endpoint: MoatEndpoint, country?: string): MoatJob {
  return {
    id: randomBytes(16).toString('hex'),
    endpoint: { ...endpoint },
    requests: [{ kind: 'settings', ...(country !== undefined ? { country } : {}) }, { kind: 'defaults' }],
  };
}

/** How long one Moat request may take through meek_lite (a TLS handshake that never gets an answer ends here). */
export const MOAT_REQUEST_MS = 45_000;

/** The unit's side: runs a job (lyrebird's meek_lite, one request after another) and returns its answer. */
export async function runMoatJob(
  job: MoatJob,
  opts: { lyrebird: string; stateDir: string; timeoutMs?: number; lyrebirdArgs?: readonly string[] },
): Promise<MoatJobAnswer> {
  const endpoint = checkMoatEndpoint(job.endpoint);
  const results: MoatJobAnswer['results'] = [];
  let meek: Awaited<ReturnType<typeof startMeekClient>> | null = null;
  try {
    meek = await startMeekClient({
      lyrebird: opts.lyrebird,
      stateDir: opts.stateDir,
      ...(opts.lyrebirdArgs ? { args: opts.lyrebirdArgs } : {}),
    });
    // a request that could not get through (meek_lite, TLS, no answer in time): the next ones would fail
    // the same way, so they are not sent (the job ends sooner, and with it the firewall's window)
    let failed: string | null = null;
    for (const r of job.requests) {
      if (failed !== null) {
        results.push({ kind: r.kind, error: `not sent: ${failed}`.slice(0, 500) });
        continue;
      }
      try {
        const request = moatRequest(r.kind as MoatKind, { country: r.country });
        const res = await moatFetch({
          endpoint,
          socksPort: meek.port,
          request,
          timeoutMs: opts.timeoutMs ?? MOAT_REQUEST_MS,
        });
        results.push({ kind: r.kind, status: res.status, body: res.body });
      } catch (err) {
        failed = describeError(err).slice(0, 400);
        results.push({ kind: r.kind, error: failed });
      }
    }
  } catch (err) {
    for (const r of job.requests) results.push({ kind: r.kind, error: describeError(err).slice(0, 500) });
  } finally {
    await meek?.stop();
  }
  return { id: job.id, results };
}

/** onionboxd's side: write the job, wait for its answer, with the firewall's window open only meanwhile. */
export interface MoatAskerDeps {
  /** The job file onionbox-moat.path watches. */
  jobFile: string;
  /** The unit's answer file. */
  answerFile: string;
  /** Opens (true) or closes (false) tor's uid's window for Moat in the firewall. */
  window(open: boolean): Promise<void>;
  timeoutMs?: number;
  pollMs?: number;
  /** Stops the wait (onionboxd stopping): the window closes and this rejects at once. */
  signal?: AbortSignal;
}

export async function askMoat(job: MoatJob, deps: MoatAskerDeps): Promise<MoatJobAnswer> {
  try {
    // inside the try: an opening that failed half-way is closed again all the same
    await deps.window(true);
    await mkdir(dirname(deps.jobFile), { recursive: true, mode: 0o755 });
    // readable by the unit's user (debian-tor): nothing in it is a secret
    await atomicWriteFile(deps.jobFile, `${JSON.stringify(job)}\n`, 0o644);
    const deadline = Date.now() + (deps.timeoutMs ?? 150_000);
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, deps.pollMs ?? 500));
      if (deps.signal?.aborted) throw obxError('TOR_MOAT_FAILED', 'stopped while waiting for Moat');
      const text = await readFile(deps.answerFile, 'utf8').catch(() => '');
      const answer = text === '' ? null : parseMoatJobAnswer(text, job.id);
      if (answer) return answer;
    }
    throw obxError('TOR_MOAT_FAILED', 'no answer from onionbox-moat.service in time');
  } finally {
    await deps.window(false);
  }
}
