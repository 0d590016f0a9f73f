import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { once } from 'node:events'
import t from 'tap'
import type { Test } from 'tap'
import tokenLifecycle from '../plugins/token-lifecycle/index.js'
import type { LocalCache } from '../plugins/token-lifecycle/local-cache.js'
import { REDIS_URL, TEST_SECRET, bearer, cleanupPrefix, recordCommands, uniquePrefix } from './helpers/app.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits for a condition, at most 10 s (a loaded machine may deliver pub/sub late). */
async function until (what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(5)
  }
}

/**
 * One instance: its own ioredis client with a keyPrefix (the prefix ioredis
 * adds to every key, not to pub/sub channels), the plugin's default keyPrefix,
 * the local cache on, and a protected route. The heartbeat is the default
 * 1 s: the cache turns itself off after two periods without a message, and
 * on a loaded machine 50 ms heartbeats (off after 100 ms) went missing often
 * enough that an entry was sometimes not cached at all.
 */
async function instance (t: Test, clientPrefix: string): Promise<FastifyInstance> {
  const client = new Redis(REDIS_URL, { keyPrefix: clientPrefix })
  await once(client, 'ready')
  const app = Fastify()
  await app.register(tokenLifecycle, { jwt: { secret: TEST_SECRET }, redis: client, localCache: { heartbeat: '1s' } })
  app.get('/p', { onRequest: app.authenticate }, async (request) => ({ sid: request.auth!.sessionId }))
  t.teardown(async () => {
    await app.close()
    client.disconnect()
  })
  await app.ready()
  await until('the local cache is usable', () => app.tokens.localCache!.usable())
  return app
}

const get = async (app: FastifyInstance, token: string) => await app.inject({ url: '/p', headers: bearer(token) })

/** Asks once (through Redis) so that the instance caches the session, and checks a second ask is a hit. */
async function cacheOn (t: Test, app: FastifyInstance, token: string): Promise<void> {
  const cache = app.tokens.localCache!
  const before = cache.size
  t.equal((await get(app, token)).statusCode, 200)
  t.equal(cache.size, before + 1, 'cached')
  const sent = recordCommands(t, app, ['publish'])
  t.equal((await get(app, token)).statusCode, 200)
  t.same(sent.splice(0), [], 'answered from the cache')
}

const emptied = (cache: LocalCache) => () => cache.size === 0

t.test('with a keyPrefix\'d client, logout and revocation reach the local cache of every instance', async (t) => {
  const base = uniquePrefix('lcp')
  cleanupPrefix(t, base)
  const clientPrefix = `${base}:`
  const a = await instance(t, clientPrefix)
  const b = await instance(t, clientPrefix)
  const cacheA = a.tokens.localCache!
  const cacheB = b.tokens.localCache!

  // Logout through instance A: both instances refuse the token they cached.
  const one = await a.tokens.openSession({ userId: 'u' })
  await cacheOn(t, a, one.tokens.access_token)
  await cacheOn(t, b, one.tokens.access_token)
  t.equal(await a.tokens.endSession('u', one.sessionId), true)
  await until('instance B dropped the user', emptied(cacheB))
  await until('instance A dropped the user', emptied(cacheA))
  t.equal((await get(b, one.tokens.access_token)).json().code, 'AUTH_SESSION_REVOKED', 'refused on the other instance')
  t.equal((await get(a, one.tokens.access_token)).json().code, 'AUTH_SESSION_REVOKED', 'refused on the same instance')

  // Revocation of every session through instance B.
  const two = await b.tokens.openSession({ userId: 'u' })
  await cacheOn(t, a, two.tokens.access_token)
  await cacheOn(t, b, two.tokens.access_token)
  t.equal(await b.tokens.endAllSessions('u'), 1)
  await until('instance A dropped the user', emptied(cacheA))
  await until('instance B dropped the user', emptied(cacheB))
  t.equal((await get(a, two.tokens.access_token)).json().code, 'AUTH_SESSION_REVOKED')
  t.equal((await get(b, two.tokens.access_token)).json().code, 'AUTH_SESSION_REVOKED')
})

t.test('with a keyPrefix\'d client, heartbeats and invalidations share one channel, which keeps the cache on', async (t) => {
  const base = uniquePrefix('lcp')
  cleanupPrefix(t, base)
  const app = await instance(t, `${base}:`)
  const cache = app.tokens.localCache!
  t.equal(cache.channel, `${base}:auth:inv`, 'the client\'s keyPrefix in front, as in the keys the scripts publish from')

  // A plain client (no keyPrefix) sees what goes over the wire.
  const sub = new Redis(REDIS_URL)
  t.teardown(() => sub.disconnect())
  const messages: string[] = []
  sub.on('message', (_channel: string, message: string) => messages.push(message))
  await sub.subscribe(cache.channel)
  const { sessionId } = await app.tokens.openSession({ userId: 'u' })
  await app.tokens.endSession('u', sessionId)
  const tag = `${base}:${app.tokens.keys.userTag('u')}`
  await until('the invalidation and a heartbeat crossed the channel', () => messages.includes(tag) && messages.includes(''))
  t.ok(cache.usable(), 'the heartbeats keep the cache usable')

  // Without that channel, no heartbeat either: the cache turns off (fail closed).
  await (cache.subscriber as Redis).unsubscribe(cache.channel)
  await until('the cache is off', () => !cache.usable())
  await (cache.subscriber as Redis).subscribe(cache.channel)
  await until('the cache is on again', () => cache.usable())
  t.pass('on again once subscribed to the prefixed channel')
})
