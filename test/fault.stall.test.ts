import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import t from 'tap'
import type { Test } from 'tap'
import { exampleApp } from './helpers/app.js'
import { RefreshProbe, checkFailures, checkNothingUnchecked, checkOneTimeTokens, checkRecovery, checkSessionsKept } from './helpers/fault-checks.js'
import type { Answer, Outage, VirtualUser } from './helpers/fault-load.js'
import { Load, ROUTES, adminClient, faultConfig, stopped, until } from './helpers/fault-load.js'
import { startRedisServer } from './helpers/redis-server.js'

/*
 * Redis stalls under load: it holds its connections but answers nothing
 * (SIGSTOP; DEBUG SLEEP, which blocks it; CLIENT PAUSE WRITE, which holds
 * every script while PING still answers, as a failover's pause does). The
 * calls the store guard gave up on run once it answers again: they must
 * change nothing, and no request may pass unchecked meanwhile.
 */

async function stalledSetup (t: Test, args: string[] = [], localCache = false) {
  const redis = await startRedisServer(t, args)
  const app = await exampleApp(t, { ...faultConfig(redis.url), localCache })
  const admin = adminClient(t, redis.url)
  await admin.ping()
  const probe = await RefreshProbe.open(app)
  return { redis, app, admin, probe }
}

/** Everything a stall must leave as it was, once the load has stopped. */
function checkStall (t: Test, load: Load, outage: Outage, cached?: (a: Answer) => boolean): void {
  checkFailures(t, load.answers, outage)
  checkNothingUnchecked(t, load.answers, outage, cached)
  checkRecovery(t, load.answers, outage, 'me')
  checkRecovery(t, load.answers, outage, 'login')
  checkSessionsKept(t, load, outage)
  checkOneTimeTokens(t, load, outage)
}

/** After the stall: every user served on every route, and its refused one-time tokens presented again. */
async function served (load: Load, outage: Outage): Promise<void> {
  await load.until('every user to be served again', (vu) => vu.answered(200, ROUTES, outage.end) && vu.retry.length === 0)
  await load.stop()
}

/**
 * A stall, from now (Redis already held) until the probe's refresh and every
 * user are refused (`refused`; by default, on every route), then `release`
 * ends it whatever happens: a held Redis would hold the app's close (QUIT)
 * too. Resolves when the outage started and when it was ended.
 */
async function heldUntilRefused (
  t: Test, load: Load, probe: RefreshProbe, release: () => unknown,
  what = 'every user to be refused on every route',
  refused = (vu: VirtualUser, start: number) => vu.answered(503, ROUTES, start)
): Promise<{ start: number, end: number }> {
  const start = performance.now()
  try {
    await probe.refuse(t)
    await load.until(what, (vu) => refused(vu, start))
    return { start, end: performance.now() }
  } finally {
    await release()
  }
}

async function run (t: Test, app: FastifyInstance, admin: Redis, probe: RefreshProbe, stall: (load: Load) => Promise<Outage>): Promise<void> {
  const load = await Load.start(app)
  let outage: Outage
  try {
    outage = await stall(load)
    await served(load, outage)
  } finally {
    await load.stop()
  }
  checkStall(t, load, outage)
  await probe.check(t, admin)
}

t.test('Redis stopped (SIGSTOP) under load: only 503 AUTH_STORE_UNAVAILABLE, nothing unchecked, nothing lost or spent, back at once', async (t) => {
  const { redis, app, admin, probe } = await stalledSetup(t)
  await run(t, app, admin, probe, async (load) => {
    await stopped(redis)
    const { start, end } = await heldUntilRefused(t, load, probe, () => redis.resume())
    await admin.ping()
    return { start, end, back: performance.now() }
  })
})

t.test('Redis paused for writes (CLIENT PAUSE WRITE) under load: scripts are held while PING answers, and the same holds', async (t) => {
  const { app, admin, probe } = await stalledSetup(t)
  await run(t, app, admin, probe, async (load) => {
    // Long enough never to end by itself: CLIENT UNPAUSE ends it.
    await admin.call('CLIENT', 'PAUSE', '60000', 'WRITE')
    const { start, end } = await heldUntilRefused(t, load, probe, async () => await admin.call('CLIENT', 'UNPAUSE'))
    return { start, end, back: performance.now() }
  })
})

/** DEBUG SLEEP blocks Redis for a fixed time: long enough for a few store timeouts. */
const SLEEP_MS = 1500

t.test('Redis blocked (DEBUG SLEEP) under load: the same holds', async (t) => {
  const { app, admin, probe } = await stalledSetup(t, ['--enable-debug-command', 'yes'])
  await run(t, app, admin, probe, async (load) => {
    const called = performance.now()
    const slept = admin.call('DEBUG', 'SLEEP', String(SLEEP_MS / 1000))
    // Written to the socket before call() returned: whatever the app sends from now on runs after the sleep.
    const start = performance.now()
    await probe.refuse(t)
    await slept
    const back = performance.now()
    // A fixed time, so no waiting for a condition: check it was long enough to be felt by every user.
    for (const vu of load.users) t.ok(vu.answered(503, ['me'], start), `user ${vu.id} was refused during the sleep`)
    return { start, end: called + SLEEP_MS, back }
  })
})

t.test('the local cache during a stall: it answers cached sessions for at most two heartbeats after the last message, then 503', async (t) => {
  const { redis, app, admin, probe } = await stalledSetup(t, [], true)
  await app.ready()
  const cache = app.tokens.localCache!
  const staleAfterMs = 2 * app.tokens.options.localCache!.heartbeatMs
  // When the instance's subscriber got a message (a heartbeat, an invalidation), and when a request was answered from the cache.
  const messages: number[] = []
  cache.subscriber.on('message', () => { messages.push(performance.now()) })
  const hits: number[] = []
  const hit = cache.hit.bind(cache)
  cache.hit = (...args) => {
    const liveUntil = hit(...args)
    if (liveUntil !== 0) hits.push(performance.now())
    return liveUntil
  }

  const load = await Load.start(app)
  let outage: Outage
  try {
    await until('the cache to answer', () => hits.length > 0 && messages.length > 0)
    await stopped(redis)
    // No message can come while Redis is stopped: the cache is past its staleness bound once every user got a 503 for a check sent after it.
    const stale = () => messages.at(-1)! + staleAfterMs
    // And until some one-time token was first presented within the stall and refused: while the
    // cache still answers a user's checks, that user re-presents the tokens refused at the
    // stall's start, which straddle its edge; only fresh ones show a call refused strictly
    // within it (checkOneTimeTokens needs one). Refused, such a token waits for service.
    const refusedWithin = (start: number) => load.users.some((user) => [...user.oneTime.values()]
      .some((answers) => answers[0]!.sentAt >= start && answers.some((a) => a.status === 503)))
    const { start, end } = await heldUntilRefused(t, load, probe, () => redis.resume(), 'the cache to stop answering, and a fresh one-time token refused',
      (vu, start) => vu.answers.some((a) => a.kind === 'me' && a.status === 503 && a.sentAt > stale()) && refusedWithin(start))
    await admin.ping()
    outage = { start, end, back: performance.now() }
    await served(load, outage)
  } finally {
    await load.stop()
  }

  // A check of a live session, the only answer the cache gives: checkStall proves no other request passed.
  const fromCache = (a: Answer) => a.kind === 'me'
  checkStall(t, load, outage, fromCache)
  const cached = load.answers.filter((a) => a.sentAt >= outage.start && a.answeredAt < outage.end && a.status < 300)
  const lastMessage = Math.max(...messages.filter((m) => m < outage.end))
  t.ok(cached.length > 0, `the cache answered ${cached.length} session checks during the stall`)
  t.ok(cached.length <= hits.filter((h) => h >= outage.start && h < outage.end).length, 'each of them from the cache')
  t.same(cached.filter((a) => a.sentAt > lastMessage + staleAfterMs).map((a) => Math.round(a.sentAt - lastMessage)), [],
    `none was sent later than two heartbeats (${staleAfterMs} ms) after the last message`)
  const lastCached = Math.max(...cached.map((a) => a.sentAt))
  t.comment(`the cache answered until ${Math.round(lastCached - outage.start)} ms into the stall; the last message came ${Math.round(outage.start - lastMessage)} ms before it`)
  await probe.check(t, admin)
})
