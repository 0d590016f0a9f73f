import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ReuseEvent } from '../plugins/refresh-rotation/index.js'
import { exampleApp, login, me } from './helpers/app.js'
import { customApp, refresh } from './helpers/refresh.js'

const GRACE = 0.3
const pastGrace = () => sleep(GRACE * 1000 + 100)

t.test('reuse after the grace window ends the whole session', async (t) => {
  const app = await exampleApp(t, { refreshGrace: GRACE })
  const pair = await login(app, 'alice')
  const next = (await refresh(app, pair.refresh_token)).json()
  await pastGrace()
  const reused = await refresh(app, pair.refresh_token)
  t.equal(reused.statusCode, 401)
  t.equal(reused.json().code, 'AUTH_REFRESH_REUSED')
  t.match(reused.headers['www-authenticate'], /^Bearer error="invalid_token"/)
  // Its access tokens, old and new, stop working...
  for (const token of [pair.access_token, next.access_token]) {
    const res = await me(app, token)
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'AUTH_SESSION_REVOKED')
  }
  // ...so does its current refresh token...
  const current = await refresh(app, next.refresh_token)
  t.equal(current.statusCode, 401)
  t.equal(current.json().code, 'AUTH_REFRESH_INVALID')
  // ...and it is gone from the user's sessions.
  const other = await login(app, 'alice', { device_id: 'other' })
  const list = await app.inject({ method: 'GET', url: '/auth/sessions', headers: { authorization: `Bearer ${other.access_token}` } })
  t.same(list.json().sessions.map((s: { session_id: string }) => s.session_id), [other.session_id])
})

t.test('an attacker who rotates first and a victim who replays later are both locked out', async (t) => {
  const app = await exampleApp(t, { refreshGrace: GRACE })
  const victim = await login(app, 'alice')
  const stolen = victim.refresh_token
  const attacker = (await refresh(app, stolen)).json()
  t.equal((await me(app, attacker.access_token)).statusCode, 200)
  await pastGrace()
  const replay = await refresh(app, victim.refresh_token)
  t.equal(replay.json().code, 'AUTH_REFRESH_REUSED')
  t.equal((await refresh(app, attacker.refresh_token)).json().code, 'AUTH_REFRESH_INVALID')
  t.equal((await me(app, attacker.access_token)).json().code, 'AUTH_SESSION_REVOKED')
  t.equal((await me(app, victim.access_token)).json().code, 'AUTH_SESSION_REVOKED')
})

t.test('reuse fires the audit hook with user, session and client address, and a warning without secrets', async (t) => {
  const events: ReuseEvent[] = []
  const logs: string[] = []
  const { app } = await customApp(t, { refresh: { grace: '300ms', onReuse: (event) => { events.push(event) } } })
  app.log.warn = ((obj: unknown, msg: string) => { logs.push(JSON.stringify(obj) + msg) }) as typeof app.log.warn
  const pair = (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass' } })).json()
  const next = (await refresh(app, pair.refresh_token)).json()
  await pastGrace()
  t.equal((await refresh(app, pair.refresh_token)).json().code, 'AUTH_REFRESH_REUSED')
  t.equal(events.length, 1)
  t.match(events[0], { userId: 'bob', sessionId: pair.session_id, generation: 1, ip: '127.0.0.1' })
  t.type(events[0].at, Date)
  t.equal(logs.length, 1)
  t.match(logs[0], /reused/)
  for (const secret of [pair.refresh_token, next.refresh_token, pair.refresh_token.split('.')[4]]) t.notOk(logs[0].includes(secret))
})

t.test('a failing audit hook is logged and the answer is still AUTH_REFRESH_REUSED', async (t) => {
  const errors: unknown[] = []
  const { app } = await customApp(t, { refresh: { grace: 0.3, onReuse: async () => { throw new Error('audit down') } } })
  app.log.error = ((obj: unknown) => { errors.push(obj) }) as typeof app.log.error
  const pair = (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass' } })).json()
  await refresh(app, pair.refresh_token)
  await pastGrace()
  const res = await refresh(app, pair.refresh_token)
  t.equal(res.json().code, 'AUTH_REFRESH_REUSED')
  t.equal(errors.length, 1)
})

t.test('within the window nothing is reuse; the first presentation after it is', async (t) => {
  // An injected clock: how fast a loaded machine runs these refreshes decides nothing.
  const clock = { now: Date.now() }
  const { app } = await customApp(t, { lifecycle: { clock: () => clock.now }, refresh: { grace: GRACE, refreshRateLimit: { max: 100, timeWindow: '1 minute' } } })
  const pair = (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'alice-pass' } })).json()
  const rotatedAt = clock.now
  const r2 = (await refresh(app, pair.refresh_token)).json().refresh_token
  for (let i = 0; i < 3; i++) t.equal((await refresh(app, pair.refresh_token)).json().refresh_token, r2)
  // A further rotation prunes nothing still in the window.
  clock.now += 100
  const r2RotatedAt = clock.now
  const r3 = (await refresh(app, r2)).json().refresh_token
  t.equal((await refresh(app, pair.refresh_token)).json().refresh_token, r2)
  clock.now = rotatedAt + GRACE * 1000 - 1
  t.equal((await refresh(app, pair.refresh_token)).json().refresh_token, r2, 'the last millisecond of the window')
  clock.now = r2RotatedAt + GRACE * 1000
  // Rotating again drops the expired history entries; the current chain goes on.
  t.equal((await refresh(app, r3)).statusCode, 200)
  t.equal((await refresh(app, r2)).json().code, 'AUTH_REFRESH_REUSED')
})
