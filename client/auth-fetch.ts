/**
 * The app's `fetch`: the current pair's Bearer token, a refresh first when
 * the pair is due, and on a 401 that a refresh cures, one refresh and one
 * retry. A 401 that ends the session ends it here too.
 */
import { errorCode } from './errors.js'
import type { RefreshFrom } from './refresh.js'
import type { Schedule } from './schedule.js'
import type { LocalSession } from './session.js'
import type { SessionEndReason } from './session-end.js'
import { endReasonOf, isRefreshable } from './session-end.js'
import type { StoredTokens, TokenStorage } from './storage.js'
import type { Transport } from './transport.js'

export interface AuthFetchParts {
  transport: Transport
  storage: TokenStorage
  schedule: Schedule
  session: LocalSession
  refreshFrom: RefreshFrom
  now: () => number
}

export interface AuthFetch {
  fetch: (path: string, init?: RequestInit) => Promise<Response>
  /** The pair to send now, refreshed first when it is due; `tried` when this took a refresh (asked or shared). */
  current: () => Promise<{ tokens: StoredTokens | null, tried: boolean }>
}

/** A 401 the client acts on: refresh and retry, or the session's end. */
interface Verdict { tokens: StoredTokens, code: string, refreshable: boolean, reason: SessionEndReason | undefined }

async function verdictOf (response: Response, tokens: StoredTokens | null): Promise<Verdict | null> {
  if (response.status !== 401 || !tokens) return null
  const code = await errorCode(response)
  if (code === null) return null
  const refreshable = isRefreshable(code)
  const reason = endReasonOf(code)
  return refreshable || reason ? { tokens, code, refreshable, reason } : null
}

export function createAuthFetch ({ transport, storage, schedule, session, refreshFrom, now }: AuthFetchParts): AuthFetch {
  async function current (): Promise<{ tokens: StoredTokens | null, tried: boolean }> {
    const stored = await storage.get()
    if (stored && now() >= schedule.dueAt(stored)) return { tokens: await refreshFrom(stored), tried: true }
    return { tokens: stored ?? null, tried: false }
  }

  const send = (url: string, init: RequestInit | undefined, tokens: StoredTokens | null) =>
    transport.send(url, init, tokens?.access_token ?? null)

  async function settle (response: Response, verdict: Verdict | null): Promise<Response> {
    if (verdict?.reason) await session.end(verdict.reason, verdict.code, verdict.tokens)
    return response
  }

  async function authFetch (path: string, init?: RequestInit): Promise<Response> {
    const url = transport.urlOf(path)
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

  return { fetch: authFetch, current }
}
