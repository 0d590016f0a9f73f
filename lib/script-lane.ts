import { createHash } from 'node:crypto'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import type { RedisClient, ScriptDefinition } from './redis.js'
import { defineScript } from './redis.js'

/**
 * The hot path's own connection to Redis: one script call per request, with
 * nothing else on it.
 *
 * Why not the shared ioredis client: measured with callgrind (32 calls in
 * flight, the VERIFY script), one call through auto-pipelined ioredis, as the
 * example server runs it, cost the app 71-76k instructions; through this lane,
 * 1.3k (`npm run bench:client-cost`, 2026-11-30). On a two-core machine, where
 * the app, Redis and the load share the cores, that difference was most of
 * what separated a session check from a stateless JWT verify.
 *
 * It is deliberately small: it sends EVALSHA (EVAL once after NOSCRIPT) and
 * reads the integer or error the scripts answer, nothing else. Calls of one
 * event-loop turn go out in one write, like ioredis's auto-pipelining, and
 * none while a write is unanswered (see enqueue).
 * It opens with the shared client's own connection settings (host, port or
 * path, username, password, db, key prefix); clients it cannot copy safely
 * (Cluster, Sentinel, TLS) simply get no lane. While the lane is not ready
 * (connecting, or Redis gone), calls go through the shared client, which then
 * fails closed on its own: the lane only ever makes a call cheaper.
 */

export interface LaneSettings {
  host: string
  port: number
  /** A Unix socket, used instead of host and port when set. */
  path?: string
  username?: string
  password?: string
  db: number
  keyPrefix: string
  connectTimeoutMs: number
}

/** The settings of a lane beside `client`, or null when the client's kind of connection is not one a lane copies. */
export function laneSettingsOf (client: RedisClient): LaneSettings | null {
  if (client.isCluster) return null
  const o = (client as Redis).options
  if (o.sentinels || o.tls) return null
  // ioredis fills in host, port, db, keyPrefix and connectTimeout (defaults included).
  return {
    host: o.host!,
    port: o.port!,
    path: o.path,
    // As ioredis does: an empty or missing password means no AUTH.
    username: o.username || undefined,
    password: o.password || undefined,
    db: o.db!,
    keyPrefix: o.keyPrefix!,
    connectTimeoutMs: o.connectTimeout!
  }
}

type Settle = (value: unknown) => void

/** A script call whose arguments are strings or numbers (what the lane sends; no binary arguments). */
export type LaneScriptCall = (numKeys: number, ...keysAndArgs: Array<string | number>) => Promise<unknown>

/**
 * Reads RESP2 replies of three kinds: simple strings (`+`), errors (`-`) and
 * integers (`:`), the only ones the lane's scripts and handshake answer. A
 * reply split across chunks is kept until its end arrives. Any other kind is
 * a protocol error: the lane cannot know where it ends, so it drops the
 * connection.
 */
export class ReplyReader {
  private rest: Buffer | null = null

  constructor (
    private readonly onReply: (value: string | number) => void,
    private readonly onError: (message: string) => void,
    private readonly onProtocolError: (kind: string) => void
  ) {}

  feed (chunk: Buffer): void {
    const buf = this.rest === null ? chunk : Buffer.concat([this.rest, chunk])
    this.rest = null
    let at = 0
    while (at < buf.length) {
      const cr = buf.indexOf(13, at)
      // The line's \r\n is not all here yet: wait for the next chunk.
      if (cr < 0 || cr + 1 >= buf.length) break
      const kind = buf[at]
      const line = buf.toString('latin1', at + 1, cr)
      at = cr + 2
      if (kind === 58) this.onReply(Number(line))
      else if (kind === 45) this.onError(line)
      else if (kind === 43) this.onReply(line)
      else return this.onProtocolError(String.fromCharCode(kind))
    }
    if (at < buf.length) this.rest = buf.subarray(at)
  }
}

/** One RESP bulk string: every part of every command the lane writes. */
function bulk (value: string): string {
  return `$${Buffer.byteLength(value)}\r\n${value}\r\n`
}

/** The command and SHA of an EVALSHA frame, which EVAL replaces with its own name and the script. */
const EVALSHA_HEAD = /\$7\r\nEVALSHA\r\n\$40\r\n[0-9a-f]{40}\r\n/

/**
 * Calls held back at most. While Redis stalls, one write is unanswered and
 * every later call waits in the lane; past this many (about 7 MB of frames),
 * calls fail at once (503) instead of piling up. The store guard has failed
 * the waiting ones already; they are still written once Redis answers again,
 * and a call that spends one-time keys then changes nothing (its `writeBy`
 * has passed, see createStoreGuard).
 */
export const MAX_HELD_CALLS = 50_000

/**
 * Longest wait between two reconnection attempts: once Redis is back, the
 * checks it carries are back within half a second (issue #13), whatever the
 * shared client's back-off. An attempt at a Redis that is down costs a
 * refused connection.
 */
const MAX_BACKOFF_MS = 500
/** Slots per waiting call: resolve, reject, its frame, and for a script call the script (an EVAL after NOSCRIPT). */
const SLOTS = 4

export class ScriptLane {
  /** Ready: connected, handshake answered; calls may use the lane. */
  ready = false
  private socket: Socket | null = null
  private closed = false
  private attempts = 0
  private retry: NodeJS.Timeout | undefined
  /** Calls waiting for their reply, in the order they were queued, SLOTS entries each, from `head`. */
  private waiting: unknown[] = []
  private head = 0
  /** Frames queued, not yet written, and how many. */
  private out = ''
  private queued = 0
  /** Calls written whose replies have not come back yet. */
  private unanswered = 0
  private flushScheduled = false
  /** Settles once the first connection attempt has ended, ready or not (the plugin's onReady waits on it). */
  readonly firstAttempt: Promise<void>
  private endFirstAttempt!: () => void
  private readonly flush = (): void => {
    this.flushScheduled = false
    this.unanswered += this.queued
    this.queued = 0
    const out = this.out
    this.out = ''
    // The connection may have been lost, or closed, since this flush was
    // scheduled: the calls it held fail (or have failed) with it.
    const socket = this.socket
    if (socket !== null && !socket.destroyed) socket.write(out)
  }

  constructor (private readonly settings: LaneSettings, private readonly log: FastifyBaseLogger) {
    this.firstAttempt = new Promise((resolve) => { this.endFirstAttempt = resolve })
    this.open()
  }

  /**
   * A call of one script, through the lane while it is ready, else through
   * the shared client (`defineCommand`). Keys get the shared client's key
   * prefix either way.
   */
  bind (client: RedisClient, script: ScriptDefinition): LaneScriptCall {
    const shared = defineScript(client, script)
    const sha = createHash('sha1').update(script.lua).digest('hex')
    return (numKeys, ...keysAndArgs) => this.ready
      ? this.evalsha(sha, script.lua, numKeys, keysAndArgs)
      : shared(numKeys, ...keysAndArgs)
  }

  /** EVALSHA; EVAL instead, once, if Redis no longer has the script (restarted, or SCRIPT FLUSH). */
  evalsha (sha: string, lua: string, numKeys: number, keysAndArgs: Array<string | number>): Promise<unknown> {
    const prefix = this.settings.keyPrefix
    let frame = `*${keysAndArgs.length + 3}\r\n${bulk('EVALSHA')}${bulk(sha)}${bulk(String(numKeys))}`
    for (let i = 0; i < keysAndArgs.length; i++) frame += bulk(i < numKeys ? prefix + keysAndArgs[i] : String(keysAndArgs[i]))
    return new Promise((resolve, reject) => {
      if (this.socket === null) return reject(new Error('script lane is not connected'))
      if (this.queued >= MAX_HELD_CALLS) return reject(new Error(`script lane holds ${MAX_HELD_CALLS} calls already: Redis does not answer`))
      this.enqueue(frame, resolve, reject, lua)
    })
  }

  /** Stops for good: calls waiting fail, no reconnection. */
  close (): void {
    this.closed = true
    clearTimeout(this.retry)
    this.socket?.destroy()
  }

  /** A command other than a script call (the handshake's). */
  private send (parts: string[]): Promise<unknown> {
    let frame = `*${parts.length}\r\n`
    for (const part of parts) frame += bulk(part)
    return new Promise((resolve, reject) => { this.enqueue(frame, resolve, reject, null) })
  }

  private enqueue (frame: string, resolve: Settle, reject: Settle, lua: string | null): void {
    this.out += frame
    this.queued++
    this.waiting.push(resolve, reject, frame, lua)
    // One write per event-loop turn, and none while the previous write is
    // still unanswered: calls made meanwhile go out together when it is. Under
    // load that makes batches larger (fewer system calls, here and in Redis);
    // when idle, a call is written in the same turn.
    if (!this.flushScheduled && this.unanswered === 0) {
      this.flushScheduled = true
      setImmediate(this.flush)
    }
  }

  private settle (ok: boolean, value: string | number): void {
    const w = this.waiting
    const at = this.head
    const resolve = w[at] as Settle
    const reject = w[at + 1] as Settle
    const frame = w[at + 2] as string
    const lua = w[at + 3] as string | null
    // Emptied now rather than when the prefix is dropped: settled calls kept
    // until then outlived young-generation GCs and were promoted.
    w[at] = w[at + 1] = w[at + 2] = w[at + 3] = null
    this.head += SLOTS
    this.unanswered--
    // Drop the settled prefix now and then, not on every reply.
    if (this.head >= 1024 && this.head * 2 >= w.length) {
      this.waiting = w.slice(this.head)
      this.head = 0
    }
    if (ok) return resolve(value)
    if (lua !== null && (value as string).startsWith('NOSCRIPT')) {
      return this.enqueue(frame.replace(EVALSHA_HEAD, () => bulk('EVAL') + bulk(lua)), resolve, reject, null)
    }
    reject(new Error(value as string))
  }

  private open (): void {
    const s = this.settings
    const socket = this.socket = s.path ? connect({ path: s.path }) : connect({ host: s.host, port: s.port })
    socket.setNoDelay(true)
    // Until the handshake is answered: a server that accepts and never answers counts as down.
    socket.setTimeout(s.connectTimeoutMs, () => socket.destroy(new Error('no answer to the handshake')))
    const reader = new ReplyReader(
      (value) => this.settle(true, value),
      (message) => this.settle(false, message),
      (kind) => socket.destroy(new Error(`unexpected reply type '${kind}'`))
    )
    socket.on('data', (chunk: Buffer) => {
      reader.feed(chunk)
      if (this.unanswered === 0 && this.queued !== 0 && !this.flushScheduled) this.flush()
    })
    socket.on('error', (err) => {
      this.log.debug({ reason: err.message }, 'fastify-jwt-sessions: script lane error')
    })
    socket.on('close', () => this.lost())
    const handshake: Array<Promise<unknown>> = []
    if (s.password !== undefined) handshake.push(this.send(['AUTH', s.username ?? 'default', s.password]))
    if (s.db !== 0) handshake.push(this.send(['SELECT', String(s.db)]))
    // Names the connection in CLIENT LIST, and proves Redis answers before the lane is used.
    handshake.push(this.send(['CLIENT', 'SETNAME', 'fastify-jwt-sessions:verify']))
    Promise.all(handshake).then(() => {
      socket.setTimeout(0)
      this.attempts = 0
      this.ready = true
      this.endFirstAttempt()
    }, (err: Error) => {
      // A refused AUTH or SELECT is a setting to fix: warned once per outage
      // (the shared client fails the same way), then retried with backoff.
      if (socket.destroyed) return
      if (this.attempts === 0) this.log.warn({ reason: err.message }, 'fastify-jwt-sessions: script lane handshake refused')
      socket.destroy()
    })
  }

  private lost (): void {
    // Calls waiting on this connection fail (503 through the store guard):
    // never sent again, since their script may have run.
    const waiting = this.waiting
    const head = this.head
    this.socket = null
    this.ready = false
    this.waiting = []
    this.head = 0
    this.out = ''
    this.queued = 0
    this.unanswered = 0
    const lost = new Error('script lane connection lost')
    for (let i = head + 1; i < waiting.length; i += SLOTS) (waiting[i] as Settle)(lost)
    this.endFirstAttempt()
    if (this.closed) return
    const delay = Math.min(MAX_BACKOFF_MS, 50 * 2 ** this.attempts++)
    this.retry = setTimeout(() => this.open(), delay)
    this.retry.unref()
  }
}
