/**
 * TypeBox check results as field path -> message (the first message per path, at most 20 paths), the
 * one-line summary of such problems that errors carry, and the one way a JSON text is read against its
 * schema (parseJsonChecked). Shared by the configuration document, the update manifest and records, and
 * Moat's answers and files.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import type { TypeCheck } from '@sinclair/typebox/compiler';
import { type ErrorName, obxError } from '../errors.js';

export function schemaProblems<T extends TSchema>(
  compiled: TypeCheck<T>,
  doc: unknown,
): Record<string, string> {
  const problems: Record<string, string> = {};
  for (const e of compiled.Errors(doc)) {
    const path = e.path === '' ? '/' : e.path;
    if (!(path in problems)) problems[path] = e.message;
    if (Object.keys(problems).length >= 20) break;
  }
  return problems;
}

/** "path message; path message; path message" for the first three problems. */
export function problemSummary(problems: Readonly<Record<string, string>>): string {
  return Object.keys(problems)
    .slice(0, 3)
    .map((f) => `${f} ${problems[f]}`)
    .join('; ');
}

/**
 * A JSON text checked against its compiled schema, or OBX_ERR_<name> thrown: longer than maxBytes
 * (refused before parsing), "not JSON", or the first three problems (all of them in the error's details).
 * `what` prefixes each message when the error names more than one kind of document.
 */
export function parseJsonChecked<T extends TSchema>(
  text: string,
  compiled: TypeCheck<T>,
  name: ErrorName,
  opts: { maxBytes?: number; what?: string } = {},
): Static<T> {
  const prefix = opts.what === undefined ? '' : `${opts.what}: `;
  if (opts.maxBytes !== undefined && Buffer.byteLength(text) > opts.maxBytes)
    throw obxError(name, `${prefix}longer than ${opts.maxBytes} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw obxError(name, `${prefix}not JSON`, { cause: err });
  }
  if (!compiled.Check(doc)) {
    const problems = schemaProblems(compiled, doc);
    throw obxError(name, `${prefix}${problemSummary(problems)}`, { details: problems });
  }
  return doc;
}
