import type { ScriptCall, StoreGuard } from '../../lib/redis.js'

type IncrCallback = (err: Error | null, result: { current: number, ttl: number } | null) => void

/**
 * A store for @fastify/rate-limit on the shared Redis, under the app's key
 * prefix, whose every call goes through the store guard: a dead or slow
 * Redis answers 503 AUTH_STORE_UNAVAILABLE, never a 500 nor a request let
 * through unlimited. `child` is how @fastify/rate-limit scopes a route's
 * counters; routes get their path in the key.
 */
export class GuardedRateStore {
  constructor (
    private readonly incrScript: ScriptCall,
    private readonly guard: StoreGuard,
    readonly prefix: string
  ) {}

  incr (key: string, cb: IncrCallback, timeWindow: number): void {
    this.guard(() => this.incrScript(1, this.prefix + key, timeWindow)).then(
      (reply) => { const [current, ttl] = reply as number[]; cb(null, { current, ttl }) },
      (err: Error) => cb(err, null)
    )
  }

  child (routeOptions: { routeInfo: { method?: string, url?: string } }): GuardedRateStore {
    const { method, url } = routeOptions.routeInfo
    return new GuardedRateStore(this.incrScript, this.guard, url ? `${this.prefix}${method}${url}:` : this.prefix)
  }
}
