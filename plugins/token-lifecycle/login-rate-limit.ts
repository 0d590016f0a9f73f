import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import { digest } from '../../lib/crypto.js'
import type { RateLimitOptions, RateLimiter, ResolvedRateLimit } from '../../lib/rate-limit.js'
import { createRateLimiter, rateLimitedError, resolveRateLimit, sendRateLimitHeaders } from '../../lib/rate-limit.js'
import type { TokenService } from './service.js'

/** `authRoutes`' default: 10 attempts per minute. */
export const DEFAULT_LOGIN_RATE_LIMIT: RateLimitOptions = { max: 10, timeWindow: '1 minute' }

export interface LoginLimits {
  /** preHandler of `POST /login`: per username (digested) and client address. */
  login: preHandlerAsyncHookHandler
  /** preHandler of `POST /password`: per user (digested) and client address. */
  password: preHandlerAsyncHookHandler
}

/**
 * The login and password-change limits of the ready-made routes, or null
 * when `setting` is false. preHandlers: they run after validation (the
 * username is there) and after authentication (the user is known). Every
 * attempt counts, a wrong password included, so a stolen access token is
 * no unlimited oracle for the current password either. Digests keep
 * usernames and user ids out of Redis keys. Answers carry
 * @fastify/rate-limit's x-ratelimit-* headers, as they always did.
 */
export function loginLimits (tokens: TokenService, setting: RateLimitOptions | false | undefined): LoginLimits | null {
  if (setting === false) return null
  const limit = resolveRateLimit(setting ?? DEFAULT_LOGIN_RATE_LIMIT, 'authRoutes: loginRateLimit')
  const limiter = createRateLimiter(tokens.redis, tokens.guard, tokens.keys.prefix)
  return {
    login: limitBy(limiter, limit, (request) => `login:${digest(String((request.body as { username: string }).username)).toString('base64url')}:${request.ip}`),
    password: limitBy(limiter, limit, (request) => `password:${digest(request.auth.userId).toString('base64url')}:${request.ip}`)
  }
}

function limitBy (limiter: RateLimiter, limit: ResolvedRateLimit, keyOf: (request: FastifyRequest) => string): preHandlerAsyncHookHandler {
  return async function (request: FastifyRequest, reply: FastifyReply) {
    const count = await limiter(keyOf(request), limit)
    sendRateLimitHeaders(reply, count)
    if (count.exceeded) throw rateLimitedError(count)
  }
}
