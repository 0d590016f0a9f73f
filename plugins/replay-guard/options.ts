import { toPositiveMs } from '../../lib/durations.js'

export type Duration = number | string

/** Asymmetric JWS algorithms a DPoP proof may use (RFC 9449 section 4.2: never MAC-based, never `none`). */
export const DPOP_ALGORITHMS = [
  'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'EdDSA', 'Ed25519'
] as const
export type DpopAlgorithm = typeof DPOP_ALGORITHMS[number]

export interface DpopOptions {
  /**
   * Every authenticated request must present a key-bound token with its proof,
   * and tokens are only issued (login, refresh) to a request carrying a proof.
   * Default false: proofs are checked when presented, and bound tokens always need one.
   */
  required?: boolean
  /** Algorithms accepted in proofs. Default ['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256']. */
  algorithms?: DpopAlgorithm[]
  /** How far a proof's `iat` may be from now, either way. Default 60 s. */
  iatWindow?: Duration
  /**
   * The public origin (`https://api.example.com`) that clients put in `htu`.
   * Default: built per request from `request.protocol` and `request.host`, which
   * honour X-Forwarded-Proto / X-Forwarded-Host only when Fastify's `trustProxy` is set.
   */
  origin?: string
}

export interface ReplayGuardOptions {
  /** DPoP (RFC 9449) proofs of possession. Off unless given (`true` = defaults). */
  dpop?: boolean | DpopOptions
}

export interface ResolvedDpopOptions {
  required: boolean
  algorithms: readonly string[]
  iatWindowMs: number
  origin: string | null
}

export interface ResolvedReplayGuardOptions {
  dpop: Readonly<ResolvedDpopOptions> | null
}

/** Per-route config: `config: { replayGuard: true }` or `{ replayGuard: { scope: 'payments' } }`. */
export type ReplayGuardRouteConfig = boolean | { scope?: string }

const DEFAULT_ALGORITHMS: DpopAlgorithm[] = ['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256']
const MAX_IAT_WINDOW_MS = 600_000
const MAX_SCOPE_LENGTH = 200

function resolveDpop (dpop: boolean | DpopOptions | undefined): ResolvedDpopOptions | null {
  if (dpop === undefined || dpop === false) return null
  const o: DpopOptions = dpop === true ? {} : dpop
  if (typeof o !== 'object' || o === null) throw new TypeError('replay-guard: dpop must be a boolean or an object')
  if (o.required !== undefined && typeof o.required !== 'boolean') throw new TypeError('replay-guard: dpop.required must be a boolean')
  const algorithms = o.algorithms ?? DEFAULT_ALGORITHMS
  if (!Array.isArray(algorithms) || algorithms.length === 0 ||
    !algorithms.every((alg) => (DPOP_ALGORITHMS as readonly string[]).includes(alg))) {
    throw new TypeError(`replay-guard: dpop.algorithms must be a non-empty list of ${DPOP_ALGORITHMS.join(', ')}`)
  }
  const iatWindowMs = toPositiveMs(o.iatWindow ?? 60, 'dpop.iatWindow')
  if (iatWindowMs > MAX_IAT_WINDOW_MS) throw new TypeError('replay-guard: dpop.iatWindow must be at most 10 minutes')
  let origin: string | null = null
  if (o.origin !== undefined) {
    const url = typeof o.origin === 'string' && URL.canParse(o.origin) ? new URL(o.origin) : null
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.pathname !== '/' || url.search || url.hash) {
      throw new TypeError('replay-guard: dpop.origin must be an http(s) origin such as https://api.example.com')
    }
    origin = url.origin
  }
  return { required: o.required ?? false, algorithms: Object.freeze([...algorithms]), iatWindowMs, origin }
}

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
