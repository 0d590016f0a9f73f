import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AuthError } from '../../lib/errors.js'
import {
  SessionExpiredError, SessionReplacedError, SessionRevokedError,
  TokenExpiredError, TokenInvalidError, TokenMissingError, TokenStaleError, bearerChallenge
} from '../../lib/errors.js'
import { Status } from '../../lib/lua/status.js'
import { onceSpentError } from '../../lib/once-keys.js'
import { setAuth } from '../../lib/request-auth.js'
import type { AccessTokenPayload, AuthContext, VerifyPlan } from '../../lib/types.js'
import { VERIFY } from './scripts.js'
import type { TokenService } from './service.js'
import type { Verifier } from './verify-cache.js'

export interface PresentedToken {
  /** Lower case: 'bearer', or one of the extra schemes. */
  scheme: string
  token: string
}

/**
 * RFC 6750 section 2.1: `Bearer <token>`, scheme case-insensitive; also
 * `<scheme> <token>` for the extra schemes (lower case) extensions accept
 * (SessionExtension.schemes). Any other scheme counts as no token. Tokens in
 * the query string or body are never read.
 */
export function readAuthorization (header: string | undefined, extraSchemes: ReadonlySet<string>): PresentedToken | undefined {
  if (header === undefined) return undefined
  const space = header.indexOf(' ')
  if (space < 0) return undefined
  const scheme = header.slice(0, space).toLowerCase()
  if (scheme !== 'bearer' && !extraSchemes.has(scheme)) return undefined
  const token = header.slice(space + 1).trim()
  return token === '' ? undefined : { scheme, token }
}

function isPayload (p: Record<string, unknown>): p is AccessTokenPayload {
  return typeof p.sub === 'string' && p.sub !== '' &&
    typeof p.sid === 'string' && p.sid !== '' &&
    typeof p.jti === 'string' && p.jti !== '' &&
    Number.isInteger(p.cv) && typeof p.exp === 'number'
}

/** Whether an extension accepts this request's token only once (a loop: no closure per request). */
function isOneTime (checks: ReadonlyArray<(request: FastifyRequest) => boolean>, request: FastifyRequest): boolean {
  for (const oneTime of checks) if (oneTime(request)) return true
  return false
}

const SESSION_ERRORS: Record<number, () => AuthError> = {
  [Status.revoked]: () => new SessionRevokedError(),
  [Status.replaced]: () => new SessionReplacedError(),
  [Status.expired]: () => new SessionExpiredError(),
  [Status.stale]: () => new TokenStaleError()
}

/**
 * The verifier's cache hands the same payload to every request that presents
 * the same token: freeze it (arrays and objects inside too) so that no route
 * can change what the next request sees. Done once per token.
 */
function deepFreeze (value: object): void {
  Object.freeze(value)
  for (const inner of Object.values(value)) {
    if (typeof inner === 'object' && inner !== null && !Object.isFrozen(inner)) deepFreeze(inner)
  }
}

/**
 * Builds the authenticate hook: verify the JWT locally, let extensions add
 * their one-time keys, then ask Redis once whether the session is live and
 * the claims current. Usable as `onRequest` or `preHandler`.
 */
export function createAuthenticate (service: TokenService, verifyCached: Verifier, verifyUncached: Verifier) {
  const { keys, options, guard, verifyExtensions, oneTimeChecks, verifyScript, scriptLane, schemes } = service
  const cache = service.localCache
  // The call without one-time keys (most requests), built once by name: the
  // arguments that never change are stringified here, the others filled in
  // per call at their place (VERIFY.at), so the hot path allocates no list
  // of its own. Filled and sent synchronously: the call copies it.
  const at = VERIFY.at
  const fixedArgs = VERIFY.args({ sessions: '' }, {
    sid: '', now: 0, claimsVersion: 0, touch: String(options.touchMs), idle: String(options.idleMs), retention: String(options.retentionMs), writeBy: undefined
  })
  const fixedCall = (): Promise<unknown> => verifyScript(...fixedArgs as [number, ...Array<string | number>])

  return async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const presented = readAuthorization(request.headers.authorization, schemes)
    if (presented === undefined) throw bearerChallenge(new TokenMissingError(), false)
    const token = presented.token
    let payload: Record<string, unknown>
    const verify = isOneTime(oneTimeChecks, request) ? verifyUncached : verifyCached
    try {
      payload = verify(token) as Record<string, unknown>
    } catch (err) {
      const expired = (err as { code?: string }).code === 'FAST_JWT_EXPIRED'
      throw bearerChallenge(expired ? new TokenExpiredError() : new TokenInvalidError(), true)
    }
    if (!isPayload(payload)) throw bearerChallenge(new TokenInvalidError(), true)
    if (!Object.isFrozen(payload)) deepFreeze(payload)

    const tag = keys.userTag(payload.sub)
    const sessionsKey = tag + 's' // keys.sessions(sub), from the tag already built
    let plan: VerifyPlan | undefined
    if (verifyExtensions.length !== 0) {
      plan = { scheme: presented.scheme, token, onceKeys: [], onceTtls: [], onceErrors: [] }
      for (const onVerify of verifyExtensions) {
        // Awaited only when an extension has async work (a proof's signature), so the
        // plain Bearer path adds no microtask.
        const pending = onVerify(request, reply, payload, plan)
        if (pending !== undefined) await pending
      }
    }

    const now = options.clock()
    const once = plan?.onceKeys.length ? plan : undefined
    // The local cache (opt-in) answers only requests that spend no one-time key.
    const cached = cache !== null && once === undefined
    let epoch = 0
    if (cached) {
      const liveUntil = cache.hit(tag, payload.sid, payload.cv, now)
      if (liveUntil !== 0) {
        setAuth(request, authContext(payload, token, liveUntil))
        return
      }
      epoch = cache.epoch
    }
    // Without one-time keys (most routes), the call of fixed arity built above.
    // Only a call that spends keys carries `writeBy`: one answered 503 must leave them unspent.
    let status: number
    if (once === undefined) {
      fixedArgs[at.sessions] = sessionsKey
      fixedArgs[at.sid] = payload.sid
      fixedArgs[at.now] = now
      fixedArgs[at.claimsVersion] = payload.cv
      status = await guard(fixedCall, scriptLane) as number
    } else {
      status = await guard((writeBy) => verifyScript(...VERIFY.args({ sessions: sessionsKey }, {
        sid: payload.sid, now, claimsVersion: payload.cv, touch: options.touchMs, idle: options.idleMs, retention: options.retentionMs, writeBy
      }, once) as [number, ...Array<string | number>]), scriptLane) as number
    }
    if (status > Status.ok) {
      const err = ((once === undefined ? undefined : onceSpentError(status, once)) ?? SESSION_ERRORS[status]()) as AuthError
      throw err.headers ? err : bearerChallenge(err, true)
    }
    // VERIFY answers minus the time up to which the session is known live.
    const liveUntil = -status
    if (cached) cache.remember(tag, payload.sid, payload.cv, Math.min(now + options.touchMs, liveUntil), liveUntil, epoch)
    setAuth(request, authContext(payload, token, liveUntil))
  }
}

function authContext (payload: AccessTokenPayload, token: string, sessionLiveUntil: number): AuthContext {
  return {
    userId: payload.sub,
    sessionId: payload.sid,
    jti: payload.jti,
    claims: payload,
    expiresAt: payload.exp * 1000,
    sessionLiveUntil,
    token
  }
}
