import type { FastifyRequest } from 'fastify'
import type { RateLimiter, ResolvedRateLimit } from '../../lib/rate-limit.js'
import { rateLimitedError } from '../../lib/rate-limit.js'

/** Counts one refresh; throws 429 AUTH_RATE_LIMITED (Retry-After) past a limit. */
export type RefreshLimit = (request: FastifyRequest, sessionId: string | null) => Promise<void>

export interface ResolvedRefreshRate extends ResolvedRateLimit {
  /** Refreshes per client address per window. */
  addressMax: number
}

const unlimited: RefreshLimit = async () => {}

/**
 * The refresh limits: every request counts per client address; per session
 * only with a genuine token (a forged one naming someone's session must not
 * spend their quota). Grace answers count like any other refresh.
 */
export function refreshLimit (limiter: RateLimiter, rate: ResolvedRefreshRate | null): RefreshLimit {
  if (rate === null) return unlimited
  const perAddress: ResolvedRateLimit = { max: rate.addressMax, windowMs: rate.windowMs }
  const check = async (key: string, limit: ResolvedRateLimit): Promise<void> => {
    const count = await limiter(key, limit)
    if (count.exceeded) throw rateLimitedError(count)
  }
  return async (request, sessionId) => {
    const byAddress = check(`refresh:a:${request.ip}`, perAddress)
    if (sessionId === null) return await byAddress
    // Both counters in flight at once: one round trip of latency.
    await Promise.all([byAddress, check(`refresh:s:${sessionId}`, rate)])
  }
}
