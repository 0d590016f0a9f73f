import { Redis } from 'ioredis'
import t from 'tap'
import { REDIS_URL, bearer, exampleApp, login, me, pluginApp, storedSession } from './helpers/app.js'
import { keysUnder } from './helpers/env.js'

const redis = new Redis(REDIS_URL)
t.teardown(() => redis.quit())

function fakeClock () {
  const clock = { now: Date.now(), read: () => clock.now }
  return clock
}

const protectedRoute = (app: Awaited<ReturnType<typeof pluginApp>>) => {
  app.get('/p', { onRequest: app.authenticate }, async () => ({ ok: true }))
}

t.test('last_seen_at is written at most once per touch interval, and slides the idle deadline', async (t) => {
  const clock = fakeClock()
  const app = await pluginApp(t, { clock: clock.read, touchInterval: 60, idleTimeout: 3600 }, protectedRoute)
  const { tokens, sessionId } = await app.tokens.openSession({ userId: 'u' })
  const key = app.tokens.keys.sessions('u')
  const lastSeen = async () => (await storedSession(redis, app, 'u', sessionId))!.lastSeen
  const created = await lastSeen()
  t.equal(created, clock.now)

  clock.now += 30_000
  t.equal((await app.inject({ url: '/p', headers: bearer(tokens.access_token) })).statusCode, 200)
  t.equal(await lastSeen(), created, 'no write within the interval')

  await redis.pexpire(key, 5000) // pretend the key is near its end
  clock.now += 31_000
  t.equal((await app.inject({ url: '/p', headers: bearer(tokens.access_token) })).statusCode, 200)
  t.equal(await lastSeen(), clock.now, 'written after the interval')
  t.ok(await redis.pttl(key) > 3_500_000, 'the key lives as long as the slid idle deadline')
  const [listed] = await app.tokens.listSessions('u')
  t.equal(listed.lastSeenAt.getTime(), clock.now)
})

t.test('an idle session ends when its TTL runs out', async (t) => {
  const app = await exampleApp(t, { refreshTtl: 60 })
  const pair = await login(app, 'alice')
  t.equal((await me(app, pair.access_token)).statusCode, 200)
  const key = app.tokens.keys.sessions('alice')
  const pttl = await redis.pttl(key)
  t.ok(pttl > 0 && pttl <= 60_000, `the key lives no longer than the idle timeout (PTTL ${pttl})`)
  // Run the TTL out now rather than sleep through a short one: a slow first request cannot outlive it.
  await redis.pexpire(key, 1)
  for (let i = 0; i < 200 && await redis.exists(key) === 1; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal(await redis.exists(key), 0, 'Redis dropped the key')
  t.equal((await me(app, pair.access_token)).json().code, 'AUTH_SESSION_REVOKED')
})

t.test('no access token outlives the absolute deadline; past it the session answers AUTH_SESSION_EXPIRED', async (t) => {
  const clock = fakeClock()
  const app = await pluginApp(t, { clock: clock.read, accessTokenTtl: 300, maxSessionAge: 400 }, protectedRoute)
  const { tokens, sessionId } = await app.tokens.openSession({ userId: 'u' })
  const deadline = (await storedSession(redis, app, 'u', sessionId))!.deadline
  t.equal(deadline, clock.now + 400_000)

  clock.now += 350_000
  const late = app.tokens.signAccessToken({ userId: 'u', sessionId, claimsVersion: 1, absoluteDeadline: deadline })
  t.equal(late.expiresAt, Math.floor(deadline / 1000) * 1000, 'capped at the absolute deadline')
  t.ok(late.expiresIn <= 50)

  clock.now = deadline
  const res = await app.inject({ url: '/p', headers: bearer(tokens.access_token) })
  t.equal(res.json().code, 'AUTH_SESSION_EXPIRED')
  t.same(await app.tokens.listSessions('u'), [], 'an expired session is not listed')
  const next = await app.tokens.openSession({ userId: 'u', policy: { mode: 'single' } })
  t.same(next.replaced, [], 'an expired session is not replaced by a login')
  t.equal((await app.inject({ url: '/p', headers: bearer(tokens.access_token) })).json().code, 'AUTH_SESSION_EXPIRED', 'and still answers so')
  t.equal((await app.inject({ url: '/p', headers: bearer(next.tokens.access_token) })).statusCode, 200)

  clock.now += app.tokens.options.retentionMs
  await app.tokens.openSession({ userId: 'u' })
  t.equal(await storedSession(redis, app, 'u', sessionId), null, 'past its retention, a login prunes its record')
  t.equal((await app.inject({ url: '/p', headers: bearer(tokens.access_token) })).json().code, 'AUTH_SESSION_REVOKED')
})

t.test('every key written has a TTL, and the TTLs follow the lifetimes', async (t) => {
  const app = await exampleApp(t, { sso: 'max:2', refreshTtl: 600, sessionMaxAge: 900, accessTtl: 60 })
  const prefix = app.tokens.keys.prefix
  const root = await login(app, 'root')
  const pairs = []
  for (let i = 0; i < 4; i++) pairs.push(await login(app, 'alice', { device_id: `d${i}`, device_type: i % 2 ? 'phone' : 'web' }))
  await login(app, 'bob')
  await me(app, pairs[3].access_token)
  await app.inject({ method: 'PUT', url: '/admin/users/bob/roles', headers: bearer(root.access_token), payload: { roles: ['user'] } })
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(pairs[3].access_token) })
  await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(pairs[2].access_token) })

  const keys = await keysUnder(redis, prefix)
  t.ok(keys.length >= 5, `${keys.length} keys written`)
  for (const key of keys) {
    const ttl = await redis.pttl(key)
    t.ok(ttl > 0, `${key} expires (pttl ${ttl})`)
    t.ok(ttl <= (900 + 60) * 1000, `${key} lives no longer than the absolute lifetime plus retention`)
    const type = await redis.type(key)
    if (type === 'hash') t.ok(ttl <= 600_000, `${key}: a session lives at most the idle timeout`)
  }
})
