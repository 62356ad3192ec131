/**
 * The one range of clock values the box believes (the page's clock form, BoxApi.setClock and the clock
 * service in firmware/tor/clock.ts all use it): from this firmware's build year to 2100, both ends
 * included. A Pi without RTC boots in 1970; nothing before the build year can be right.
 */
export const CLOCK_MIN_MS = Date.UTC(2026, 0, 1);
export const CLOCK_MAX_MS = Date.UTC(2100, 0, 1);

export function clockInRange(ms: unknown): ms is number {
  return typeof ms === 'number' && Number.isInteger(ms) && ms >= CLOCK_MIN_MS && ms <= CLOCK_MAX_MS;
}

/** The range in words for messages. */
export const CLOCK_RANGE_TEXT = `between ${new Date(CLOCK_MIN_MS).getUTCFullYear()} and ${new Date(CLOCK_MAX_MS).getUTCFullYear()}`;
