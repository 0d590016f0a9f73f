/**
 * Shared by the benchmark's server processes. Each variant runs in its own
 * child process of `bench/run.ts`, listens on a free port, makes its own pool
 * of credentials, and hands `{ port, pool }` back over the IPC channel. Tokens
 * go over IPC only: never to a log.
 */
import type { FastifyInstance } from 'fastify'
import { PerformanceObserver } from 'node:perf_hooks'

export const BENCH_SECRET = process.env.BENCH_JWT_SECRET ?? 'bench-secret-bench-secret-bench-secret-0123'
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? ''
export const POOL_SIZE = Number(process.env.BENCH_POOL ?? 1000)
/** Access token lifetime (s) in every variant: the pool's tokens must outlive the whole run (a slow machine's run took over 5 minutes). */
export const TOKEN_TTL_S = 3600

/** The body every read variant answers, so every variant serialises the same thing. */
export function meBody (userId: string, sessionId: string, roles: unknown) {
  return { user_id: userId, session_id: sessionId, roles }
}

export interface ServerReady {
  port: number
  /** Per-request credentials: access tokens, refresh tokens, or login bodies. */
  pool: string[]
  /** Set when the variant cannot run on this branch (the runner prints it and skips). */
  skip?: string
}

export async function serve (app: FastifyInstance | null, makePool: () => Promise<string[]>, skip?: string): Promise<void> {
  let port = 0
  let pool: string[] = []
  if (app && !skip) {
    await app.listen({ port: 0, host: '127.0.0.1' })
    port = (app.server.address() as { port: number }).port
    pool = await makePool()
  }
  const ready: ServerReady = { port, pool, skip }
  reportGcPauses()
  process.send!(ready)
  const stop = () => { (app ? app.close() : Promise.resolve()).then(() => process.exit(0), () => process.exit(1)) }
  process.on('disconnect', stop)
  process.on('SIGTERM', stop)
}

/**
 * Main-thread time spent in garbage collection so far (ms), answered over IPC
 * when the runner sends 'gc': request state that outlives its request shows
 * up here (young-generation collections that copy and promote it) long before
 * it shows in req/s.
 */
function reportGcPauses (): void {
  let pausedMs = 0
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) pausedMs += entry.duration
  }).observe({ entryTypes: ['gc'] })
  process.on('message', (message) => { if (message === 'gc') process.send!({ gcMs: pausedMs }) })
}

/** Runs `fn` over `count` items with at most `width` in flight. */
export async function inBatches<T> (count: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(width, count) }, async () => {
    while (next < count) { const i = next++; out[i] = await fn(i) }
  }))
  return out
}
