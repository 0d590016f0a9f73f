/**
 * What the server's error codes mean for the session: over (and why), worth
 * a refresh, or neither.
 */
import type { StoredTokens } from './storage.js'

export type SessionEndReason = 'replaced' | 'revoked' | 'reused' | 'expired'

export const END_REASONS: ReadonlySet<unknown> = new Set<SessionEndReason>(['replaced', 'revoked', 'reused', 'expired'])

/** The server's error codes that end a session, and the reason each one gives. */
const ENDED: Readonly<Record<string, SessionEndReason>> = {
  AUTH_SESSION_REPLACED: 'replaced',
  AUTH_SESSION_REVOKED: 'revoked',
  AUTH_REFRESH_REUSED: 'reused',
  AUTH_SESSION_EXPIRED: 'expired'
}

/** The codes of a 401 on a call that a refresh cures. */
const REFRESHABLE: ReadonlySet<string> = new Set(['AUTH_TOKEN_EXPIRED', 'AUTH_TOKEN_STALE'])

/** The reason a call's 401 `code` gives for the session's end, if it is one. */
export const endReasonOf = (code: string): SessionEndReason | undefined => Object.hasOwn(ENDED, code) ? ENDED[code] : undefined

/** Whether a call's 401 `code` says a new access token would do. */
export const isRefreshable = (code: string): boolean => REFRESHABLE.has(code)

/**
 * The reason a refused refresh gives. The contract lets a server answer
 * AUTH_REFRESH_INVALID for an ended session instead of disclosing its state.
 * A refresh token refused before its own expiry was ended by the server
 * (`revoked`); one past it timed out (`expired`).
 */
export function refreshEndReason (code: string, refused: StoredTokens, at: number): SessionEndReason | undefined {
  if (code !== 'AUTH_REFRESH_INVALID') return endReasonOf(code)
  return refused.refresh_expires_at !== undefined && at >= refused.refresh_expires_at ? 'expired' : 'revoked'
}
