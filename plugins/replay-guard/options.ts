import type { DpopOptions, ResolvedDpopOptions } from './dpop/options.js'
import { resolveDpop } from './dpop/options.js'

export { DPOP_ALGORITHMS } from './dpop/options.js'
export type { DpopAlgorithm, DpopOptions, ResolvedDpopOptions } from './dpop/options.js'

export interface ReplayGuardOptions {
  /** DPoP (RFC 9449) proofs of possession. Off unless given (`true` = defaults). */
  dpop?: boolean | DpopOptions
}

export interface ResolvedReplayGuardOptions {
  dpop: Readonly<ResolvedDpopOptions> | null
}

/** Per-route config: `config: { replayGuard: true }` or `{ replayGuard: { scope: 'payments' } }`. */
export type ReplayGuardRouteConfig = boolean | { scope?: string }

const MAX_SCOPE_LENGTH = 200

export function checkOptions (opts: ReplayGuardOptions): Readonly<ResolvedReplayGuardOptions> {
  const dpop = resolveDpop(opts.dpop)
  return Object.freeze({ dpop: dpop && Object.freeze(dpop) })
}

/** Checks a route's `config.replayGuard` when the route is added (register time). */
export function checkRouteConfig (value: unknown, where: string): void {
  if (typeof value === 'boolean') return
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const scope = (value as { scope?: unknown }).scope
    if (scope === undefined) return
    checkScope(scope, where)
    return
  }
  throw new TypeError(`replay-guard: config.replayGuard of ${where} must be true, false or { scope }`)
}

export function checkScope (scope: unknown, where: string): asserts scope is string {
  if (typeof scope !== 'string' || scope === '' || scope.length > MAX_SCOPE_LENGTH) {
    throw new TypeError(`replay-guard: the scope of ${where} must be a non-empty string of at most ${MAX_SCOPE_LENGTH} characters`)
  }
}
