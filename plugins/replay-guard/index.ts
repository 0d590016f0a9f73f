import type { FastifyPluginAsync, onRequestAsyncHookHandler, preHandlerAsyncHookHandler, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { TokenReplayedError, bearerChallenge } from '../../lib/errors.js'
import { addOnceKey } from '../../lib/once-keys.js'
import type { AccessTokenPayload, VerifyPlan } from '../../lib/types.js'
import { dpopExtension } from './dpop/extension.js'
import type { ReplayGuardOptions, ReplayGuardRouteConfig } from './options.js'
import { authOrNull } from '../../lib/request-auth.js'
import { checkOptions, checkRouteConfig, checkScope } from './options.js'

export const PLUGIN_NAME = 'fastify-jwt-sessions/replay-guard'

/*
 * Two extensions of token-lifecycle, each through its generic extension points:
 * the one-time guard here, and DPoP (./dpop/: proofs, the DPoP scheme, its
 * challenge, the key binding of tokens and sessions).
 *
 * One-time keys (lib/keys.ts `once`), all under the user's hash tag:
 *   <prefix>:{<user>}:o:rg <scope>:<token jti>   an access token spent at a guarded scope
 *   <prefix>:{<user>}:o:dpop:<jkt>.<proof jti>   a DPoP proof spent (./dpop/extension.ts)
 * The two scope spaces never meet: guard scopes always start with 'rg '.
 */
const GUARD_SCOPE = 'rg '

/** The scope a `fastify.replayGuard()` hook asks the authenticate step to spend. */
const kScope = Symbol('fastify-jwt-sessions.replayGuardScope')

export interface ReplayGuardHookOptions {
  /** Routes sharing a scope share one use of a token. Default: the route's method and URL pattern. */
  scope?: string
}

/** Whether a route's own hooks (one or a list) include one of `wanted`. */
function hasHook (hooks: RouteOptions['onRequest'] | RouteOptions['preHandler'], wanted: (hook: unknown) => boolean): boolean {
  if (!hooks) return false
  return Array.isArray(hooks) ? hooks.some(wanted) : wanted(hooks)
}

const replayGuard: FastifyPluginAsync<ReplayGuardOptions> = async (fastify, opts) => {
  const options = checkOptions(opts)
  const tokens = fastify.tokens
  const { keys } = tokens
  const clock = tokens.options.clock
  const toleranceMs = tokens.options.jwt.clockToleranceMs

  const replayed = () => bearerChallenge(new TokenReplayedError(), true)

  fastify.decorateRequest(kScope, null)

  /** The guarded scope of this request, or null: the hook factory's, else the route's config. */
  function guardScope (request: Parameters<onRequestAsyncHookHandler>[0]): string | null {
    const forced = (request as unknown as Record<symbol, string | null>)[kScope]
    if (forced !== null) return forced
    const config = request.routeOptions.config.replayGuard
    if (!config) return null
    return config === true || config.scope === undefined
      ? `${request.method} ${request.routeOptions.url}`
      : config.scope
  }

  /**
   * On a guarded route: the token's jti, remembered for as long as the token
   * could still verify anywhere, added to the keys the request's one verify
   * call spends. Runs after DPoP's (registered first): a replayed request
   * reports its replayed proof.
   */
  function onVerify (request: Parameters<onRequestAsyncHookHandler>[0], _reply: unknown, payload: AccessTokenPayload, plan: VerifyPlan): void {
    const scope = guardScope(request)
    if (scope === null) return
    addOnceKey(plan, keys.once(payload.sub, GUARD_SCOPE + scope, payload.jti), payload.exp * 1000 + toleranceMs - clock(), replayed)
  }

  tokens.extend(dpopExtension({ name: `${PLUGIN_NAME}/dpop`, keys, clock, options: options.dpop }))
  tokens.extend({ name: PLUGIN_NAME, onVerify, oneTime: (request) => guardScope(request) !== null })

  const authenticate = fastify.authenticate
  /** The hooks `fastify.replayGuard()` made: each authenticates. */
  const guardHooks = new WeakSet<object>()
  const authenticates = (hook: unknown): boolean => hook === authenticate || guardHooks.has(hook as object)

  /**
   * Fail-closed backstop: a route with `config.replayGuard` is only guarded
   * when `fastify.authenticate` runs on it. The onRoute check below refuses
   * at boot a route whose own hooks lack it; this per-request check stays for
   * hooks changed after that check (another onRoute hook of the app, added
   * later, rewriting the route's hooks), and answers 500 rather than let a
   * token through twice.
   */
  const assertAuthenticated: preHandlerAsyncHookHandler = async function (request) {
    if (authOrNull(request) === null) {
      throw new Error(`replay-guard: ${request.method} ${request.routeOptions.url} has config.replayGuard but no fastify.authenticate hook`)
    }
  }

  fastify.addHook('onRoute', (route) => {
    const config = route.config?.replayGuard
    if (config === undefined || config === false) return
    const where = `${String(route.method)} ${route.url}`
    checkRouteConfig(config, where)
    if (!hasHook(route.onRequest, authenticates) && !hasHook(route.preHandler, authenticates)) {
      throw new Error(`replay-guard: ${where} has config.replayGuard but neither fastify.authenticate nor a fastify.replayGuard() hook in its own onRequest or preHandler`)
    }
    const preHandler = route.preHandler
    route.preHandler = preHandler === undefined ? [assertAuthenticated] : [...[preHandler].flat(), assertAuthenticated]
  })

  fastify.decorate('replayGuard', function (hookOptions: ReplayGuardHookOptions = {}): onRequestAsyncHookHandler {
    const fixed = hookOptions.scope
    if (fixed !== undefined) checkScope(fixed, 'fastify.replayGuard()')
    const hook: onRequestAsyncHookHandler = async function replayGuardHook (request, reply) {
      (request as unknown as Record<symbol, string | null>)[kScope] = fixed ?? `${request.method} ${request.routeOptions.url}`
      await authenticate(request, reply)
    }
    guardHooks.add(hook)
    return hook
  })
}

export default fp(replayGuard, {
  fastify: '5.x',
  name: PLUGIN_NAME,
  // token-lifecycle's decorators (fastify.tokens, fastify.authenticate) are
  // this plugin's only way to it: registered in the wrong order, the boot fails.
  dependencies: ['fastify-jwt-sessions/token-lifecycle']
})

export { replayGuard }
export { accessTokenHash } from './dpop/proof.js'
export { dpopChallenge } from './dpop/challenge.js'
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
