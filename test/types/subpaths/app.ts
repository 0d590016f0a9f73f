// An app that imports subpaths only: the claims declared on
// 'fastify-jwt-sessions/types' apply all the same (the package root, which
// this program never loads, is not needed).
import Fastify from 'fastify'
import { expectTypeOf } from 'expect-type'
import tokenLifecycle, { authOrNull } from 'fastify-jwt-sessions/token-lifecycle'
import refreshRotation from 'fastify-jwt-sessions/refresh-rotation'

declare module 'fastify-jwt-sessions/types' {
  interface SessionClaims { roles: string[] }
}

const app = Fastify()
await app.register(tokenLifecycle, { jwt: { secret: 's' } })
await app.register(refreshRotation, { loadClaims: async () => ({ roles: [] }) })
app.get('/me', { onRequest: app.authenticate }, async (request) => {
  expectTypeOf(request.auth.claims.roles).toEqualTypeOf<string[]>()
  expectTypeOf(authOrNull(request)?.claims.roles).toEqualTypeOf<string[] | undefined>()
  return request.auth.claims.roles
})
// @ts-expect-error declared claims are required at login
await app.tokens.openSession({ userId: 'u' })
