// An app that declares no claims: any claims go in, and come out unknown.
import Fastify from 'fastify'
import { expectTypeOf } from 'expect-type'
import { authRoutes, refreshRotation, tokenLifecycle } from 'fastify-jwt-sessions'
import type { AppClaims } from 'fastify-jwt-sessions'

const app = Fastify()
await app.register(tokenLifecycle, { jwt: { secret: 's' } })
await app.register(refreshRotation, { loadClaims: async (): Promise<Record<string, unknown>> => ({ roles: ['user'] }) })
await app.register(authRoutes, { verifyCredentials: async (username) => ({ userId: username }) })
await app.tokens.openSession({ userId: 'u' })
await app.tokens.openSession({ userId: 'u', claims: { roles: ['user'], anything: { nested: true } } })
const loaded: Record<string, unknown> = { roles: [] }
await app.tokens.openSession({ userId: 'u', claims: loaded })
expectTypeOf<Record<string, unknown>>().toExtend<AppClaims>()

app.get('/me', { onRequest: app.authenticate }, async (request) => {
  expectTypeOf(request.auth.claims.roles).toEqualTypeOf<unknown>()
  expectTypeOf(request.auth.claims.sub).toEqualTypeOf<string>()
  return { user: request.auth.userId }
})
// @ts-expect-error claims are an object
await app.tokens.openSession({ userId: 'u', claims: 'admin' })
