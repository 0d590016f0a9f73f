import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import { deriveKey } from '../../lib/crypto.js'
import refreshRotation from '../../plugins/refresh-rotation/index.js'
import type { RefreshRotationOptions } from '../../plugins/refresh-rotation/index.js'
import { RefreshTokenCodec } from '../../plugins/refresh-rotation/token.js'
import tokenLifecycle, { authRoutes } from '../../plugins/token-lifecycle/index.js'
import type { AuthRoutesOptions, TokenLifecycleOptions } from '../../plugins/token-lifecycle/index.js'
import { REDIS_URL, TEST_SECRET, cleanupPrefix, uniquePrefix } from './app.js'
import { keysUnder } from './env.js'

type Test = { teardown: (fn: () => unknown) => void }

export { TEST_SECRET }

/** The codec the example server uses (key derived from the test JWT secret): lets tests forge genuine-looking tokens. */
export const exampleCodec = () => new RefreshTokenCodec(deriveKey(TEST_SECRET, 'refresh'))

export async function refresh (app: FastifyInstance, refreshToken: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken }, headers })
}

export interface CustomAppOptions {
  lifecycle?: Partial<TokenLifecycleOptions>
  refresh?: Partial<RefreshRotationOptions>
  /** authRoutes' options (its `loginRateLimit`, for one). */
  routes?: Partial<AuthRoutesOptions>
  /** Runs between token-lifecycle and refresh-rotation (extensions, other plugins). */
  before?: (app: FastifyInstance) => Promise<void> | void
  /** Runs while a login's password is being checked, after its claims were read. */
  duringCredentials?: (username: string) => Promise<void> | void
  redisUrl?: string
}

/**
 * A small app: token-lifecycle + refresh-rotation + authRoutes, users whose
 * password is `<name>-pass` and whose roles are in `roles`.
 */
export async function customApp (t: Test, opts: CustomAppOptions = {}): Promise<{ app: FastifyInstance, roles: Map<string, string[]>, keyPrefix: string }> {
  const keyPrefix = uniquePrefix('rr')
  const url = opts.redisUrl ?? REDIS_URL
  const app = Fastify()
  const roles = new Map<string, string[]>([['alice', ['user']], ['bob', ['user']]])
  const client = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 500 })
  // A test may kill its own Redis: its reconnect errors are expected, not unhandled.
  client.on('error', () => {})
  // A Redis of its own is thrown away whole; the shared one is cleaned by prefix.
  const own = opts.redisUrl !== undefined
  await app.register(fastifyRedis, { client, closeClient: !own })
  if (own) t.teardown(() => { client.disconnect() })
  await app.register(tokenLifecycle, { keyPrefix, jwt: { secret: TEST_SECRET }, ...opts.lifecycle })
  await opts.before?.(app)
  await app.register(refreshRotation, {
    async loadClaims (userId) {
      const r = roles.get(userId)
      return r ? { roles: r } : null
    },
    ...opts.refresh
  })
  await app.register(authRoutes, {
    prefix: '/auth',
    async verifyCredentials (username, password) {
      const user = roles.has(username) && password === `${username}-pass` ? { userId: username, claims: { roles: roles.get(username) } } : null
      await opts.duringCredentials?.(username)
      return user
    },
    ...opts.routes
  })
  app.get('/api/me', { onRequest: app.authenticate }, async (request) => ({ roles: request.auth!.claims.roles }))
  t.teardown(() => app.close())
  if (!own) cleanupPrefix(t, keyPrefix, url)
  await app.ready()
  return { app, roles, keyPrefix }
}

/** Every key under a prefix with its type and TTL (ms). */
export async function scanPrefix (prefix: string): Promise<Array<{ key: string, type: string, ttl: number, values: string[] }>> {
  const redis = new Redis(REDIS_URL)
  const out: Array<{ key: string, type: string, ttl: number, values: string[] }> = []
  for (const key of await keysUnder(redis, prefix)) {
    const type = await redis.type(key)
    const ttl = await redis.pttl(key)
    let values: string[] = []
    if (type === 'string') values = [String(await redis.get(key))]
    else if (type === 'hash') values = Object.entries(await redis.hgetall(key)).flat()
    else if (type === 'zset') values = await redis.zrange(key, '0', '-1', 'WITHSCORES')
    else throw new Error(`unexpected key type ${type} for ${key}`)
    out.push({ key, type, ttl, values })
  }
  await redis.quit()
  return out
}
