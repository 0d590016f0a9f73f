import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { once } from 'node:events'
import t from 'tap'
import type { Test } from 'tap'
import tokenLifecycle from '../plugins/token-lifecycle/index.js'
import type { LocalCache } from '../plugins/token-lifecycle/local-cache.js'
import { checkOptions } from '../plugins/token-lifecycle/options.js'
import { REDIS_URL, TEST_SECRET, bearer, exampleApp, login, me, pluginApp, recordCommands as recordAll, storedSession, uniquePrefix } from './helpers/app.js'
import { startRedisServer } from './helpers/redis-server.js'

const redis = new Redis(REDIS_URL)
t.teardown(() => redis.quit())

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Commands the app's client sends, heartbeats (PUBLISH) left out. */
const recordCommands = (t: Test, client: unknown) => recordAll(t, client, ['publish'])

/** Waits for a condition, at most 5 s (a loaded machine may deliver pub/sub late). */
async function until (what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(5)
  }
}

const untilUsable = async (cache: LocalCache) => await until('the local cache is usable', () => cache.usable())
/** Waits for the invalidation message to drop the one entry the cache held. */
const untilEmptied = async (cache: LocalCache) => await until('the invalidation arrived', () => cache.size === 0)

const protectedRoute = (app: FastifyInstance) => {
  app.get('/p', { onRequest: app.authenticate }, async (request) => ({ sid: request.auth!.sessionId }))
}

t.test('localCache options are checked at register time', async (t) => {
  const jwt = { secret: TEST_SECRET }
  t.equal(checkOptions({ jwt }).localCache, null, 'off by default')
  t.equal(checkOptions({ jwt, localCache: false }).localCache, null)
  t.same(checkOptions({ jwt, localCache: {} }).localCache, { maxEntries: 100_000, heartbeatMs: 1000 })
  t.same(checkOptions({ jwt, localCache: { maxEntries: 5, heartbeat: '20ms' } }).localCache, { maxEntries: 5, heartbeatMs: 20 })
  t.throws(() => checkOptions({ jwt, localCache: true as never }), /localCache must be false or an object/)
  t.throws(() => checkOptions({ jwt, localCache: null as never }), /localCache must be false or an object/)
  t.throws(() => checkOptions({ jwt, localCache: { maxEntries: 0 } }), /maxEntries must be a positive integer/)
  t.throws(() => checkOptions({ jwt, localCache: { maxEntries: 1.5 } }), /maxEntries must be a positive integer/)
  t.throws(() => checkOptions({ jwt, localCache: { heartbeat: 0 } }), /heartbeat must be greater than zero/)
})

t.test('a cache hit costs no Redis command; a guarded route still goes to Redis', async (t) => {
  const app = await exampleApp(t, { localCache: true, sso: 'off' })
  const cache = app.tokens.localCache!
  await untilUsable(cache)
  const pair = await login(app, 'alice')
  const sent = recordCommands(t, app)

  t.equal((await me(app, pair.access_token)).statusCode, 200)
  t.same(sent, ['evalsha'], 'the first request asks Redis')
  t.equal(cache.size, 1)
  sent.length = 0
  for (let i = 0; i < 20; i++) {
    const res = await me(app, pair.access_token)
    t.equal(res.json().session_id, pair.session_id)
  }
  t.same(sent, [], 'twenty more requests, no Redis command')

  const statuses: number[] = []
  for (let i = 0; i < 3; i++) {
    const guarded = await app.inject({ method: 'POST', url: '/api/transfer', headers: bearer(pair.access_token), payload: { amount: 1 } })
    statuses.push(guarded.statusCode)
  }
  t.same(statuses, [200, 401, 401], 'the token is spent once, although its session is cached')
  t.same(sent, ['evalsha', 'evalsha', 'evalsha'], 'one-time keys are always spent in Redis')

  sent.length = 0
  t.equal((await me(app, 'garbage')).statusCode, 401)
  t.same(sent, [])
})

t.test('an invalidation message drops the user\'s entries: logout, role change, SSO replacement, refresh reuse', async (t) => {
  const app = await exampleApp(t, { localCache: true, sso: 'device-type', refreshGrace: 0 })
  const cache = app.tokens.localCache!
  await untilUsable(cache)

  // logout through another instance's path (the service), while this one holds the entry
  const a = await login(app, 'alice', { device_type: 'phone' })
  t.equal((await me(app, a.access_token)).statusCode, 200)
  t.equal(cache.size, 1)
  await app.tokens.endSession('alice', a.session_id)
  await untilEmptied(cache)
  t.equal((await me(app, a.access_token)).json().code, 'AUTH_SESSION_REVOKED')

  // role change
  const b = await login(app, 'alice', { device_type: 'laptop' })
  t.equal((await me(app, b.access_token)).statusCode, 200)
  t.equal(cache.size, 1)
  await app.tokens.invalidateClaims('alice')
  await untilEmptied(cache)
  t.equal((await me(app, b.access_token)).json().code, 'AUTH_TOKEN_STALE')

  // SSO replacement (same device type)
  const c = await login(app, 'bob', { device_type: 'phone' })
  t.equal((await me(app, c.access_token)).statusCode, 200)
  t.equal(cache.size, 1)
  await login(app, 'bob', { device_type: 'phone' })
  await untilEmptied(cache)
  t.equal((await me(app, c.access_token)).json().code, 'AUTH_SESSION_REPLACED')

  // refresh reuse past the grace window ends the session
  const d = await login(app, 'root', { device_type: 'phone' })
  t.equal((await me(app, d.access_token)).statusCode, 200)
  t.equal(cache.size, 1)
  const rotated = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: d.refresh_token } })
  t.equal(rotated.statusCode, 200)
  const reused = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: d.refresh_token } })
  t.equal(reused.statusCode, 401)
  await untilEmptied(cache)
  t.equal((await me(app, d.access_token)).json().code, 'AUTH_SESSION_REVOKED')

  // end every session of a user
  const e = await login(app, 'alice', { device_type: 'tablet' })
  t.equal((await me(app, e.access_token)).statusCode, 200)
  t.equal(cache.size, 1)
  await app.tokens.endAllSessions('alice')
  await untilEmptied(cache)
  t.equal((await me(app, e.access_token)).json().code, 'AUTH_SESSION_REVOKED')
})

t.test('entries live at most one touch interval and never past the absolute deadline', async (t) => {
  const clock = { now: Date.now() }
  const app = await pluginApp(t, {
    clock: () => clock.now, touchInterval: 60, accessTokenTtl: 300, maxSessionAge: 300, localCache: { heartbeat: '50ms' }
  }, protectedRoute)
  const cache = app.tokens.localCache!
  await untilUsable(cache)
  const { tokens, sessionId } = await app.tokens.openSession({ userId: 'u' })
  const sent = recordCommands(t, app)
  const get = async () => await app.inject({ url: '/p', headers: bearer(tokens.access_token) })

  t.equal((await get()).statusCode, 200)
  clock.now += 59_999
  t.equal((await get()).statusCode, 200)
  t.same(sent, ['evalsha'], 'cached for the touch interval')
  clock.now += 1
  t.equal((await get()).statusCode, 200)
  t.same(sent, ['evalsha', 'evalsha'], 'then Redis again')
  t.equal((await storedSession(redis, app, 'u', sessionId))!.lastSeen, clock.now, 'which writes last_seen_at')

  // 240 s after login: the entry would live to 300 s by the touch interval, the deadline cuts it at 240 + 60 = 300
  clock.now += 180_000
  t.equal((await get()).statusCode, 200)
  clock.now += 59_000
  t.equal((await get()).statusCode, 200)
  t.equal(sent.length, 3)
  clock.now += 1000
  t.equal((await get()).json().code, 'AUTH_SESSION_EXPIRED', 'the absolute deadline is checked in Redis')
  t.equal(sent.length, 4)
})

t.test('the idle deadline bounds an entry too', async (t) => {
  const clock = { now: Date.now() }
  const app = await pluginApp(t, {
    clock: () => clock.now, touchInterval: 60, idleTimeout: 90, localCache: { heartbeat: '50ms' }
  }, protectedRoute)
  const cache = app.tokens.localCache!
  await untilUsable(cache)
  const { tokens } = await app.tokens.openSession({ userId: 'u' })
  const sent = recordCommands(t, app)
  const get = async () => await app.inject({ url: '/p', headers: bearer(tokens.access_token) })
  clock.now += 45_000
  t.equal((await get()).statusCode, 200, 'no touch due: the session is known live until login + 90 s')
  clock.now += 44_999
  t.equal((await get()).statusCode, 200)
  t.equal(sent.length, 1)
  clock.now += 1
  t.equal((await get()).json().code, 'AUTH_SESSION_REVOKED', 'at the idle deadline the session is gone')
  t.equal(sent.length, 2, 'and Redis said so: the entry did not outlive the idle deadline, although the touch interval is not over')
})

t.test('a missing heartbeat bypasses and empties the cache', async (t) => {
  const app = await pluginApp(t, { localCache: { heartbeat: '30ms' } }, protectedRoute)
  const cache = app.tokens.localCache!
  await untilUsable(cache)
  const { tokens } = await app.tokens.openSession({ userId: 'u' })
  const sent = recordCommands(t, app)
  const get = async () => await app.inject({ url: '/p', headers: bearer(tokens.access_token) })
  t.equal((await get()).statusCode, 200)
  t.equal((await get()).statusCode, 200)
  t.same(sent, ['evalsha'])

  await (cache.subscriber as Redis).unsubscribe(cache.channel)
  await until('two heartbeat periods went by without one', () => !cache.usable())
  t.equal(cache.size, 0)
  for (let i = 0; i < 3; i++) t.equal((await get()).statusCode, 200)
  t.same(sent, ['evalsha', 'evalsha', 'evalsha', 'evalsha'], 'every request goes to Redis')
  t.equal(cache.size, 0, 'and nothing is remembered')

  await (cache.subscriber as Redis).subscribe(cache.channel)
  await untilUsable(cache)
  t.equal((await get()).statusCode, 200)
  t.equal((await get()).statusCode, 200)
  t.equal(sent.length, 5, 'back on with the heartbeat')
})

t.test('subscriber down: bypassed; reconnected: emptied, then used again; app close stops everything', async (t) => {
  const server = await startRedisServer(t)
  const app = Fastify()
  const keyPrefix = uniquePrefix('lc')
  const client = new Redis(server.url, { enableOfflineQueue: false, retryStrategy: () => 20 })
  client.on('error', () => {})
  await once(client, 'ready')
  await app.register(tokenLifecycle, { jwt: { secret: TEST_SECRET }, keyPrefix, redis: client, localCache: { heartbeat: '30ms' } })
  protectedRoute(app)
  let closed = false
  t.teardown(async () => {
    if (!closed) await app.close()
    client.disconnect()
  })
  await app.ready()
  const cache = app.tokens.localCache!
  await untilUsable(cache)
  const { tokens } = await app.tokens.openSession({ userId: 'u' })
  const sent = recordCommands(t, app)
  const get = async () => await app.inject({ url: '/p', headers: bearer(tokens.access_token) })
  t.equal((await get()).statusCode, 200)
  t.equal((await get()).statusCode, 200)
  t.same(sent, ['evalsha'])
  t.equal(cache.size, 1)

  const admin = new Redis(server.url)
  admin.on('error', () => {})
  t.teardown(() => admin.disconnect())
  const subscriberClosed = once(cache.subscriber, 'close')
  await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
  await subscriberClosed
  t.notOk(cache.usable(), 'subscriber not ready')
  t.equal(cache.size, 0, 'emptied at once')
  t.equal((await get()).statusCode, 200)
  t.equal(sent.length, 2, 'went to Redis')

  await untilUsable(cache)
  t.equal((await get()).statusCode, 200)
  t.equal((await get()).statusCode, 200)
  t.equal(sent.length, 3, 'resubscribed: cached again')

  // Redis gone: heartbeats are skipped, the cache is bypassed, requests fail closed.
  server.kill()
  await until('the cache is bypassed', () => !cache.usable())
  // Its reconnect attempts fail while Redis is away: expected, and swallowed rather than thrown.
  await once(cache.subscriber, 'error')
  t.equal((await get()).statusCode, 503)

  closed = true
  await app.close()
  await sleep(100)
  t.notOk(['ready', 'connect', 'connecting'].includes(cache.subscriber.status), 'the subscriber stops reconnecting with the app')
  t.equal(cache.size, 0)
})

t.test('cache bookkeeping: claims version, expiry, eviction, late answers', async (t) => {
  const app = await pluginApp(t, { localCache: { maxEntries: 2, heartbeat: '50ms' } })
  const cache = app.tokens.localCache!
  await untilUsable(cache)
  cache.remember('a', 's1', 1, 1000, 5000, cache.epoch)
  t.equal(cache.hit('a', 's1', 1, 999), 5000, 'a hit answers up to when the session is known live')
  t.notOk(cache.hit('a', 's1', 2, 999), 'another claims version is a miss')
  t.equal(cache.size, 1, 'and keeps the entry')
  cache.remember('a', 's1', 2, 2000, 2000, cache.epoch)
  t.equal(cache.size, 1, 'updated in place')
  t.ok(cache.hit('a', 's1', 2, 1999))
  t.notOk(cache.hit('a', 's1', 2, 2000), 'expired')
  t.equal(cache.size, 0, 'and removed')

  cache.remember('a', 's1', 1, 1000, 1000, cache.epoch)
  cache.remember('a', 's2', 1, 1000, 1000, cache.epoch)
  cache.remember('b', 's3', 1, 1000, 1000, cache.epoch)
  t.equal(cache.size, 1, 'full: the oldest user was evicted')
  t.ok(cache.hit('b', 's3', 1, 0))
  cache.remember('b', 's4', 1, 1000, 1000, cache.epoch)
  cache.remember('b', 's5', 1, 1000, 1000, cache.epoch)
  t.equal(cache.size, 1, 'the current user evicted too when it is the oldest')
  t.ok(cache.hit('b', 's5', 1, 0))

  const epoch = cache.epoch
  cache.drop('nobody')
  cache.remember('c', 's6', 1, 1000, 1000, epoch)
  t.notOk(cache.hit('c', 's6', 1, 0), 'an answer that crossed an invalidation is not kept')
  cache.drop('b')
  t.equal(cache.size, 0)
})

t.test('scripts publish the user\'s tag on <prefix>:inv', async (t) => {
  const app = await pluginApp(t)
  t.equal(app.tokens.localCache, null, 'no cache unless asked')
  const sub = new Redis(REDIS_URL)
  t.teardown(() => sub.disconnect())
  const channel = `${app.tokens.keys.prefix}:inv`
  await sub.subscribe(channel)
  const messages: string[] = []
  sub.on('message', (_c: string, m: string) => messages.push(m))
  const { sessionId } = await app.tokens.openSession({ userId: 'u:{x}' })
  await app.tokens.invalidateClaims('u:{x}')
  await app.tokens.endSession('u:{x}', sessionId)
  await app.tokens.endSession('u:{x}', sessionId)
  await app.tokens.endAllSessions('u:{x}')
  // A subscriber gets a channel's messages in publish order: once this one is in, every earlier one is.
  await redis.publish(channel, 'end of test')
  await until('the last message arrived', () => messages.includes('end of test'))
  const tag = app.tokens.keys.userTag('u:{x}')
  t.same(messages, [tag, tag, 'end of test'], 'claims bump and logout; nothing when nothing changed')
})
