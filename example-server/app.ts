import fastifyRedis from '@fastify/redis'
import { Type, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { errorCodes } from 'fastify'
import type { FastifyInstance, FastifyRequest, FastifyServerOptions } from 'fastify'
import { Redis, Cluster } from 'ioredis'
import type { RedisOptions } from 'ioredis'
import { createHash, timingSafeEqual } from 'node:crypto'
import { ForbiddenError, UserNotFoundError, acceptEmptyJsonBody } from '../plugins/index.js'
import ssoSession from '../plugins/sso-session/index.js'
import tokenLifecycle, { authRoutes } from '../plugins/token-lifecycle/index.js'
import type { SsoPolicyInput } from '../plugins/sso-session/index.js'
import replayGuard from '../plugins/replay-guard/index.js'
import refreshRotation from '../plugins/refresh-rotation/index.js'
// --- client demo (issue 7) ---
import clientDemo from './demo/index.js'
// --- end client demo ---
import type { ExampleConfig } from './config.js'
import type { DemoUser } from './users.js'
import { demoUsers } from './users.js'

function samePassword (a: string, b: string): boolean {
  const hash = (s: string) => createHash('sha256').update(s).digest()
  return timingSafeEqual(hash(a), hash(b))
}

/**
 * Waits between reconnection attempts: 50 ms more after each failure, at most
 * half a second. ioredis's own default grows to 5 s, so a login could wait
 * that long after Redis was back (issue #13); an attempt at a Redis that is
 * down costs a refused connection.
 */
export const reconnectDelay = (times: number): number => Math.min(times * 50, 500)

/**
 * The client's options: one that fails fast instead of queueing while Redis
 * is away, so requests answer 503 at once rather than piling up behind a
 * reconnect, and reconnects within half a second of Redis's return. Auto-
 * pipelining sends the commands of concurrent requests in one write: each
 * request still makes its one call, but the server and Redis make far fewer
 * system calls under load.
 */
export const redisClientOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2000,
  enableAutoPipelining: true,
  retryStrategy: reconnectDelay
} as const satisfies RedisOptions

/**
 * REDIS_USERNAME and REDIS_PASSWORD win over the URL's own credentials. They
 * go into the URL, not the options: ioredis lets a URL's values win over
 * options given beside it.
 */
function urlWithCredentials (config: ExampleConfig): string {
  if (config.redisUsername === null && config.redisPassword === null) return config.redisUrl
  const url = new URL(config.redisUrl)
  if (config.redisUsername !== null) url.username = encodeURIComponent(config.redisUsername)
  if (config.redisPassword !== null) url.password = encodeURIComponent(config.redisPassword)
  return url.href
}

/**
 * The example's one client, on whichever Redis the configuration names
 * (Cluster, then Sentinel, then REDIS_URL), always with `redisClientOptions`.
 * REDIS_CA_FILE's CA checks every TLS connection: a rediss:// URL's, every
 * Cluster node's, and with Sentinel both the sentinels' and the data nodes'.
 */
export function createRedisClient (config: ExampleConfig): Redis | Cluster {
  const tls = config.redisCa === null ? undefined : { ca: config.redisCa }
  const credentials = {
    ...(config.redisUsername === null ? {} : { username: config.redisUsername }),
    ...(config.redisPassword === null ? {} : { password: config.redisPassword })
  }
  if (config.clusterNodes) {
    return new Cluster(config.clusterNodes, {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: reconnectDelay,
      redisOptions: { ...redisClientOptions, ...credentials, tls }
    })
  }
  if (config.sentinels) {
    return new Redis({
      ...redisClientOptions,
      ...credentials,
      sentinels: config.sentinels,
      name: config.sentinelName,
      // Without a reachable sentinel, try the list again at the same pace as a lost Redis.
      sentinelRetryStrategy: reconnectDelay,
      tls,
      sentinelTLS: tls,
      enableTLSForSentinelMode: tls !== undefined
    })
  }
  return new Redis(urlWithCredentials(config), { ...redisClientOptions, tls })
}

function requireRole (role: string) {
  return async function (request: FastifyRequest): Promise<void> {
    const roles = request.auth.claims.roles
    if (!Array.isArray(roles) || !roles.includes(role)) throw new ForbiddenError()
  }
}

/**
 * The route schemas, not the router, bound path parameters (a user id may be
 * as long as a login name, 256 characters): a parameter the schema refuses is
 * a 400 as the contract says, not the router's 414 past its default of 100.
 * Node's 16 KB limit on the request head bounds the URL anyway.
 */
const MAX_PARAM_LENGTH = 16_384

/** Builds the example app from the public API only; `server.ts` starts it. */
export async function buildApp (config: ExampleConfig, fastifyOptions: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...fastifyOptions,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH, ...fastifyOptions.routerOptions }
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.setValidatorCompiler(TypeBoxValidatorCompiler)
  acceptEmptyJsonBody(app)
  // Fastify's own 404 body has no `code`; the contract gives every error one.
  app.setNotFoundHandler(async () => { throw new errorCodes.FST_ERR_NOT_FOUND() })
  const users: Map<string, DemoUser> = demoUsers()

  const redis = createRedisClient(config)
  // Without a listener ioredis prints every failed reconnect; log it once per outage instead.
  let redisDown = false
  redis.on('error', (err: Error) => {
    if (!redisDown) app.log.warn({ reason: err.message }, 'Redis connection lost; auth answers 503 until it is back')
    redisDown = true
  })
  redis.on('ready', () => { redisDown = false })
  await app.register(fastifyRedis, { client: redis, closeClient: false })
  // QUIT needs a live connection; a client that lost Redis is disconnected instead.
  app.addHook('onClose', async () => {
    if (redis.status === 'ready') await redis.quit()
    else redis.disconnect()
  })
  await app.register(tokenLifecycle, {
    keyPrefix: config.keyPrefix,
    jwt: { secret: config.jwtSecret },
    accessTokenTtl: config.accessTtl,
    idleTimeout: config.refreshTtl,
    maxSessionAge: config.sessionMaxAge,
    localCache: config.localCache ? {} : false,
    storeTimeout: config.storeTimeoutMs === undefined ? undefined : `${config.storeTimeoutMs}ms`
  })
  await app.register(ssoSession, {
    policy: config.sso as SsoPolicyInput,
    onReplaced: (event) => app.log.info({ userId: event.userId, replaced: event.replaced.sessionId, by: event.newSessionId }, 'session replaced by a newer login')
  })

  // --- replay-guard (issue 5): one-time tokens on guarded routes; DPoP proofs
  // checked whenever presented (and binding tokens at login/refresh). ---
  await app.register(replayGuard, { dpop: true })
  // --- end replay-guard ---

  // --- refresh-rotation: POST /auth/refresh and its rate limit ---
  await app.register(refreshRotation, {
    route: '/auth/refresh',
    grace: config.refreshGrace,
    // The contract's windows are seconds; timeWindow takes milliseconds (as @fastify/rate-limit's).
    refreshRateLimit: { max: config.refreshRateMax, timeWindow: config.refreshRateWindow * 1000 },
    // Roles are read again at every refresh: a role change shows up there.
    async loadClaims (userId) {
      const user = users.get(userId)
      return user ? { roles: user.roles } : null
    }
  })
  // --- end refresh-rotation ---

  await app.register(authRoutes, {
    prefix: '/auth',
    // POST /login and POST /password: attempts per window (seconds in the contract, milliseconds here).
    loginRateLimit: { max: config.loginRateMax, timeWindow: config.loginRateWindow * 1000 },
    async verifyCredentials (username, password) {
      const user = users.get(username)
      if (!user || !samePassword(password, user.password)) return null
      return { userId: username, claims: { roles: user.roles } }
    },
    async changePassword (userId, currentPassword, newPassword) {
      const user = users.get(userId)
      if (!user || !samePassword(currentPassword, user.password)) return false
      user.password = newPassword
      return true
    }
  })

  app.get('/api/me', { onRequest: app.authenticate }, async (request) => {
    const { userId, sessionId, claims } = request.auth
    return { user_id: userId, session_id: sessionId, roles: claims.roles }
  })

  // --- replay-guard (issue 5) ---
  app.post('/api/transfer', {
    onRequest: app.authenticate,
    config: { replayGuard: true },
    schema: { body: Type.Object({ amount: Type.Number() }) }
  }, async () => ({ ok: true }))
  // --- end replay-guard ---

  const adminOnly = { onRequest: app.authenticate, preHandler: requireRole('admin') }
  const UserParams = Type.Object({ user_id: Type.String({ minLength: 1, maxLength: 256 }) })

  app.post('/admin/users/:user_id/revoke', {
    ...adminOnly,
    schema: { params: UserParams, querystring: Type.Object({ device_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }) }
  }, async (request, reply) => {
    const { user_id: userId } = request.params
    const deviceId = request.query.device_id
    if (deviceId) await app.tokens.endDeviceSessions(userId, deviceId)
    else await app.tokens.endAllSessions(userId)
    reply.code(204)
  })

  app.put('/admin/users/:user_id/roles', {
    ...adminOnly,
    schema: { params: UserParams, body: Type.Object({ roles: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 }) }) }
  }, async (request, reply) => {
    const user = users.get(request.params.user_id)
    if (!user) throw new UserNotFoundError()
    user.roles = request.body.roles
    await app.tokens.invalidateClaims(request.params.user_id)
    reply.code(204)
  })

  // --- client demo (issue 7): the page at / and its bundle, built from client/ ---
  await app.register(clientDemo)
  // --- end client demo ---

  app.get('/healthz', async (request, reply) => {
    try {
      await app.tokens.ping()
      return { redis: 'ok' }
    } catch {
      reply.code(503)
      return { redis: 'unavailable' }
    }
  })

  return app
}
