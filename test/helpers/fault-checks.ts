import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import type { Test } from 'tap'
import type { LoginAnswer } from './app.js'
import { login, storedSession } from './app.js'
import type { Answer, Kind, Load, Outage } from './fault-load.js'
import { ANSWER_MARGIN_MS, RECOVERY_BOUND_MS, STORE_TIMEOUT_MS } from './fault-load.js'
import { refresh } from './refresh.js'

/*
 * What the fault tests assert of a load's answers (test/helpers/fault-load.ts),
 * placed against the outage: never a 2xx Redis could not have checked, only
 * 503 AUTH_STORE_UNAVAILABLE and quickly, service back within a second, and
 * nothing lost or spent by a refused request.
 */

/** An answer in a failure message: its times relative to the outage's start (no token). */
export function describe (a: Answer, outage: Outage): string {
  return `user ${a.vu} ${a.kind} ${a.status} ${a.code ?? ''} sent ${Math.round(a.sentAt - outage.start)} ms, answered ${Math.round(a.answeredAt - outage.start)} ms (outage ${Math.round(outage.end - outage.start)} ms)`
}

const STATUSES = new Set([200, 204, 401, 503])

/**
 * At any time: only statuses the load can expect; every 5xx a 503
 * AUTH_STORE_UNAVAILABLE answered within the store timeout plus a margin; a
 * revoked token never 2xx.
 */
export function checkFailures (t: Test, answers: Answer[], outage: Outage): void {
  const list = (picked: Answer[]) => picked.map((a) => describe(a, outage))
  t.same(list(answers.filter((a) => !STATUSES.has(a.status))), [], 'every answer is 200, 204, 401 or 503 (no 500, no other 5xx)')
  const refused = answers.filter((a) => a.status === 503)
  t.ok(refused.length > 0, 'the outage was felt')
  t.same(list(refused.filter((a) => a.code !== 'AUTH_STORE_UNAVAILABLE')), [], 'every 503 is AUTH_STORE_UNAVAILABLE')
  const bound = STORE_TIMEOUT_MS + ANSWER_MARGIN_MS
  t.same(list(refused.filter((a) => a.answeredAt - a.sentAt > bound)), [], `every 503 is answered within the store timeout (${STORE_TIMEOUT_MS} ms) plus ${ANSWER_MARGIN_MS} ms`)
  const slowest = Math.max(...refused.map((a) => a.answeredAt - a.sentAt))
  t.comment(`${refused.length} of ${answers.length} answers were 503, the slowest in ${Math.round(slowest)} ms`)
  t.same(list(answers.filter((a) => a.kind === 'me-revoked' && a.status < 300)), [], 'a revoked token is never answered 2xx')
}

/**
 * No request sent once Redis could not answer and answered before it could
 * again is a 2xx, unless `cached` says the local cache answered it.
 */
export function checkNothingUnchecked (t: Test, answers: Answer[], outage: Outage, cached: (a: Answer) => boolean = () => false): Answer[] {
  const during = answers.filter((a) => a.sentAt >= outage.start && a.answeredAt < outage.end)
  t.ok(during.length > 0, `${during.length} requests were sent and answered during the outage`)
  const passed = during.filter((a) => a.status < 300)
  t.same(passed.filter((a) => !cached(a)).map((a) => describe(a, outage)), [], 'none of them was answered 2xx unchecked')
  return passed
}

/**
 * The first answer of `kind` that `ok` accepts, once Redis could answer
 * again, comes within a second of Redis answering PING.
 */
export function checkRecovery (t: Test, answers: Answer[], outage: Outage, kind: Kind, ok: (a: Answer) => boolean = (a) => a.status === 200): void {
  const first = answers.filter((a) => a.kind === kind && a.answeredAt >= outage.end && ok(a)).sort((a, b) => a.answeredAt - b.answeredAt)[0]
  if (first === undefined) return void t.fail(`no ${kind} was answered after the outage`)
  const after = Math.round(first.answeredAt - outage.back)
  t.ok(after < RECOVERY_BOUND_MS, `the first ${kind} answered ${first.status} came ${after} ms after Redis answered PING again (bound ${RECOVERY_BOUND_MS} ms)`)
}

/**
 * After a kill or a stall, Redis still has every session: each user kept its
 * one session, never got a 401 for it, and checks and refreshes it after the
 * outage; no refresh was taken for a reuse.
 */
export function checkSessionsKept (t: Test, load: Load, outage: Outage): void {
  for (const vu of load.users) {
    t.equal(vu.sessions.length, 1, `user ${vu.id} (${vu.user}) kept its one session`)
    const refused = vu.answers.filter((a) => a.status === 401 && a.kind !== 'me-revoked' && a.kind !== 'transfer')
    t.same(refused.map((a) => describe(a, outage)), [], `user ${vu.id}: no 401 for its session, its refreshes or its logins`)
    t.ok(vu.answered(200, ['me', 'refresh'], outage.end), `user ${vu.id} checks and refreshes its session after the outage`)
  }
  t.same(load.answers.filter((a) => a.code === 'AUTH_REFRESH_REUSED').map((a) => describe(a, outage)), [], 'no refresh was answered AUTH_REFRESH_REUSED')
}

/**
 * One-time tokens answered 503 are unspent: presented again after the
 * outage, accepted (once). Strictly so for a token whose every 503 was sent
 * and answered within the outage: those calls reached Redis, if at all, past
 * their deadline. A token refused by a call in flight when the outage began
 * or ended may have been spent by it (Redis ran it, its answer was lost or
 * late): presented again, it is accepted or AUTH_TOKEN_REPLAYED, never both
 * accepted twice.
 */
export function checkOneTimeTokens (t: Test, load: Load, outage: Outage): void {
  let strict = 0
  let uncertain = 0
  const wrong: string[] = []
  for (const vu of load.users) {
    for (const answers of vu.oneTime.values()) {
      const last = answers.at(-1)!
      if (answers.filter((a) => a.status === 200).length > 1) wrong.push(`accepted twice: ${describe(last, outage)}`)
      const refused = answers.filter((a) => a.status === 503)
      if (refused.length === 0) {
        if (last.status !== 200) wrong.push(`refused at first use: ${describe(last, outage)}`)
        continue
      }
      if (refused.every((a) => a.sentAt >= outage.start && a.answeredAt <= outage.end)) {
        strict++
        if (last.status !== 200) wrong.push(`refused within the outage, then not accepted: ${describe(last, outage)}`)
      } else {
        uncertain++
        if (last.status !== 200 && last.code !== 'AUTH_TOKEN_REPLAYED') wrong.push(`refused across the outage's edge, then: ${describe(last, outage)}`)
      }
    }
  }
  t.ok(strict > 0, `${strict} one-time tokens were refused within the outage (${uncertain} more by calls across its edges)`)
  t.same(wrong, [], 'each one-time token refused with 503 is accepted once presented again')
}

/**
 * A refresh answered 503 during the outage rotates nothing: after the
 * outage the session is still at its first refresh token, and presenting it
 * again rotates it once.
 */
export class RefreshProbe {
  private refused = 0
  private constructor (private readonly app: FastifyInstance, private readonly pair: LoginAnswer) {}

  /** A session of its own (bob's), before the outage. */
  static async open (app: FastifyInstance): Promise<RefreshProbe> {
    return new RefreshProbe(app, await login(app, 'bob'))
  }

  /** During the outage, after `outage.start`: answered 503. */
  async refuse (t: Test): Promise<void> {
    const res = await refresh(this.app, this.pair.refresh_token)
    t.equal(res.statusCode, 503, 'a refresh during the outage is refused')
    if (res.statusCode === 503) this.refused++
  }

  /** After the outage, once the app's held calls have run (a PING on its client answers after them). */
  async check (t: Test, admin: Redis): Promise<void> {
    await this.app.redis.ping()
    const stored = () => storedSession(admin, this.app, 'bob', this.pair.session_id)
    t.equal((await stored())?.generation, 1, `${this.refused} refused refresh rotated nothing`)
    const retried = await refresh(this.app, this.pair.refresh_token)
    t.equal(retried.statusCode, 200, 'the refused refresh token rotates once presented again')
    t.equal((await stored())?.generation, 2)
  }
}
