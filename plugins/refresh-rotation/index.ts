import { Type, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsync, FastifyRequest, FastifySchemaCompiler } from 'fastify'
import fp from 'fastify-plugin'
import { carriedClaims, checkAppClaims } from '../../lib/claims.js'
import type { AuthError } from '../../lib/errors.js'
import { authOrNull } from '../../lib/request-auth.js'
import {
  RefreshInvalidError, RefreshReusedError,
  SessionExpiredError, SessionReplacedError, SessionRevokedError, bearerChallenge
} from '../../lib/errors.js'
import { newIssueContext } from '../../lib/issue-context.js'
import { Status } from '../../lib/lua/status.js'
import { onceSpentError } from '../../lib/once-keys.js'
import { createRateLimiter } from '../../lib/rate-limit.js'
import { tokenPair } from '../../lib/token-pair.js'
import type { TokenPair } from '../../lib/types.js'
import type { RefreshRotationOptions } from './options.js'
import { checkOptions } from './options.js'
import { refreshLimit } from './rate-limit.js'
import { ROTATE, firstRefreshState } from './scripts.js'
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

  // Rate limits: our own limiter on the shared Redis, under the app's prefix.
  const limitRefresh = refreshLimit(createRateLimiter(tokens.redis, guard, keys.prefix), options.refreshRate)

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

  const service: RefreshRotationService = { refresh }
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
      const auth = authOrNull(request)
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
