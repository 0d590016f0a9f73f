/**
 * Every answer a Lua script of this package gives, in one place: the scripts
 * get these numbers interpolated (`${Status.replaced}` in their source), and
 * the code that reads their replies compares with the same constants, so a
 * number means one thing in every script.
 *
 * A session's state as the liveness rule decides it (preludes.ts
 * `liveness`) is one of ok (live), revoked (dead: ended, idle, past
 * retention, malformed), replaced or expired: VERIFY answers it as is.
 */
export const Status = {
  /** Success (VERIFY: any answer <= 0 is success, minus the time the session is known live up to). */
  ok: 0,
  /** No such live session: ended, idle too long, past its retention, or a malformed record. */
  revoked: 1,
  /** Replaced by a newer login (a tombstone). */
  replaced: 2,
  /** Past its absolute deadline (kept a while to answer so). */
  expired: 3,
  /** The token's claims version is not the session's. */
  stale: 4,
  /** A refresh token that is not the session's (or a session without refresh state). */
  invalid: 5,
  /** A rotated refresh token presented after its grace window: the session was ended. */
  reused: 6,
  /** An older refresh token within its grace window: answered with its successor. */
  grace: 7,
  /** A session binding (IssueContext.bindings) stored and different from the one presented. Nothing changed. */
  bindingMismatch: 8,
  /**
   * onceSpentBase + i: the i-th one-time key (0-based) was already spent
   * (SPEND prelude). Every status above stays below it.
   */
  onceSpentBase: 10
} as const

export type StatusCode = typeof Status[keyof typeof Status]

