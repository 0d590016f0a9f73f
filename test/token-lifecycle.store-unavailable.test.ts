import t from 'tap'
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
