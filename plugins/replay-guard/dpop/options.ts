import { toPositiveMs } from '../../../lib/durations.js'
import type { Duration } from '../../../lib/durations.js'

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

export interface ResolvedDpopOptions {
  required: boolean
  algorithms: readonly string[]
  iatWindowMs: number
  origin: string | null
}

const DEFAULT_ALGORITHMS: DpopAlgorithm[] = ['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256']
const MAX_IAT_WINDOW_MS = 600_000

/** Checks the `dpop` option of replay-guard (register time); null when DPoP is off. */
export function resolveDpop (dpop: boolean | DpopOptions | undefined): ResolvedDpopOptions | null {
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

