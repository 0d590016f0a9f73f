/**
 * This client's changes to the session, each made in one place: the storage
 * is written, the other tabs are told, the timer re-armed and the app's
 * listeners called, in that order.
 */
import type { EndNotices, Emitter } from './events.js'
import type { Schedule } from './schedule.js'
import type { SessionEndReason } from './session-end.js'
import type { StoredTokens, TokenStorage } from './storage.js'
import type { Tabs } from './tabs.js'

export interface LocalSession {
  /** A new pair from a login or a refresh here. */
  adopt: (tokens: StoredTokens, kind: 'login' | 'refresh') => Promise<void>
  /** The server says the session `basedOn` is over: forget it and announce it (once). */
  end: (reason: SessionEndReason, code: string, basedOn: StoredTokens) => Promise<void>
  /** The server refused a refresh of `refused` until `until`: keep the wait with the pair; answers the pair to use. */
  holdOff: (refused: StoredTokens, until: number) => Promise<StoredTokens>
  /** Signed out here: forget the pair and tell the other tabs. */
  loggedOut: (sessionId: string) => Promise<void>
  /** Forgets the pair when it is this session's (not a newer login's). */
  forget: (sessionId: string) => Promise<void>
}

export interface SessionParts {
  storage: TokenStorage
  schedule: Schedule
  emitter: Emitter
  ends: EndNotices
  /** Late-bound: the tabs module needs `forget` before it exists. */
  tabs: () => Tabs
}

export function createLocalSession ({ storage, schedule, emitter, ends, tabs }: SessionParts): LocalSession {
  async function forget (sessionId: string): Promise<void> {
    const stored = await storage.get()
    if (stored && stored.session_id === sessionId) await storage.remove()
    schedule.arm(null)
  }

  return {
    forget,
    async adopt (tokens, kind) {
      await storage.set(tokens)
      if (kind === 'login') ends.reset()
      tabs().post({ type: 'tokens', kind, tokens })
      schedule.arm(tokens)
      if (kind === 'login') emitter.emit('login', { sessionId: tokens.session_id, source: 'local' })
      else emitter.emit('refresh', { sessionId: tokens.session_id, expiresAt: tokens.expires_at, source: 'local' })
    },
    async end (reason, code, basedOn) {
      const stored = await storage.get()
      // A newer session (another tab signed in again) is not what ended.
      if (stored && stored.session_id !== basedOn.session_id) return
      if (stored) await storage.remove()
      schedule.arm(null)
      if (!ends.first(basedOn.session_id)) return
      tabs().post({ type: 'ended', sessionId: basedOn.session_id, reason, code })
      emitter.emit('session-ended', { reason, code })
    },
    /**
     * Keeps the server's "not before" with the pair, where every client of the
     * storage reads it, and tells tabs with storage of their own. A pair that
     * changed meanwhile (a login in another tab) is not the one refused.
     */
    async holdOff (refused, until) {
      const latest = await storage.get()
      if (!latest || latest.refresh_token !== refused.refresh_token) return refused
      const held: StoredTokens = { ...latest, refresh_retry_at: until }
      await storage.set(held)
      tabs().post({ type: 'backoff', sessionId: held.session_id, until })
      // Timer mode tries again when the wait is over.
      schedule.arm(held)
      return held
    },
    async loggedOut (sessionId) {
      ends.settle(sessionId)
      await forget(sessionId)
      tabs().post({ type: 'logout', sessionId })
      emitter.emit('logout', { source: 'local' })
    }
  }
}
