/** What the app hears: the client's events and their listeners. */
import type { SessionEndReason } from './session-end.js'

export interface AuthClientEvents {
  'session-ended': { reason: SessionEndReason, code: string }
  /** A new token pair: `source` is `local` when this client refreshed, `other-tab` when another did. */
  refresh: { sessionId: string, expiresAt: number, source: 'local' | 'other-tab' }
  login: { sessionId: string, source: 'local' | 'other-tab' }
  logout: { source: 'local' | 'other-tab' }
}
export type EventName = keyof AuthClientEvents
export type Listener<E extends EventName> = (event: AuthClientEvents[E]) => void

export interface Emitter {
  /** Subscribes; returns the unsubscribe function. */
  on: <E extends EventName>(event: E, listener: Listener<E>) => () => void
  emit: <E extends EventName>(event: E, payload: AuthClientEvents[E]) => void
  clear: () => void
}

export function createEmitter (): Emitter {
  const listeners = new Map<EventName, Set<Listener<EventName>>>()
  return {
    on (event, listener) {
      let set = listeners.get(event)
      if (!set) listeners.set(event, set = new Set())
      set.add(listener as Listener<EventName>)
      return () => { set.delete(listener as Listener<EventName>) }
    },
    emit (event, payload) {
      for (const listener of [...(listeners.get(event) ?? [])]) {
        try {
          listener(payload)
        } catch (err) {
          // A listener's bug must not break the session logic: report it as the platform would.
          const report = (globalThis as { reportError?: (e: unknown) => void }).reportError
          if (report) report(err)
          else console.error(err)
        }
      }
    },
    clear () { listeners.clear() }
  }
}

/**
 * `session-ended` fires once per session, in every tab: whichever of this
 * tab's calls, its refresh or another tab's message learns of the end first
 * announces it. A logout is no end to announce; a new login may end again.
 */
export interface EndNotices {
  /** True the first time for this session (and remembers it). */
  first: (sessionId: string) => boolean
  /** This session's end needs no announcement (it was logged out). */
  settle: (sessionId: string) => void
  /** A new login: its end will be news. */
  reset: () => void
}

export function createEndNotices (): EndNotices {
  let announced = ''
  return {
    first (sessionId) {
      if (announced === sessionId) return false
      announced = sessionId
      return true
    },
    settle (sessionId) { announced = sessionId },
    reset () { announced = '' }
  }
}
