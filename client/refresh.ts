/**
 * Single flight: one refresh per client at a time, shared by every call that
 * needs it, and across tabs one at a time under a Web Lock. Inside, a pair
 * other than the one the caller used means another tab (or process)
 * refreshed or signed in already: that pair is the answer.
 */
import type { LockManagerLike } from './options.js'
import type { StoredTokens, TokenStorage } from './storage.js'

/** How long a tab keeps the cross-tab refresh lock after refreshing, for other tabs to see the new pair. */
const LOCK_SETTLE_MS = 250

export interface SingleFlightParts {
  storage: TokenStorage
  /** `null`: no cross-tab lock (the server's grace window makes concurrent refreshes converge). */
  locks: LockManagerLike | null
  lockName: string
  /** The server asked to wait before refreshing this pair. */
  waiting: (tokens: StoredTokens) => boolean
  /** One refresh with the server; answers the pair to use, or null when the session is over. */
  exchange: (stored: StoredTokens) => Promise<StoredTokens | null>
}

/** Answers the pair that replaces `used` (maybe `used` itself, kept), or null when no session remains. */
export type RefreshFrom = (used: StoredTokens) => Promise<StoredTokens | null>

export function createSingleFlight ({ storage, locks, lockName, waiting, exchange }: SingleFlightParts): RefreshFrom {
  let inflight: Promise<StoredTokens | null> | null = null
  const delay = (ms: number) => new Promise<void>((resolve) => { setTimeout(resolve, ms) })

  const run = async (used: StoredTokens): Promise<StoredTokens | null> => {
    const stored = await storage.get()
    if (!stored) return null
    if (stored.refresh_token !== used.refresh_token || waiting(stored)) return stored
    return await exchange(stored)
  }

  return function refreshFrom (used) {
    if (inflight) return inflight
    if (!locks) {
      inflight = run(used).finally(() => { inflight = null })
      return inflight
    }
    inflight = new Promise<StoredTokens | null>((resolve, reject) => {
      locks.request(lockName, async () => {
        const result = await run(used)
        // This tab's callers go on at once; the lock is held a moment longer.
        resolve(result)
        // Browsers carry a localStorage write (and a BroadcastChannel message)
        // to other tabs asynchronously: a tab taking the lock right after us
        // could still read the pair we just used up and refresh it again.
        if (result !== null && result.refresh_token !== used.refresh_token) await delay(LOCK_SETTLE_MS)
      }).catch(reject)
    }).finally(() => { inflight = null })
    return inflight
  }
}
