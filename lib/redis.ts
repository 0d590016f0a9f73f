import { createHash } from 'node:crypto'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import { StoreUnavailableError } from './errors.js'

export type RedisClient = Redis | Cluster

export interface RedisSourceOptions {
  /** A client to use instead of the one `@fastify/redis` shares. Never closed by us. */
  redis?: RedisClient
  /** The `@fastify/redis` namespace to take the client from, when it was registered with one. */
  redisNamespace?: string
}

/** The client our plugins share: the one passed in, else the one `@fastify/redis` decorated. */
export function resolveRedis (fastify: FastifyInstance, opts: RedisSourceOptions, plugin: string): RedisClient {
  if (opts.redis) return opts.redis
  const shared = (fastify as unknown as { redis?: Record<string, unknown> }).redis
  const client = opts.redisNamespace ? shared?.[opts.redisNamespace] : shared
  if (!client) {
    throw new Error(`${plugin}: no Redis client. Register @fastify/redis${opts.redisNamespace ? ` with namespace '${opts.redisNamespace}'` : ''} before this plugin, or pass { redis }`)
  }
  return client as RedisClient
}

export interface ScriptDefinition {
  /** Readable name, for people reading the code and the logs. */
  name: string
  lua: string
}

export type ScriptCall = (numKeys: number, ...keysAndArgs: Array<string | number | Buffer>) => Promise<unknown>

/**
 * A call of a Lua script on the shared client: EVALSHA, and EVAL once when
 * Redis answers NOSCRIPT (restarted empty, SCRIPT FLUSH, a new Cluster node).
 *
 * Why not ioredis's `defineCommand`: with `enableAutoPipelining` on a
 * Cluster, ioredis picks a command's auto-pipeline by its first key, and for
 * a defined command (a name it does not know) it takes the first argument,
 * which is `numKeys`. Every script with one key then shared one pipeline
 * whatever node its key lives on, and a refresh (two rate-limit counters and
 * the rotation in one event-loop turn) failed with "All keys in the pipeline
 * should belong to the same slots allocation group" (redis/ioredis#2109).
 * EVALSHA and EVAL are commands ioredis knows: it finds their keys, groups
 * them by node, and adds its key prefix to them.
 */
export function defineScript (client: RedisClient, script: ScriptDefinition): ScriptCall {
  const sha = createHash('sha1').update(script.lua).digest('hex')
  const onNoScript = (numKeys: number, keysAndArgs: Array<string | number | Buffer>) => (err: unknown) => {
    if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return client.eval(script.lua, numKeys, ...keysAndArgs)
    throw err
  }
  return (numKeys, ...keysAndArgs) => client.evalsha(sha, numKeys, ...keysAndArgs).catch(onNoScript(numKeys, keysAndArgs))
}

interface PendingCall {
  /** performance.now() past which the call counts as failed. */
  deadline: number
  fail: (reason: unknown) => void
  /** Its place in the guard's queue, counted from the first call ever queued. */
  at: number
}

/**
 * Every store call goes through here: a request must never wait on a slow or
 * absent Redis for long, nor be let through because of one. A call whose
 * connection is not ready fails at once (no offline queue piling up behind it); a call
 * without an answer after `timeoutMs` fails with 503 AUTH_STORE_UNAVAILABLE.
 *
 * Failing a call cannot take it back: its command may sit in a socket buffer
 * (or the script lane) and run once a stalled Redis answers again. So `run`
 * gets `writeBy`, the epoch ms after which its script must change nothing
 * (lib/lua/preludes.ts LATE): a client told 503 for a one-time token, a login or a refresh
 * may retry it, and finds the token unspent, no session opened, nothing
 * rotated. `writeBy` comes a quarter of the budget (at most 100 ms) before
 * the guard gives up, so that an answer sent just in time has that long to
 * come back; an answer delayed longer than that (a stalled network, or an
 * app's event loop) can still be one whose call took effect.
 * It compares this host's clock (Date.now(), not an injected clock) with
 * Redis's TIME: hosts are assumed NTP-synced, as JWT `exp` across instances
 * already assumes (Redis cannot know when a frame was sent, so a relative
 * budget would not do). A Redis clock behind by less than the margin costs
 * nothing; behind by more, a late call may take effect that much after its
 * 503; ahead, calls are refused early, every one of them once the skew
 * passes the budget, which the log shows as "FJS_LATE".
 *
 * The hot path pays for one Promise and one small record per call: instead of
 * a timer per call (a Promise.race, a setTimeout and a clearTimeout each
 * time), one sweeper timer runs while calls are in flight, every
 * `timeoutMs / 4` (at most 100 ms), and fails the calls past their deadline.
 * Calls enter a queue in deadline order (one timeout for all), so a sweep
 * stops at the first call still in time. A stalled call fails between
 * `timeoutMs` and `timeoutMs` plus one tick.
 *
 * The queue is an array whose slot is emptied the moment its call settles,
 * not a Set: measured under load, a Set with a delete per call kept the
 * settled records alive across young-generation GCs (about 0.5 MB promoted
 * to the old generation per scavenge at 10k calls/s, and scavenges four
 * times as long); emptied slots keep nothing.
 */
export function createStoreGuard (client: RedisClient, timeoutMs: number, log: FastifyBaseLogger) {
  const unavailable = (reason: unknown): Error => {
    // Only the message: ioredis attaches the command's arguments to its errors.
    log.error({ reason: reason instanceof Error ? reason.message : String(reason) }, 'fastify-jwt-sessions: auth store unavailable')
    return new StoreUnavailableError()
  }
  const tickMs = Math.max(1, Math.min(100, Math.floor(timeoutMs / 4)))
  /** Calls in flight, oldest first; a settled call's slot holds null. `queue[i]` has `at === base + i`. */
  let queue: Array<PendingCall | null> = []
  let base = 0
  let sweeper: NodeJS.Timeout | undefined

  /** Takes the call out of the queue: true the first time, false once settled (answered, or failed by a sweep). */
  function take (call: PendingCall): boolean {
    const i = call.at - base
    if (queue[i] !== call) return false
    queue[i] = null
    return true
  }

  function sweep (): void {
    const now = performance.now()
    let head = 0
    for (; head < queue.length; head++) {
      const call = queue[head]
      if (call === null) continue
      if (call.deadline > now) break
      queue[head] = null
      call.fail(new Error(`no answer within ${timeoutMs} ms`))
    }
    // Drop the settled front once a tick: what stays starts at the oldest call
    // still in flight, a few milliseconds of calls unless one is stalled.
    queue = queue.slice(head)
    base += head
    if (queue.length === 0) {
      clearInterval(sweeper)
      sweeper = undefined
    }
  }

  /** How long before the guard gives up a call's script stops taking effect (see above). */
  const answerMarginMs = tickMs

  /**
   * `lane`: the script lane, for a call made through `lane.bind` (it goes over
   * the lane while that is ready, else over the client). Such a call needs
   * either connection, not both: after an outage the lane may be back before
   * the client's next reconnection attempt.
   */
  return function guard<T> (run: (writeBy: number) => Promise<T>, lane: { readonly ready: boolean } | null = null): Promise<T> {
    if (client.status !== 'ready' && !(lane !== null && lane.ready)) return Promise.reject(unavailable(`client is ${client.status}`))
    return new Promise<T>((resolve, reject) => {
      const call: PendingCall = {
        deadline: performance.now() + timeoutMs,
        fail: (reason) => reject(unavailable(reason)),
        at: base + queue.length
      }
      queue.push(call)
      // Not unref'd: like the timer per call it replaces, it keeps the process
      // up until every call in flight is settled, and stops with the last one.
      if (sweeper === undefined) sweeper = setInterval(sweep, tickMs)
      // Whichever settles first wins: the answer (still queued) or the sweeper (took it).
      let answer: Promise<T>
      try {
        answer = run(Date.now() + timeoutMs - answerMarginMs)
      } catch (err) {
        take(call)
        return call.fail(err)
      }
      answer.then(
        (value) => { if (take(call)) resolve(value) },
        (err) => { if (take(call)) call.fail(err) }
      )
    })
  }
}

export type StoreGuard = ReturnType<typeof createStoreGuard>
