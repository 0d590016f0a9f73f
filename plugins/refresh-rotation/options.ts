import type { FastifyRequest } from 'fastify'
import { deriveKey } from '../../lib/crypto.js'
import { toMs, toPositiveMs } from '../../lib/durations.js'
import type { Duration } from '../../lib/durations.js'
import { isAsymmetricKeyMaterial } from '../../lib/key-material.js'
import type { RateLimitOptions } from '../../lib/rate-limit.js'
import { resolveRateLimit } from '../../lib/rate-limit.js'
import type { AppClaims } from '../../lib/types.js'
import type { ResolvedRefreshRate } from './rate-limit.js'

export type { Duration } from '../../lib/durations.js'

/** What the audit hook hears when a rotated refresh token comes back too late. */
export interface ReuseEvent {
  userId: string
  sessionId: string
  /** Generation of the token presented (the session had moved past it). */
  generation: number
  /** The client address of the request that presented it (`request.ip`). */
  ip: string
  at: Date
}

/** A limit in @fastify/rate-limit's units: `timeWindow` in milliseconds, or a string such as '1 minute'. */
export type RateLimitSetting = RateLimitOptions

export interface RefreshRotationOptions {
  /**
   * Reloads the user's app claims at every refresh (a role change takes effect).
   * Resolves null when the user is gone: the session ends, the refresh answers AUTH_SESSION_REVOKED.
   */
  loadClaims: (userId: string, request: FastifyRequest) => Promise<AppClaims | null>
  /**
   * Key of the refresh token MACs (>= 32 bytes). Default: derived from the
   * HS* JWT secret; required when token-lifecycle signs with a key pair.
   */
  secret?: string | Buffer
  /** How long a just-rotated token still yields its successor. Default 10 s. */
  grace?: Duration
  /** Path of the refresh route, or false to mount none (use `fastify.refreshRotation.refresh`). Default '/auth/refresh'. */
  route?: string | false
  /**
   * Refresh limits, on the shared Redis: per session (every request with a
   * genuine token, grace answers included) and per client address (every
   * request). `timeWindow` as in @fastify/rate-limit: milliseconds, or a
   * string such as '1 minute'. Default 10 per minute per session, 10 times
   * that per address. (The login limit is `authRoutes`' `loginRateLimit`.)
   */
  refreshRateLimit?: (RateLimitSetting & { addressMax?: number }) | false
  /**
   * Proactive renewal: a protected response carries a fresh access token in
   * `header` (and its lifetime in seconds in `<header>-expires-in`) when fewer
   * than `threshold` remain on the one presented. Off by default.
   */
  renewal?: { threshold: Duration, header?: string } | false
  /** Audit hook: a rotated refresh token was presented after its grace window (possible theft). */
  onReuse?: (event: ReuseEvent, request: FastifyRequest) => void | Promise<void>
}

export interface ResolvedRefreshRotationOptions {
  loadClaims: RefreshRotationOptions['loadClaims']
  key: Buffer
  graceMs: number
  route: string | false
  refreshRate: ResolvedRefreshRate | null
  renewal: { thresholdMs: number, header: string } | null
  onReuse: RefreshRotationOptions['onReuse'] | null
}

const MIN_SECRET_BYTES = 32
const NAME = 'refresh-rotation'

function resolveRefreshRate (setting: RefreshRotationOptions['refreshRateLimit']): ResolvedRefreshRate | null {
  if (setting === false) return null
  const base = resolveRateLimit(setting ?? { max: 10, timeWindow: '1 minute' }, `${NAME}: refreshRateLimit`)
  const addressMax = setting?.addressMax ?? base.max * 10
  if (!Number.isInteger(addressMax) || addressMax < 1) throw new TypeError(`${NAME}: refreshRateLimit.addressMax must be a positive integer`)
  return { ...base, addressMax }
}

/** What these options need of token-lifecycle's (`fastify.tokens.options`): its JWT key, to derive the MAC key from. */
export interface CoreJwtSettings { readonly jwt: { readonly algorithm: string, readonly verifyKey: string | Buffer } }

export function checkOptions (opts: RefreshRotationOptions, core: CoreJwtSettings): Readonly<ResolvedRefreshRotationOptions> {
  if (typeof opts.loadClaims !== 'function') throw new TypeError(`${NAME}: loadClaims(userId, request) is required`)
  let key: Buffer
  if (opts.secret !== undefined) {
    if (Buffer.byteLength(opts.secret) < MIN_SECRET_BYTES) throw new TypeError(`${NAME}: secret must be at least ${MIN_SECRET_BYTES} bytes`)
    // Whoever holds the public key could derive the MAC key and forge refresh tokens.
    if (isAsymmetricKeyMaterial(opts.secret)) throw new TypeError(`${NAME}: secret is a key of a key pair (PEM, DER or JWK), not a random secret`)
    key = deriveKey(opts.secret, 'refresh')
  } else if (core.jwt.algorithm.startsWith('HS')) {
    // An independent key: a refresh MAC can never be mistaken for a JWT signature.
    key = deriveKey(core.jwt.verifyKey, 'refresh')
  } else {
    throw new TypeError(`${NAME}: secret is required when token-lifecycle signs with ${core.jwt.algorithm}`)
  }
  const route = opts.route ?? '/auth/refresh'
  if (route !== false && (typeof route !== 'string' || !route.startsWith('/'))) throw new TypeError(`${NAME}: route must be a path starting with '/' or false`)

  // It moved to authRoutes: left here, it would be ignored and the login limit silently stay at its default.
  if ((opts as { loginRateLimit?: unknown }).loginRateLimit !== undefined) throw new TypeError(`${NAME}: loginRateLimit is an option of authRoutes now`)

  let renewal: ResolvedRefreshRotationOptions['renewal'] = null
  if (opts.renewal) {
    const header = opts.renewal.header ?? 'x-access-token'
    if (typeof header !== 'string' || !/^[a-z0-9-]+$/i.test(header)) throw new TypeError(`${NAME}: renewal.header must be a header name`)
    renewal = { thresholdMs: toPositiveMs(opts.renewal.threshold, 'renewal.threshold'), header: header.toLowerCase() }
  }
  if (opts.onReuse !== undefined && typeof opts.onReuse !== 'function') throw new TypeError(`${NAME}: onReuse must be a function`)

  return Object.freeze({
    loadClaims: opts.loadClaims,
    key,
    graceMs: toMs(opts.grace ?? 10, 'grace'),
    route,
    refreshRate: resolveRefreshRate(opts.refreshRateLimit),
    renewal,
    onReuse: opts.onReuse ?? null
  })
}
