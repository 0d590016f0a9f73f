/**
 * Where a client keeps its tokens. Every tab (or process) that shares a storage
 * shares one session: the storage is the source of truth, read at each call.
 */

/** The token pair as the client stores it. Never log it. */
export interface StoredTokens {
  access_token: string
  refresh_token: string
  session_id: string
  /** When the access token expires, in epoch milliseconds on this device's clock. */
  expires_at: number
  /** When this pair was obtained, in epoch milliseconds on this device's clock (orders pairs across tabs). */
  obtained_at: number
  /** When the refresh token expires unless used (`refresh_expires_in` from receipt), when the server said. */
  refresh_expires_at?: number
}

type MaybePromise<T> = T | Promise<T>

/** A storage adapter: the app's own (IndexedDB, secure storage on a phone...) can be async. */
export interface TokenStorage {
  get: () => MaybePromise<StoredTokens | null | undefined>
  set: (tokens: StoredTokens) => MaybePromise<void>
  remove: () => MaybePromise<void>
}

/** The default: tokens in this client's memory only (one tab, one process). */
export function memoryStorage (): TokenStorage {
  let value: StoredTokens | null = null
  return {
    get: () => value,
    set: (tokens) => { value = tokens },
    remove: () => { value = null }
  }
}

/** The part of the Web Storage API the adapter uses (`localStorage`, `sessionStorage`). */
export interface WebStorageLike {
  getItem: (key: string) => string | null
  setItem: (key: string, value: string) => void
  removeItem: (key: string) => void
}

const isTokens = (v: unknown): v is StoredTokens => {
  const t = v as Record<string, unknown> | null
  return typeof t === 'object' && t !== null &&
    typeof t.access_token === 'string' && typeof t.refresh_token === 'string' && typeof t.session_id === 'string' &&
    typeof t.expires_at === 'number' && typeof t.obtained_at === 'number' &&
    (t.refresh_expires_at === undefined || typeof t.refresh_expires_at === 'number')
}

/**
 * Tokens in `localStorage` (by default), shared by every tab of the origin.
 * Anything unreadable under the key (another app's data, a hand edit) counts as no tokens.
 */
export function localStorageAdapter (key = 'fastify-jwt-sessions', storage?: WebStorageLike): TokenStorage {
  const store = (): WebStorageLike => {
    const s = storage ?? (globalThis as { localStorage?: WebStorageLike }).localStorage
    if (!s) throw new Error('localStorageAdapter: no localStorage here; pass a storage')
    return s
  }
  return {
    get () {
      const raw = store().getItem(key)
      if (raw === null) return null
      try {
        const parsed: unknown = JSON.parse(raw)
        return isTokens(parsed) ? parsed : null
      } catch {
        return null
      }
    },
    set (tokens) { store().setItem(key, JSON.stringify(tokens)) },
    remove () { store().removeItem(key) }
  }
}
