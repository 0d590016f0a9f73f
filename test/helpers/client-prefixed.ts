import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { authRoutes, refreshRotation, tokenLifecycle } from '../../plugins/index.js'
import { REDIS_URL, TEST_SECRET, cleanupPrefix, uniquePrefix } from './app.js'

type Test = { teardown: (fn: () => unknown) => void }

export interface PrefixedApp {
  app: FastifyInstance
  baseUrl: string
  /** The server's clock is `Date.now() + skew.ms`: a login made with it behind signs tokens already expired. */
  skew: { ms: number }
  /** The path of every /api request the server answered, with its status, in order. */
  answered: string[]
}

/**
 * A host app that mounts the ready-made routes under `/api/auth` (and the
 * refresh route at `refreshRoute`), from the package's public exports only,
 * listening on a free port: what a client must work with besides the example
 * server's `/auth`. Users are `<name>` with password `<name>-pass`.
 */
export async function prefixedApp (t: Test, refreshRoute = '/api/auth/refresh'): Promise<PrefixedApp> {
  const app = Fastify()
  const keyPrefix = uniquePrefix('client-prefix')
  const skew = { ms: 0 }
  await app.register(fastifyRedis, { url: REDIS_URL })
  await app.register(tokenLifecycle, { keyPrefix, jwt: { secret: TEST_SECRET }, clock: () => Date.now() + skew.ms })
  await app.register(refreshRotation, { route: refreshRoute, loadClaims: async () => ({ roles: ['user'] }) })
  await app.register(authRoutes, {
    prefix: '/api/auth',
    async verifyCredentials (username, password) {
      return password === `${username}-pass` ? { userId: username, claims: { roles: ['user'] } } : null
    }
  })
  app.get('/api/me', { onRequest: app.authenticate }, async (request) => ({ user_id: request.auth!.userId }))
  const answered: string[] = []
  app.addHook('onResponse', async (request, reply) => { answered.push(`${request.method} ${request.url} ${reply.statusCode}`) })
  t.teardown(() => app.close())
  cleanupPrefix(t, keyPrefix)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { app, baseUrl: `http://127.0.0.1:${port}`, skew, answered }
}
