import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { Test } from 'tap'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import refreshRotation from '../plugins/refresh-rotation/index.js'
import type { RefreshRotationOptions } from '../plugins/refresh-rotation/index.js'
import { RefreshTokenCodec } from '../plugins/refresh-rotation/token.js'
import { deriveKey } from '../lib/crypto.js'
import tokenLifecycle from '../plugins/token-lifecycle/index.js'
import type { TokenLifecycleOptions } from '../plugins/token-lifecycle/index.js'
import { REDIS_URL, cleanupPrefix, uniquePrefix } from './helpers/app.js'
import { TEST_SECRET, customApp, refresh } from './helpers/refresh.js'

const loadClaims = async () => ({})

async function boot (t: Test, refreshOpts: Partial<RefreshRotationOptions>, lifecycle: Partial<TokenLifecycleOptions> = {}, routes?: (app: FastifyInstance) => void) {
  const app = Fastify()
  t.teardown(() => app.close())
  const keyPrefix = uniquePrefix('rro')
  cleanupPrefix(t, keyPrefix)
  await app.register(fastifyRedis, { client: new Redis(REDIS_URL), closeClient: true })
  await app.register(tokenLifecycle, { keyPrefix, jwt: { secret: TEST_SECRET }, ...lifecycle } as TokenLifecycleOptions)
  await app.register(refreshRotation, refreshOpts as RefreshRotationOptions)
  routes?.(app)
  await app.ready()
  return app
}

t.test('options are checked at register time', async (t) => {
  const bad: Array<[Partial<RefreshRotationOptions>, RegExp]> = [
    [{}, /loadClaims/],
    [{ loadClaims, secret: 'short' }, /secret must be at least 32 bytes/],
    [{ loadClaims, route: 'auth/refresh' }, /route must be a path/],
    [{ loadClaims, grace: 'soon' }, /grace/],
    [{ loadClaims, refreshRateLimit: { max: 0, timeWindow: 60_000 } }, /refreshRateLimit.max/],
    [{ loadClaims, refreshRateLimit: 'x' as unknown as false }, /refreshRateLimit.max/],
    [{ loadClaims, refreshRateLimit: { max: 1, timeWindow: 0 } }, /refreshRateLimit.timeWindow/],
    [{ loadClaims, refreshRateLimit: { max: 1 } as unknown as false }, /refreshRateLimit.timeWindow/],
    // Milliseconds now, as in @fastify/rate-limit: 0.1.0's "60 seconds" would be no limit at all.
    [{ loadClaims, refreshRateLimit: { max: 1, timeWindow: 60 } }, /refreshRateLimit.timeWindow must be at least one second/],
    [{ loadClaims, refreshRateLimit: { max: 1, timeWindow: 'soon' } }, /refreshRateLimit.timeWindow/],
    [{ loadClaims, refreshRateLimit: { max: 1, timeWindow: 60_000, addressMax: 1.5 } }, /addressMax/],
    [{ loadClaims, loginRateLimit: { max: 1, timeWindow: 60_000 } } as Partial<RefreshRotationOptions>, /loginRateLimit is an option of authRoutes now/],
    [{ loadClaims, renewal: { threshold: 30, header: 'bad header' } }, /renewal.header/],
    [{ loadClaims, renewal: { threshold: 0 } }, /renewal.threshold/],
    [{ loadClaims, onReuse: 'log' as unknown as () => void }, /onReuse/]
  ]
  for (const [opts, message] of bad) await t.rejects(boot(t, opts), message, JSON.stringify(opts))
})

t.test('a key-pair JWT setup needs an explicit refresh secret', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwt = { algorithm: 'ES256' as const, privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }), publicKey: publicKey.export({ type: 'spki', format: 'pem' }) }
  await t.rejects(boot(t, { loadClaims }, { jwt }), /secret is required when token-lifecycle signs with ES256/)
  const secret = randomBytes(32)
  const app = await boot(t, { loadClaims, secret }, { jwt })
  const { tokens } = await app.tokens.openSession({ userId: 'u1' })
  // Tokens are sealed with a key derived from that secret.
  t.ok(new RefreshTokenCodec(deriveKey(secret, 'refresh')).parse(tokens.refresh_token as string))
  const res = await refresh(app, tokens.refresh_token)
  t.equal(res.statusCode, 200)
  t.equal(res.json().token_type, 'Bearer')
})

t.test('route: false mounts nothing; the service still refreshes', async (t) => {
  const app = await boot(t, { loadClaims, route: false }, {}, (app) => {
    app.post('/my/refresh', async (request) => await app.refreshRotation.refresh(request, (request.body as { token: string }).token))
  })
  const { tokens } = await app.tokens.openSession({ userId: 'u1' })
  t.equal((await refresh(app, tokens.refresh_token)).statusCode, 404)
  const res = await app.inject({ method: 'POST', url: '/my/refresh', payload: { token: tokens.refresh_token } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().session_id, tokens.session_id)
})

t.test('a custom route path', async (t) => {
  const { app } = await customApp(t, { refresh: { route: '/token/refresh' } })
  const { tokens } = await app.tokens.openSession({ userId: 'alice' })
  const res = await app.inject({ method: 'POST', url: '/token/refresh', payload: { refresh_token: tokens.refresh_token } })
  t.equal(res.statusCode, 200)
})
