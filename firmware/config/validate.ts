/**
 * Validation of configuration documents: the TypeBox schema plus the stricter grammars subsystems
 * register (e.g. tor's bridge-line grammar). Returns field-level messages; never throws for bad input.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { obxError } from '../errors.js';
import { type Config, ConfigSchema } from './schema.js';

const compiled = TypeCompiler.Compile(ConfigSchema);

/** A deeper check for one part of the document; returns field path -> message for each problem. */
export type ConfigCheck = (config: Config) => Record<string, string>;

const extraChecks = new Map<string, ConfigCheck>();

/** Subsystems add their grammar once, at import time (keyed, so re-registering replaces). */
export function registerConfigCheck(name: string, check: ConfigCheck): void {
  extraChecks.set(name, check);
}

export function configProblems(doc: unknown): Record<string, string> {
  const problems: Record<string, string> = {};
  if (!compiled.Check(doc)) {
    for (const e of compiled.Errors(doc)) {
      const path = e.path === '' ? '/' : e.path;
      if (!(path in problems)) problems[path] = e.message;
      if (Object.keys(problems).length >= 20) break;
    }
    return problems;
  }
  for (const check of extraChecks.values()) Object.assign(problems, check(doc));
  return problems;
}

/** Validates and returns a deep-frozen copy, or throws OBX_ERR_CONFIG_INVALID with field details. */
export function validateConfig(doc: unknown): Readonly<Config> {
  const problems = configProblems(doc);
  const fields = Object.keys(problems);
  if (fields.length > 0) {
    const summary = fields
      .slice(0, 3)
      .map((f) => `${f} ${problems[f]}`)
      .join('; ');
    throw obxError('CONFIG_INVALID', summary, { details: problems });
  }
  return deepFreeze(structuredClone(doc as Config));
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
