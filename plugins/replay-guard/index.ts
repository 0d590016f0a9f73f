import type { FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestAsyncHookHandler, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { DpopInvalidError, TokenReplayedError, bearerChallenge, dpopChallenge } from '../../lib/errors.js'
import type { AuthError } from '../../lib/errors.js'
import { authOrNull } from '../../lib/request-auth.js'
import type { AccessTokenPayload, IssueContext, OnceKeys, VerifyPlan } from '../../lib/types.js'
import type { VerifiedProof } from './dpop.js'
import { ProofError, requestHtu, verifyProof } from './dpop.js'
import type { ReplayGuardOptions, ReplayGuardRouteConfig, ResolvedDpopOptions } from './options.js'
import { checkOptions, checkRouteConfig, checkScope } from './options.js'

export const PLUGIN_NAME = 'fastify-jwt-sessions/replay-guard'

/*
 * One-time keys (lib/keys.ts `once`), all under the user's hash tag:
 *   <prefix>:{<user>}:o:rg <scope>:<token jti>   an access token spent at a guarded scope
 *   <prefix>:{<user>}:o:dpop:<jkt>.<proof jti>   a DPoP proof spent
 * The two scope spaces never meet: guard scopes always start with 'rg '.
 */
const GUARD_SCOPE = 'rg '
const PROOF_SCOPE = 'dpop'

/** The scope a `fastify.replayGuard()` hook asks the authenticate step to spend. */
const kScope = Symbol('fastify-jwt-sessions.replayGuardScope')

export interface ReplayGuardHookOptions {
  /** Routes sharing a scope share one use of a token. Default: the route's method and URL pattern. */
  scope?: string
}

function boundJkt (payload: AccessTokenPayload): string | undefined {
  const cnf = payload.cnf as { jkt?: unknown } | undefined
  return typeof cnf === 'object' && cnf !== null && typeof cnf.jkt === 'string' ? cnf.jkt : undefined
}

const replayGuard: FastifyPluginAsync<ReplayGuardOptions> = async (fastify, opts) => {
  const options = checkOptions(opts)
  const tokens = fastify.tokens
  const { keys } = tokens
  const clock = tokens.options.clock
  const toleranceMs = tokens.options.jwt.clockToleranceMs
  const dpop = options.dpop
  const algs = dpop ? dpop.algorithms : []

  const replayed = () => bearerChallenge(new TokenReplayedError(), true)
  const dpopInvalid = (): AuthError => dpopChallenge(new DpopInvalidError(), algs)
  /**
   * Any failure to verify a proof is an invalid proof (fail closed). The reason
   * goes to the log, never the proof itself; the client gets the generic error.
   */
  const proofRefused = (request: FastifyRequest, reason: string): AuthError => {
    request.log.info({ reason }, 'replay-guard: DPoP proof refused')
    return dpopInvalid()
  }
  const refuseProof = (request: FastifyRequest, err: unknown): never => {
    throw proofRefused(request, (err as Error).message)
  }

  fastify.decorateRequest(kScope, null)

  /** The guarded scope of this request, or null: the hook factory's, else the route's config. */
  function guardScope (request: FastifyRequest): string | null {
    const forced = (request as unknown as Record<symbol, string | null>)[kScope]
    if (forced !== null) return forced
    const config = request.routeOptions.config.replayGuard
    if (!config) return null
    return config === true || config.scope === undefined
      ? `${request.method} ${request.routeOptions.url}`
      : config.scope
  }

  /**
   * `ttlMs` comes from NumericDates, which may be fractional (RFC 7519): Redis
   * takes only whole milliseconds for PX, so round up (never keep a key for
   * less time than asked).
   */
  function spend (plan: OnceKeys, key: string, ttlMs: number, error: () => Error): void {
    plan.onceKeys.push(key)
    plan.onceTtls.push(Math.max(1, Math.ceil(ttlMs)))
    plan.onceErrors.push(error)
  }

  /**
   * Runs inside `fastify.authenticate`, before its one script call: adds the
   * token's jti (guarded routes) and the proof's jti (DPoP) to the keys that
   * call spends. Nothing here talks to Redis.
   */
  function onVerify (request: FastifyRequest, reply: FastifyReply, payload: AccessTokenPayload, plan: VerifyPlan): void | Promise<void> {
    const scope = guardScope(request)
    if (dpop === null) return spendToken(plan, payload, scope)
    const jkt = boundJkt(payload)
    const proof = request.headers.dpop
    if (proof === undefined) {
      // A bound token, the DPoP scheme or required mode all need a proof (RFC 9449 section 7).
      if (jkt !== undefined || plan.scheme === 'dpop' || dpop.required) throw dpopInvalid()
      return spendToken(plan, payload, scope)
    }
    // A bound token may not be downgraded to the Bearer scheme (RFC 9449 section 7.2).
    if (jkt !== undefined && plan.scheme !== 'dpop') throw dpopInvalid()
    if (jkt === undefined && dpop.required) throw dpopInvalid()
    return checkProof(dpop, request, proof, jkt, payload, plan, scope)
  }

  /** On a guarded route (scope not null): the token's jti, remembered for as long as the token could still verify anywhere. */
  function spendToken (plan: VerifyPlan, payload: AccessTokenPayload, scope: string | null): void {
    if (scope === null) return
    spend(plan, keys.once(payload.sub, GUARD_SCOPE + scope, payload.jti), payload.exp * 1000 + toleranceMs - clock(), replayed)
  }

  async function checkProof (
    opts: Readonly<ResolvedDpopOptions>, request: FastifyRequest, proof: unknown, jkt: string | undefined,
    payload: AccessTokenPayload, plan: VerifyPlan, scope: string | null
  ): Promise<void> {
    const now = clock()
    let verified: VerifiedProof
    try {
      verified = await verifyProof(proof, { htm: request.method, htu: requestHtu(request, opts.origin), accessToken: plan.token }, opts, now)
      if (jkt !== undefined && verified.jkt !== jkt) throw new ProofError('proof key is not the key the token is bound to')
    } catch (err) {
      return refuseProof(request, err)
    }
    // The proof first: a replayed request reports its replayed proof.
    spend(plan, keys.once(payload.sub, PROOF_SCOPE, `${verified.jkt}.${verified.jti}`), verified.iat * 1000 + opts.iatWindowMs - now + 1, dpopInvalid)
    spendToken(plan, payload, scope)
  }

  /**
   * Login and refresh: a valid proof binds the tokens about to be issued to
   * its key. The proof's jti is spent by the issuing script itself (login's
   * OPEN, refresh's ROTATE), first thing, whatever it then answers.
   */
  async function onIssue (ctx: IssueContext): Promise<void> {
    if (dpop === null) return
    const proof = ctx.request?.headers.dpop
    if (proof === undefined) {
      if (dpop.required) throw dpopInvalid()
      return
    }
    const request = ctx.request!
    const now = clock()
    let verified: VerifiedProof
    try {
      verified = await verifyProof(proof, { htm: request.method, htu: requestHtu(request, dpop.origin) }, dpop, now)
    } catch (err) {
      return refuseProof(request, err)
    }
    spend(ctx, keys.once(ctx.userId, PROOF_SCOPE, `${verified.jkt}.${verified.jti}`), verified.iat * 1000 + dpop.iatWindowMs - now + 1,
      () => proofRefused(request, 'proof jti replayed'))
    ctx.tokenClaims.cnf = { jkt: verified.jkt }
    ctx.proofJkt = verified.jkt
    // The session remembers its key: refresh refuses a proof made with another one.
    if (ctx.kind === 'login') ctx.fields.k = verified.jkt
  }

  tokens.extend({ name: PLUGIN_NAME, onVerify, onIssue, oneTime: (request) => guardScope(request) !== null })
  if (dpop) {
    tokens.acceptDpopScheme = true
    tokens.dpopAlgorithms = dpop.algorithms
  }

  /**
   * A route with `config.replayGuard` is only guarded when `fastify.authenticate`
   * runs on it: refuse to serve it otherwise rather than let a token through twice.
   */
  const assertAuthenticated: preHandlerAsyncHookHandler = async function (request) {
    if (authOrNull(request) === null) {
      throw new Error(`replay-guard: ${request.method} ${request.routeOptions.url} has config.replayGuard but no fastify.authenticate hook`)
    }
  }

  fastify.addHook('onRoute', (route) => {
    const config = route.config?.replayGuard
    if (config === undefined || config === false) return
    checkRouteConfig(config, `${String(route.method)} ${route.url}`)
    const preHandler = route.preHandler
    route.preHandler = preHandler === undefined ? [assertAuthenticated] : [...[preHandler].flat(), assertAuthenticated]
  })

  const authenticate = fastify.authenticate
  fastify.decorate('replayGuard', function (hookOptions: ReplayGuardHookOptions = {}): onRequestAsyncHookHandler {
    const fixed = hookOptions.scope
    if (fixed !== undefined) checkScope(fixed, 'fastify.replayGuard()')
    return async function replayGuardHook (request, reply) {
      (request as unknown as Record<symbol, string | null>)[kScope] = fixed ?? `${request.method} ${request.routeOptions.url}`
      await authenticate(request, reply)
    }
  })
}

export default fp(replayGuard, {
  fastify: '5.x',
  name: PLUGIN_NAME,
  dependencies: ['fastify-jwt-sessions/token-lifecycle']
})

export { replayGuard }
export { accessTokenHash } from './dpop.js'
export { DPOP_ALGORITHMS } from './options.js'
export type { ReplayGuardOptions, DpopOptions, DpopAlgorithm, ReplayGuardRouteConfig } from './options.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Spend the access token on first use here (replay-guard): `true` (scope = method + URL) or `{ scope }`. */
    replayGuard?: ReplayGuardRouteConfig
  }
  interface FastifyInstance {
    /**
     * An onRequest hook that authenticates and spends the token at `scope` in
     * the same single store call. Use it instead of `fastify.authenticate`.
     */
    replayGuard: (options?: ReplayGuardHookOptions) => onRequestAsyncHookHandler
  }
}
