/**
 * A 1-bit framebuffer in the SSD1306's memory layout: `pages` rows of 8 pixels, one byte per column per
 * page, bit 0 at the top. The real OLED sends these bytes as they are; the simulator turns them into a PNG.
 */
import { ADVANCE, GLYPH_HEIGHT, glyphColumns } from './font.js';

export const WIDTH = 128;
export const HEIGHT = 64;

export class Framebuffer {
  readonly width: number;
  readonly height: number;
  readonly bytes: Uint8Array;

  constructor(width = WIDTH, height = HEIGHT) {
    if (height % 8 !== 0) throw new Error('framebuffer height must be a multiple of 8');
    this.width = width;
    this.height = height;
    this.bytes = new Uint8Array((width * height) / 8);
  }

  get pages(): number {
    return this.height / 8;
  }

  clear(): void {
    this.bytes.fill(0);
  }

  setPixel(x: number, y: number, on = true): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y >> 3) * this.width + x;
    const bit = 1 << (y & 7);
    this.bytes[i] = on ? (this.bytes[i] ?? 0) | bit : (this.bytes[i] ?? 0) & ~bit;
  }

  getPixel(x: number, y: number): boolean {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return false;
    return (((this.bytes[(y >> 3) * this.width + x] ?? 0) >> (y & 7)) & 1) === 1;
  }

  fillRect(x: number, y: number, w: number, h: number, on = true): void {
    for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < x + w; xx++) this.setPixel(xx, yy, on);
  }

  strokeRect(x: number, y: number, w: number, h: number): void {
    for (let xx = x; xx < x + w; xx++) {
      this.setPixel(xx, y);
      this.setPixel(xx, y + h - 1);
    }
    for (let yy = y; yy < y + h; yy++) {
      this.setPixel(x, yy);
      this.setPixel(x + w - 1, yy);
    }
  }

  /** Draws text with its top-left corner at (x, y); `scale` multiplies each pixel. Returns the end x. */
  drawText(text: string, x: number, y: number, scale = 1): number {
    let cx = x;
    for (const ch of text) {
      const cols = glyphColumns(ch);
      cols.forEach((col, dx) => {
        for (let dy = 0; dy < GLYPH_HEIGHT; dy++) {
          if ((col >> dy) & 1) this.fillRect(cx + dx * scale, y + dy * scale, scale, scale);
        }
      });
      cx += ADVANCE * scale;
    }
    return cx;
  }

  /** The bytes of one page (8 pixel rows), as the controller's GRAM holds them. */
  page(p: number): Uint8Array {
    return this.bytes.subarray(p * this.width, (p + 1) * this.width);
  }
}

/** How many characters fit across at a scale. */
export function charsPerLine(scale = 1, width = WIDTH): number {
  return Math.floor((width + 1) / (ADVANCE * scale));
}
