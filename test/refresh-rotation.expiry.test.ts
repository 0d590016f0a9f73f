import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { REDIS_URL, exampleApp, login, storedSession } from './helpers/app.js'
import { coreRecord } from '../lib/session-record.js'
import { customApp, refresh } from './helpers/refresh.js'

t.test('an unused session expires after the idle timeout: its refresh token is AUTH_REFRESH_INVALID', async (t) => {
  const app = await exampleApp(t, { refreshTtl: 1 })
  const pair = await login(app, 'alice')
  t.equal(pair.refresh_expires_in, 1)
  await sleep(1200)
  const res = await refresh(app, pair.refresh_token)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'AUTH_REFRESH_INVALID')
})

t.test('each refresh slides the idle timeout', async (t) => {
  // An injected clock: a step that a loaded machine runs slowly cannot outlast the timeout.
  const clock = { now: Date.now() }
  const { app } = await customApp(t, { lifecycle: { clock: () => clock.now, idleTimeout: 60 } })
  let token = (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'alice-pass' } })).json().refresh_token
  for (let i = 0; i < 3; i++) {
    clock.now += 40_000
    const res = await refresh(app, token)
    t.equal(res.statusCode, 200, `refresh ${i} after ${(i + 1) * 40} s`)
    token = res.json().refresh_token
  }
  clock.now += 60_000
  t.equal((await refresh(app, token)).json().code, 'AUTH_REFRESH_INVALID', 'unused for the idle timeout: ended')
})

t.test('past the absolute session age a refresh is AUTH_SESSION_EXPIRED, however active the session', async (t) => {
  const clock = { now: Date.now() }
  const { app } = await customApp(t, { lifecycle: { clock: () => clock.now, accessTokenTtl: 60, maxSessionAge: 60 } })
  const pair = (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'alice-pass' } })).json()
  t.equal(pair.refresh_expires_in, 60)
  clock.now += 59_999
  const next = await refresh(app, pair.refresh_token)
  t.equal(next.statusCode, 200, 'the last millisecond of its life')
  clock.now += 1
  const res = await refresh(app, next.json().refresh_token)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'AUTH_SESSION_EXPIRED')
  t.match(res.headers['www-authenticate'], /^Bearer error="invalid_token"/)
})

t.test('the stored session is the authority on the absolute deadline (a shortened session expires)', async (t) => {
  const app = await exampleApp(t)
  const pair = await login(app, 'alice')
  const raw = new Redis(REDIS_URL)
  t.teardown(() => raw.quit())
  const { lastSeen, claimsVersion } = (await storedSession(raw, app, 'alice', pair.session_id))!
  await raw.hset(app.tokens.keys.sessions('alice'), pair.session_id, coreRecord(Date.now() - 1, lastSeen, claimsVersion))
  const res = await refresh(app, pair.refresh_token)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'AUTH_SESSION_EXPIRED')
})
