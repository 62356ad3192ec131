/** The framebuffer as a PNG (white pixels on black, scaled up) for the simulator panel and golden tests. */
import { PNG } from 'pngjs';
import type { Framebuffer } from './framebuffer.js';

export function framebufferToPng(fb: Framebuffer, scale = 2): Buffer {
  const png = new PNG({ width: fb.width * scale, height: fb.height * scale });
  for (let y = 0; y < fb.height * scale; y++) {
    for (let x = 0; x < fb.width * scale; x++) {
      const on = fb.getPixel(Math.floor(x / scale), Math.floor(y / scale));
      const i = (y * fb.width * scale + x) * 4;
      const v = on ? 0xff : 0x00;
      png.data[i] = v;
      png.data[i + 1] = v;
      png.data[i + 2] = v;
      png.data[i + 3] = 0xff;
    }
  }
  return PNG.sync.write(png, { colorType: 0, inputColorType: 6 });
}

/** Reads a PNG written by framebufferToPng back into on/off pixels (for golden comparisons). */
export function pngPixels(buf: Buffer): {
  width: number;
  height: number;
  on: (x: number, y: number) => boolean;
} {
  const png = PNG.sync.read(buf);
  return {
    width: png.width,
    height: png.height,
    on: (x, y) => (png.data[(y * png.width + x) * 4] ?? 0) > 127,
  };
}
