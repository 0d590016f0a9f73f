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
  /**
   * No refresh before this, in epoch milliseconds on this device's clock: the
   * server refused one (429, `Retry-After`). Kept with the pair so that every
   * client of the storage (every tab) waits too; a new pair clears it.
   */
  refresh_retry_at?: number
}

type MaybePromise<T> = T | Promise<T>

/** A storage adapter: the app's own (IndexedDB, secure storage on a phone...) can be async. */
export interface TokenStorage {
  get: () => MaybePromise<StoredTokens | null | undefined>
  set: (tokens: StoredTokens) => MaybePromise<void>
  remove: () => MaybePromise<void>
  /**
   * Optional: the storage a client of `baseUrl` uses instead of this one,
   * asked once when the client is created. `localStorageAdapter()` without a
   * key answers one under a key of that API's own.
   */
  forBaseUrl?: (baseUrl: string) => TokenStorage
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

const optionalNumber = (v: unknown) => v === undefined || typeof v === 'number'

/** Whether a value read back (from storage, from another tab) is a pair this client can use. */
export const isTokens = (v: unknown): v is StoredTokens => {
  const t = v as Record<string, unknown> | null
  return typeof t === 'object' && t !== null &&
    typeof t.access_token === 'string' && typeof t.refresh_token === 'string' && typeof t.session_id === 'string' &&
    typeof t.expires_at === 'number' && typeof t.obtained_at === 'number' &&
    optionalNumber(t.refresh_expires_at) && optionalNumber(t.refresh_retry_at)
}

const DEFAULT_KEY = 'fastify-jwt-sessions'

/**
 * One key per API, so that clients of two servers do not share a pair. The
 * page's own origin (`baseUrl` '') keeps the key used before there was one
 * per API, so that signed-in users stay signed in across the upgrade.
 */
export const defaultStorageKey = (baseUrl: string): string => baseUrl === '' ? DEFAULT_KEY : `${DEFAULT_KEY}:${baseUrl}`

/**
 * Tokens in `localStorage` (by default), shared by every tab of the origin.
 * Without a key, each client keeps its pair under `defaultStorageKey(baseUrl)`
 * (used directly, outside a client, the adapter reads the `''` one).
 * Anything unreadable under the key (another app's data, a hand edit) counts as no tokens.
 */
export function localStorageAdapter (key?: string, storage?: WebStorageLike): TokenStorage {
  if (key !== undefined) return webStorageAt(key, storage)
  return { ...webStorageAt(DEFAULT_KEY, storage), forBaseUrl: (baseUrl) => webStorageAt(defaultStorageKey(baseUrl), storage) }
}

function webStorageAt (key: string, storage: WebStorageLike | undefined): TokenStorage {
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
