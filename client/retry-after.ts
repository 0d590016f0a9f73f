/**
 * How long the server asks a client to wait before its next refresh: the
 * `Retry-After` of a refused refresh (RFC 9110 §10.2.3), as delay-seconds or
 * an HTTP-date.
 */

/**
 * A 429 without a usable `Retry-After` (a proxy's, say) still means "not now":
 * without some wait, every call would ask again at once.
 */
export const DEFAULT_RATE_LIMIT_WAIT_MS = 5000

/**
 * An HTTP-date is on the server's clock: it is measured against the answer's
 * own `Date` when there is one, so that a device clock off by an hour does
 * not turn a 30-second wait into none, or into an hour.
 */
function retryAfterMs (value: string, serverDate: string | null, now: number): number | null {
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  // The three HTTP-date forms begin with the day's name; Date.parse alone takes '-3' for a year.
  const at = /^[a-z]{3}/i.test(trimmed) ? Date.parse(trimmed) : Number.NaN
  if (Number.isNaN(at)) return null
  const sent = serverDate === null ? Number.NaN : Date.parse(serverDate)
  return Math.max(0, at - (Number.isNaN(sent) ? now : sent))
}

/**
 * The wait, in milliseconds, a refused refresh asks for, or null when it asks
 * for none: a 429 always does; a 503 when it says how long.
 */
export function refreshWaitMs (response: Response, now: number): number | null {
  const header = response.headers.get('retry-after')
  const asked = header === null ? null : retryAfterMs(header, response.headers.get('date'), now)
  if (response.status === 429) return asked ?? DEFAULT_RATE_LIMIT_WAIT_MS
  return response.status === 503 ? asked : null
}
