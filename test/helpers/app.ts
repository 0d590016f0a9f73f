import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import tokenLifecycle from '../../plugins/token-lifecycle/index.js'
import type { TokenLifecycleOptions } from '../../plugins/token-lifecycle/index.js'
import { Redis } from 'ioredis'
import type { Command } from 'ioredis'
import { REDIS_URL, keysUnder, uniquePrefix } from './env.js'
import { buildApp } from '../../example-server/app.js'
import type { ExampleConfig } from '../../example-server/config.js'
import { configFromEnv } from '../../example-server/config.js'
import { parseCoreRecord } from '../../lib/session-record.js'
import type { ScriptLane } from '../../lib/script-lane.js'

type Test = { teardown: (fn: () => unknown) => void }

export { REDIS_URL, uniquePrefix }

/** Deletes every key under a prefix (SCAN, never FLUSH) when the test ends. */
export function cleanupPrefix (t: Test, prefix: string, url = REDIS_URL): void {
  t.teardown(async () => {
    const redis = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    redis.on('error', () => {})
    try {
      await redis.connect()
      const keys = await keysUnder(redis, prefix)
      if (keys.length) await redis.del(...keys)
    } catch {
      // A server the test killed took its keys with it.
    } finally {
      redis.disconnect()
    }
  })
}

export function testConfig (overrides: Partial<ExampleConfig> = {}): ExampleConfig {
  return {
    ...configFromEnv({ REDIS_URL, AUTH_JWT_SECRET: 'test-secret-test-secret-test-secret-0123' }),
    keyPrefix: uniquePrefix('app'),
    ...overrides
  }
}

/** The example server in-process, on its own key prefix, closed when the test ends. */
export async function exampleApp (t: Test, overrides: Partial<ExampleConfig> = {}): Promise<FastifyInstance> {
  const config = testConfig(overrides)
  const app = await buildApp(config)
  t.teardown(() => app.close())
  cleanupPrefix(t, config.keyPrefix, config.redisUrl)
  return app
}

export interface LoginAnswer {
  access_token: string
  refresh_token: string
  session_id: string
  expires_in: number
  token_type: string
  refresh_expires_in: number
}

export async function login (app: FastifyInstance, username: string, extra: Record<string, string> = {}): Promise<LoginAnswer> {
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username, password: `${username}-pass`, ...extra } })
  if (res.statusCode !== 200) throw new Error(`login ${username} failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

export async function me (app: FastifyInstance, token: string) {
  return await app.inject({ method: 'GET', url: '/api/me', headers: bearer(token) })
}

export const TEST_SECRET = 'test-secret-test-secret-test-secret-0123'

/**
 * A bare app with @fastify/redis and token-lifecycle only (no example routes),
 * for tests of the plugin's own options. `setup` runs before ready.
 */
export async function pluginApp (
  t: Test,
  options: Partial<TokenLifecycleOptions> = {},
  setup: (app: FastifyInstance) => void | Promise<void> = () => {},
  fastifyOptions: FastifyServerOptions = {}
): Promise<FastifyInstance> {
  const app = Fastify(fastifyOptions)
  const keyPrefix = options.keyPrefix ?? uniquePrefix('plugin')
  await app.register(fastifyRedis, { url: REDIS_URL, enableOfflineQueue: false })
  await app.register(tokenLifecycle, { jwt: { secret: TEST_SECRET }, ...options, keyPrefix })
  await setup(app)
  t.teardown(() => app.close())
  cleanupPrefix(t, keyPrefix)
  await app.ready()
  return app
}

/** A session as stored in its user's hash (lib/session-record.ts), or null when it has no record. */
export async function storedSession (redis: Redis, app: FastifyInstance, userId: string, sessionId: string) {
  const [core, refresh, jkt] = await redis.hmget(app.tokens.keys.sessions(userId), sessionId, `${sessionId}:r`, `${sessionId}:k`)
  if (core === null) return null
  return { ...parseCoreRecord(core), refresh, generation: refresh === null ? null : Number(refresh.split('|')[0]), jkt }
}

/**
 * Records the name of every command a client sends (the client is what pays
 * round trips). Given an app, records both its shared client and the hot
 * path's own connection (`scriptLane`, when on), whose calls count as 'evalsha'
 * too. `skip` leaves some out (the local cache's heartbeat PUBLISH).
 */
export function recordCommands (t: Test, target: unknown, skip: string[] = []): string[] {
  const sent: string[] = []
  const app = target as Partial<FastifyInstance>
  const client = (app.tokens ? app.tokens.redis : target) as { sendCommand: (command: Command) => unknown }
  const original = client.sendCommand
  client.sendCommand = function (this: unknown, command: Command) {
    if (!skip.includes(command.name)) sent.push(command.name)
    return original.call(this, command)
  }
  t.teardown(() => { client.sendCommand = original })
  const lane = app.tokens?.scriptLane
  if (lane) recordLaneCalls(t, lane, sent)
  return sent
}

/** Records each script call the lane sends, as 'evalsha', into `sent`. */
export function recordLaneCalls (t: Test, lane: ScriptLane, sent: string[] = []): string[] {
  const evalsha = lane.evalsha
  lane.evalsha = function (this: ScriptLane, ...args: Parameters<ScriptLane['evalsha']>) {
    sent.push('evalsha')
    return evalsha.apply(this, args)
  }
  t.teardown(() => { lane.evalsha = evalsha })
  return sent
}
