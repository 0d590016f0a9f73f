import fastifyRateLimit from '@fastify/rate-limit'
import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import type { Test } from 'tap'
import refreshRotation from '../plugins/refresh-rotation/index.js'
import tokenLifecycle, { authRoutes } from '../plugins/token-lifecycle/index.js'
import { REDIS_URL, TEST_SECRET, cleanupPrefix, uniquePrefix } from './helpers/app.js'
import { keysUnder } from './helpers/env.js'
import { customApp } from './helpers/refresh.js'

// A host app with its own @fastify/rate-limit (on the same Redis client as
// ours), global and per route, behaves exactly as it does without our
// plugins, whichever is registered first; our limits count only our routes,
// under our prefix.

type Order = 'none' | 'host limiter first' | 'ours first'

interface Host {
  app: FastifyInstance
  hostPrefix: string
  ourPrefix: string
}

async function hostApp (t: Test, order: Order, global: boolean): Promise<Host> {
  const app = Fastify()
  const hostPrefix = uniquePrefix('host')
  const ourPrefix = uniquePrefix('guest')
  cleanupPrefix(t, hostPrefix)
  cleanupPrefix(t, ourPrefix)
  t.teardown(() => app.close())
  const client = new Redis(REDIS_URL, { enableOfflineQueue: false })
  await app.register(fastifyRedis, { client, closeClient: true })
  const hostLimiter = async () => {
    await app.register(fastifyRateLimit, { global, max: 4, timeWindow: 60_000, redis: client, nameSpace: `${hostPrefix}:` })
  }
  const ours = async () => {
    await app.register(tokenLifecycle, { keyPrefix: ourPrefix, jwt: { secret: TEST_SECRET } })
    await app.register(refreshRotation, { refreshRateLimit: { max: 2, timeWindow: '1 minute' }, loadClaims: async () => ({}) })
    await app.register(authRoutes, {
      prefix: '/auth',
      loginRateLimit: { max: 2, timeWindow: 60_000 },
      verifyCredentials: async (username, password) => password === `${username}-pass` ? { userId: username } : null
    })
  }
  if (order === 'ours first') await ours()
  await hostLimiter()
  if (order === 'host limiter first') await ours()
  // The host's routes: the global limit, a route limit of its own, a route
  // it exempts, and its own limiter through the decorator.
  app.get('/host/global', async () => ({ ok: true }))
  app.get('/host/strict', { config: { rateLimit: { max: 2, timeWindow: '1 minute' } } }, async () => ({ ok: true }))
  app.get('/host/free', { config: { rateLimit: false } }, async () => ({ ok: true }))
  app.get('/host/manual', { config: { rateLimit: false }, onRequest: app.rateLimit({ max: 1, timeWindow: '1 minute' }) }, async () => ({ ok: true }))
  await app.ready()
  return { app, hostPrefix, ourPrefix }
}

const HOST_REQUESTS = [
  ...Array(6).fill('/host/global'), ...Array(4).fill('/host/strict'), ...Array(6).fill('/host/free'), ...Array(3).fill('/host/manual')
] as string[]

/** What a client sees of an answer: status, body and the rate-limit headers (reset times to within a second). */
function seen (res: LightMyRequestResponse) {
  const h = res.headers
  return {
    status: res.statusCode,
    body: res.json(),
    limit: h['x-ratelimit-limit'],
    remaining: h['x-ratelimit-remaining'],
    reset: h['x-ratelimit-reset'] === undefined ? undefined : Math.round(Number(h['x-ratelimit-reset']) / 2),
    retryAfter: h['retry-after'] === undefined ? undefined : Math.round(Number(h['retry-after']) / 2)
  }
}

async function hostTraffic (host: Host) {
  const answers = []
  for (const url of HOST_REQUESTS) answers.push(seen(await host.app.inject({ method: 'GET', url })))
  // The host's counters, by name under its namespace, with their values.
  const redis = new Redis(REDIS_URL)
  const counters: Record<string, string | null> = {}
  for (const key of await keysUnder(redis, host.hostPrefix)) counters[key.slice(host.hostPrefix.length)] = await redis.get(key)
  const ourKeys = await keysUnder(redis, host.ourPrefix)
  redis.disconnect()
  return { answers, counters, ourKeys }
}

for (const global of [true, false]) {
  t.test(`a host's own @fastify/rate-limit (global: ${global}) answers as it does without our plugins, in either order`, async (t) => {
    const alone = await hostTraffic(await hostApp(t, 'none', global))
    // The baseline really limits: 429s with the host's own body.
    t.ok(alone.answers.some((a) => a.status === 429 && a.body.message.startsWith('Rate limit exceeded')))
    for (const order of ['host limiter first', 'ours first'] as const) {
      const withUs = await hostTraffic(await hostApp(t, order, global))
      t.same(withUs.answers, alone.answers, `${order}: same statuses, bodies and headers`)
      t.same(withUs.counters, alone.counters, `${order}: the host's counters, each counted once`)
      t.same(withUs.ourKeys, [], `${order}: nothing counted under our prefix`)
    }
  })
}

for (const order of ['host limiter first', 'ours first'] as const) {
  t.test(`with a host limiter (${order}), our login and refresh limits still work, each request counted once`, async (t) => {
    const { app, ourPrefix } = await hostApp(t, order, false)
    // Addresses of their own: the host's global counter is per address.
    const from = (remoteAddress: string) => ({
      login: (password: string) => app.inject({ method: 'POST', url: '/auth/login', remoteAddress, payload: { username: 'alice', password } }),
      refresh: (token: string) => app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress, payload: { refresh_token: token } })
    })
    const a = from('10.0.0.1')
    t.equal((await a.login('wrong')).statusCode, 401)
    const ok = await a.login('alice-pass')
    t.equal(ok.statusCode, 200)
    t.equal(ok.headers['x-ratelimit-limit'], '2', 'our login limit in the headers')
    t.equal(ok.headers['x-ratelimit-remaining'], '0')
    const limited = await a.login('alice-pass')
    t.equal(limited.statusCode, 429)
    t.equal(limited.json().code, 'AUTH_RATE_LIMITED')
    t.ok(Number(limited.headers['retry-after']) > 0)

    let token = ok.json().refresh_token as string
    const b = from('10.0.0.2')
    for (let i = 0; i < 2; i++) {
      const res = await b.refresh(token)
      t.equal(res.statusCode, 200, `refresh ${i}`)
      token = res.json().refresh_token
    }
    const refreshLimited = await b.refresh(token)
    t.equal(refreshLimited.statusCode, 429)
    t.equal(refreshLimited.json().code, 'AUTH_RATE_LIMITED')
    t.ok(Number(refreshLimited.headers['retry-after']) > 0)

    // Our counters: the login's (3 attempts), the refreshes' per session and per address (3 each).
    const redis = new Redis(REDIS_URL)
    const counters = []
    for (const key of await keysUnder(redis, `${ourPrefix}:rl`)) counters.push(`${key.slice(ourPrefix.length).replace(/:[^:]+:10\.0\.0\.1$/, ':<digest>:10.0.0.1').replace(/:s:.*$/, ':s:<sid>')}=${await redis.get(key)}`)
    redis.disconnect()
    t.same(counters.sort(), [':rl:login:<digest>:10.0.0.1=3', ':rl:refresh:a:10.0.0.2=3', ':rl:refresh:s:<sid>=3'])
  })
}

t.test('the login limit is on by default, with no config at all', async (t) => {
  const { app } = await customApp(t)
  const attempt = () => app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'wrong' } })
  for (let i = 0; i < 10; i++) t.equal((await attempt()).statusCode, 401, `attempt ${i}`)
  const limited = await attempt()
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'AUTH_RATE_LIMITED')
  t.equal(limited.headers['x-ratelimit-limit'], '10')
  const after = Number(limited.headers['retry-after'])
  t.ok(after > 0 && after <= 60, `Retry-After ${after}`)
})
