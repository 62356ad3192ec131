/**
 * A child process's output as lines: what tor, hostapd and dnsmasq print is followed line by line
 * (readiness messages, warnings) and the last few lines are kept for error messages.
 */
import type { Readable } from 'node:stream';

/** Calls onLine with every complete line the streams print (UTF-8, without the line end). */
export function followLines(
  streams: readonly (Readable | null | undefined)[],
  onLine: (line: string) => void,
): void {
  for (const stream of streams) {
    let buffered = '';
    stream?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
  }
}

/** The last `max` lines, oldest first. */
export class LastLines {
  readonly #lines: string[] = [];

  readonly #max: number;
  constructor(max: number) {
    this.#max = max;
  }

  push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.#max) this.#lines.shift();
  }

  last(n = this.#max): string[] {
    return this.#lines.slice(-n);
  }
}
