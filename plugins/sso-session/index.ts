import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { SsoPolicy } from '../../lib/types.js'
import type { SsoSessionOptions, SessionReplacedEvent } from './options.js'
import { checkOptions, parsePolicy } from './options.js'

export const PLUGIN_NAME = 'fastify-jwt-sessions/sso-session'

type ReplacedListener = (event: SessionReplacedEvent) => void | Promise<void>

export interface SsoService {
  /** The app-wide policy in force. */
  readonly policy: SsoPolicy
  /** Adds a listener for replaced sessions (for example to notify the old device). */
  onReplaced (listener: ReplacedListener): void
}

/**
 * Applies a session policy when token-lifecycle opens a session. Eviction
 * happens inside token-lifecycle's open script, so it is atomic with the login
 * (concurrent logins cannot exceed the policy), and a replaced session keeps a
 * tombstone that answers AUTH_SESSION_REPLACED until its tokens could no longer
 * be presented. The per-request check is unchanged: still one script call.
 */
const ssoSession: FastifyPluginAsync<SsoSessionOptions> = async (fastify, opts) => {
  const options = checkOptions(opts)
  const listeners: ReplacedListener[] = options.onReplaced ? [options.onReplaced] : []

  // The policy reaches each login through the issue context: nothing of
  // fastify.tokens is written, so no plugin's behaviour depends on when this
  // one was registered.
  fastify.tokens.extend({
    name: 'sso-session',
    async onIssue (ctx) {
      if (ctx.kind !== 'login') return
      ctx.policy = options.policy
      if (!options.policyFor) return
      const override = await options.policyFor({ userId: ctx.userId, device: ctx.device, claims: ctx.claims, request: ctx.request })
      if (override !== undefined) ctx.policy = parsePolicy(override, 'policyFor() result')
    },
    async afterOpen (ctx, result) {
      for (const replaced of result.replaced) {
        const event: SessionReplacedEvent = {
          userId: ctx.userId,
          newSessionId: result.sessionId,
          newDevice: ctx.device,
          replaced,
          request: ctx.request
        }
        for (const listener of listeners) {
          // An audit sink that fails must not undo a login that already happened.
          try {
            await listener(event)
          } catch (err) {
            fastify.log.error({ err, userId: ctx.userId }, 'sso-session: onReplaced listener failed')
          }
        }
      }
    }
  })

  const sso: SsoService = {
    policy: options.policy,
    onReplaced (listener) {
      if (typeof listener !== 'function') throw new TypeError('sso.onReplaced: listener must be a function')
      listeners.push(listener)
    }
  }
  fastify.decorate('sso', Object.freeze(sso))
}

export default fp(ssoSession, {
  fastify: '5.x',
  name: PLUGIN_NAME,
  // token-lifecycle's decorators (fastify.tokens, fastify.authenticate) are
  // this plugin's only way to it: registered in the wrong order, the boot fails.
  dependencies: ['fastify-jwt-sessions/token-lifecycle']
})

export { ssoSession, parsePolicy }
export type { SsoSessionOptions, SsoPolicyInput, SessionReplacedEvent, LoginPolicyContext } from './options.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The SSO policy in force and a way to hear about replaced sessions (sso-session). */
    sso: SsoService
  }
}
