/**
 * Variant "refresh": POST /auth/refresh (rotation, grace, reuse detection, rate
 * limits), on an app wired like the example server from the public plugins,
 * except that `loadClaims` knows the bench's users (the example only knows its
 * three demo users, and one session each under SSO). One fresh session, so one
 * never-used refresh token, per request.
 */
import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import { createRedisClient } from '../../example-server/app.js'
import { configFromEnv } from '../../example-server/config.js'
import refreshRotation from '../../plugins/refresh-rotation/index.js'
import ssoSession from '../../plugins/sso-session/index.js'
import tokenLifecycle from '../../plugins/token-lifecycle/index.js'
import { BENCH_SECRET, inBatches, POOL_SIZE, REDIS_URL, serve } from './common.js'

const config = configFromEnv({ REDIS_URL, AUTH_JWT_SECRET: BENCH_SECRET })
const redis = createRedisClient(config)
const app = Fastify({ logger: false })
await app.register(fastifyRedis, { client: redis, closeClient: true })
await app.register(tokenLifecycle, { keyPrefix: 'brefresh', jwt: { secret: BENCH_SECRET } })
await app.register(ssoSession, { policy: 'single' })
await app.register(refreshRotation, {
  route: '/auth/refresh',
  grace: config.refreshGrace,
  // Rate limits are a feature, not what is measured here (they still run: one more round trip).
  refreshRateLimit: { max: 1_000_000_000, timeWindow: '1 minute' },
  async loadClaims (userId) { return userId.startsWith('bench-') ? { roles: ['user'] } : null }
})

await serve(app, async () => inBatches(Number(process.env.BENCH_POOL_FOR_ONE_TIME ?? POOL_SIZE), 100, async (i) => {
  const { tokens } = await app.tokens.openSession({ userId: `bench-${i}`, claims: { roles: ['user'] }, device: { id: 'phone-1', type: 'phone', name: 'Bench phone' } })
  return String(tokens.refresh_token)
}))
