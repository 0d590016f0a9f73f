/**
 * fastify-jwt-sessions/client: a fetch wrapper that keeps a session's tokens
 * fresh, for single-page apps, mobile apps and Node scripts. No dependency
 * beyond `fetch` (and, when present, Web Locks and BroadcastChannel).
 *
 * - adds the Bearer token; refreshes `refreshBeforeSeconds` (plus jitter)
 *   before the access token's `exp`, and on a 401 AUTH_TOKEN_EXPIRED or
 *   AUTH_TOKEN_STALE refreshes once and retries the request once;
 * - single flight: concurrent calls share one refresh; across tabs the refresh
 *   runs under a Web Lock and a tab that finds a newer pair in the shared
 *   storage uses it instead of refreshing again; BroadcastChannel tells the
 *   other tabs (their own memory, their events);
 * - at most one refresh per call, and none while the server's `Retry-After`
 *   runs: the wait is kept with the pair, so every client and tab sharing it
 *   waits too;
 * - `session-ended` with the reason when the server says the session is over.
 */
import type { Message, SessionEndReason } from './messages.js'
import { parseMessage } from './messages.js'
import { refreshWaitMs } from './retry-after.js'
import type { StoredTokens, TokenStorage } from './storage.js'
import { memoryStorage } from './storage.js'

export type { SessionEndReason } from './messages.js'
export type { StoredTokens, TokenStorage, WebStorageLike } from './storage.js'
export { defaultStorageKey, localStorageAdapter, memoryStorage } from './storage.js'

/** How long a tab keeps the cross-tab refresh lock after refreshing, for other tabs to see the new pair. */
const LOCK_SETTLE_MS = 250

/** The server's error codes that end a session, and the reason each one gives. */
const ENDED: Readonly<Record<string, SessionEndReason>> = {
  AUTH_SESSION_REPLACED: 'replaced',
  AUTH_SESSION_REVOKED: 'revoked',
  AUTH_REFRESH_REUSED: 'reused',
  AUTH_SESSION_EXPIRED: 'expired'
}

/**
 * The contract lets a server answer AUTH_REFRESH_INVALID for an ended session
 * instead of disclosing its state. A refresh token refused before its own
 * expiry was ended by the server (`revoked`); one past it timed out (`expired`).
 */
const invalidRefreshReason = (tokens: StoredTokens, at: number): SessionEndReason =>
  tokens.refresh_expires_at !== undefined && at >= tokens.refresh_expires_at ? 'expired' : 'revoked'
const REFRESHABLE = new Set(['AUTH_TOKEN_EXPIRED', 'AUTH_TOKEN_STALE'])

/** The subset of the Web Locks API (`navigator.locks`) the client uses. */
export interface LockManagerLike {
  request: <T>(name: string, callback: () => Promise<T>) => Promise<T>
}

export interface AuthClientOptions {
  /** The server's base URL (`https://api.example.com`, or `''` for the page's own origin). */
  baseUrl: string
  /** Where tokens live; shared storage means a shared session. Default: memory. */
  storage?: TokenStorage
  /** Refresh this long before the access token expires (at most a quarter of its life). Default 30. */
  refreshBeforeSeconds?: number
  /** Up to this much more, at random, so that many clients do not refresh in step. Default 5. */
  jitterSeconds?: number
  /** The fetch to use. Default: `globalThis.fetch`, looked up at each call. */
  fetch?: typeof fetch
  /** Timer mode: refresh on a timer even when the app makes no calls. Default false. */
  autoRefresh?: boolean
  /** Name of the cross-tab lock and channel. Default: derived from `baseUrl`. */
  name?: string
  /** Web Locks to take around a refresh; `null` for none. Default: `navigator.locks` when present. */
  locks?: LockManagerLike | null
  /**
   * Tell other tabs through a BroadcastChannel (when the runtime has one).
   * Default: true in a page (`document` exists), false elsewhere, so that two
   * clients of one Node process do not share a session unless asked to.
   */
  broadcast?: boolean
  /** The device's clock, in epoch milliseconds. Default `Date.now`. */
  now?: () => number
}

export interface LoginInput {
  username: string
  password: string
  device_id?: string
  device_type?: string
  device_name?: string
}

/** What the app may know about the current session (no tokens). */
export interface SessionInfo {
  sessionId: string
  userId: string | undefined
  claims: Record<string, unknown>
  /** Access token expiry and planned refresh, epoch milliseconds on this device's clock. */
  expiresAt: number
  refreshAt: number
}

export interface AuthClientEvents {
  'session-ended': { reason: SessionEndReason, code: string }
  /** A new token pair: `source` is `local` when this client refreshed, `other-tab` when another did. */
  refresh: { sessionId: string, expiresAt: number, source: 'local' | 'other-tab' }
  login: { sessionId: string, source: 'local' | 'other-tab' }
  logout: { source: 'local' | 'other-tab' }
}
type EventName = keyof AuthClientEvents
type Listener<E extends EventName> = (event: AuthClientEvents[E]) => void

/** A login the server refused, or an answer the client cannot use. */
export class AuthClientError extends Error {
  readonly status: number
  readonly code: string | null
  constructor (message: string, status: number, code: string | null) {
    super(message)
    this.name = 'AuthClientError'
    this.status = status
    this.code = code
  }
}

interface ChannelLike {
  postMessage: (message: Message) => void
  close: () => void
  onmessage: ((event: { data: unknown }) => void) | null
  unref?: () => void
}

/** The claims of a JWT, unverified: the client only needs `exp`. */
export function decodeJwtPayload (token: string): Record<string, unknown> | null {
  const part = token.split('.')[1]
  if (part === undefined) return null
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/')
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes))
    return typeof claims === 'object' && claims !== null ? claims as Record<string, unknown> : null
  } catch {
    return null
  }
}

async function errorCode (response: Response): Promise<string | null> {
  try {
    const body = await response.clone().json() as { code?: unknown } | null
    return typeof body?.code === 'string' ? body.code : null
  } catch {
    return null
  }
}

const ABSOLUTE = /^[a-z][a-z\d+.-]*:/i
/** Stands for the page's origin where there is no page (Node with `baseUrl: ''`): any other origin is foreign. */
const SAME_ORIGIN = 'http://same-origin.invalid/'

export interface AuthClient {
  /** Signs in; throws an AuthClientError when the server refuses. */
  login: (input: LoginInput) => Promise<SessionInfo>
  /** `fetch` with the Bearer token, proactive refresh, and one retry after a refresh. */
  fetch: (path: string, init?: RequestInit) => Promise<Response>
  /** Ends the session on the server (best effort) and forgets the tokens everywhere. */
  logout: () => Promise<void>
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
  if (typeof options?.baseUrl !== 'string') throw new TypeError('createAuthClient: baseUrl must be a string')
  const seconds = (name: 'refreshBeforeSeconds' | 'jitterSeconds', fallback: number): number => {
    const value = options[name] ?? fallback
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`createAuthClient: ${name} must be a number >= 0`)
    return value * 1000
  }
  const baseUrl = options.baseUrl.replace(/\/+$/, '')
  const page = globalThis as { document?: { baseURI?: string }, location?: { href?: string } }
  // Relative URLs resolve against the page's base, as fetch resolves them.
  const pageBase = baseUrl !== '' ? baseUrl : page.document?.baseURI ?? page.location?.href
  const apiOrigin = new URL(baseUrl !== '' ? baseUrl : page.location?.href ?? SAME_ORIGIN).origin
  const refreshBefore = seconds('refreshBeforeSeconds', 30)
  const jitterMax = seconds('jitterSeconds', 5)
  const given = options.storage ?? memoryStorage()
  // An adapter may keep each API's pair apart (localStorageAdapter() does).
  const storage = given.forBaseUrl?.(baseUrl) ?? given
  const now = options.now ?? Date.now
  const name = options.name ?? `fastify-jwt-sessions:${baseUrl}`
  const delay = (ms: number) => new Promise<void>((resolve) => { setTimeout(resolve, ms) })
  const locks = options.locks !== undefined
    ? options.locks
    : (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks ?? null
  const listeners = new Map<EventName, Set<Listener<EventName>>>()
  let inflight: Promise<StoredTokens | null> | null = null
  let jitter = { token: '', ms: 0 }
  let timer: ReturnType<typeof setTimeout> | undefined
  let announcedEnd = ''
  let closed = false

  const doFetch = (url: string, init: RequestInit): Promise<Response> => {
    // Unbound on purpose: a browser's fetch refuses a `this` other than the window.
    const f = options.fetch ?? globalThis.fetch
    return f(url, init)
  }
  const joined = (path: string) => ABSOLUTE.test(path) ? path : `${baseUrl}${path.startsWith('/') ? '' : '/'}${path}`
  /**
   * A token goes only to the API's origin. The URL is resolved as fetch will
   * resolve it (WHATWG parsing: `\\` counts as `/`, tabs and newlines are
   * dropped, so `/\evil.example` or `/\t/evil` name another host) and its
   * origin compared; prefix checks on the string cannot see that.
   */
  const urlOf = (path: string): string => {
    const url = joined(path)
    const resolved = new URL(url, pageBase ?? SAME_ORIGIN)
    if (resolved.origin !== apiOrigin) throw new AuthClientError(`fetch: ${resolved.origin} is not the API's origin; nothing was sent`, 0, null)
    // Without a page (Node, baseUrl ''), the placeholder base must not leak into the request.
    return pageBase === undefined && baseUrl === '' ? url : resolved.href
  }

  function emit<E extends EventName> (event: E, payload: AuthClientEvents[E]): void {
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
  }

  const ChannelCtor = (globalThis as { BroadcastChannel?: new (name: string) => ChannelLike }).BroadcastChannel
  const broadcast = options.broadcast ?? typeof (globalThis as { document?: unknown }).document !== 'undefined'
  const channel: ChannelLike | null = broadcast && ChannelCtor ? new ChannelCtor(name) : null
  // A Node script must be able to exit with a client still open.
  channel?.unref?.()
  const post = (message: Message) => { channel?.postMessage(message) }

  function refreshAt (tokens: StoredTokens): number {
    const life = Math.max(0, tokens.expires_at - tokens.obtained_at)
    const before = Math.min(refreshBefore, life / 4)
    if (jitter.token !== tokens.refresh_token) jitter = { token: tokens.refresh_token, ms: Math.random() * Math.min(jitterMax, before / 2) }
    return tokens.expires_at - before - jitter.ms
  }

  /** The server asked to wait (429 `Retry-After`) and the wait is not over. */
  const waiting = (tokens: StoredTokens): boolean => tokens.refresh_retry_at !== undefined && now() < tokens.refresh_retry_at
  /** When this pair may be refreshed: its planned time, or the end of the server's wait when later. */
  const dueAt = (tokens: StoredTokens): number => Math.max(refreshAt(tokens), tokens.refresh_retry_at ?? 0)

  function info (tokens: StoredTokens): SessionInfo {
    const claims = decodeJwtPayload(tokens.access_token) ?? {}
    return {
      sessionId: tokens.session_id,
      userId: typeof claims.sub === 'string' ? claims.sub : undefined,
      claims,
      expiresAt: tokens.expires_at,
      refreshAt: refreshAt(tokens)
    }
  }

  async function toStored (response: Response, receivedAt: number): Promise<StoredTokens> {
    const body = await response.json() as Partial<Record<'access_token' | 'refresh_token' | 'session_id' | 'expires_in' | 'refresh_expires_in', unknown>>
    if (typeof body.access_token !== 'string' || typeof body.refresh_token !== 'string' || typeof body.session_id !== 'string' || typeof body.expires_in !== 'number') {
      throw new AuthClientError('The server answered without a token pair', response.status, null)
    }
    const exp = decodeJwtPayload(body.access_token)?.exp
    // Trust `exp` when this device's clock agrees with the server's; when it is
    // off by more than a few seconds, count `expires_in` from receipt instead
    // (one second less: the server's `iat` and `exp` are whole seconds).
    const byReceipt = receivedAt + (body.expires_in - 1) * 1000
    const byClaim = typeof exp === 'number' ? exp * 1000 : Number.NaN
    const expiresAt = Math.abs(byClaim - byReceipt) <= 5000 ? byClaim : byReceipt
    const tokens: StoredTokens = { access_token: body.access_token, refresh_token: body.refresh_token, session_id: body.session_id, expires_at: expiresAt, obtained_at: receivedAt }
    if (typeof body.refresh_expires_in === 'number') tokens.refresh_expires_at = receivedAt + body.refresh_expires_in * 1000
    return tokens
  }

  function schedule (tokens: StoredTokens | null): void {
    clearTimeout(timer)
    timer = undefined
    if (!options.autoRefresh || !tokens || closed) return
    timer = setTimeout(() => {
      timer = undefined
      void (async () => {
        const current = await storage.get()
        if (!current) return
        if (now() >= dueAt(current)) await refreshFrom(current)
        else schedule(current)
      })().catch(() => {})
    }, Math.max(0, dueAt(tokens) - now()))
    // Timers keep a Node process alive; a script's client must not.
    ;(timer as { unref?: () => void }).unref?.()
  }

  async function endSession (reason: SessionEndReason, code: string, basedOn: StoredTokens): Promise<void> {
    const stored = await storage.get()
    // A newer session (another tab signed in again) is not what ended.
    if (stored && stored.session_id !== basedOn.session_id) return
    if (stored) await storage.remove()
    schedule(null)
    if (announcedEnd === basedOn.session_id) return
    announcedEnd = basedOn.session_id
    post({ type: 'ended', sessionId: basedOn.session_id, reason, code })
    emit('session-ended', { reason, code })
  }

  async function refreshWithServer (stored: StoredTokens): Promise<StoredTokens | null> {
    let response: Response
    try {
      response = await doFetch(urlOf('/auth/refresh'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: stored.refresh_token })
      })
    } catch {
      // Offline: keep the pair; the request itself will fail or succeed on its own.
      return stored
    }
    if (response.ok) {
      const next = await toStored(response, now())
      await storage.set(next)
      post({ type: 'tokens', kind: 'refresh', tokens: next })
      schedule(next)
      emit('refresh', { sessionId: next.session_id, expiresAt: next.expires_at, source: 'local' })
      return next
    }
    const code = await errorCode(response)
    const reason = code === 'AUTH_REFRESH_INVALID' ? invalidRefreshReason(stored, now()) : code !== null ? ENDED[code] : undefined
    if (response.status === 401 && reason) {
      await endSession(reason, code!, stored)
      return null
    }
    const wait = refreshWaitMs(response, now())
    // Rate limited, store unavailable, a proxy's error page: keep the pair and let the request decide.
    return wait === null ? stored : await holdOff(stored, now() + wait)
  }

  /**
   * Keeps the server's "not before" with the pair, where every client of the
   * storage reads it, and tells tabs with storage of their own. A pair that
   * changed meanwhile (a login in another tab) is not the one refused.
   */
  async function holdOff (refused: StoredTokens, until: number): Promise<StoredTokens> {
    const latest = await storage.get()
    if (!latest || latest.refresh_token !== refused.refresh_token) return refused
    const held: StoredTokens = { ...latest, refresh_retry_at: until }
    await storage.set(held)
    post({ type: 'backoff', sessionId: held.session_id, until })
    // Timer mode tries again when the wait is over.
    schedule(held)
    return held
  }

  /**
   * Single flight: one refresh per client at a time, under the cross-tab lock.
   * Inside, a pair other than `used` in the storage means another tab (or
   * process) refreshed or signed in already: that pair is the answer.
   */
  function refreshFrom (used: StoredTokens): Promise<StoredTokens | null> {
    if (inflight) return inflight
    const run = async (): Promise<StoredTokens | null> => {
      const stored = await storage.get()
      if (!stored) return null
      if (stored.refresh_token !== used.refresh_token || waiting(stored)) return stored
      return await refreshWithServer(stored)
    }
    if (!locks) {
      inflight = run().finally(() => { inflight = null })
      return inflight
    }
    inflight = new Promise<StoredTokens | null>((resolve, reject) => {
      locks.request(`${name}:refresh`, async () => {
        const result = await run()
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

  /** The pair to send now, refreshed first when it is due; `tried` when this took a refresh (asked or shared). */
  async function current (): Promise<{ tokens: StoredTokens | null, tried: boolean }> {
    const stored = await storage.get()
    if (stored && now() >= dueAt(stored)) return { tokens: await refreshFrom(stored), tried: true }
    return { tokens: stored ?? null, tried: false }
  }

  const send = (url: string, init: RequestInit | undefined, tokens: StoredTokens | null) => {
    const headers = new Headers(init?.headers)
    if (tokens) headers.set('authorization', `Bearer ${tokens.access_token}`)
    return doFetch(url, { ...init, headers })
  }

  interface Verdict { tokens: StoredTokens, code: string, refreshable: boolean, reason: SessionEndReason | undefined }

  /** A 401 the client acts on (refresh and retry, or the session's end), or null. */
  async function verdictOf (response: Response, tokens: StoredTokens | null): Promise<Verdict | null> {
    if (response.status !== 401 || !tokens) return null
    const code = await errorCode(response)
    if (code === null) return null
    const refreshable = REFRESHABLE.has(code)
    const reason = ENDED[code]
    return refreshable || reason ? { tokens, code, refreshable, reason } : null
  }

  async function settle (response: Response, verdict: Verdict | null): Promise<Response> {
    if (verdict?.reason) await endSession(verdict.reason, verdict.code, verdict.tokens)
    return response
  }

  async function authFetch (path: string, init?: RequestInit): Promise<Response> {
    const url = urlOf(path)
    const { tokens, tried } = await current()
    const response = await send(url, init, tokens)
    const verdict = await verdictOf(response, tokens)
    if (!verdict) return response
    const used = verdict.tokens
    // Another tab may have refreshed, or signed in again, meanwhile: use its pair.
    const stored = await storage.get()
    let next = stored && stored.access_token !== used.access_token ? stored : null
    // One refresh per call: a refresh that just failed is not asked again at once.
    if (!next && verdict.refreshable && !tried) next = await refreshFrom(used)
    if (!next || next.access_token === used.access_token) return await settle(response, verdict)
    const retried = await send(url, init, next)
    return await settle(retried, await verdictOf(retried, next))
  }

  async function login (input: LoginInput): Promise<SessionInfo> {
    const response = await doFetch(urlOf('/auth/login'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(input)
    })
    if (!response.ok) {
      const code = await errorCode(response)
      throw new AuthClientError(`Login failed (${response.status}${code ? ` ${code}` : ''})`, response.status, code)
    }
    const tokens = await toStored(response, now())
    await storage.set(tokens)
    announcedEnd = ''
    post({ type: 'tokens', kind: 'login', tokens })
    schedule(tokens)
    emit('login', { sessionId: tokens.session_id, source: 'local' })
    return info(tokens)
  }

  async function forget (sessionId: string): Promise<void> {
    const stored = await storage.get()
    if (stored && stored.session_id === sessionId) await storage.remove()
    schedule(null)
  }

  async function logout (): Promise<void> {
    const tokens = await storage.get()
    if (!tokens) return
    try {
      await authFetch('/auth/logout', { method: 'POST' })
    } catch {
      // Offline: the tokens are forgotten anyway; the session times out on the server.
    }
    announcedEnd = tokens.session_id
    await forget(tokens.session_id)
    post({ type: 'logout', sessionId: tokens.session_id })
    emit('logout', { source: 'local' })
  }

  async function onMessage (message: Message): Promise<void> {
    if (message.type === 'backoff') {
      const stored = await storage.get()
      // Shared storage holds it already; a tab's own memory storage learns it here.
      if (stored && stored.session_id === message.sessionId && (stored.refresh_retry_at ?? 0) < message.until) {
        await storage.set({ ...stored, refresh_retry_at: message.until })
      }
    } else if (message.type === 'tokens') {
      const stored = await storage.get()
      // A message overtaken by a newer pair is old news.
      if (stored && message.tokens.obtained_at < stored.obtained_at) return
      // Shared storage already holds it; a tab's own memory storage learns it here.
      if (!stored || message.tokens.obtained_at > stored.obtained_at) await storage.set(message.tokens)
      schedule(message.tokens)
      if (message.kind === 'login') {
        announcedEnd = ''
        emit('login', { sessionId: message.tokens.session_id, source: 'other-tab' })
      } else {
        emit('refresh', { sessionId: message.tokens.session_id, expiresAt: message.tokens.expires_at, source: 'other-tab' })
      }
    } else if (message.type === 'ended') {
      await forget(message.sessionId)
      if (announcedEnd === message.sessionId) return
      announcedEnd = message.sessionId
      emit('session-ended', { reason: message.reason, code: message.code })
    } else {
      announcedEnd = message.sessionId
      await forget(message.sessionId)
      emit('logout', { source: 'other-tab' })
    }
  }
  if (channel) {
    channel.onmessage = (event) => {
      const message = parseMessage(event.data)
      if (message) void onMessage(message).catch(() => {})
    }
  }

  // Timer mode picks up a session stored by an earlier page load or another tab.
  if (options.autoRefresh) void Promise.resolve().then(() => storage.get()).then((t) => { schedule(t ?? null) }, () => {})

  return {
    login,
    fetch: authFetch,
    logout,
    on (event, listener) {
      let set = listeners.get(event)
      if (!set) listeners.set(event, set = new Set())
      set.add(listener as Listener<EventName>)
      return () => { set.delete(listener as Listener<EventName>) }
    },
    async session () {
      const tokens = await storage.get()
      return tokens ? info(tokens) : null
    },
    async getAccessToken () {
      return (await current()).tokens?.access_token ?? null
    },
    async refresh () {
      const stored = await storage.get()
      if (!stored) return false
      return (await refreshFrom(stored)) !== null
    },
    close () {
      closed = true
      schedule(null)
      listeners.clear()
      channel?.close()
    }
  }
}
