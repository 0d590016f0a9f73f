import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { Test } from 'tap'
import replayGuard from '../../plugins/replay-guard/index.js'
import type { ReplayGuardOptions } from '../../plugins/replay-guard/index.js'
import tokenLifecycle from '../../plugins/token-lifecycle/index.js'
import { REDIS_URL, cleanupPrefix, uniquePrefix } from './app.js'

import { TEST_SECRET } from './app.js'
export { TEST_SECRET }

/**
 * A bare app with token-lifecycle and replay-guard, for what the example
 * server does not show (hook factory, scopes, DPoP modes). `GET /plain` is an
 * ordinary protected route; `issue()` opens a session for user 'u1'.
 */
export async function pluginApp (
  t: Test,
  guardOptions: ReplayGuardOptions = {},
  routes: (app: FastifyInstance) => void = () => {},
  fastifyOptions: FastifyServerOptions = {}
) {
  const keyPrefix = uniquePrefix('rg')
  const app = Fastify(fastifyOptions)
  t.teardown(() => app.close())
  cleanupPrefix(t, keyPrefix)
  await app.register(fastifyRedis, { url: REDIS_URL })
  await app.register(tokenLifecycle, { keyPrefix, jwt: { secret: TEST_SECRET } })
  await app.register(replayGuard, guardOptions)
  app.get('/plain', { onRequest: app.authenticate }, async () => ({ ok: true }))
  routes(app)
  await app.ready()
  const issue = async () => (await app.tokens.openSession({ userId: 'u1' })).tokens.access_token
  return { app, issue, keyPrefix }
}
