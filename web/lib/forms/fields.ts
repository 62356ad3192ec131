/**
 * What every page area's form shares (web/lib/forms/<area>.ts): reading fields from a posted body, the
 * per-field errors a page shows beside its inputs, and the one mapping from a problem's path (the config
 * store's or a grammar's) to the form field it names.
 */

export type FormBody = Record<string, unknown>;
export type FieldErrors = Record<string, string>;

/** A form checked: the value for the box, or the problems per field. */
export type Checked<T> = { ok: true; value: T } | { ok: false; errors: FieldErrors };

/** The string value of a form field; arrays (a repeated field) and anything else count as missing. */
export function field(body: unknown, name: string): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const v = (body as FormBody)[name];
  return typeof v === 'string' ? v : undefined;
}

export function checkbox(body: unknown, name: string): boolean {
  const v = field(body, name);
  return v === 'on' || v === '1' || v === 'true';
}

/** Where a problem points: the form field and, for an item of a list, its index. */
export interface FieldRef {
  name: string;
  index?: number;
}

export interface FieldErrorsOptions {
  /**
   * The document section the form edits ("tor"): a path below it ("/tor/bridges/3") names the field by
   * its first segment and the item by its index; any other path is the whole form's ("form"). Without a
   * section, a path's last segment is the field ("ssid", "/network/accessPoint/ssid").
   */
  section?: string;
  /** The message in the owner's words (default: as given). */
  explain?: (message: string, at: FieldRef) => string;
}

/**
 * Problems by path (an OBX_ERR_CONFIG_INVALID's or OBX_ERR_NET_VALUE_INVALID's details, configProblems)
 * as errors by form field; the first problem per field wins.
 */
export function fieldErrors(problems: Record<string, string>, opts: FieldErrorsOptions = {}): FieldErrors {
  const errors: FieldErrors = {};
  for (const [path, message] of Object.entries(problems)) {
    const at = fieldOf(path, opts.section);
    if (errors[at.name] !== undefined) continue;
    errors[at.name] = opts.explain ? opts.explain(message, at) : message;
  }
  return errors;
}

function fieldOf(path: string, section: string | undefined): FieldRef {
  if (section === undefined) return { name: path.split('/').pop() ?? 'form' };
  const m = new RegExp(`^/${section}/([A-Za-z]+)(?:/([0-9]+))?`).exec(path);
  if (!m?.[1]) return { name: 'form' };
  return m[2] === undefined ? { name: m[1] } : { name: m[1], index: Number(m[2]) };
}
