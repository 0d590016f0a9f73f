import type { FastifyInstance, InjectOptions } from 'fastify'
import type { Redis } from 'ioredis'
import type { Test } from 'tap'
import { bearer, login, me } from './app.js'
import type { LoginAnswer } from './app.js'
import { refresh } from './refresh.js'
import { infoField, nodeClient, until } from './replication.js'

/*
 * A failover under load, shared by test/failover.*.test.ts: a few virtual
 * users on the example app (login, GET /api/me with a live token and with one
 * revoked before the failover, refresh) while the test kills the primary
 * holding one user's sessions, until a replica is promoted and service is
 * back; then the figures and what the contract says of them.
 */

type Kind = 'login' | 'me' | 'me-revoked' | 'refresh'

interface Answer {
  kind: Kind
  user: string
  /** performance.now() when the request was sent and when it was answered. */
  sentAt: number
  answeredAt: number
  status: number
  code: string | undefined
  /** A login answered 200: the session it opened. */
  sessionId?: string
}

const USERS = ['alice', 'bob', 'root']
/** The user whose sessions the killed primary holds. */
export const VICTIM_USER = 'alice'
/** Concurrent virtual users: two for the user whose primary is killed, one for each other user. */
const VIRTUAL_USERS = ['alice', 'alice', 'bob', 'root']
/** A pause between a virtual user's requests: a steady load the loaded CI machine keeps up with. */
const THINK_MS = 5
/** Bounds of the run, far above what it needs: a hung failover fails the test instead of hanging it. */
const MAX_ITERATIONS = 50_000
/** The contract: service resumes within 5 s of a new master being promoted. */
const RESUME_WITHIN_MS = 5000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const replicationOffset = (info: string, field: string) => Number(infoField(info, field))

async function call (app: FastifyInstance, kind: Kind, user: string, request: InjectOptions): Promise<{ answer: Answer, body: Record<string, unknown> }> {
  const sentAt = performance.now()
  const res = await app.inject(request)
  let body: Record<string, unknown> = {}
  try { body = res.json() } catch { /* 204 */ }
  const answer: Answer = { kind, user, sentAt, answeredAt: performance.now(), status: res.statusCode, code: body.code as string | undefined }
  if (kind === 'login' && res.statusCode === 200) answer.sessionId = body.session_id as string
  return { answer, body }
}

/**
 * One virtual user: checks its live token, presents a token revoked before
 * the failover, refreshes, and logs in again now and then, until told to stop.
 */
async function virtualUser (app: FastifyInstance, user: string, revokedToken: string, answers: Answer[], running: () => boolean): Promise<void> {
  let pair: LoginAnswer | null = null
  for (let i = 0; i < MAX_ITERATIONS && running(); i++) {
    if (pair === null || i % 2 === 0) {
      const { answer, body } = await call(app, 'login', user, { method: 'POST', url: '/auth/login', payload: { username: user, password: `${user}-pass` } })
      answers.push(answer)
      if (answer.status === 200) pair = body as unknown as LoginAnswer
    }
    if (pair !== null) {
      const { answer } = await call(app, 'me', user, { method: 'GET', url: '/api/me', headers: bearer(pair.access_token) })
      answers.push(answer)
      if (answer.status === 401) pair = null
    }
    answers.push((await call(app, 'me-revoked', user, { method: 'GET', url: '/api/me', headers: bearer(revokedToken) })).answer)
    if (pair !== null && i % 3 === 0) {
      const { answer, body } = await call(app, 'refresh', user, { method: 'POST', url: '/auth/refresh', payload: { refresh_token: pair.refresh_token } })
      answers.push(answer)
      if (answer.status === 200) pair = body as unknown as LoginAnswer
      // A 503'd rotation is retried with the same token (the grace window gives the same successor).
      if (answer.status === 401) pair = null
    }
    await sleep(THINK_MS)
  }
}

export interface FailoverScenario {
  /** What the figures are printed under: 'Cluster failover'. */
  label: string
  /** The example app, ready, with rate limits the load never reaches. */
  app: FastifyInstance
  /** The primary holding VICTIM_USER's sessions. */
  victim: { port: number, kill: () => void }
  /** A plain connection to the replica expected to take over (reads allowed). */
  heir: Redis
  /** Whether the heir has been promoted, as the deployment tells (polled). */
  promoted: () => Promise<boolean>
}

export interface FailoverFigures {
  killedAt: number
  promotedAt: number
  resumedAt: number
}

/**
 * Runs the failover: tokens revoked before it (the revocation already on the
 * heir), the load warmed up, the kill, the promotion, a probe until service is
 * back, a second more of load; then prints the figures and asserts the
 * contract: the only 5xx is 503 AUTH_STORE_UNAVAILABLE, no 2xx for a revoked
 * token, service back within 5 s of the promotion.
 */
export async function runFailover (t: Test, { label, app, victim, heir, promoted }: FailoverScenario): Promise<FailoverFigures> {
  // Tokens revoked before the failover, the revocation already on the replica:
  // a 2xx for one of them after the failover would be a check that reached no master.
  const revoked = new Map<string, string>()
  for (const user of USERS) {
    const pair = await login(app, user)
    t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(pair.access_token) })).statusCode, 204, `${user}'s session ended`)
    revoked.set(user, pair.access_token)
  }
  const refused = await app.inject({ method: 'GET', url: '/api/me', headers: bearer(revoked.get(VICTIM_USER)!) })
  t.equal(refused.json().code, 'AUTH_SESSION_REVOKED', 'a revoked token is refused before the failover')
  const written = replicationOffset(await nodeClient(t, victim.port).info('replication'), 'master_repl_offset')
  await until('the replica to hold the revocations', async () => replicationOffset(await heir.info('replication'), 'slave_repl_offset') >= written)

  const answers: Answer[] = []
  let running = true
  const load = Promise.all(VIRTUAL_USERS.map((user) => virtualUser(app, user, revoked.get(user)!, answers, () => running)))
  t.teardown(async () => { running = false; await load })

  const okSince = (since: number, user: string) => answers.filter((a) => a.user === user && a.sentAt >= since && a.status === 200).length
  await until('the load to run', () => USERS.every((u) => okSince(0, u) >= 10))

  const killedAt = performance.now()
  victim.kill()
  await until('a replica to be promoted', promoted)
  const promotedAt = performance.now()

  // Back: a new login of the victim's user, its token checked, and its refresh, all answered.
  const probe = async (): Promise<boolean> => {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: VICTIM_USER, password: `${VICTIM_USER}-pass` } })
    if (res.statusCode !== 200) return false
    const pair = res.json() as LoginAnswer
    const checked = await app.inject({ method: 'GET', url: '/api/me', headers: bearer(pair.access_token) })
    return checked.statusCode === 200 && (await refresh(app, pair.refresh_token)).statusCode === 200
  }
  await until('service to resume', probe)
  const resumedAt = performance.now()
  // The load goes on a little after the recovery: it must stay back.
  await until('the load to run after the recovery', () => USERS.every((u) => okSince(resumedAt, u) >= 10) && performance.now() - resumedAt > 1000)
  running = false
  await load

  // Sessions written just before the kill that the promoted replica lacks (replication is asynchronous).
  const lastLogins = answers.filter((a) => a.kind === 'login' && a.user === VICTIM_USER && a.sessionId !== undefined && a.answeredAt >= killedAt - 1000 && a.answeredAt < killedAt)
  const kept = lastLogins.length === 0 ? [] : await heir.hmget(app.tokens.keys.sessions(VICTIM_USER), ...lastLogins.map((a) => a.sessionId!))
  const lost = kept.filter((v) => v === null).length

  const byStatus: Record<string, number> = {}
  for (const a of answers) {
    const key = a.status >= 400 ? `${a.status} ${a.code}` : String(a.status)
    byStatus[key] = (byStatus[key] ?? 0) + 1
  }
  const fiveHundreds = Object.fromEntries(Object.entries(byStatus).filter(([k]) => k.startsWith('5')))
  const unavailable = answers.filter((a) => a.status === 503)
  const lastUnavailable = unavailable.length === 0 ? NaN : Math.max(...unavailable.map((a) => a.answeredAt))
  const unavailableByKind: Record<string, number> = {}
  for (const a of unavailable) unavailableByKind[`${a.user} ${a.kind}`] = (unavailableByKind[`${a.user} ${a.kind}`] ?? 0) + 1
  t.comment(`${label}: kill to promotion ${Math.round(promotedAt - killedAt)} ms, promotion to service back ${Math.round(resumedAt - promotedAt)} ms, ` +
    `last 503 answered ${Math.round(lastUnavailable - promotedAt)} ms after the promotion; ${answers.length} answers ${JSON.stringify(byStatus)}; ` +
    `5xx by status ${JSON.stringify(fiveHundreds)}, 503 by user and request ${JSON.stringify(unavailableByKind)}; sessions of logins answered in the last second before the kill lost: ${lost} of ${lastLogins.length}`)

  t.same(Object.keys(fiveHundreds), ['503 AUTH_STORE_UNAVAILABLE'], 'the only 5xx is 503 AUTH_STORE_UNAVAILABLE, and the failover produced some')
  const unexpected = answers.filter((a) => ![200, 204, 401, 503].includes(a.status))
  t.same(unexpected, [], 'every other answer is a 200, 204 or 401')
  t.same(answers.filter((a) => a.kind === 'me-revoked' && a.status < 300), [], 'no 2xx for a token revoked before the failover')
  t.same(answers.filter((a) => a.kind === 'me-revoked' && a.status === 401 && a.code !== 'AUTH_SESSION_REVOKED'), [], 'it stays revoked after the failover')
  t.ok(resumedAt - promotedAt <= RESUME_WITHIN_MS, `service resumed ${Math.round(resumedAt - promotedAt)} ms after the promotion (at most ${RESUME_WITHIN_MS})`)
  t.same(unavailable.filter((a) => a.sentAt > promotedAt + RESUME_WITHIN_MS), [], 'no 503 for a request sent more than 5 s after the promotion')
  t.ok(answers.some((a) => a.sentAt > killedAt && a.answeredAt < promotedAt), 'the load ran through the failover')
  return { killedAt, promotedAt, resumedAt }
}

/**
 * After a failover, a second instance with the local cache on (`cached`, on
 * the same keys as `app`) must be subscribed again (heartbeats come only
 * through a live subscription), cache a live session, and hear its revocation
 * through `app`: told, not merely emptied for silence.
 */
export async function checkLocalCacheAfterFailover (t: Test, app: FastifyInstance, cached: FastifyInstance): Promise<void> {
  const cache = cached.tokens.localCache!
  await until('the cache to be usable after the failover', () => cache.usable(), 10_000)
  const pair = await login(app, 'bob')
  t.equal((await me(cached, pair.access_token)).statusCode, 200, 'the second instance accepts a live session')
  t.ok(cache.size > 0, 'and caches it')
  const invalidations: string[] = []
  cache.subscriber.on('message', (_channel: string, message: string) => { if (message !== '') invalidations.push(message) })
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(pair.access_token) })).statusCode, 204, 'the first instance ends it')
  await until('the invalidation to reach the second instance', () => invalidations.length > 0, 10_000)
  t.ok(cache.usable(), 'its cache is still on: it was told, not emptied for silence')
  const refused = await me(cached, pair.access_token)
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'AUTH_SESSION_REVOKED', 'the second instance refuses the revoked session')
}
