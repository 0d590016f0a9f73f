import { Status } from './lua/status.js'
import type { OnceKeys } from './types.js'

/*
 * One-time keys (OnceKeys): extensions add them to a verify plan or an issue
 * context, the script that does the work spends them (SPEND prelude, all or
 * none), and its answer names the first one already spent.
 */

/**
 * Adds a key for the script to spend, kept `ttlMs` and refused with `error`
 * when already spent. `ttlMs` may come from NumericDates, which may be
 * fractional (RFC 7519): Redis takes only whole milliseconds for PX, so it is
 * rounded up (a key is never kept for less time than asked), and at least 1.
 */
export function addOnceKey (once: OnceKeys, key: string, ttlMs: number, error: () => Error): void {
  once.onceKeys.push(key)
  once.onceTtls.push(Math.max(1, Math.ceil(ttlMs)))
  once.onceErrors.push(error)
}

/** The error of the one-time key a script answered already spent (Status.onceSpentBase + i); undefined for any other answer. */
export function onceSpentError (status: number, once: OnceKeys): Error | undefined {
  return status >= Status.onceSpentBase ? once.onceErrors[status - Status.onceSpentBase]() : undefined
}
