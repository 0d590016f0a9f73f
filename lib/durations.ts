/**
 * Durations in options take seconds (a number) or a string such as '15m'.
 * Parsed once at register time; everything internal is milliseconds.
 */
export type Duration = number | string

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

export function toMs (value: number | string, name: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be a non-negative number of seconds`)
    return Math.round(value * 1000)
  }
  const match = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value) : null
  if (!match) throw new TypeError(`${name} must be seconds or a duration string such as '15m' (got ${JSON.stringify(value)})`)
  return Math.round(Number(match[1]) * UNIT_MS[match[2] ?? 's'])
}

export function toPositiveMs (value: number | string, name: string): number {
  const ms = toMs(value, name)
  if (ms <= 0) throw new TypeError(`${name} must be greater than zero`)
  return ms
}
