/**
 * Validation of configuration documents: the TypeBox schema, then the stricter grammars of the parts
 * that use the settings, handed over here by name (CONFIG_CHECKS): tor's bridge lines and countries
 * (firmware/tor/grammar.ts) and the networking values (firmware/net/config-check.ts). A document one of
 * them would refuse is never stored. Returns field-level messages; never throws for bad input.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { obxError } from '../errors.js';
import { problemSummary, schemaProblems } from '../lib/schema-problems.js';
import { networkProblems } from '../net/config-check.js';
import { torSettingsProblems } from '../tor/grammar.js';
import { type Config, ConfigSchema } from './schema.js';

const compiled = TypeCompiler.Compile(ConfigSchema);

/** A deeper check for one part of the document; returns field path -> message for each problem. */
export type ConfigCheck = (config: Config) => Record<string, string>;

/** The grammars every stored document passes, after the schema. */
export const CONFIG_CHECKS: readonly ConfigCheck[] = Object.freeze([
  (config: Config) => torSettingsProblems(config.tor),
  networkProblems,
]);

export function configProblems(
  doc: unknown,
  checks: readonly ConfigCheck[] = CONFIG_CHECKS,
): Record<string, string> {
  if (!compiled.Check(doc)) return schemaProblems(compiled, doc);
  const problems: Record<string, string> = {};
  for (const check of checks) Object.assign(problems, check(doc));
  return problems;
}

/** Validates and returns a deep-frozen copy, or throws OBX_ERR_CONFIG_INVALID with field details. */
export function validateConfig(doc: unknown): Readonly<Config> {
  const problems = configProblems(doc);
  if (Object.keys(problems).length > 0) {
    throw obxError('CONFIG_INVALID', problemSummary(problems), { details: problems });
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
