import Fastify from 'fastify'
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import fastifyRedis from '@fastify/redis'
import { expectTypeOf } from 'expect-type'
import { authOrNull, authRoutes, NotAuthenticatedError, refreshRotation, replayGuard, ssoSession, tokenLifecycle } from 'fastify-jwt-sessions'
import type { AccessTokenPayload, AuthContext, OpenSessionInput, SessionInfo, SsoPolicy } from 'fastify-jwt-sessions'
import type { TokenService } from 'fastify-jwt-sessions/token-lifecycle'
import type { RefreshRotationService } from 'fastify-jwt-sessions/refresh-rotation'
import type { SsoService } from 'fastify-jwt-sessions/sso-session'
import type { ReplayGuardRouteConfig } from 'fastify-jwt-sessions/replay-guard'
import './claims.js'

const app = Fastify()
await app.register(fastifyRedis, { url: 'redis://127.0.0.1:6379' })
await app.register(tokenLifecycle, { jwt: { secret: 'a-secret-a-secret-a-secret-a-secret' }, accessTokenTtl: '5m' })
await app.register(ssoSession, { policy: 'single' })
await app.register(refreshRotation, { loadClaims: async () => ({ roles: ['user'] }) })
await app.register(replayGuard, {})
await app.register(authRoutes, {
  prefix: '/auth',
  verifyCredentials: async (username) => ({ userId: username, claims: { roles: ['user'], tenant: 't1', extra: 1 } })
})

// --- request.auth behind authenticate: no `!`, claims exact ---
app.get('/me', { onRequest: app.authenticate }, async (request) => {
  expectTypeOf(request.auth).toEqualTypeOf<AuthContext>()
  expectTypeOf(request.auth.claims.roles).toEqualTypeOf<string[]>()
  expectTypeOf(request.auth.claims.tenant).toEqualTypeOf<string | undefined>()
  expectTypeOf(request.auth.claims.sub).toEqualTypeOf<string>()
  expectTypeOf(request.auth.claims.cv).toEqualTypeOf<number>()
  // Undeclared claims still pass through, as unknown.
  expectTypeOf(request.auth.claims.other).toEqualTypeOf<unknown>()
  // @ts-expect-error roles are strings
  const wrong: number[] = request.auth.claims.roles
  // @ts-expect-error request.auth is read-only: only authenticate sets it
  request.auth = null
  return { user: request.auth.userId, roles: request.auth.claims.roles, wrong }
})

// --- AuthContext fields ---
expectTypeOf<AuthContext>().toHaveProperty('userId').toEqualTypeOf<string>()
expectTypeOf<AuthContext>().toHaveProperty('sessionId').toEqualTypeOf<string>()
expectTypeOf<AuthContext>().toHaveProperty('jti').toEqualTypeOf<string>()
expectTypeOf<AuthContext>().toHaveProperty('expiresAt').toEqualTypeOf<number>()
expectTypeOf<AuthContext>().toHaveProperty('sessionLiveUntil').toEqualTypeOf<number>()
expectTypeOf<AuthContext>().toHaveProperty('token').toEqualTypeOf<string>()
expectTypeOf<AuthContext['claims']>().toExtend<AccessTokenPayload>()

// --- optional auth: authOrNull ---
app.addHook('onResponse', async (request) => {
  const auth = authOrNull(request)
  expectTypeOf(auth).toEqualTypeOf<AuthContext | null>()
  if (auth !== null) expectTypeOf(auth.claims.roles).toEqualTypeOf<string[]>()
})
expectTypeOf(new NotAuthenticatedError('GET /x')).toExtend<Error & { code: 'AUTH_NOT_AUTHENTICATED', statusCode: 500 }>()

// --- decorators ---
expectTypeOf(app.tokens).toEqualTypeOf<TokenService>()
expectTypeOf(app.authenticate).parameters.toEqualTypeOf<[FastifyRequest, FastifyReply]>()
expectTypeOf(app.authenticate).returns.toEqualTypeOf<Promise<void>>()
// The reply parameter is FastifyReply, not `any` (it once shipped unimported).
expectTypeOf(app.authenticate).parameter(1).not.toBeAny()
expectTypeOf(app.refreshRotation).toEqualTypeOf<RefreshRotationService>()
expectTypeOf(app.refreshRotation.refresh).returns.resolves.toHaveProperty('access_token').toEqualTypeOf<string>()
expectTypeOf(app.sso).toEqualTypeOf<SsoService>()
expectTypeOf(app.sso.policy).toEqualTypeOf<SsoPolicy>()
expectTypeOf(app.replayGuard).returns.toEqualTypeOf<onRequestAsyncHookHandler>()
expectTypeOf(app.tokens.listSessions).returns.resolves.toEqualTypeOf<SessionInfo[]>()

// --- route config: replayGuard ---
app.post('/transfer', { onRequest: app.authenticate, config: { replayGuard: true } }, async () => ({ ok: true }))
app.post('/pay', { onRequest: app.replayGuard({ scope: 'pay' }), config: { replayGuard: { scope: 'pay' } } }, async () => ({ ok: true }))
expectTypeOf<ReplayGuardRouteConfig>().toEqualTypeOf<boolean | { scope?: string }>()
// @ts-expect-error a scope is a string
app.post('/bad', { config: { replayGuard: { scope: 1 } } }, async () => ({}))

// --- the claims an app hands in are the declared ones ---
await app.tokens.openSession({ userId: 'u', claims: { roles: ['admin'] } })
expectTypeOf<OpenSessionInput>().toHaveProperty('claims').toExtend<{ roles: string[] }>()
// @ts-expect-error declared claims are required at login
await app.tokens.openSession({ userId: 'u' })
// @ts-expect-error a claim of the wrong type
await app.tokens.openSession({ userId: 'u', claims: { roles: 'admin' } })
// @ts-expect-error loadClaims must hand in the declared claims too
await app.register(refreshRotation, { loadClaims: async () => ({ tenant: 't' }) })
await app.register(authRoutes, {
  // @ts-expect-error verifyCredentials' claims are typed as well
  verifyCredentials: async (username) => ({ userId: username, claims: { roles: [1] } })
})

// --- options: unknown or mistyped ones are refused ---
// @ts-expect-error no such option
await app.register(tokenLifecycle, { jwt: { secret: 's' }, accessTokenTTL: '5m' })
// @ts-expect-error a policy is one of the named ones
await app.register(ssoSession, { policy: 'sometimes' })
