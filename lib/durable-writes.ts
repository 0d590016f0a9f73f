import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Cluster } from 'ioredis'
import type { RedisClient, ScriptDefinition, StoreGuard } from './redis.js'
import { createStoreGuard } from './redis.js'

export interface ResolvedDurability {
  /** Replicas that must acknowledge a write (WAIT's numreplicas). */
  replicas: number
  /** How long WAIT waits for them, in ms; never 0, which would make WAIT block forever. */
  timeoutMs: number
}

/** A write script's reply, and whether as many replicas as asked acknowledged the write (always true without durability). */
export interface WriteResult {
  reply: unknown
  replicated: boolean
}

/** A script's key count, keys and arguments. */
export type ScriptArgs = [number, ...Array<string | number | Buffer>]

/**
 * A write script's call, through the store guard: a 503 when Redis is away or
 * slow, as for every call. Its arguments are built from the guard's `writeBy`
 * (see createStoreGuard), which the write scripts take so that a call
 * answered 503 changes nothing when a stalled Redis runs it later.
 */
export type WriteCall = (args: (writeBy: number) => ScriptArgs) => Promise<WriteResult>

/** Errors that say the key's slot is served by another node now: the client's slot map is stale. */
const REDIRECTED = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /

const noop = (): void => {}

/**
 * The `durability` option: logins and refresh rotations followed by
 * `WAIT numreplicas timeout`, so that an answer waits until a replica holds
 * what it promised (replication is asynchronous: a master that dies takes its
 * unsent writes with it).
 *
 * WAIT counts the writes of the connection it is sent on, and blocks that
 * connection until it returns; it cannot run inside a script. So these writes
 * go over a connection of their own (a duplicate of the shared client): on
 * the shared one, every command behind a WAIT (the request checks on a
 * Cluster, rate limits) would wait with it, for the whole timeout while a
 * replica is away. Each write, its WAIT and a ROLE go in one pipeline, which
 * puts them on one connection: on a Cluster, ioredis sends a pipeline to the
 * node of the keys in it, and WAIT and ROLE have none. ioredis never retries
 * such a pipeline elsewhere after a redirection (WAIT is not a read-only
 * command), so a redirected write fails (503) and the slot map is read again
 * for the next one.
 *
 * A write counts as replicated when `replicas` replicas acknowledged it, or
 * every replica connected to the master did (ROLE lists them): a failover
 * promotes the most up-to-date replica, so the write is lost only if one
 * that lacks it is connected. A master with fewer replicas than asked (a
 * replica down, or just promoted and left without one) still answers, after
 * the timeout; a stalled or cut-off replica, still connected, is the case
 * that refuses.
 */
export class DurableWrites {
  readonly client: RedisClient
  readonly guard: StoreGuard
  /** Settles once the connection is first ready, or first failed: the app waits for it at boot, so its first logins need not answer 503. */
  readonly firstAttempt: Promise<void>
  private readonly settings: Readonly<ResolvedDurability>
  private readonly log: FastifyBaseLogger
  /** Whether the last write fell short of `replicas` acknowledgements. */
  private short = false

  constructor (shared: RedisClient, settings: Readonly<ResolvedDurability>, storeTimeoutMs: number, log: FastifyBaseLogger) {
    this.settings = settings
    this.log = log
    const client = this.client = (shared as unknown as { duplicate: () => RedisClient }).duplicate()
    // Reconnects are ioredis's job; while they fail, the guard answers 503.
    client.on('error', noop)
    this.firstAttempt = new Promise((resolve) => {
      for (const event of ['ready', 'error', 'end']) client.once(event, () => resolve())
    })
    // A lazy shared client makes a lazy duplicate, which nothing else would connect.
    if (client.status === 'wait') client.connect().catch(noop)
    this.guard = createStoreGuard(client, storeTimeoutMs, log)
  }

  /** A script's call, EVALSHA (EVAL once after NOSCRIPT), each followed by its WAIT on the same connection. */
  define (script: ScriptDefinition): WriteCall {
    const sha = createHash('sha1').update(script.lua).digest('hex')
    const { replicas, timeoutMs } = this.settings
    const send = async (command: 'evalsha' | 'eval', body: string, keysAndArgs: ScriptArgs): Promise<WriteResult> => {
      const results = await this.client.pipeline()[command](body, ...keysAndArgs).wait(replicas, timeoutMs).role().exec()
      const [[scriptError, reply], [waitError, acknowledged], [roleError, role]] = results!
      const err = scriptError ?? waitError ?? roleError
      if (err !== null) {
        if (REDIRECTED.test(err.message)) (this.client as Cluster).refreshSlotsCache()
        throw err
      }
      // A master's ROLE: ['master', offset, [[host, port, offset], ...]], its connected replicas.
      const connected = ((role as [string, number, unknown[]])[2]).length
      const replicated = (acknowledged as number) >= Math.min(replicas, connected)
      // Once per spell of shortfalls, not once per login.
      const short = (acknowledged as number) < replicas
      if (short && !this.short) {
        this.log.warn({ script: script.name, acknowledged, connected, replicas, timeoutMs }, replicated
          ? 'fastify-jwt-sessions: fewer replicas than asked are connected; logins and rotations are answered after the durability timeout'
          : 'fastify-jwt-sessions: a connected replica did not acknowledge a write in time; logins answer 503')
      } else if (!short && this.short) {
        this.log.info({ replicas }, 'fastify-jwt-sessions: replicas acknowledge writes again')
      }
      this.short = short
      return { reply, replicated }
    }
    const call = async (keysAndArgs: ScriptArgs): Promise<WriteResult> => {
      try {
        return await send('evalsha', sha, keysAndArgs)
      } catch (err) {
        if ((err as Error).message.startsWith('NOSCRIPT')) return await send('eval', script.lua, keysAndArgs)
        throw err
      }
    }
    return (args) => this.guard((writeBy) => call(args(writeBy)))
  }

  /** App close: the duplicate is ours to close. */
  close (): void {
    this.client.disconnect()
  }
}
