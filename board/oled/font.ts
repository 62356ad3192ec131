/**
 * Text for the OLED: glyphs from the oled-font-5x7 package (5 columns x 7 rows, one byte per column,
 * least significant bit at the top: the SSD1306's own page layout).
 */
import { createRequire } from 'node:module';

interface FontData {
  monospace: boolean;
  width: number;
  height: number;
  fontData: number[];
  lookup: string[];
}

const require = createRequire(import.meta.url);
const font = require('oled-font-5x7') as FontData;

export const GLYPH_WIDTH = font.width;
export const GLYPH_HEIGHT = font.height;
/** Columns per character including one blank column between characters. */
export const ADVANCE = GLYPH_WIDTH + 1;

const index = new Map<string, number>();
font.lookup.forEach((ch, i) => {
  index.set(ch, i);
});

/** The glyph's columns, or '?' for characters the font lacks. */
export function glyphColumns(ch: string): number[] {
  const i = index.get(ch) ?? index.get('?') ?? 0;
  return font.fontData.slice(i * GLYPH_WIDTH, (i + 1) * GLYPH_WIDTH);
}
