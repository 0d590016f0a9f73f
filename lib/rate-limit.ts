import { parse as parseMs } from '@lukeed/ms'
import type { FastifyReply } from 'fastify'
import type { AuthError } from './errors.js'
import { RateLimitedError } from './errors.js'
import type { RedisClient, ScriptDefinition, StoreGuard } from './redis.js'
import { defineScript } from './redis.js'

/**
 * Our own fixed-window limiter, for the limits of our ready-made routes
 * (login, password change, refresh).
 *
 * Why not @fastify/rate-limit: it shares its decorators down the context
 * chain (a host that registered it first would hand us its limiter and its
 * store) and its onRoute hook reads every route's `config.rateLimit` (a
 * host's own limits would be counted by ours, or ours by the host's). So our
 * limits run in our own hooks and code, and the host's limiter, if any, stays
 * entirely the host's. Options and counting follow @fastify/rate-limit, so
 * nothing new to learn and nothing changes on the wire.
 */

/** A limit, in @fastify/rate-limit's units: `timeWindow` a number of milliseconds, or a string such as '1 minute'. */
export interface RateLimitOptions {
  /** Requests allowed per window. */
  max: number
  /** Window length: milliseconds, or a string @fastify/rate-limit understands ('1 minute', '30s'). */
  timeWindow: number | string
}

export interface ResolvedRateLimit {
  max: number
  windowMs: number
}

/**
 * The shortest window taken. Numbers are milliseconds here (as in
 * @fastify/rate-limit), where 0.1.0 took seconds: a `timeWindow: 60` kept
 * from then would silently become a 60 ms window, that is no limit at all.
 */
const MIN_WINDOW_MS = 1000

/** Checks a limit at register time; `name` is the option's name for the error message. */
export function resolveRateLimit (value: RateLimitOptions, name: string): ResolvedRateLimit {
  if (typeof value !== 'object' || value === null || !Number.isInteger(value.max) || value.max < 1) {
    throw new TypeError(`${name}.max must be a positive integer`)
  }
  // As @fastify/rate-limit reads it: a number is truncated, a string parsed by @lukeed/ms.
  const { timeWindow } = value
  const windowMs = typeof timeWindow === 'number'
    ? Math.trunc(timeWindow)
    : typeof timeWindow === 'string' ? Math.trunc(parseMs(timeWindow) ?? NaN) : NaN
  if (!(windowMs >= MIN_WINDOW_MS)) {
    throw new TypeError(`${name}.timeWindow must be at least one second: milliseconds (60000) or a string such as '1 minute' (got ${JSON.stringify(timeWindow)})`)
  }
  return { max: value.max, windowMs }
}

/**
 * A fixed-window counter with the semantics of @fastify/rate-limit's
 * RedisStore: the first request of a window starts it, later ones count
 * within it. A counter somehow left without expiry gets one again.
 * KEYS[1] counter; ARGV[1] window (ms). Returns { count, ms left in the window }.
 */
export const RATE_INCR: ScriptDefinition = {
  name: 'rate_incr',
  lua: `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { count, ttl }
`
}

/** One request counted: what the client is told, as @fastify/rate-limit tells it. */
export interface RateCount {
  max: number
  remaining: number
  /** Seconds until the window ends, rounded up (x-ratelimit-reset, Retry-After). */
  resetSeconds: number
  exceeded: boolean
}

/** Counts one request under `key` (below `<keyPrefix>:rl:`); rejects with 503 AUTH_STORE_UNAVAILABLE when Redis fails. */
export type RateLimiter = (key: string, limit: ResolvedRateLimit) => Promise<RateCount>

/** Where every counter lives: `<keyPrefix>:rl:<key>`. */
export const rateLimitKeyPrefix = (keyPrefix: string): string => `${keyPrefix}:rl:`

/**
 * A limiter on the shared Redis whose every call goes through the store
 * guard: a dead or slow Redis answers 503, never a 500 nor a request let
 * through unlimited (fail closed).
 */
export function createRateLimiter (redis: RedisClient, guard: StoreGuard, keyPrefix: string): RateLimiter {
  const incr = defineScript(redis, RATE_INCR)
  const prefix = rateLimitKeyPrefix(keyPrefix)
  return async (key, limit) => {
    const [current, ttl] = await guard(() => incr(1, prefix + key, limit.windowMs)) as number[]
    return {
      max: limit.max,
      remaining: Math.max(0, limit.max - current),
      resetSeconds: Math.ceil(ttl / 1000),
      exceeded: current > limit.max
    }
  }
}

/** The 429 of a count over its limit: AUTH_RATE_LIMITED with Retry-After. */
export function rateLimitedError (count: RateCount): AuthError {
  const err = new RateLimitedError() as AuthError
  err.headers = { 'retry-after': String(count.resetSeconds) }
  return err
}

/**
 * The headers @fastify/rate-limit sends with a count (x-ratelimit-limit,
 * -remaining, -reset), on a reply: the login and password routes send them.
 */
export function sendRateLimitHeaders (reply: FastifyReply, count: RateCount): void {
  reply.header('x-ratelimit-limit', count.max)
  reply.header('x-ratelimit-remaining', count.remaining)
  reply.header('x-ratelimit-reset', count.resetSeconds)
}
