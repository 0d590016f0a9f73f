import type { RedisClient } from '../../lib/redis.js'
import type { ResolvedLocalCacheOptions } from './options.js'

interface Entry {
  /** Claims version the VERIFY script accepted. */
  cv: number
  /** Clock ms (the plugin's `clock`) up to which the answer may be reused. */
  until: number
  /** What VERIFY answered: the session is known live up to here (its absolute or idle deadline). */
  liveUntil: number
}

const noop = (): void => {}

/**
 * The opt-in local cache of session validity (`localCache` option).
 *
 * Entries are per user (keyed by the user's key tag, `<prefix>:{<user>}:`),
 * then per session id, holding the claims version VERIFY accepted and how long
 * the answer may be reused: at most one touch interval, never past the
 * session's absolute or idle deadline (VERIFY returns it).
 *
 * Invalidation: every script that ends a session or bumps its claims version
 * PUBLISHes the user's tag on `<prefix>:inv` (INVALIDATE_LUA; both carry the
 * client's own keyPrefix, if any, in front); a duplicate
 * connection subscribes and drops that user's entries. Each instance also
 * publishes an empty heartbeat there every `heartbeatMs`.
 *
 * Fail closed: the cache answers only while the subscription is up and some
 * message was seen within two heartbeat periods; otherwise it is emptied and
 * every request goes to Redis. It is emptied again whenever the subscriber
 * (re)connects, since invalidations sent while it was away are lost.
 */
export class LocalCache {
  readonly channel: string
  /** The duplicate connection in subscriber mode (exposed for tests and health checks). */
  readonly subscriber: RedisClient
  /**
   * Bumped by every invalidation and every clear: an answer fetched from Redis
   * across a bump may predate the invalidation and is not cached.
   */
  epoch = 0
  private readonly users = new Map<string, Map<string, Entry>>()
  private count = 0
  private subscribed = false
  private lastMessage = -Infinity
  private readonly staleAfterMs: number
  private readonly maxEntries: number
  private readonly heartbeat: NodeJS.Timeout

  constructor (redis: RedisClient, prefix: string, options: Readonly<ResolvedLocalCacheOptions>) {
    // ioredis adds the client's keyPrefix to the keys of a script call, not to
    // the channel of PUBLISH or SUBSCRIBE: the scripts derive channel and tag
    // from the prefixed key, so listen on the prefixed channel (heartbeats go
    // there too, or they would prove a channel no invalidation uses) and strip
    // the prefix from tags, which the hot path builds without it.
    const clientPrefix = redis.options.keyPrefix ?? ''
    this.channel = `${clientPrefix}${prefix}:inv`
    this.maxEntries = options.maxEntries
    this.staleAfterMs = 2 * options.heartbeatMs
    const beat = (): void => {
      if (redis.status === 'ready') redis.publish(this.channel, '').catch(noop)
    }
    const sub = this.subscriber = (redis as unknown as { duplicate: () => RedisClient }).duplicate()
    // Reconnects are ioredis's job; while they fail, usable() keeps the cache off.
    sub.on('error', noop)
    sub.on('ready', () => {
      this.clear()
      sub.subscribe(this.channel).then(() => {
        this.clear()
        this.subscribed = true
        beat()
      }, noop)
    })
    sub.on('close', () => {
      this.subscribed = false
      this.clear()
    })
    sub.on('message', (_channel: string, message: string) => {
      this.lastMessage = performance.now()
      if (message !== '') this.drop(message.slice(clientPrefix.length))
    })
    this.heartbeat = setInterval(beat, options.heartbeatMs)
    this.heartbeat.unref()
  }

  /** Whether cached answers may be used now; empties the cache when not. */
  usable (): boolean {
    if (this.subscribed && performance.now() - this.lastMessage <= this.staleAfterMs) return true
    if (this.count !== 0) this.clear()
    return false
  }

  /** Number of entries held. */
  get size (): number {
    return this.count
  }

  /**
   * When VERIFY accepted this session at this claims version recently enough:
   * the time up to which it answered the session is live; else 0.
   */
  hit (tag: string, sessionId: string, cv: number, now: number): number {
    if (!this.usable()) return 0
    const sessions = this.users.get(tag)
    const entry = sessions?.get(sessionId)
    if (entry === undefined) return 0
    if (entry.cv === cv && now < entry.until) return entry.liveUntil
    if (now >= entry.until) {
      sessions!.delete(sessionId)
      this.count--
    }
    return 0
  }

  /** Remembers an accepted answer, unless an invalidation arrived since `epoch` was read. */
  remember (tag: string, sessionId: string, cv: number, until: number, liveUntil: number, epoch: number): void {
    if (epoch !== this.epoch || !this.usable()) return
    const entry = this.users.get(tag)?.get(sessionId)
    if (entry !== undefined) {
      entry.cv = cv
      entry.until = until
      entry.liveUntil = liveUntil
      return
    }
    while (this.count >= this.maxEntries) this.evictOldestUser()
    let sessions = this.users.get(tag)
    if (sessions === undefined) {
      sessions = new Map()
      this.users.set(tag, sessions)
    }
    sessions.set(sessionId, { cv, until, liveUntil })
    this.count++
  }

  /** Drops every entry of one user (an invalidation message). */
  drop (tag: string): void {
    this.epoch++
    const sessions = this.users.get(tag)
    if (sessions === undefined) return
    this.count -= sessions.size
    this.users.delete(tag)
  }

  clear (): void {
    this.epoch++
    this.users.clear()
    this.count = 0
  }

  /** Stops the heartbeat and closes the subscriber (app close). */
  close (): void {
    clearInterval(this.heartbeat)
    this.subscriber.disconnect()
    this.clear()
  }

  private evictOldestUser (): void {
    const oldest = this.users.keys().next().value as string
    this.count -= this.users.get(oldest)!.size
    this.users.delete(oldest)
  }
}
