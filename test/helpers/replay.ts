import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { Test } from 'tap'
import replayGuard from '../../plugins/replay-guard/index.js'
import type { ReplayGuardOptions } from '../../plugins/replay-guard/index.js'
import { TEST_SECRET, pluginApp as basePluginApp, uniquePrefix } from './app.js'

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
  const app = await basePluginApp(t, { keyPrefix }, async (app) => {
    await app.register(replayGuard, guardOptions)
    app.get('/plain', { onRequest: app.authenticate }, async () => ({ ok: true }))
    routes(app)
  }, fastifyOptions)
  const issue = async () => (await app.tokens.openSession({ userId: 'u1' })).tokens.access_token
  return { app, issue, keyPrefix }
}
