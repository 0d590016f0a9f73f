import { DpopInvalidError } from '../../../lib/errors.js'
import type { AuthError } from '../../../lib/errors.js'

/** RFC 9449 section 7.1: the Authorization scheme of key-bound tokens (also their `token_type`). */
export const DPOP_SCHEME = 'DPoP'

/**
 * RFC 9449 section 7.1: DPoP errors are challenged with the DPoP scheme, and
 * `algs` lists the algorithms proofs may use (left out when none are
 * configured: DPoP off, a session bound while it was on).
 */
export function dpopChallenge (err: AuthError, algs: readonly string[]): AuthError {
  err.headers = {
    'www-authenticate': algs.length === 0
      ? 'DPoP error="invalid_dpop_proof"'
      : `DPoP error="invalid_dpop_proof", algs="${algs.join(' ')}"`
  }
  return err
}

/** AUTH_DPOP_INVALID with its challenge: the one answer to every refused proof. */
export function dpopInvalid (algs: readonly string[]): AuthError {
  return dpopChallenge(new DpopInvalidError(), algs)
}
