import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Clock } from '../../../lib/clock.js'
import type { AuthError } from '../../../lib/errors.js'
import type { Keyspace } from '../../../lib/keys.js'
import { addOnceKey } from '../../../lib/once-keys.js'
import type { AccessTokenPayload, IssueContext, SessionExtension, VerifyPlan } from '../../../lib/types.js'
import { DPOP_SCHEME, dpopInvalid } from './challenge.js'
import type { ResolvedDpopOptions } from './options.js'
import type { VerifiedProof } from './proof.js'
import { ProofError, requestHtu, verifyProof } from './proof.js'

/*
 * DPoP (RFC 9449) as an extension of token-lifecycle, through its generic
 * extension points only:
 *   schemes    `Authorization: DPoP <token>` is read as well as Bearer
 *   onVerify   a protected request's proof is checked; its jti becomes a
 *              one-time key the request's one verify call spends
 *   onIssue    login and refresh: a valid proof binds the tokens to its key
 *              (claim `cnf: { jkt }`, token type DPoP), its jti is spent by
 *              the issuing script, and the session is bound to the key
 *              (binding field 'k'), which the refresh script compares
 *
 * One-time keys (lib/keys.ts `once`), under the user's hash tag:
 *   <prefix>:{<user>}:o:dpop:<jkt>.<proof jti>   a proof spent
 */
const PROOF_SCOPE = 'dpop'
/** The session field (`<sid>:k`) holding the thumbprint of the key the session is bound to. */
const KEY_BINDING = 'k'
/** How the presented scheme reaches onVerify (VerifyPlan.scheme: lower case). */
const PRESENTED_SCHEME = DPOP_SCHEME.toLowerCase()

/** The key a token is bound to (`cnf.jkt`), if any. */
function boundJkt (payload: AccessTokenPayload): string | undefined {
  const cnf = payload.cnf as { jkt?: unknown } | undefined
  return typeof cnf === 'object' && cnf !== null && typeof cnf.jkt === 'string' ? cnf.jkt : undefined
}

export interface DpopExtensionDeps {
  name: string
  keys: Keyspace
  clock: Clock
  /** null: DPoP is off; sessions bound while it was on still refuse a refresh without their key. */
  options: Readonly<ResolvedDpopOptions> | null
}

export function dpopExtension ({ name, keys, clock, options: dpop }: DpopExtensionDeps): SessionExtension {
  const algs = dpop === null ? [] : dpop.algorithms
  const invalid = (): AuthError => dpopInvalid(algs)
  /**
   * Any failure to verify a proof is an invalid proof (fail closed). The reason
   * goes to the log, never the proof itself; the client gets the generic error.
   */
  const proofRefused = (request: FastifyRequest, reason: string): AuthError => {
    request.log.info({ reason }, 'replay-guard: DPoP proof refused')
    return invalid()
  }
  const refuseProof = (request: FastifyRequest, err: unknown): never => {
    throw proofRefused(request, (err as Error).message)
  }
  /** The session binding this issue asks for: the proof's key, or '' (none proved: a bound session refuses). */
  const binding = (jkt: string) => ({ field: KEY_BINDING, value: jkt, error: invalid })

  if (dpop === null) {
    return {
      name,
      onIssue (ctx) {
        if (ctx.kind === 'refresh') ctx.bindings.push(binding(''))
      }
    }
  }

  /** Runs inside `fastify.authenticate`, before its one script call; nothing here talks to Redis. */
  function onVerify (request: FastifyRequest, _reply: FastifyReply, payload: AccessTokenPayload, plan: VerifyPlan): void | Promise<void> {
    const jkt = boundJkt(payload)
    const proof = request.headers.dpop
    const scheme = plan.scheme === PRESENTED_SCHEME
    if (proof === undefined) {
      // A bound token, the DPoP scheme or required mode all need a proof (RFC 9449 section 7).
      if (jkt !== undefined || scheme || dpop!.required) throw invalid()
      return
    }
    // A bound token may not be downgraded to the Bearer scheme (RFC 9449 section 7.2).
    if (jkt !== undefined && !scheme) throw invalid()
    if (jkt === undefined && dpop!.required) throw invalid()
    return checkProof(request, proof, jkt, payload, plan)
  }

  async function checkProof (request: FastifyRequest, proof: unknown, jkt: string | undefined, payload: AccessTokenPayload, plan: VerifyPlan): Promise<void> {
    const opts = dpop!
    const now = clock()
    let verified: VerifiedProof
    try {
      verified = await verifyProof(proof, { htm: request.method, htu: requestHtu(request, opts.origin), accessToken: plan.token }, opts, now)
      if (jkt !== undefined && verified.jkt !== jkt) throw new ProofError('proof key is not the key the token is bound to')
    } catch (err) {
      return refuseProof(request, err)
    }
    addOnceKey(plan, keys.once(payload.sub, PROOF_SCOPE, `${verified.jkt}.${verified.jti}`), verified.iat * 1000 + opts.iatWindowMs - now + 1, invalid)
  }

  /**
   * Login and refresh: a valid proof binds the tokens about to be issued to
   * its key. The proof's jti is spent by the issuing script itself (login's
   * OPEN, refresh's ROTATE), first thing, whatever it then answers.
   */
  async function onIssue (ctx: IssueContext): Promise<void> {
    const opts = dpop!
    const proof = ctx.request?.headers.dpop
    if (proof === undefined) {
      if (opts.required) throw invalid()
      ctx.bindings.push(binding(''))
      return
    }
    const request = ctx.request!
    const now = clock()
    let verified: VerifiedProof
    try {
      verified = await verifyProof(proof, { htm: request.method, htu: requestHtu(request, opts.origin) }, opts, now)
    } catch (err) {
      return refuseProof(request, err)
    }
    addOnceKey(ctx, keys.once(ctx.userId, PROOF_SCOPE, `${verified.jkt}.${verified.jti}`), verified.iat * 1000 + opts.iatWindowMs - now + 1,
      () => proofRefused(request, 'proof jti replayed'))
    ctx.tokenClaims.cnf = { jkt: verified.jkt }
    ctx.tokenType = DPOP_SCHEME
    // The session remembers its key (at login); a refresh with another one is refused.
    ctx.bindings.push(binding(verified.jkt))
  }

  return { name, schemes: [DPOP_SCHEME], onVerify, onIssue }
}
