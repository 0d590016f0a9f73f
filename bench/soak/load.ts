/**
 * The load: a fixed pool of virtual users, each looping through a session's
 * life as a client would: log in, verify, refresh (once with concurrent
 * requests presenting the same token, as tabs do), log out, now and then
 * log out everywhere. A session ended under it by another virtual user (a
 * logout-all, an SSO replacement) makes it start over with a login.
 */
import { HTTP, ROUTE_OF } from './contract.js'
import type { Kind } from './contract.js'
import type { Recorder } from './metrics.js'

export interface LoadOptions {
  baseUrl: string
  /** username -> password, as the example server knows them. */
  users: ReadonlyArray<readonly [string, string]>
  concurrency: number
  recorder: Recorder
}

interface TokenPair { access_token: string, refresh_token: string, session_id: string }
interface Reply { status: number, body: any }

/** A request that gets no answer within this is counted as one (TIMEOUT). */
const REQUEST_TIMEOUT_MS = 10_000
/** Concurrent refreshes presenting one token, once per session. */
const CONCURRENT_REFRESHES = 3
/** Every so many sessions: a wrong password first, and logout-all instead of logout. */
const WRONG_PASSWORD_EVERY = 10
const LOGOUT_ALL_EVERY = 15

export function startLoad (options: LoadOptions): { stop: () => Promise<void> } {
  let stopped = false

  async function call (kind: Kind, request: { token?: string, body?: unknown }): Promise<Reply> {
    if (stopped) return { status: 0, body: null }
    const { method, path } = HTTP[ROUTE_OF[kind]]
    const headers: Record<string, string> = {}
    if (request.token) headers.authorization = `Bearer ${request.token}`
    if (request.body !== undefined) headers['content-type'] = 'application/json'
    const started = performance.now()
    try {
      const res = await fetch(options.baseUrl + path, {
        method,
        headers,
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
      })
      const text = await res.text()
      const ms = performance.now() - started
      let body: any = null
      try { body = text ? JSON.parse(text) : null } catch { /* a non-JSON body: no code to read */ }
      const code = res.status >= 400 ? String(body?.code ?? '(no code)') : ''
      options.recorder.answer(kind, res.status, code, ms, typeof body?.message === 'string' ? body.message : '')
      return { status: res.status, body }
    } catch (err) {
      const name = (err as Error).name === 'TimeoutError' ? 'TIMEOUT' : 'NO_ANSWER'
      options.recorder.answer(kind, 0, name, performance.now() - started, (err as Error).message)
      // The server may be gone: do not spin.
      await new Promise((resolve) => setTimeout(resolve, 200))
      return { status: 0, body: null }
    }
  }

  async function verify (username: string, pair: TokenPair, times: number): Promise<boolean> {
    for (let i = 0; i < times; i++) {
      const reply = await call('verify', { token: pair.access_token })
      if (reply.status !== 200) return false
      if (reply.body?.user_id !== username || reply.body?.session_id !== pair.session_id) {
        options.recorder.violation('verify', '200 for another user or session')
      }
    }
    return true
  }

  async function refresh (pair: TokenPair): Promise<TokenPair | null> {
    const reply = await call('refresh', { body: { refresh_token: pair.refresh_token } })
    if (reply.status !== 200) return null
    if (reply.body?.session_id !== pair.session_id) options.recorder.violation('refresh', '200 for another session')
    return reply.body as TokenPair
  }

  /** Within the grace window every one of them gets the same successor ("refresh semantics"). */
  async function refreshConcurrently (pair: TokenPair): Promise<TokenPair | null> {
    const pairs = await Promise.all(Array.from({ length: CONCURRENT_REFRESHES }, () => refresh(pair)))
    const answered = pairs.filter((p) => p !== null)
    if (new Set(answered.map((p) => p.refresh_token)).size > 1) {
      options.recorder.violation('refresh', 'concurrent refreshes of one token got different successors')
    }
    return answered.length === pairs.length ? answered[0] : null
  }

  async function useSession (username: string, first: TokenPair, round: number): Promise<void> {
    let pair: TokenPair | null = first
    if (!await verify(username, pair, 3)) return
    if (!(pair = await refresh(pair)) || !await verify(username, pair, 2)) return
    if (!(pair = await refreshConcurrently(pair)) || !await verify(username, pair, 2)) return
    if (!(pair = await refresh(pair)) || !await verify(username, pair, 1)) return
    await call(round % LOGOUT_ALL_EVERY === 0 ? 'logout-all' : 'logout', { token: pair.access_token })
  }

  async function virtualUser (index: number): Promise<void> {
    const [username, password] = options.users[index % options.users.length]
    const device = { device_id: `soak-${index}`, device_type: 'soak', device_name: `soak user ${index}` }
    for (let round = 1; !stopped; round++) {
      if (round % WRONG_PASSWORD_EVERY === 0) await call('login, wrong password', { body: { username, password: `not-${password}` } })
      const login = await call('login', { body: { username, password, ...device } })
      if (login.status === 200) await useSession(username, login.body as TokenPair, round)
    }
  }

  const running = Array.from({ length: options.concurrency }, (_, i) => virtualUser(i))
  return {
    async stop () {
      stopped = true
      await Promise.all(running)
    }
  }
}
