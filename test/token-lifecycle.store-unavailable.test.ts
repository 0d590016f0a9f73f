import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import t from 'tap'
import { redisClientOptions } from '../example-server/app.js'
import { exampleApp, login, me } from './helpers/app.js'
import { startRedisServer } from './helpers/redis-server.js'

t.test('a dead Redis answers 503 AUTH_STORE_UNAVAILABLE at once and lets nothing through', async (t) => {
  const redis = await startRedisServer(t)
  const app = await exampleApp(t, { redisUrl: redis.url })
  const pair = await login(app, 'alice')
  t.equal((await me(app, pair.access_token)).statusCode, 200)

  const lost = new Promise((resolve) => app.redis.once('error', resolve))
  redis.kill()
  await lost // the client noticed: its reconnect attempt was refused
  const started = Date.now()
  const res = await me(app, pair.access_token)
  t.equal(res.statusCode, 503)
  t.same(res.json(), { statusCode: 503, code: 'AUTH_STORE_UNAVAILABLE', error: 'Service Unavailable', message: 'Authentication store is unavailable' })
  t.ok(Date.now() - started < 1000, 'answered within a second')

  const loginRes = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'alice-pass' } })
  t.equal(loginRes.statusCode, 503)
  t.equal(loginRes.json().code, 'AUTH_STORE_UNAVAILABLE')

  const health = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(health.statusCode, 503)
  t.same(health.json(), { redis: 'unavailable' })
})

t.test('a stalled Redis answers 503 within about a second', async (t) => {
  const redis = await startRedisServer(t)
  const app = await exampleApp(t, { redisUrl: redis.url })
  const pair = await login(app, 'bob')
  t.same((await app.inject({ method: 'GET', url: '/healthz' })).json(), { redis: 'ok' })

  redis.pause()
  t.teardown(() => redis.resume())
  const started = Date.now()
  const results = await Promise.all([me(app, pair.access_token), me(app, pair.access_token)])
  const elapsed = Date.now() - started
  for (const res of results) {
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE')
  }
  t.ok(elapsed < 1500, `answered in ${elapsed} ms`)

  redis.resume()
  // Once Redis answers again, requests are checked again (and pass).
  let res = await me(app, pair.access_token)
  for (let i = 0; i < 20 && res.statusCode !== 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    res = await me(app, pair.access_token)
  }
  t.equal(res.statusCode, 200)
})

/** The bound (#13): logins work again within a second of Redis answering. */
const RECOVERY_BOUND_MS = 1000

t.test('after an outage, a login works within a second of Redis answering again (the example server\'s client options)', async (t) => {
  const redis = await startRedisServer(t)
  const app = await exampleApp(t, { redisUrl: redis.url })
  t.equal((app.redis as Redis).options.retryStrategy, redisClientOptions.retryStrategy, 'the example server\'s client options')
  await login(app, 'alice')

  // The longest wait a client can have: Redis away until the client's back-off
  // stopped growing (three equal waits: its longest), and back just after an
  // attempt failed. A back-off already past the bound needs no longer outage.
  const delays: number[] = []
  app.redis.on('reconnecting', (ms: number) => delays.push(ms))
  const flat = () => delays.length >= 3 && delays.at(-1) === delays.at(-2) && delays.at(-2) === delays.at(-3)
  redis.kill()
  for (let waits = 0; !flat() && !(delays.at(-1)! >= RECOVERY_BOUND_MS); waits++) {
    if (waits === 60) throw new Error(`the client's back-off neither levelled off nor passed the bound: ${delays.join(', ')} ms`)
    // Not events.once: it would reject on the client's 'error' events.
    await new Promise((resolve) => app.redis.once('reconnecting', resolve))
  }
  await redis.restart()
  const answered = performance.now()

  const deadline = answered + 10_000
  let res = await tryLogin(app)
  while (res.statusCode === 503 && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5))
    res = await tryLogin(app)
  }
  const elapsed = Math.round(performance.now() - answered)
  t.equal(res.statusCode, 200, 'logins work again')
  t.ok(elapsed < RECOVERY_BOUND_MS, `a login worked ${elapsed} ms after Redis answered PING (client waits ${delays.join(', ')} ms)`)
})

async function tryLogin (app: FastifyInstance) {
  return await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'alice-pass' } })
}
