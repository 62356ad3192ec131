/**
 * TypeBox check results as field path -> message (the first message per path, at most 20 paths), and the
 * one-line summary of such problems that errors carry. Shared by the configuration document
 * (firmware/config/validate.ts) and the update manifest (firmware/update/manifest.ts).
 */
import type { TSchema } from '@sinclair/typebox';
import type { TypeCheck } from '@sinclair/typebox/compiler';

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
