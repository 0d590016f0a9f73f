import type { FastifyBaseLogger } from 'fastify'
import t from 'tap'
import { buildApp } from '../example-server/app.js'
import { TokenReplayedError } from '../lib/errors.js'
import type { RedisClient } from '../lib/redis.js'
import { createStoreGuard } from '../lib/redis.js'
import { bearer, cleanupPrefix, exampleApp, login, me, testConfig } from './helpers/app.js'
import { countCollected } from './helpers/gc.js'

t.test('a revoked session fails on its next request although its token verified (and was cached) before', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  const pair = await login(app, 'alice')
  for (let i = 0; i < 3; i++) t.equal((await me(app, pair.access_token)).statusCode, 200)
  const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(pair.access_token) })
  t.equal(out.statusCode, 204)
  const res = await me(app, pair.access_token)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'AUTH_SESSION_REVOKED')
})

t.test('a role change makes an already verified token stale at once', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  const alice = await login(app, 'alice')
  const root = await login(app, 'root')
  t.equal((await me(app, alice.access_token)).statusCode, 200)
  const put = await app.inject({ method: 'PUT', url: '/admin/users/alice/roles', headers: bearer(root.access_token), payload: { roles: ['user', 'editor'] } })
  t.equal(put.statusCode, 204)
  const res = await me(app, alice.access_token)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'AUTH_TOKEN_STALE')
})

t.test('the claims a route sees are read-only, so no request can change what the next one sees', async (t) => {
  const config = testConfig({ sso: 'off' })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  cleanupPrefix(t, config.keyPrefix, config.redisUrl)
  app.get('/t/mutate', { onRequest: app.authenticate }, async (request) => {
    const claims = request.auth!.claims as unknown as Record<string, unknown> & { roles: string[] }
    const attempts = [
      () => { claims.roles.push('admin') },
      () => { claims.sub = 'root' }
    ]
    return { frozen: Object.isFrozen(claims) && Object.isFrozen(claims.roles), refused: attempts.filter((attempt) => { try { attempt(); return false } catch { return true } }).length }
  })
  await app.ready()
  const pair = await login(app, 'alice')
  for (let i = 0; i < 2; i++) {
    const res = await app.inject({ method: 'GET', url: '/t/mutate', headers: bearer(pair.access_token) })
    t.same(res.json(), { frozen: true, refused: 2 })
  }
  t.same((await me(app, pair.access_token)).json().roles, ['user'])
})

t.test('one-time keys an extension adds are spent in the same script call', async (t) => {
  const config = testConfig({ sso: 'off' })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  cleanupPrefix(t, config.keyPrefix, config.redisUrl)
  app.tokens.extend({
    name: 'test-once',
    onVerify (request, reply, payload, plan) {
      if (request.url !== '/t/once') return
      plan.onceKeys.push(app.tokens.keys.once(payload.sub, 'test', payload.jti))
      plan.onceTtls.push(60_000)
      plan.onceErrors.push(() => new TokenReplayedError())
    }
  })
  app.get('/t/once', { onRequest: app.authenticate }, async () => ({ ok: true }))
  await app.ready()
  const pair = await login(app, 'bob')
  const first = await app.inject({ method: 'GET', url: '/t/once', headers: bearer(pair.access_token) })
  t.equal(first.statusCode, 200)
  const again = await app.inject({ method: 'GET', url: '/t/once', headers: bearer(pair.access_token) })
  t.equal(again.statusCode, 401)
  t.equal(again.json().code, 'AUTH_TOKEN_REPLAYED')
  t.match(again.headers['www-authenticate'], /error="invalid_token"/)
  // Other routes still accept the token, with the extension registered.
  t.equal((await me(app, pair.access_token)).statusCode, 200)
})

const logged: unknown[] = []
const log = { error: (obj: unknown) => { logged.push(obj) } } as unknown as FastifyBaseLogger
const guard = createStoreGuard({ status: 'ready' } as unknown as RedisClient, 40, log)
const never = () => new Promise<never>(() => {})
const later = <T>(value: T, ms: number) => new Promise<T>((resolve) => setTimeout(resolve, ms, value))

t.test('store guard: passes answers through', async (t) => {
  t.equal(await guard(async () => 'answer'), 'answer')
})

t.test('store guard: gives the call its writeBy, the epoch ms a quarter of the budget before it gives up', async (t) => {
  const before = Date.now()
  const writeBy = await guard(async (writeBy) => writeBy)
  const after = Date.now()
  // Budget 40 ms: the scripts stop taking effect 10 ms before the guard answers 503.
  t.ok(writeBy >= before + 30 && writeBy <= after + 30, `writeBy ${writeBy - before} ms after the call`)
})

t.test('store guard: turns a failed call into 503 AUTH_STORE_UNAVAILABLE, logging only the message', async (t) => {
  logged.length = 0
  const err = new Error('connection reset') as Error & { command?: unknown }
  err.command = { args: ['secret-argument'] }
  await t.rejects(guard(() => Promise.reject(err)), { code: 'AUTH_STORE_UNAVAILABLE', statusCode: 503 })
  t.same(logged, [{ reason: 'connection reset' }])
})

t.test('store guard: turns a call that throws at once into 503', async (t) => {
  await t.rejects(guard(() => { throw new Error('boom') }), { code: 'AUTH_STORE_UNAVAILABLE' })
})

t.test('store guard: fails a call without an answer after the timeout, and ignores its late answer', async (t) => {
  let answer!: (value: string) => void
  const started = performance.now()
  await t.rejects(guard(() => new Promise<string>((resolve) => { answer = resolve })), { code: 'AUTH_STORE_UNAVAILABLE' })
  const elapsed = performance.now() - started
  t.ok(elapsed >= 40 && elapsed < 1000, `failed after ${Math.round(elapsed)} ms`)
  answer('too late')
})

t.test('store guard: fails only the calls past their deadline', async (t) => {
  const stalled = guard(never)
  await later(null, 25)
  const inTime = guard(() => later('fresh', 30))
  await t.rejects(stalled, { code: 'AUTH_STORE_UNAVAILABLE' })
  t.equal(await inTime, 'fresh')
})

t.test('store guard: a settled call keeps nothing alive while others are in flight', async (t) => {
  // A stalled call at the front keeps the guard's queue (and its sweeper) going.
  const stalled = t.rejects(guard(never), { code: 'AUTH_STORE_UNAVAILABLE' })
  // Made in a frame of their own, so that only the guard could still hold one.
  const settle = async (count: number) => {
    const refs: Array<WeakRef<object>> = []
    for (let i = 0; i < count; i++) {
      const answer = { i }
      refs.push(new WeakRef(answer))
      t.equal(await guard(async () => answer), answer)
    }
    return refs
  }
  const refs = await settle(50)
  t.equal(await countCollected(refs), refs.length, 'every answer could be collected')
  await stalled
})

t.test('store guard: fails at once when the client is not connected', async (t) => {
  const down = createStoreGuard({ status: 'reconnecting' } as unknown as RedisClient, 40, log)
  logged.length = 0
  await t.rejects(down(async () => 'never asked'), { code: 'AUTH_STORE_UNAVAILABLE' })
  t.same(logged, [{ reason: 'client is reconnecting' }])
})
