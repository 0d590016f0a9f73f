import type { Verifier } from './verify-cache.js'

/*
 * The time claims of a verified token, checked as numbers we can compute
 * with. fast-jwt checks only that they are numbers, and JSON's 1e309 is one
 * (Infinity): an `exp` of 1e309 would never expire, an `nbf` of -1e309 be
 * valid since forever, and a huge `exp` makes TTLs that Redis refuses (a
 * false 503). A fractional NumericDate is valid (RFC 7519 section 2) and
 * accepted: what computes a TTL from one rounds it to whole milliseconds.
 */

/** The latest NumericDate accepted: 9999-12-31T23:59:59Z, the last second a Date's ISO string can show in four digits. */
export const MAX_NUMERIC_DATE = 253_402_300_799

const TIME_CLAIMS = ['exp', 'iat', 'nbf'] as const

/** Why a verified token was still refused: the authenticate hook answers AUTH_TOKEN_INVALID. */
export class NumericDateError extends Error {}

function isNumericDate (value: unknown): boolean {
  // Also false for NaN, whatever JSON could not carry anyway.
  return typeof value === 'number' && value >= 0 && value <= MAX_NUMERIC_DATE
}

/** `verify`, refusing a token whose exp, iat or nbf, when present, is not a NumericDate in [0, MAX_NUMERIC_DATE]. */
export function checkNumericDates (verify: Verifier): Verifier {
  return function verifyNumericDates (token: string): unknown {
    const payload = verify(token) as Record<string, unknown>
    for (const claim of TIME_CLAIMS) {
      if (claim in payload && !isNumericDate(payload[claim])) throw new NumericDateError(`${claim} is not a NumericDate in range`)
    }
    return payload
  }
}
