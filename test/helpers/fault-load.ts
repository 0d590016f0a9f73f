import type { FastifyInstance, InjectOptions } from 'fastify'
import { Redis } from 'ioredis'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { reconnectDelay } from '../../example-server/app.js'
import type { LoginAnswer } from './app.js'
import { bearer } from './app.js'
import type { RedisProcess } from './redis-server.js'

/*
 * A bounded load on the example app for the fault tests (test/fault.*.test.ts):
 * a few virtual users, each checking its session on GET /api/me, presenting a
 * token revoked beforehand, spending one-time tokens on POST /api/transfer,
 * refreshing and logging in, while the test kills, stalls or empties its
 * private Redis. Every answer is kept with the time it was sent and answered,
 * so that the test can place it against the outage.
 */

/** The app's storeTimeout in these tests: short, to keep them fast. */
export const STORE_TIMEOUT_MS = 300
/**
 * How much later than the store timeout a 503 may come: the guard's sweep
 * tick (a quarter of the timeout) plus the event-loop lag of a loaded 2-core
 * machine, generously.
 */
export const ANSWER_MARGIN_MS = 700
/** The bound (#13): service is back within a second of Redis answering again. */
export const RECOVERY_BOUND_MS = 1000
/** Users of the load; alice twice, to have two sessions of one user. */
export const LOAD_USERS = ['alice', 'bob', 'root', 'alice']

/** The example server's settings for a fault test, against a private Redis. */
export function faultConfig (redisUrl: string) {
  return {
    redisUrl,
    storeTimeoutMs: STORE_TIMEOUT_MS,
    // Every login its own session, and limits the load never reaches.
    sso: 'off',
    refreshRateMax: 1_000_000,
    loginRateMax: 1_000_000
  }
}

const THINK_MS = 10
/** Bounds, far above what a run needs: a hang fails the test instead of hanging it. */
const MAX_ITERATIONS = 10_000
const WAIT_BOUND_MS = 30_000

export type Kind = 'login' | 'me' | 'me-revoked' | 'refresh' | 'transfer'
/** The kinds of request a user makes with its own session and credentials. */
export const ROUTES: readonly Kind[] = ['me', 'refresh', 'transfer', 'login']

export interface Answer {
  vu: number
  kind: Kind
  /** performance.now() when the request was sent and when its answer came. */
  sentAt: number
  answeredAt: number
  status: number
  code: string | undefined
}

/** When Redis could not answer: from `start` (it surely could not) to `end` (it could again, at the earliest), and `back`, when it answered PING again. */
export interface Outage {
  start: number
  end: number
  back: number
}

/** Waits, polling, until `condition` holds; throws after a bound. */
export async function until (what: string, condition: () => boolean | Promise<boolean>, intervalMs = 10): Promise<void> {
  const deadline = performance.now() + WAIT_BOUND_MS
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(intervalMs)
  }
}

/** A client of a test's private Redis, beside the app's, for the test's own commands. */
export function adminClient (t: { teardown: (fn: () => unknown) => void }, url: string): Redis {
  const admin = new Redis(url, { retryStrategy: reconnectDelay })
  admin.on('error', () => {})
  t.teardown(() => { admin.disconnect() })
  return admin
}

/** SIGSTOP, and wait until the kernel reports the server stopped (state T): from then on it answers nothing. */
export async function stopped (redis: RedisProcess): Promise<void> {
  redis.pause()
  await until('redis-server to stop', () => readFileSync(`/proc/${redis.process.pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] === 'T', 2)
}

/** SIGKILL, and wait until the process has exited: from then on nothing answers on its port. */
export async function killed (redis: RedisProcess): Promise<void> {
  const exited = once(redis.process, 'exit')
  redis.kill()
  await exited
}

/** One user of the load: its session, the one-time tokens it holds, and everything it was answered. */
export class VirtualUser {
  session: LoginAnswer | null = null
  /** Every session this user held as its own: one, unless Redis lost it. */
  readonly sessions: string[] = []
  /** Every answer of the one-time route, per token (never printed). */
  readonly oneTime = new Map<string, Answer[]>()
  /** One-time tokens answered 503, to present again. */
  readonly retry: string[] = []
  readonly answers: Answer[] = []
  /** Access tokens not yet presented at the one-time route. */
  private readonly fresh: string[] = []
  private loginFailed = false
  private refreshFailed = false
  /** Whether its last session check passed: a refused one-time token is presented again only then, once service is back. */
  private served = true

  constructor (
    private readonly app: FastifyInstance,
    readonly id: number,
    readonly user: string,
    private readonly revokedToken: string,
    private readonly all: Answer[]
  ) {}

  /** A warmed-up user: its session checked, refreshed and used once at the one-time route, and tokens in stock. */
  get warm (): boolean {
    return this.fresh.length >= 2 && this.answered(200, ROUTES, -Infinity)
  }

  /** Has been answered `status` for each kind, for a request sent at or after `since`. */
  answered (status: number, kinds: readonly Kind[], since: number): boolean {
    return kinds.every((kind) => this.answers.some((a) => a.kind === kind && a.status === status && a.sentAt >= since))
  }

  async iteration (i: number): Promise<void> {
    if (this.session === null) {
      await this.logIn(true)
      return
    }
    const session = this.session
    const work = [this.me(session), this.meRevoked()]
    // Together, as a page's requests would be: an iteration takes one store timeout, not five, while Redis stalls.
    if ((this.served && this.retry.length !== 0) || (i % 2 === 0 && this.fresh.length !== 0)) work.push(this.transfer())
    if (this.refreshFailed || i % 2 === 1) work.push(this.refresh(session))
    if (this.loginFailed || i % 3 === 0) work.push(this.logIn(false))
    await Promise.all(work)
  }

  private async call (kind: Kind, request: InjectOptions): Promise<{ answer: Answer, body: Record<string, unknown> }> {
    const sentAt = performance.now()
    const res = await this.app.inject(request)
    const answeredAt = performance.now()
    let body: Record<string, unknown> = {}
    if (res.body !== '') body = res.json()
    const answer: Answer = { vu: this.id, kind, sentAt, answeredAt, status: res.statusCode, code: body.code as string | undefined }
    this.answers.push(answer)
    this.all.push(answer)
    return { answer, body }
  }

  private lost (session: LoginAnswer): void {
    if (this.session === session) this.session = null
  }

  private async me (session: LoginAnswer): Promise<void> {
    const { answer } = await this.call('me', { method: 'GET', url: '/api/me', headers: bearer(session.access_token) })
    this.served = answer.status === 200
    if (answer.status === 401) this.lost(session)
  }

  private async meRevoked (): Promise<void> {
    await this.call('me-revoked', { method: 'GET', url: '/api/me', headers: bearer(this.revokedToken) })
  }

  /** Presents a one-time token answered 503 before (once service is back), else a fresh one. */
  private async transfer (): Promise<void> {
    const token = (this.served ? this.retry.shift() : undefined) ?? this.fresh.shift()!
    const { answer } = await this.call('transfer', { method: 'POST', url: '/api/transfer', headers: bearer(token), payload: { amount: 1 } })
    const answers = this.oneTime.get(token) ?? []
    answers.push(answer)
    this.oneTime.set(token, answers)
    if (answer.status === 503) this.retry.push(token)
  }

  private async refresh (session: LoginAnswer): Promise<void> {
    const { answer, body } = await this.call('refresh', { method: 'POST', url: '/auth/refresh', payload: { refresh_token: session.refresh_token } })
    // A refused refresh is presented again as it was: it must not have rotated.
    this.refreshFailed = answer.status === 503
    if (answer.status === 401) this.lost(session)
    if (answer.status !== 200) return
    const pair = body as unknown as LoginAnswer
    if (pair.session_id !== session.session_id) throw new Error('a refresh answered another session')
    if (this.session === session) this.session = pair
    this.fresh.push(pair.access_token)
  }

  /** `own`: the user's session; else one more session, whose access token goes to the one-time route. */
  private async logIn (own: boolean): Promise<void> {
    const { answer, body } = await this.call('login', { method: 'POST', url: '/auth/login', payload: { username: this.user, password: `${this.user}-pass` } })
    if (!own) this.loginFailed = answer.status === 503
    if (answer.status !== 200) return
    const pair = body as unknown as LoginAnswer
    if (own) {
      this.session = pair
      this.sessions.push(pair.session_id)
    } else {
      this.fresh.push(pair.access_token)
    }
  }
}

export class Load {
  readonly answers: Answer[] = []
  readonly users: VirtualUser[]
  private running = true
  private readonly done: Promise<void>
  /** What stopped a virtual user (an answer the load cannot go on from): rethrown by `until` and `stop`. */
  private failure: unknown = null

  private constructor (app: FastifyInstance, revoked: string[]) {
    this.users = LOAD_USERS.map((user, i) => new VirtualUser(app, i, user, revoked[i]!, this.answers))
    this.done = Promise.all(this.users.map(async (vu) => {
      try {
        for (let i = 0; i < MAX_ITERATIONS && this.running; i++) {
          await vu.iteration(i)
          await sleep(THINK_MS)
        }
      } catch (err) {
        this.failure ??= err
        this.running = false
      }
    })).then(() => {})
  }

  /** Starts the virtual users once each has a token revoked by logout; resolves once each is warmed up. */
  static async start (app: FastifyInstance): Promise<Load> {
    const revoked: string[] = []
    for (const user of LOAD_USERS) {
      const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: user, password: `${user}-pass` } })
      const token = (res.json() as LoginAnswer).access_token
      const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(token) })
      if (logout.statusCode !== 204) throw new Error(`logout answered ${logout.statusCode}`)
      revoked.push(token)
    }
    const load = new Load(app, revoked)
    await load.until('every virtual user to warm up', (vu) => vu.warm)
    return load
  }

  /** Waits until every virtual user satisfies `condition` (bounded). */
  async until (what: string, condition: (vu: VirtualUser) => boolean): Promise<void> {
    await until(what, () => {
      if (this.failure !== null) throw this.failure
      return this.users.every(condition)
    })
  }

  async stop (): Promise<void> {
    this.running = false
    await this.done
    if (this.failure !== null) throw this.failure
  }
}
