/**
 * The one source of "now" for session state. Tests and apps may pass their own
 * (for example a clock shared with their JWT library) through plugin options.
 */
export type Clock = () => number

export const systemClock: Clock = Date.now
