import fastifyRateLimit from '@fastify/rate-limit'
import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import { Type, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import type { FastifyContextConfig, FastifyPluginAsync, FastifyRequest, FastifySchemaCompiler } from 'fastify'
import fp from 'fastify-plugin'
import { digest } from '../../lib/crypto.js'
import { carriedClaims, checkAppClaims } from '../../lib/claims.js'
import type { AuthError } from '../../lib/errors.js'
import {
  RateLimitedError, RefreshInvalidError, RefreshReusedError,
  SessionExpiredError, SessionReplacedError, SessionRevokedError, bearerChallenge
} from '../../lib/errors.js'
import { newIssueContext } from '../../lib/issue-context.js'
import { Status } from '../../lib/lua/status.js'
import { onceSpentError } from '../../lib/once-keys.js'
import { defineScript } from '../../lib/redis.js'
import { tokenPair } from '../../lib/token-pair.js'
import type { TokenPair } from '../../lib/types.js'
import type { RefreshRotationOptions } from './options.js'
import { checkOptions } from './options.js'
import { GuardedRateStore } from './rate-limit.js'
import { RATE_INCR, ROTATE, firstRefreshState } from './scripts.js'
import { RefreshTokenCodec } from './token.js'

export const PLUGIN_NAME = 'fastify-jwt-sessions/refresh-rotation'

/** ROTATE's refusals (a binding's refusal is the binding's own error). */
const REFUSALS: Record<number, () => AuthError> = {
  [Status.invalid]: () => bearerChallenge(new RefreshInvalidError(), true),
  [Status.replaced]: () => bearerChallenge(new SessionReplacedError(), true),
  [Status.expired]: () => bearerChallenge(new SessionExpiredError(), true),
  [Status.reused]: () => bearerChallenge(new RefreshReusedError(), true)
}

const RefreshBody = Type.Object({ refresh_token: Type.String() })

export interface RefreshRotationService {
  /** One refresh: rate limits, rotation (one script call), new token pair. Throws the contract's errors. */
  refresh (request: FastifyRequest, refreshToken: string): Promise<TokenPair>
  /** Route config for the login route (`authRoutes`' `loginConfig`): the login rate limit. */
  readonly loginRouteConfig: FastifyContextConfig
  /**
   * Route config for the password-change route (`authRoutes`' `passwordConfig`):
   * the login limit, per user and client address, so a stolen access token is
   * no unlimited oracle for the current password.
   */
  readonly passwordRouteConfig: FastifyContextConfig
}

const refreshRotation: FastifyPluginAsync<RefreshRotationOptions> = async (fastify, opts) => {
  const tokens = fastify.tokens
  const core = tokens.options
  const options = checkOptions(opts, core)
  const { keys, guard } = tokens
  const codec = new RefreshTokenCodec(options.key)
  const rotate = tokens.defineWrite(ROTATE)
  /** A refresh token lasts as long as the session stays unused, never past its absolute deadline (seconds). */
  const refreshExpiresIn = (absoluteDeadline: number, now: number): number => Math.floor(Math.min(core.idleMs, absoluteDeadline - now) / 1000)

  // Login: the session's first refresh token; Redis keeps only its digest.
  tokens.extend({
    name: 'refresh-rotation',
    onIssue (ctx) {
      if (ctx.kind !== 'login') return
      const token = codec.first(ctx.userId, ctx.sessionId, ctx.absoluteDeadline)
      ctx.fields.r = firstRefreshState(token.digest)
      ctx.response.refresh_token = token.value
      ctx.response.refresh_expires_in = refreshExpiresIn(ctx.absoluteDeadline, ctx.now)
    }
  })

  // Rate limits: @fastify/rate-limit on the shared Redis, under the app's prefix.
  const { refreshRate, loginRate } = options
  let limitRefresh = async (_request: FastifyRequest, _sessionId: string | null): Promise<void> => {}
  let loginRouteConfig: FastifyContextConfig = {}
  let passwordRouteConfig: FastifyContextConfig = {}
  if (refreshRate || loginRate) {
    if (fastify.hasDecorator('createRateLimit')) {
      throw new Error(`${PLUGIN_NAME}: @fastify/rate-limit is already registered; register it after this plugin, or set refreshRateLimit and loginRateLimit to false`)
    }
    const store = new GuardedRateStore(defineScript(tokens.redis, RATE_INCR), guard, `${keys.prefix}:rl:`)
    await fastify.register(fastifyRateLimit, {
      global: false,
      skipOnError: false,
      // A constructor that hands @fastify/rate-limit our store.
      store: function () { return store } as unknown as FastifyRateLimitStoreCtor,
      errorResponseBuilder: () => new RateLimitedError()
    })
    if (loginRate) {
      loginRouteConfig = {
        rateLimit: {
          max: loginRate.max,
          timeWindow: loginRate.windowMs,
          // After validation, so the username is there; a digest keeps it out of Redis keys.
          hook: 'preHandler',
          keyGenerator: (request) => `login:${digest(String((request.body as { username: string }).username)).toString('base64url')}:${request.ip}`
        }
      }
      passwordRouteConfig = {
        rateLimit: {
          max: loginRate.max,
          timeWindow: loginRate.windowMs,
          // After authentication, so the user is known; every attempt counts,
          // a wrong current password included.
          hook: 'preHandler',
          keyGenerator: (request) => `password:${digest(request.auth!.userId).toString('base64url')}:${request.ip}`
        }
      }
    }
    if (refreshRate) {
      const sessionOf = new WeakMap<FastifyRequest, string>()
      const perAddress = fastify.createRateLimit({
        max: refreshRate.addressMax, timeWindow: refreshRate.windowMs, keyGenerator: (request) => `refresh:a:${request.ip}`
      })
      const perSession = fastify.createRateLimit({
        max: refreshRate.max, timeWindow: refreshRate.windowMs, keyGenerator: (request) => `refresh:s:${sessionOf.get(request)}`
      })
      const check = async (limiter: typeof perAddress, request: FastifyRequest): Promise<void> => {
        const result = await limiter(request)
        // Neither limiter has an allow list, so isAllowed is never true.
        if (!result.isAllowed && result.isExceeded) {
          const err = new RateLimitedError() as AuthError
          err.headers = { 'retry-after': String(result.ttlInSeconds) }
          throw err
        }
      }
      // Every request counts per address; per session only with a genuine
      // token (a forged one naming someone's session must not spend their quota).
      // Both counters in flight at once: one round trip of latency.
      limitRefresh = async (request, sessionId) => {
        if (sessionId === null) return await check(perAddress, request)
        sessionOf.set(request, sessionId)
        await Promise.all([check(perAddress, request), check(perSession, request)])
      }
    }
  }

  async function refresh (request: FastifyRequest, value: string): Promise<TokenPair> {
    const token = codec.parse(value)
    await limitRefresh(request, token && token.sessionId)
    if (!token) throw bearerChallenge(new RefreshInvalidError(), true)
    const { userId, sessionId } = token
    const now = core.clock()
    // The deadline is in the MAC'd token: past it, no need to ask Redis.
    if (now >= token.absoluteDeadline) throw bearerChallenge(new SessionExpiredError(), true)

    // Extensions see the request first: bindings, one-time keys, claims for the new access token.
    // A refresh names no device and carries no app claims yet (loaded after the rotation).
    const ctx = newIssueContext({ kind: 'refresh', request, userId, sessionId, now, absoluteDeadline: token.absoluteDeadline })
    await tokens.runIssueExtensions(ctx)

    // The successor is derived, not stored: every caller within the grace
    // window computes the same one; Redis learns only its digest.
    const next = codec.successor(token)
    const bindings: string[] = []
    for (const binding of ctx.bindings) bindings.push(binding.field, binding.value)
    // A rotation short of replicas (`durability`, logged) is answered all the
    // same: the master already holds the successor, and the presented token
    // counts as reused once the grace window is over, so a 503 would end the
    // session of a client that retries later, while the master lives on.
    const rotated = await rotate((writeBy) => ROTATE.args({ sessions: keys.sessions(userId) }, {
      sid: sessionId,
      now,
      generation: token.generation,
      presentedDigest: token.digest,
      successorDigest: next.digest,
      grace: options.graceMs,
      idle: core.idleMs,
      retention: core.retentionMs,
      writeBy
    }, ctx, bindings))
    const [status, claimsVersion, absoluteDeadline] = rotated.reply as number[]
    const spent = onceSpentError(status, ctx)
    if (spent !== undefined) throw spent

    if (status === Status.reused) await reportReuse(request, userId, sessionId, token.generation)
    // The second element of a binding mismatch is the binding's index.
    if (status === Status.bindingMismatch) throw ctx.bindings[claimsVersion].error()
    if (status !== Status.ok && status !== Status.grace) throw REFUSALS[status]()

    // Claims are loaded after the rotation read the claims version: a role
    // change racing this refresh can only make the new token stale, never
    // give old roles a current version.
    const claims = await options.loadClaims(userId, request)
    if (claims === null) {
      await tokens.endSession(userId, sessionId)
      throw bearerChallenge(new SessionRevokedError(), true)
    }
    const access = tokens.signAccessToken({
      userId, sessionId, claimsVersion, claims: checkAppClaims(claims), extraClaims: ctx.tokenClaims, absoluteDeadline
    })
    ctx.response.refresh_token = next.value
    ctx.response.refresh_expires_in = refreshExpiresIn(absoluteDeadline, now)
    return tokenPair(access, ctx)
  }

  async function reportReuse (request: FastifyRequest, userId: string, sessionId: string, generation: number): Promise<void> {
    // Who and where, never the token.
    fastify.log.warn({ userId, sessionId, generation, ip: request.ip }, 'refresh-rotation: rotated refresh token reused after its grace window; session ended')
    if (!options.onReuse) return
    try {
      await options.onReuse({ userId, sessionId, generation, ip: request.ip, at: new Date() }, request)
    } catch (err) {
      fastify.log.error({ err }, 'refresh-rotation: onReuse hook failed')
    }
  }

  const service: RefreshRotationService = { refresh, loginRouteConfig, passwordRouteConfig }
  fastify.decorate('refreshRotation', service)

  if (options.route) {
    fastify.post(options.route, { schema: { body: RefreshBody }, validatorCompiler: TypeBoxValidatorCompiler as FastifySchemaCompiler<unknown> }, async (request, reply) => {
      const pair = await refresh(request, (request.body as { refresh_token: string }).refresh_token)
      // RFC 6749 section 5.1: token responses are never cached.
      reply.header('cache-control', 'no-store')
      return pair
    })
  }

  const renewal = options.renewal
  if (renewal) {
    // No store call: the request's one verify call just found the session live
    // and its claims current, so the fresh token carries the same claims. Its
    // exp stops where the session is known to end (absolute deadline, or the
    // idle deadline if sooner), as every token of the session does.
    fastify.addHook('onSend', async (request, reply, payload) => {
      const auth = request.auth
      if (auth && auth.expiresAt - core.clock() < renewal.thresholdMs) {
        const claims = auth.claims
        const access = tokens.signAccessToken({
          userId: claims.sub, sessionId: claims.sid, claimsVersion: claims.cv, extraClaims: carriedClaims(claims), absoluteDeadline: auth.sessionLiveUntil
        })
        reply.header(renewal.header, access.token)
        reply.header(`${renewal.header}-expires-in`, String(access.expiresIn))
        reply.header('cache-control', 'no-store')
      }
      return payload
    })
  }
}

export default fp(refreshRotation, {
  fastify: '5.x',
  name: PLUGIN_NAME,
  // token-lifecycle's decorators (fastify.tokens, fastify.authenticate) are
  // this plugin's only way to it: registered in the wrong order, the boot fails.
  dependencies: ['fastify-jwt-sessions/token-lifecycle']
})

export { refreshRotation }
export { RefreshTokenCodec } from './token.js'
export type { RefreshToken } from './token.js'
export type { RefreshRotationOptions, ReuseEvent, RateLimitSetting } from './options.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Refresh-token rotation (refresh-rotation). */
    refreshRotation: RefreshRotationService
  }
}
