import t from 'tap'
import { exampleApp } from './helpers/app.js'
import { RefreshProbe, checkFailures, checkNothingUnchecked, checkOneTimeTokens, checkRecovery, checkSessionsKept } from './helpers/fault-checks.js'
import type { Outage } from './helpers/fault-load.js'
import { Load, RECOVERY_BOUND_MS, ROUTES, adminClient, faultConfig, killed, until } from './helpers/fault-load.js'
import { startRedisServer } from './helpers/redis-server.js'

/*
 * Redis killed (SIGKILL) under load and started again with its data: an
 * append-only file written before every answer (appendfsync always), so what
 * Redis answered is what it finds again, as a crash of a Redis with
 * persistence would leave it. Connections drop at once: the app must answer
 * 503 at once, let nothing through, lose no session, spend no one-time token,
 * and be back within a second of Redis answering again.
 */

t.test('Redis killed under load and restarted with its data: only 503 AUTH_STORE_UNAVAILABLE, nothing unchecked, no session lost, nothing spent, back within a second', async (t) => {
  const redis = await startRedisServer(t, ['--appendonly', 'yes', '--appendfsync', 'always'])
  const app = await exampleApp(t, faultConfig(redis.url))
  const probe = await RefreshProbe.open(app)
  // The client's waits between reconnection attempts.
  const delays: number[] = []
  app.redis.on('reconnecting', (ms: number) => delays.push(ms))
  // Levelled off (three equal waits: its longest), or past the bound already: a longer outage adds nothing.
  const levelledOff = () => (delays.length >= 3 && delays.at(-1) === delays.at(-2) && delays.at(-2) === delays.at(-3)) || delays.at(-1)! >= RECOVERY_BOUND_MS

  const load = await Load.start(app)
  let outage: Outage
  try {
    await killed(redis)
    const start = performance.now()
    await probe.refuse(t)
    await load.until('every user to be refused on every route', (vu) => vu.answered(503, ROUTES, start))
    // Away long enough for the client's back-off to reach its longest wait: the slowest recovery.
    await until('the client\'s back-off to level off', levelledOff)
    // Back just after an attempt failed: the client waits its longest. Not events.once: it would reject on the client's 'error' events.
    await new Promise((resolve) => app.redis.once('reconnecting', resolve))
    const end = performance.now()
    await redis.restart()
    outage = { start, end, back: performance.now() }
    await load.until('every user to be served again', (vu) => vu.answered(200, ROUTES, end) && vu.retry.length === 0)
  } finally {
    await load.stop()
  }
  t.comment(`the client waited ${delays.join(', ')} ms between attempts`)

  checkFailures(t, load.answers, outage)
  checkNothingUnchecked(t, load.answers, outage)
  checkRecovery(t, load.answers, outage, 'me')
  checkRecovery(t, load.answers, outage, 'login')
  checkSessionsKept(t, load, outage)
  checkOneTimeTokens(t, load, outage)
  await probe.check(t, adminClient(t, redis.url))
})
