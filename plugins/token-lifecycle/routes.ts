import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import type { FastifyContextConfig, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { acceptEmptyJsonBody } from '../../lib/json-body.js'
import { InvalidCredentialsError, SessionNotFoundError, WrongPasswordError, bearerChallenge } from '../../lib/errors.js'
import type { RateLimitOptions } from '../../lib/rate-limit.js'
import { loginLimits } from './login-rate-limit.js'
import type { ListedSession } from '../../lib/session-list.js'
import type { WithAppClaims } from '../../lib/types.js'

/** A user whose password checked out, and the app claims of their first access token (typed by SessionClaims). */
export interface VerifiedUser extends WithAppClaims {
  userId: string
}

export interface AuthRoutesOptions {
  /** Checks a username and password; resolves the user, or null when they do not match. */
  verifyCredentials: (username: string, password: string, request: FastifyRequest) => Promise<VerifiedUser | null>
  /**
   * Changes a password after checking the current one; resolves false when the
   * current password is wrong. Without it, `POST /password` is not mounted.
   */
  changePassword?: (userId: string, currentPassword: string, newPassword: string, request: FastifyRequest) => Promise<boolean>
  /**
   * Attempts allowed per window on `POST /login` (per username and client
   * address) and on `POST /password` (per user and client address, wrong
   * current passwords included); 429 AUTH_RATE_LIMITED past them. Units of
   * @fastify/rate-limit: `timeWindow` in milliseconds, or a string such as
   * '1 minute'. Counted in our own hook on the shared Redis, never through
   * `config.rateLimit`. Default `{ max: 10, timeWindow: '1 minute' }`; false: off.
   */
  loginRateLimit?: RateLimitOptions | false
  /** Extra route config for `POST /login` (for example your own `@fastify/rate-limit`'s `{ rateLimit: {...} }`). */
  loginConfig?: FastifyContextConfig
  /** Extra route config for `POST /password`. */
  passwordConfig?: FastifyContextConfig
}

const Str = (maxLength: number, minLength = 0) => Type.String({ minLength, maxLength })

const LoginBody = Type.Object({
  username: Str(256, 1),
  password: Str(1024),
  device_id: Type.Optional(Str(200)),
  device_type: Type.Optional(Str(64)),
  device_name: Type.Optional(Str(200))
})

const PasswordBody = Type.Object({
  current_password: Str(1024),
  new_password: Str(1024, 8)
})

const SessionParams = Type.Object({ session_id: Str(64, 1) })

/**
 * The contract's `/auth/*` routes, ready to mount under a prefix:
 * `fastify.register(authRoutes, { prefix: '/auth', verifyCredentials })`.
 * Bodies are validated without type coercion: `"password": 42` is a 400.
 */
const authRoutesPlugin: FastifyPluginAsyncTypebox<AuthRoutesOptions> = async (fastify, opts) => {
  if (typeof opts.verifyCredentials !== 'function') throw new TypeError('authRoutes: verifyCredentials is required')
  if (opts.changePassword !== undefined && typeof opts.changePassword !== 'function') throw new TypeError('authRoutes: changePassword must be a function')
  fastify.setValidatorCompiler(TypeBoxValidatorCompiler)
  acceptEmptyJsonBody(fastify)
  const tokens = fastify.tokens
  const authenticate = fastify.authenticate
  const limits = loginLimits(tokens, opts.loginRateLimit)

  fastify.post('/login', { schema: { body: LoginBody }, config: opts.loginConfig ?? {}, preHandler: limits?.login ?? [] }, async (request, reply) => {
    const { username, password, device_id: id, device_type: type, device_name: name } = request.body
    const claimsLoadedAt = tokens.options.clock()
    const user = await opts.verifyCredentials(username, password, request)
    if (!user) throw bearerChallenge(new InvalidCredentialsError(), false)
    const { tokens: pair } = await tokens.openSession({ userId: user.userId, claims: user.claims, device: { id, type, name }, request, claimsLoadedAt })
    // RFC 6749 section 5.1: token responses are never cached.
    reply.header('cache-control', 'no-store')
    return pair
  })

  fastify.post('/logout', { onRequest: authenticate }, async (request, reply) => {
    await tokens.endSession(request.auth.userId, request.auth.sessionId)
    reply.code(204)
  })

  fastify.post('/logout-all', { onRequest: authenticate }, async (request, reply) => {
    await tokens.endAllSessions(request.auth.userId)
    reply.code(204)
  })

  fastify.get('/sessions', { onRequest: authenticate }, async (request): Promise<{ sessions: ListedSession[] }> => {
    const { userId, sessionId } = request.auth
    const sessions = await tokens.listSessions(userId)
    return {
      sessions: sessions.map((s) => ({
        session_id: s.sessionId,
        device_id: s.deviceId,
        device_type: s.deviceType,
        device_name: s.deviceName,
        created_at: s.createdAt.toISOString(),
        last_seen_at: s.lastSeenAt.toISOString(),
        current: s.sessionId === sessionId
      }))
    }
  })

  fastify.delete('/sessions/:session_id', { onRequest: authenticate, schema: { params: SessionParams } }, async (request, reply) => {
    const ended = await tokens.endSession(request.auth.userId, request.params.session_id)
    if (!ended) throw new SessionNotFoundError()
    reply.code(204)
  })

  const changePassword = opts.changePassword
  if (changePassword) {
    fastify.post('/password', { onRequest: authenticate, schema: { body: PasswordBody }, config: opts.passwordConfig, preHandler: limits?.password ?? [] }, async (request, reply) => {
      const { userId } = request.auth
      const changed = await changePassword(userId, request.body.current_password, request.body.new_password, request)
      if (!changed) throw new WrongPasswordError()
      // A new password ends every session, the current one included: whoever
      // knew the old password may hold one of them.
      await tokens.endAllSessions(userId)
      reply.code(204)
    })
  }
}

export const authRoutes = fp(authRoutesPlugin, {
  fastify: '5.x',
  name: 'fastify-jwt-sessions/auth-routes',
  dependencies: ['fastify-jwt-sessions/token-lifecycle'],
  encapsulate: true
})
