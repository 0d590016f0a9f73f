import type { Clock } from '../../lib/clock.js'
import { systemClock } from '../../lib/clock.js'
import { toMs, toPositiveMs } from '../../lib/durations.js'
import type { Duration } from '../../lib/durations.js'
import type { ResolvedDurability } from '../../lib/durable-writes.js'
import { isAsymmetricKeyMaterial } from '../../lib/key-material.js'
import type { RedisSourceOptions } from '../../lib/redis.js'

export type { Duration } from '../../lib/durations.js'
export type JwtAlgorithm = 'HS256' | 'HS384' | 'HS512' | 'RS256' | 'ES256' | 'EdDSA'

export interface JwtOptions {
  /** HS* only: at least 32 bytes. */
  secret?: string | Buffer
  /** RS256 / ES256 / EdDSA: PEM keys. An instance that only verifies may omit privateKey. */
  privateKey?: string | Buffer
  publicKey?: string | Buffer
  /** Pinned: tokens signed with any other algorithm (`none` included) are refused. Default HS256. */
  algorithm?: JwtAlgorithm
  issuer?: string
  audience?: string
  /** Leeway on `exp`/`nbf` for clock skew between instances. Default 0, at most 5 minutes. */
  clockTolerance?: Duration
}

export interface TokenLifecycleOptions extends RedisSourceOptions {
  jwt: JwtOptions
  /** Prefix of every Redis key. Default 'auth'. */
  keyPrefix?: string
  /** Access token lifetime. Default 5 minutes. */
  accessTokenTtl?: Duration
  /** A session unused for this long ends (also the refresh token's lifetime). Default 14 days. */
  idleTimeout?: Duration
  /** No session outlives this, whatever its activity. Default 30 days. */
  maxSessionAge?: Duration
  /** last_seen_at (and the idle deadline) is written at most this often per session. Default 60 s. */
  touchInterval?: Duration
  /** A Redis call slower than this fails with 503 AUTH_STORE_UNAVAILABLE. Default 800 ms. */
  storeTimeout?: Duration
  /**
   * Opt-in in-process cache of session validity, invalidated across instances
   * through Redis pub/sub (`<keyPrefix>:inv`). Default false.
   */
  localCache?: false | LocalCacheOptions
  /**
   * 'dedicated' (default): the per-request check goes over a connection of
   * its own, opened with the shared client's settings, much cheaper per call
   * than the shared client. 'shared': over the shared client, one connection
   * in all. Cluster, Sentinel and TLS clients always use 'shared'.
   */
  verifyConnection?: 'dedicated' | 'shared'
  /**
   * Opt-in: logins and refresh rotations wait (WAIT) until this many replicas
   * acknowledged their write, at most `timeout`. Default false.
   */
  durability?: false | DurabilityOptions
  clock?: Clock
}

export interface DurabilityOptions {
  /** Replicas that must acknowledge each write. Default 1. */
  replicas?: number
  /** How long to wait for them; less than `storeTimeout`. Default '200ms'. */
  timeout?: Duration
}

export interface LocalCacheOptions {
  /** Cached (session, claims version) answers kept at most. Default 100 000. */
  maxEntries?: number
  /** How often each instance publishes a heartbeat; the cache is bypassed after two missed. Default 1 s. */
  heartbeat?: Duration
}

export interface ResolvedLocalCacheOptions {
  maxEntries: number
  heartbeatMs: number
}

export interface ResolvedJwtOptions {
  algorithm: JwtAlgorithm
  signKey: string | Buffer | undefined
  verifyKey: string | Buffer
  issuer: string | undefined
  audience: string | undefined
  clockToleranceMs: number
}

export interface ResolvedTokenLifecycleOptions {
  jwt: ResolvedJwtOptions
  keyPrefix: string
  accessTtlMs: number
  idleMs: number
  maxAgeMs: number
  touchMs: number
  storeTimeoutMs: number
  /** How long a session past its absolute deadline is kept to answer AUTH_SESSION_EXPIRED. */
  retentionMs: number
  localCache: Readonly<ResolvedLocalCacheOptions> | null
  verifyConnection: 'dedicated' | 'shared'
  durability: Readonly<ResolvedDurability> | null
  clock: Clock
}

const HMAC_MIN_SECRET_BYTES = 32
const MAX_CLOCK_TOLERANCE_MS = 300_000

function resolveJwt (jwt: JwtOptions | undefined): ResolvedJwtOptions {
  if (!jwt || typeof jwt !== 'object') throw new TypeError('token-lifecycle: the jwt option is required')
  const algorithm = jwt.algorithm ?? 'HS256'
  let signKey: string | Buffer | undefined
  let verifyKey: string | Buffer | undefined
  if (algorithm.startsWith('HS')) {
    if (jwt.secret === undefined) throw new TypeError(`token-lifecycle: jwt.secret is required for ${algorithm}`)
    if (Buffer.byteLength(jwt.secret) < HMAC_MIN_SECRET_BYTES) {
      throw new TypeError(`token-lifecycle: jwt.secret must be at least ${HMAC_MIN_SECRET_BYTES} bytes`)
    }
    if (isAsymmetricKeyMaterial(jwt.secret)) {
      throw new TypeError(`token-lifecycle: jwt.secret is a key of a key pair (PEM, DER or JWK), which anyone holding its public key could sign ${algorithm} tokens with; use a random secret, or algorithm RS256/ES256/EdDSA with privateKey/publicKey`)
    }
    signKey = verifyKey = jwt.secret
  } else if (['RS256', 'ES256', 'EdDSA'].includes(algorithm)) {
    if (jwt.secret !== undefined) throw new TypeError(`token-lifecycle: ${algorithm} takes privateKey/publicKey, not secret`)
    if (!jwt.publicKey) throw new TypeError(`token-lifecycle: jwt.publicKey is required for ${algorithm}`)
    // Say, an environment variable set but empty: that instance could not sign a login.
    if (jwt.privateKey !== undefined && Buffer.byteLength(jwt.privateKey) === 0) {
      throw new TypeError('token-lifecycle: jwt.privateKey is empty; leave it out on an instance that only verifies')
    }
    signKey = jwt.privateKey
    verifyKey = jwt.publicKey
  } else {
    throw new TypeError(`token-lifecycle: unsupported jwt.algorithm ${JSON.stringify(algorithm)}`)
  }
  const clockToleranceMs = toMs(jwt.clockTolerance ?? 0, 'jwt.clockTolerance')
  if (clockToleranceMs > MAX_CLOCK_TOLERANCE_MS) throw new TypeError('token-lifecycle: jwt.clockTolerance must be at most 5 minutes')
  return {
    algorithm,
    signKey,
    verifyKey,
    issuer: jwt.issuer,
    audience: jwt.audience,
    clockToleranceMs
  }
}

function resolveLocalCache (opts: TokenLifecycleOptions['localCache']): Readonly<ResolvedLocalCacheOptions> | null {
  if (opts === undefined || opts === false) return null
  if (typeof opts !== 'object' || opts === null) throw new TypeError('token-lifecycle: localCache must be false or an object')
  const maxEntries = opts.maxEntries ?? 100_000
  if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new TypeError('token-lifecycle: localCache.maxEntries must be a positive integer')
  return Object.freeze({ maxEntries, heartbeatMs: toPositiveMs(opts.heartbeat ?? 1, 'localCache.heartbeat') })
}

function resolveVerifyConnection (value: TokenLifecycleOptions['verifyConnection']): 'dedicated' | 'shared' {
  if (value === undefined) return 'dedicated'
  if (value !== 'dedicated' && value !== 'shared') throw new TypeError("token-lifecycle: verifyConnection must be 'dedicated' or 'shared'")
  return value
}

function resolveDurability (opts: TokenLifecycleOptions['durability'], storeTimeoutMs: number): Readonly<ResolvedDurability> | null {
  if (opts === undefined || opts === false) return null
  if (typeof opts !== 'object' || opts === null) throw new TypeError('token-lifecycle: durability must be false or an object')
  const replicas = opts.replicas ?? 1
  if (!Number.isInteger(replicas) || replicas < 1) throw new TypeError('token-lifecycle: durability.replicas must be a positive integer')
  const timeoutMs = toPositiveMs(opts.timeout ?? '200ms', 'durability.timeout')
  // A shortfall is answered (a login's session ended first) before the guard gives up on the call.
  if (timeoutMs >= storeTimeoutMs) throw new TypeError('token-lifecycle: durability.timeout must be less than storeTimeout')
  return Object.freeze({ replicas, timeoutMs })
}

export function checkOptions (opts: TokenLifecycleOptions): Readonly<ResolvedTokenLifecycleOptions> {
  const keyPrefix = opts.keyPrefix ?? 'auth'
  if (typeof keyPrefix !== 'string' || keyPrefix === '' || /[{}]/.test(keyPrefix)) {
    throw new TypeError('token-lifecycle: keyPrefix must be a non-empty string without braces')
  }
  const accessTtlMs = toPositiveMs(opts.accessTokenTtl ?? 300, 'accessTokenTtl')
  const idleMs = toPositiveMs(opts.idleTimeout ?? 14 * 86_400, 'idleTimeout')
  const maxAgeMs = toPositiveMs(opts.maxSessionAge ?? 30 * 86_400, 'maxSessionAge')
  if (accessTtlMs < 1000) throw new TypeError('token-lifecycle: accessTokenTtl must be at least one second')
  if (maxAgeMs < accessTtlMs) throw new TypeError('token-lifecycle: maxSessionAge must be at least accessTokenTtl')
  const jwt = resolveJwt(opts.jwt)
  const storeTimeoutMs = toPositiveMs(opts.storeTimeout ?? '800ms', 'storeTimeout')
  return Object.freeze({
    jwt: Object.freeze(jwt),
    keyPrefix,
    accessTtlMs,
    idleMs,
    maxAgeMs,
    touchMs: toMs(opts.touchInterval ?? 60, 'touchInterval'),
    storeTimeoutMs,
    // Long enough for any access token of the session to expire on its own.
    retentionMs: accessTtlMs + jwt.clockToleranceMs,
    localCache: resolveLocalCache(opts.localCache),
    verifyConnection: resolveVerifyConnection(opts.verifyConnection),
    durability: resolveDurability(opts.durability, storeTimeoutMs),
    clock: opts.clock ?? systemClock
  })
}
