import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AuthError } from '../../lib/errors.js'
import {
  SessionExpiredError, SessionReplacedError, SessionRevokedError,
  TokenExpiredError, TokenInvalidError, TokenMissingError, TokenStaleError, bearerChallenge
} from '../../lib/errors.js'
import type { AccessTokenPayload, AuthContext, VerifyPlan } from '../../lib/types.js'
import { VerifyStatus } from './scripts.js'
import type { TokenService } from './service.js'

export type Verifier = (token: string) => unknown

export interface PresentedToken {
  scheme: 'bearer' | 'dpop'
  token: string
}

/**
 * RFC 6750 section 2.1: `Bearer <token>`, scheme case-insensitive; RFC 9449
 * section 7.1: `DPoP <token>` when DPoP is on. Any other scheme counts as no
 * token. Tokens in the query string or body are never read.
 */
export function readAuthorization (header: string | undefined, acceptDpop: boolean): PresentedToken | undefined {
  if (header === undefined) return undefined
  const space = header.indexOf(' ')
  if (space < 0) return undefined
  const scheme = header.slice(0, space).toLowerCase()
  if (scheme !== 'bearer' && !(acceptDpop && scheme === 'dpop')) return undefined
  const token = header.slice(space + 1).trim()
  return token === '' ? undefined : { scheme, token }
}

function isPayload (p: Record<string, unknown>): p is AccessTokenPayload {
  return typeof p.sub === 'string' && p.sub !== '' &&
    typeof p.sid === 'string' && p.sid !== '' &&
    typeof p.jti === 'string' && p.jti !== '' &&
    Number.isInteger(p.cv) && typeof p.exp === 'number'
}

const SESSION_ERRORS: Record<number, () => AuthError> = {
  [VerifyStatus.revoked]: () => new SessionRevokedError(),
  [VerifyStatus.replaced]: () => new SessionReplacedError(),
  [VerifyStatus.expired]: () => new SessionExpiredError(),
  [VerifyStatus.stale]: () => new TokenStaleError()
}

/**
 * Builds the authenticate hook: verify the JWT locally, let extensions add
 * their one-time keys, then ask Redis once whether the session is live and
 * the claims current. Usable as `onRequest` or `preHandler`.
 */
export function createAuthenticate (service: TokenService, verify: Verifier) {
  const { keys, options, guard, verifyExtensions } = service

  return async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const presented = readAuthorization(request.headers.authorization, service.acceptDpopScheme)
    if (presented === undefined) throw bearerChallenge(new TokenMissingError(), false)
    const token = presented.token
    let payload: Record<string, unknown>
    try {
      payload = verify(token) as Record<string, unknown>
    } catch (err) {
      const expired = (err as { code?: string }).code === 'FAST_JWT_EXPIRED'
      throw bearerChallenge(expired ? new TokenExpiredError() : new TokenInvalidError(), true)
    }
    if (!isPayload(payload)) throw bearerChallenge(new TokenInvalidError(), true)

    const plan: VerifyPlan = { scheme: presented.scheme, token, onceKeys: [], onceTtls: [], onceErrors: [] }
    for (const onVerify of verifyExtensions) {
      // Awaited only when an extension has async work (a DPoP proof), so the
      // plain Bearer path adds no microtask.
      const pending = onVerify(request, reply, payload, plan)
      if (pending !== undefined) await pending
    }

    const now = options.clock()
    const status = await guard(() => service.verifyScript(
      1 + plan.onceKeys.length, keys.session(payload.sub, payload.sid), ...plan.onceKeys,
      now, payload.cv, options.touchMs, options.idleMs, options.retentionMs, ...plan.onceTtls
    )) as number
    if (status !== VerifyStatus.ok) {
      const make = status >= VerifyStatus.onceSpentBase
        ? plan.onceErrors[status - VerifyStatus.onceSpentBase]
        : SESSION_ERRORS[status]
      const err = make() as AuthError
      throw err.headers ? err : bearerChallenge(err, true)
    }
    const auth: AuthContext = {
      userId: payload.sub,
      sessionId: payload.sid,
      jti: payload.jti,
      claims: payload,
      expiresAt: payload.exp * 1000,
      token
    }
    request.auth = auth
  }
}
