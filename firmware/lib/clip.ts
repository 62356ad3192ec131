/**
 * Text cut to a length for the owner to read (tor's warnings on the status page): at a word boundary,
 * with an ellipsis that shows text is missing.
 */

/**
 * `text` if it fits in `max` characters; else its start up to the last whole word (a single word longer
 * than half of `max` is cut inside) followed by "…", at most `max` characters in all.
 */
export function clipText(text: string, max: number): string {
  if (text.length <= max) return text;
  const room = text.slice(0, Math.max(0, max - 1)); // one character for the ellipsis
  const boundary = /\s/.test(text.charAt(room.length)) ? room.length : room.search(/\s\S*$/);
  const kept = boundary > max / 2 ? room.slice(0, boundary) : room;
  return `${kept.replace(/[\s,;:]+$/, '')}…`;
}
