/**
 * fastify-jwt-sessions/client: a fetch wrapper that keeps a session's tokens
 * fresh, for single-page apps, mobile apps and Node scripts. No dependency
 * beyond `fetch` (and, when present, Web Locks and BroadcastChannel).
 *
 * This module is the public entry: it checks the options and composes the
 * parts, each of which has one job:
 *
 *   options.ts           the options, checked once; route paths from `authPrefix`/`paths`
 *   transport.ts         HTTP, and a token only ever to the API's origin
 *   token-pair.ts        the server's token pair answer, the JWT's claims
 *   schedule.ts          when a pair is due (plan, jitter, `Retry-After` wait) and timer mode
 *   session.ts           this client's changes to the session: storage, tabs, timer, events
 *   refresh.ts           single flight: one refresh for many calls, one tab at a time
 *   refresh-exchange.ts  one refresh with the server and what its answer means
 *   auth-fetch.ts        the app's fetch: token, refresh when due, one retry after a 401
 *   sign-in.ts           login, logout, logout-all
 *   sessions.ts          the session list, in the server's own shape
 *   tabs.ts, messages.ts cross-tab news over BroadcastChannel, and its message shapes
 *   events.ts            the app's events, and `session-ended` once per session
 *   session-end.ts       which server codes end a session (and why) or call for a refresh
 *   retry-after.ts       how long a refused refresh asks to wait
 *   storage.ts           where the pair lives (memory, localStorage, the app's own)
 *   errors.ts            AuthClientError and the server's error code
 */
import { createAuthFetch } from './auth-fetch.js'
import type { EventName, Listener } from './events.js'
import { createEmitter, createEndNotices } from './events.js'
import type { AuthClientOptions, AuthPaths } from './options.js'
import { resolveOptions } from './options.js'
import { createSingleFlight } from './refresh.js'
import { createRefreshExchange } from './refresh-exchange.js'
import { createSchedule } from './schedule.js'
import { createLocalSession } from './session.js'
import type { ListedSession } from './sessions.js'
import { readSessionList } from './sessions.js'
import type { LoginInput } from './sign-in.js'
import { createSignIn } from './sign-in.js'
import type { Tabs } from './tabs.js'
import { createTabs } from './tabs.js'
import type { SessionInfo } from './token-pair.js'
import { describePair } from './token-pair.js'
import { createTransport } from './transport.js'

export type { AuthClientEvents } from './events.js'
export type { SessionEndReason } from './session-end.js'
export type { AuthClientOptions, AuthPaths, LockManagerLike } from './options.js'
export type { ListedSession } from './sessions.js'
export type { LoginInput } from './sign-in.js'
export type { SessionInfo } from './token-pair.js'
export type { StoredTokens, TokenStorage, WebStorageLike } from './storage.js'
export { AuthClientError } from './errors.js'
export { decodeJwtPayload } from './token-pair.js'
export { defaultStorageKey, localStorageAdapter, memoryStorage } from './storage.js'

export interface AuthClient {
  /** Signs in; throws an AuthClientError when the server refuses. */
  login: (input: LoginInput) => Promise<SessionInfo>
  /** `fetch` with the Bearer token, proactive refresh, and one retry after a refresh. */
  fetch: (path: string, init?: RequestInit) => Promise<Response>
  /** Ends the session on the server (best effort) and forgets the tokens everywhere. */
  logout: () => Promise<void>
  /** Ends every session of the user on the server, then forgets the tokens everywhere; throws an AuthClientError (tokens kept) when the server refuses. */
  logoutAll: () => Promise<void>
  /** The user's sessions, exactly as the server lists them; throws an AuthClientError when it refuses. */
  listSessions: () => Promise<ListedSession[]>
  /** Subscribes; returns the unsubscribe function. */
  on: <E extends EventName>(event: E, listener: Listener<E>) => () => void
  /** The current session, or null when signed out. */
  session: () => Promise<SessionInfo | null>
  /** A fresh access token (for a WebSocket, say), or null when signed out. */
  getAccessToken: () => Promise<string | null>
  /** Refreshes now (single flight, cross-tab aware); resolves to whether a usable session remains. */
  refresh: () => Promise<boolean>
  /** Stops the timer and the channel; the client is not used after this. */
  close: () => void
}

export function createAuthClient (options: AuthClientOptions): AuthClient {
  const settings = resolveOptions(options)
  const { storage, paths, now } = settings
  const transport = createTransport(settings.baseUrl, settings.fetch)
  for (const key of Object.keys(paths) as Array<keyof AuthPaths>) {
    // A route of another origin would get a refresh token: refuse it now, not at the first refresh.
    try {
      transport.urlOf(paths[key])
    } catch {
      throw new TypeError(`createAuthClient: paths.${key} is not on the API's origin`)
    }
  }
  const emitter = createEmitter()
  const ends = createEndNotices()
  const schedule = createSchedule({
    ...settings,
    // Timer mode: the stored pair (maybe a newer one from another tab) when it is due.
    async onTimer () {
      const stored = await storage.get()
      if (!stored) return
      if (now() >= schedule.dueAt(stored)) await refreshFrom(stored)
      else schedule.arm(stored)
    }
  })
  let tabs: Tabs | undefined
  const session = createLocalSession({ storage, schedule, emitter, ends, tabs: () => tabs! })
  tabs = createTabs(settings.name, settings.broadcast, { storage, arm: schedule.arm, emitter, ends, forget: session.forget })
  const refreshFrom = createSingleFlight({
    storage,
    locks: settings.locks,
    lockName: `${settings.name}:refresh`,
    waiting: schedule.waiting,
    exchange: createRefreshExchange({ transport, refreshPath: paths.refresh, session, now })
  })
  const authFetch = createAuthFetch({ transport, storage, schedule, session, refreshFrom, now })
  const signIn = createSignIn({ transport, paths, storage, session, authFetch: authFetch.fetch, now })
  const info = (tokens: Parameters<typeof describePair>[0]) => describePair(tokens, schedule.refreshAt(tokens))

  // Timer mode picks up a session stored by an earlier page load or another tab.
  if (settings.autoRefresh) void Promise.resolve().then(() => storage.get()).then((t) => { schedule.arm(t ?? null) }, () => {})

  return {
    login: async (input) => info(await signIn.login(input)),
    fetch: authFetch.fetch,
    logout: signIn.logout,
    logoutAll: signIn.logoutAll,
    listSessions: async () => await readSessionList(await authFetch.fetch(paths.sessions)),
    on: emitter.on,
    async session () {
      const tokens = await storage.get()
      return tokens ? info(tokens) : null
    },
    async getAccessToken () {
      return (await authFetch.current()).tokens?.access_token ?? null
    },
    async refresh () {
      const stored = await storage.get()
      if (!stored) return false
      return (await refreshFrom(stored)) !== null
    },
    close () {
      schedule.stop()
      emitter.clear()
      tabs!.close()
    }
  }
}
