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
  /** Readable name; the registered command name adds a digest of the source. */
  name: string
  lua: string
}

export type ScriptCall = (numKeys: number, ...keysAndArgs: Array<string | number | Buffer>) => Promise<unknown>

/**
 * Registers a Lua script once per client with `defineCommand` (EVALSHA with an
 * EVAL fallback, cached by ioredis). The command name carries a digest of the
 * source, so two versions of this package sharing one client never call each
 * other's script by mistake, and registering twice is a no-op.
 */
export function defineScript (client: RedisClient, script: ScriptDefinition): ScriptCall {
  const sha = createHash('sha1').update(script.lua).digest('hex').slice(0, 10)
  const command = `fjs_${script.name}_${sha}`
  const target = client as unknown as Record<string, ScriptCall | undefined>
  if (typeof target[command] !== 'function') {
    client.defineCommand(command, { lua: script.lua })
  }
  return target[command]!.bind(client)
}

/**
 * Every store call goes through here: a request must never wait on a slow or
 * absent Redis for long, nor be let through because of one. A client that is
 * not connected fails at once (no offline queue piling up behind it); a call
 * that takes longer than `timeoutMs` fails with 503 AUTH_STORE_UNAVAILABLE.
 */
export function createStoreGuard (client: RedisClient, timeoutMs: number, log: FastifyBaseLogger) {
  const unavailable = (reason: unknown): Promise<never> => {
    // Only the message: ioredis attaches the command's arguments to its errors.
    log.error({ reason: reason instanceof Error ? reason.message : String(reason) }, 'fastify-jwt-sessions: auth store unavailable')
    return Promise.reject(new StoreUnavailableError())
  }
  return function guard<T> (run: () => Promise<T>): Promise<T> {
    if (client.status !== 'ready') return unavailable(`client is ${client.status}`)
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((resolve, reject) => {
      timer = setTimeout(reject, timeoutMs, new Error(`no answer within ${timeoutMs} ms`))
    })
    return Promise.race([run(), timeout]).then(
      (value) => { clearTimeout(timer); return value },
      (err) => { clearTimeout(timer); return unavailable(err) }
    )
  }
}

export type StoreGuard = ReturnType<typeof createStoreGuard>
