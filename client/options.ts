/**
 * The client's options, checked once when it is created and resolved into
 * one frozen object the other modules read (no defaults looked up later).
 */
import type { TokenStorage } from './storage.js'
import { memoryStorage } from './storage.js'

/** The subset of the Web Locks API (`navigator.locks`) the client uses. */
export interface LockManagerLike {
  request: <T>(name: string, callback: () => Promise<T>) => Promise<T>
}

/**
 * Where the server mounts the ready-made routes. Each defaults to
 * `authPrefix` plus the route's own path, as `authRoutes` and
 * refresh-rotation's `route` mount them.
 */
export interface AuthPaths {
  /** Default `<authPrefix>/login`. */
  login: string
  /** Default `<authPrefix>/refresh` (refresh-rotation's `route`). */
  refresh: string
  /** Default `<authPrefix>/logout`. */
  logout: string
  /** Default `<authPrefix>/logout-all`. */
  logoutAll: string
  /** Default `<authPrefix>/sessions`. */
  sessions: string
}

export interface AuthClientOptions {
  /** The server's base URL (`https://api.example.com`, or `''` for the page's own origin). */
  baseUrl: string
  /** Where the server mounts the ready-made routes (`authRoutes`' `prefix`). Default '/auth'. */
  authPrefix?: string
  /** Route paths one by one, for a server that mounts them apart; each overrides the one derived from `authPrefix`. */
  paths?: Partial<AuthPaths>
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

export interface ResolvedOptions {
  /** Without a trailing slash. */
  baseUrl: string
  paths: Readonly<AuthPaths>
  storage: TokenStorage
  refreshBeforeMs: number
  jitterMaxMs: number
  /** Undefined: `globalThis.fetch` at each call. */
  fetch: typeof fetch | undefined
  autoRefresh: boolean
  name: string
  locks: LockManagerLike | null
  broadcast: boolean
  now: () => number
}

const PATHS: Readonly<Record<keyof AuthPaths, string>> = {
  login: '/login',
  refresh: '/refresh',
  logout: '/logout',
  logoutAll: '/logout-all',
  sessions: '/sessions'
}

function fail (message: string): never {
  throw new TypeError(`createAuthClient: ${message}`)
}

function seconds (options: AuthClientOptions, name: 'refreshBeforeSeconds' | 'jitterSeconds', fallback: number): number {
  const value = options[name] ?? fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(`${name} must be a number >= 0`)
  return value * 1000
}

function resolvePaths (authPrefix: unknown, given: unknown): AuthPaths {
  if (typeof authPrefix !== 'string') fail('authPrefix must be a string')
  if (given !== undefined && (typeof given !== 'object' || given === null)) fail('paths must be an object')
  const prefix = authPrefix.replace(/\/+$/, '')
  const paths = {} as AuthPaths
  for (const key of Object.keys(PATHS) as Array<keyof AuthPaths>) {
    const path = (given as Partial<AuthPaths> | undefined)?.[key] ?? `${prefix}${PATHS[key]}`
    if (typeof path !== 'string' || path === '') fail(`paths.${key} must be a non-empty string`)
    paths[key] = path
  }
  return Object.freeze(paths)
}

export function resolveOptions (options: AuthClientOptions): Readonly<ResolvedOptions> {
  if (typeof options?.baseUrl !== 'string') fail('baseUrl must be a string')
  const baseUrl = options.baseUrl.replace(/\/+$/, '')
  const given = options.storage ?? memoryStorage()
  return Object.freeze({
    baseUrl,
    paths: resolvePaths(options.authPrefix ?? '/auth', options.paths),
    // An adapter may keep each API's pair apart (localStorageAdapter() does).
    storage: given.forBaseUrl?.(baseUrl) ?? given,
    refreshBeforeMs: seconds(options, 'refreshBeforeSeconds', 30),
    jitterMaxMs: seconds(options, 'jitterSeconds', 5),
    fetch: options.fetch,
    autoRefresh: Boolean(options.autoRefresh),
    name: options.name ?? `fastify-jwt-sessions:${baseUrl}`,
    locks: options.locks !== undefined
      ? options.locks
      : (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks ?? null,
    broadcast: options.broadcast ?? typeof (globalThis as { document?: unknown }).document !== 'undefined',
    now: options.now ?? Date.now
  })
}
