import type { SystemClock } from '../../firmware/box/controller.js';

/** A system clock for boxes in tests whose clock is never set: setting it changes nothing on the host. */
export const unchangedClock: SystemClock = { set: async () => undefined };
