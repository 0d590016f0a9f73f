/**
 * When a pair is due for a refresh: its planned time (before `exp`, with
 * jitter), the server's "not before" (`Retry-After`), and the timer of timer
 * mode (`autoRefresh`).
 */
import type { StoredTokens } from './storage.js'

export interface Schedule {
  /** The planned refresh time: `exp` minus `refreshBeforeSeconds` (at most a quarter of the life) minus jitter. */
  refreshAt: (tokens: StoredTokens) => number
  /** The server asked to wait (429 `Retry-After`) and the wait is not over. */
  waiting: (tokens: StoredTokens) => boolean
  /** When this pair may be refreshed: its planned time, or the end of the server's wait when later. */
  dueAt: (tokens: StoredTokens) => number
  /** Timer mode: (re)arms the timer for this pair, or stops it for null. Does nothing otherwise. */
  arm: (tokens: StoredTokens | null) => void
  /** Stops the timer for good (the client is closed). */
  stop: () => void
}

export interface ScheduleSettings {
  refreshBeforeMs: number
  jitterMaxMs: number
  autoRefresh: boolean
  now: () => number
  /** What the timer does when it fires: refresh the stored pair when it is due (and arm again). */
  onTimer: () => Promise<void>
}

export function createSchedule (settings: ScheduleSettings): Schedule {
  const { refreshBeforeMs, jitterMaxMs, now } = settings
  // One jitter per pair, so that `session()` answers the same plan until the pair changes.
  let jitter = { token: '', ms: 0 }
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false

  function refreshAt (tokens: StoredTokens): number {
    const life = Math.max(0, tokens.expires_at - tokens.obtained_at)
    const before = Math.min(refreshBeforeMs, life / 4)
    if (jitter.token !== tokens.refresh_token) jitter = { token: tokens.refresh_token, ms: Math.random() * Math.min(jitterMaxMs, before / 2) }
    return tokens.expires_at - before - jitter.ms
  }
  const waiting = (tokens: StoredTokens): boolean => tokens.refresh_retry_at !== undefined && now() < tokens.refresh_retry_at
  const dueAt = (tokens: StoredTokens): number => Math.max(refreshAt(tokens), tokens.refresh_retry_at ?? 0)

  function arm (tokens: StoredTokens | null): void {
    clearTimeout(timer)
    timer = undefined
    if (!settings.autoRefresh || !tokens || stopped) return
    timer = setTimeout(() => {
      timer = undefined
      void settings.onTimer().catch(() => {})
    }, Math.max(0, dueAt(tokens) - now()))
    // Timers keep a Node process alive; a script's client must not.
    ;(timer as { unref?: () => void }).unref?.()
  }

  return {
    refreshAt,
    waiting,
    dueAt,
    arm,
    stop () {
      stopped = true
      arm(null)
    }
  }
}
