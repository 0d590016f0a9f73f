import t from 'tap'
import { bearer, exampleApp, login } from './helpers/app.js'
import { checkFailures, checkNothingUnchecked, checkRecovery, describe } from './helpers/fault-checks.js'
import type { Outage } from './helpers/fault-load.js'
import { Load, ROUTES, faultConfig, killed } from './helpers/fault-load.js'
import { refresh } from './helpers/refresh.js'
import { startRedisServer } from './helpers/redis-server.js'

/*
 * Redis killed under load and started again empty (no persistence, or a
 * new node): every session is gone, and so are the scripts. Sessions end
 * cleanly (401, never a 500), and logins work again within a second of Redis
 * answering.
 */

t.test('Redis restarted empty under load: sessions end with 401 (never 500), logins work again within a second', async (t) => {
  const redis = await startRedisServer(t)
  const app = await exampleApp(t, faultConfig(redis.url))
  // A session of its own, presented on every route once Redis is back.
  const gone = await login(app, 'bob')
  const load = await Load.start(app)
  let outage: Outage
  try {
    await killed(redis)
    const start = performance.now()
    await load.until('every user to be refused on every route', (vu) => vu.answered(503, ROUTES, start))
    const end = performance.now()
    await redis.restart()
    outage = { start, end, back: performance.now() }
    // Each user finds its session gone, logs in again and is served on the new one.
    await load.until('every user to be served on a new session', (vu) => vu.sessions.length === 2 && vu.answered(200, ROUTES, end))
  } finally {
    await load.stop()
  }

  checkFailures(t, load.answers, outage)
  checkNothingUnchecked(t, load.answers, outage)
  checkRecovery(t, load.answers, outage, 'login')
  // Checks are answered again, 401 for a session Redis lost.
  checkRecovery(t, load.answers, outage, 'me', (a) => a.status !== 503)
  const after = load.answers.filter((a) => a.answeredAt >= outage.end)
  for (const vu of load.users) {
    t.equal(vu.sessions.length, 2, `user ${vu.id} (${vu.user}) logged in again once`)
    // Whichever of its requests reached the empty Redis first tells it (the
    // user then logs in again): a check or a one-time request says the session
    // is revoked, a refresh that its token is unknown. The revoked-before token
    // says so anyway, so it does not count.
    t.ok(vu.answers.some((a) => a.kind !== 'me-revoked' && a.answeredAt >= outage.end && a.status === 401 &&
      (a.code === 'AUTH_SESSION_REVOKED' || (a.kind === 'refresh' && a.code === 'AUTH_REFRESH_INVALID'))),
      `user ${vu.id} was told its session is gone`)
  }
  const me = await app.inject({ method: 'GET', url: '/api/me', headers: bearer(gone.access_token) })
  t.same([me.statusCode, me.json().code], [401, 'AUTH_SESSION_REVOKED'], 'a session Redis lost: its access token is AUTH_SESSION_REVOKED')
  const transfer = await app.inject({ method: 'POST', url: '/api/transfer', headers: bearer(gone.access_token), payload: { amount: 1 } })
  t.same([transfer.statusCode, transfer.json().code], [401, 'AUTH_SESSION_REVOKED'], 'also at the one-time route')
  const refreshed = await refresh(app, gone.refresh_token)
  t.same([refreshed.statusCode, refreshed.json().code], [401, 'AUTH_REFRESH_INVALID'], 'its refresh token is AUTH_REFRESH_INVALID')

  const codes = new Set(after.filter((a) => a.status === 401).map((a) => `${a.kind} ${a.code}`))
  t.comment(`401s after the restart: ${[...codes].sort().join(', ')}`)
  const expected = new Set(['me AUTH_SESSION_REVOKED', 'me-revoked AUTH_SESSION_REVOKED', 'refresh AUTH_REFRESH_INVALID', 'refresh AUTH_SESSION_REVOKED', 'transfer AUTH_SESSION_REVOKED'])
  t.same(after.filter((a) => a.status === 401 && !expected.has(`${a.kind} ${a.code}`)).map((a) => describe(a, outage)), [], 'every 401 says the session is gone')
})
