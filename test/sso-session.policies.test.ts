import t from 'tap'
import type { SessionReplacedEvent } from '../plugins/sso-session/index.js'
import { Redis } from 'ioredis'
import { MAX_TOMBSTONES } from '../plugins/token-lifecycle/service.js'
import { REDIS_URL, bearer, exampleApp, login, me, pluginApp } from './helpers/app.js'

const sessions = async (app: Awaited<ReturnType<typeof exampleApp>>, token: string) =>
  (await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(token) })).json().sessions as Array<{ session_id: string }>

t.test('single (the default): a new login replaces the old device, which is told apart from a revoked one', async (t) => {
  const app = await exampleApp(t)
  const old = await login(app, 'alice', { device_id: 'old-phone', device_type: 'phone' })
  const fresh = await login(app, 'alice', { device_id: 'laptop', device_type: 'web' })
  const res = await me(app, old.access_token)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'AUTH_SESSION_REPLACED')
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token", error_description="AUTH_SESSION_REPLACED"')
  t.equal((await me(app, fresh.access_token)).statusCode, 200)
  t.same((await sessions(app, fresh.access_token)).map((s) => s.session_id), [fresh.session_id])

  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(fresh.access_token) })
  t.equal((await me(app, fresh.access_token)).json().code, 'AUTH_SESSION_REVOKED', 'logout is a revocation, not a replacement')
  t.equal((await me(app, old.access_token)).json().code, 'AUTH_SESSION_REPLACED', 'the replaced one still says replaced')
  const bob = await login(app, 'bob')
  t.equal((await me(app, bob.access_token)).statusCode, 200, 'users do not replace each other')
})

t.test('device-type: one session per device type; a login without a type counts as "unknown"', async (t) => {
  const app = await exampleApp(t, { sso: 'device-type' })
  const phone1 = await login(app, 'alice', { device_type: 'phone' })
  const web = await login(app, 'alice', { device_type: 'web' })
  const untyped1 = await login(app, 'alice')
  const phone2 = await login(app, 'alice', { device_type: 'phone' })
  const untyped2 = await login(app, 'alice')
  t.equal((await me(app, phone1.access_token)).json().code, 'AUTH_SESSION_REPLACED')
  t.equal((await me(app, untyped1.access_token)).json().code, 'AUTH_SESSION_REPLACED')
  for (const pair of [web, phone2, untyped2]) t.equal((await me(app, pair.access_token)).statusCode, 200)
  t.equal((await sessions(app, web.access_token)).length, 3)
})

t.test('max:N keeps the N newest sessions; the first to log in are replaced first', async (t) => {
  const app = await exampleApp(t, { sso: 'max:2' })
  const logins = []
  for (let i = 0; i < 4; i++) {
    logins.push(await login(app, 'alice', { device_id: `d${i}` }))
    // Sessions are ordered by their creation time (ms, the server's Date.now):
    // wait for the next millisecond, rather than sleep and hope, so that no two logins tie.
    const loggedInBy = Date.now()
    for (let wait = 0; wait < 1000 && Date.now() <= loggedInBy; wait++) await new Promise((resolve) => setTimeout(resolve, 1))
  }
  const codes = await Promise.all(logins.map(async (p) => (await me(app, p.access_token)).statusCode === 200 ? 'live' : (await me(app, p.access_token)).json().code))
  t.same(codes, ['AUTH_SESSION_REPLACED', 'AUTH_SESSION_REPLACED', 'live', 'live'])
  t.same((await sessions(app, logins[3].access_token)).map((s) => s.session_id), [logins[2].session_id, logins[3].session_id])
})

t.test('off: sessions accumulate', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  const pairs = [await login(app, 'alice'), await login(app, 'alice'), await login(app, 'alice')]
  for (const pair of pairs) t.equal((await me(app, pair.access_token)).statusCode, 200)
})

t.test('20 concurrent logins under single leave exactly one live session', async (t) => {
  const app = await exampleApp(t, { loginRateMax: 100 })
  const pairs = await Promise.all(Array.from({ length: 20 }, (_, i) => login(app, 'alice', { device_id: `tab-${i}` })))
  const statuses = await Promise.all(pairs.map(async (p) => (await me(app, p.access_token)).json()))
  const live = statuses.filter((s) => s.user_id === 'alice')
  t.equal(live.length, 1)
  // 19 replaced sessions, of which the user keeps MAX_TOMBSTONES tombstones.
  t.equal(statuses.filter((s) => s.code === 'AUTH_SESSION_REPLACED').length, MAX_TOMBSTONES)
  t.equal(statuses.filter((s) => s.code === 'AUTH_SESSION_REVOKED').length, 19 - MAX_TOMBSTONES)
  t.equal((await sessions(app, pairs.find((p) => p.session_id === live[0].session_id)!.access_token)).length, 1)
})

t.test('20 concurrent logins under max:3 leave exactly three', async (t) => {
  const app = await exampleApp(t, { sso: 'max:3', loginRateMax: 100 })
  const pairs = await Promise.all(Array.from({ length: 20 }, () => login(app, 'bob')))
  const live = (await Promise.all(pairs.map((p) => me(app, p.access_token)))).filter((r) => r.statusCode === 200)
  t.equal(live.length, 3)
})

t.test('the replaced hook hears user, old session, new session and device', async (t) => {
  const app = await exampleApp(t)
  const events: SessionReplacedEvent[] = []
  app.sso.onReplaced((event) => { events.push(event) })
  app.sso.onReplaced(() => { throw new Error('a failing audit sink does not undo the login') })
  const old = await login(app, 'alice', { device_id: 'p1', device_type: 'phone', device_name: 'Old phone' })
  const fresh = await login(app, 'alice', { device_id: 'w1', device_type: 'web', device_name: 'Firefox' })
  t.equal(events.length, 1)
  t.match(events[0], {
    userId: 'alice',
    newSessionId: fresh.session_id,
    newDevice: { id: 'w1', type: 'web', name: 'Firefox' },
    replaced: { sessionId: old.session_id, deviceId: 'p1', deviceType: 'phone', deviceName: 'Old phone' }
  })
  t.ok(events[0].request, 'the login request is handed over')
  t.equal(app.sso.policy.mode, 'single')
  t.throws(() => app.sso.onReplaced('nope' as never), /listener must be a function/)
})

t.test('a user keeps the tombstones of the most recently used replaced sessions, not one per login ever made', async (t) => {
  const clock = { now: Date.now() }
  const app = await pluginApp(t, { clock: () => clock.now }, (app) => {
    app.get('/p', { onRequest: app.authenticate }, async () => ({ ok: true }))
  })
  const code = async (session: { tokens: { access_token: string } }) =>
    (await app.inject({ url: '/p', headers: bearer(session.tokens.access_token) })).json().code
  const open = async (mode: 'off' | 'single') => {
    clock.now += 1000
    return await app.tokens.openSession({ userId: 'u', policy: { mode } })
  }
  const used = await open('off')
  const unused = await open('off')
  clock.now += 61_000
  t.equal(await code(used), undefined, 'used after the touch interval: last seen moves on')
  // The first login replaces both; every later one replaces the one before it.
  const logins = []
  for (let i = 0; i < MAX_TOMBSTONES - 1; i++) logins.push(await open('single'))
  t.same([await code(used), await code(unused)], ['AUTH_SESSION_REPLACED', 'AUTH_SESSION_REPLACED'], 'at the limit, every tombstone is kept')
  logins.push(await open('single'))
  t.same([await code(used), await code(unused)], ['AUTH_SESSION_REPLACED', 'AUTH_SESSION_REVOKED'], 'past it, the least recently used goes first')
  logins.push(await open('single'))
  t.equal(await code(used), 'AUTH_SESSION_REVOKED', 'then the next')
  for (const login of logins.slice(0, -1)) t.equal(await code(login), 'AUTH_SESSION_REPLACED')
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  t.equal(await redis.hlen(app.tokens.keys.sessions('u')), MAX_TOMBSTONES + 2, 'the tombstones, and the live session (two fields)')
})
