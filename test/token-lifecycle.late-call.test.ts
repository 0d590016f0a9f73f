import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Test } from 'tap'
import replayGuard from '../plugins/replay-guard/index.js'
import type { ReplayGuardOptions } from '../plugins/replay-guard/index.js'
import type { TokenLifecycleOptions } from '../plugins/token-lifecycle/index.js'
import { bearer, storedSession } from './helpers/app.js'
import { keysUnder } from './helpers/env.js'
import { dpopKey, proof } from './helpers/dpop.js'
import type { RedisProcess } from './helpers/redis-server.js'
import { startRedisServer } from './helpers/redis-server.js'
import { customApp, refresh } from './helpers/refresh.js'

/*
 * A stalled Redis answers nothing, so the store guard answers 503; the calls
 * it gave up on still sit in socket buffers (or the script lane) and run when
 * Redis answers again. Told 503, a client retries: it must find its one-time
 * token unspent, no session opened by the login it was refused, and its
 * refresh token not rotated.
 */

const STORE_TIMEOUT = '200ms'

interface StalledApp {
  app: FastifyInstance
  redis: RedisProcess
  /** A client of the private Redis, beside the app's. */
  admin: Redis
  keyPrefix: string
}

async function stalledApp (t: Test, lifecycle: Partial<TokenLifecycleOptions> = {}, guard: ReplayGuardOptions = {}): Promise<StalledApp> {
  const redis = await startRedisServer(t)
  const { app, keyPrefix } = await customApp(t, {
    redisUrl: redis.url,
    lifecycle: { storeTimeout: STORE_TIMEOUT, ...lifecycle },
    // No rate limits: their counters would be the calls that stall, before the ones tested here.
    refresh: { refreshRateLimit: false },
    routes: { loginRateLimit: false },
    before: async (app) => {
      await app.register(replayGuard, guard)
      app.post('/api/transfer', { onRequest: app.authenticate, config: { replayGuard: true } }, async () => ({ ok: true }))
    }
  })
  const admin = new Redis(redis.url)
  t.teardown(() => { admin.disconnect() })
  return { app, redis, admin, keyPrefix }
}

/** SIGSTOP, and wait until the kernel reports the server stopped (state T), so no call sent next can slip through. */
async function stall (t: Test, redis: RedisProcess): Promise<void> {
  redis.pause()
  t.teardown(() => redis.resume())
  for (let i = 0; i < 200; i++) {
    const state = readFileSync(`/proc/${redis.process.pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0]
    if (state === 'T') return
    await sleep(5)
  }
  throw new Error('redis-server did not stop')
}

/**
 * SIGCONT, then wait until every call held on the app's connections has run:
 * a PING on the shared client and a plain session check (through the script
 * lane when it is on) each answer after everything sent before them.
 */
async function resumeAndDrain (redis: RedisProcess, app: FastifyInstance, token: string): Promise<void> {
  redis.resume()
  await app.redis.ping()
  for (let i = 0; i < 50; i++) {
    const res = await app.inject({ method: 'GET', url: '/api/me', headers: bearer(token) })
    if (res.statusCode === 200) return
    await sleep(100)
  }
  throw new Error('the app did not answer again after Redis resumed')
}

const transfer = (app: FastifyInstance, token: string) =>
  app.inject({ method: 'POST', url: '/api/transfer', headers: bearer(token), payload: {} })

for (const verifyConnection of ['dedicated', 'shared'] as const) {
  t.test(`one-time tokens answered 503 while Redis stalled are still unspent once it answers again (verifyConnection '${verifyConnection}')`, async (t) => {
    const { app, redis } = await stalledApp(t, { verifyConnection })
    t.equal(app.tokens.scriptLane !== null, verifyConnection === 'dedicated')
    const tokens: string[] = []
    for (let i = 0; i < 3; i++) tokens.push((await app.tokens.openSession({ userId: 'alice' })).tokens.access_token)

    await stall(t, redis)
    // Together: through the lane, the first goes out and the others wait in the lane.
    const refused = await Promise.all(tokens.map((token) => transfer(app, token)))
    for (const res of refused) {
      t.equal(res.statusCode, 503)
      t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE')
    }
    await resumeAndDrain(redis, app, tokens[0])

    for (const token of tokens) {
      const retried = await transfer(app, token)
      t.equal(retried.statusCode, 200, `the retry is accepted (got ${retried.body})`)
    }
    // And spent now, once.
    t.equal((await transfer(app, tokens[0])).json().code, 'AUTH_TOKEN_REPLAYED')
  })
}

t.test('a login answered 503 while Redis stalled opens no session and spends no DPoP proof once it answers again', async (t) => {
  const { app, redis, admin, keyPrefix } = await stalledApp(t, {}, { dpop: true })
  const key = await dpopKey()
  const dpop = await proof(key, { htm: 'POST', htu: '/auth/login' })
  const logIn = () => app.inject({ method: 'POST', url: '/auth/login', headers: { dpop }, payload: { username: 'bob', password: 'bob-pass' } })
  const alice = (await app.tokens.openSession({ userId: 'alice' })).tokens.access_token

  await stall(t, redis)
  const refused = await logIn()
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().code, 'AUTH_STORE_UNAVAILABLE')
  await resumeAndDrain(redis, app, alice)

  t.same(await keysUnder(admin, `${keyPrefix}:{bob}`), [], 'no session and no spent proof of bob')
  // The client retries with the very same proof.
  const retried = await logIn()
  t.equal(retried.statusCode, 200, `the retry logs in (got ${retried.body})`)
  t.equal((await app.tokens.listSessions('bob')).length, 1)
})

t.test('a refresh answered 503 while Redis stalled rotates nothing: its retry past the grace window is no reuse', async (t) => {
  let now = Date.now()
  const { app, redis, admin } = await stalledApp(t, { clock: () => now })
  const opened = await app.tokens.openSession({ userId: 'alice' })
  const oldToken = opened.tokens.refresh_token as string

  await stall(t, redis)
  const refused = await refresh(app, oldToken)
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().code, 'AUTH_STORE_UNAVAILABLE')
  await resumeAndDrain(redis, app, opened.tokens.access_token)

  t.equal((await storedSession(admin, app, 'alice', opened.sessionId))!.generation, 1, 'still the first refresh token')
  // The retry comes later than the grace window after the refused call's `now`:
  // had that rotation run, this would be a reuse and end the session.
  now += 11_000
  const retried = await refresh(app, oldToken)
  t.equal(retried.statusCode, 200, `the retry rotates (got ${retried.body})`)
  t.equal((await storedSession(admin, app, 'alice', opened.sessionId))!.generation, 2)
})
