import type { FastifyRequest } from 'fastify'
import { parsePolicy } from '../../lib/sso-policy.js'
import type { SsoPolicyInput } from '../../lib/sso-policy.js'
import type { DeviceInfo, ReplacedSession, SsoPolicy } from '../../lib/types.js'

export { parsePolicy }
export type { SsoPolicyInput }

export interface LoginPolicyContext {
  userId: string
  device: DeviceInfo
  claims: Record<string, unknown>
  request: FastifyRequest | undefined
}

export interface SessionReplacedEvent {
  userId: string
  /** The session that replaced the others. */
  newSessionId: string
  newDevice: DeviceInfo
  replaced: ReplacedSession
  request: FastifyRequest | undefined
}

export interface SsoSessionOptions {
  /** The app-wide policy. Default 'single': a new login replaces every other session. */
  policy?: SsoPolicyInput
  /**
   * Per-login override: return a policy for this login (for example 'off' to
   * exempt admins), or undefined to keep the app-wide one.
   */
  policyFor?: (ctx: LoginPolicyContext) => SsoPolicyInput | undefined | Promise<SsoPolicyInput | undefined>
  /** Called once per replaced session, after the login succeeded: audit, push a notice to the old device. */
  onReplaced?: (event: SessionReplacedEvent) => void | Promise<void>
}

export interface ResolvedSsoOptions {
  policy: SsoPolicy
  policyFor: SsoSessionOptions['policyFor']
  onReplaced: SsoSessionOptions['onReplaced']
}

export function checkOptions (opts: SsoSessionOptions): Readonly<ResolvedSsoOptions> {
  for (const name of ['policyFor', 'onReplaced'] as const) {
    if (opts[name] !== undefined && typeof opts[name] !== 'function') throw new TypeError(`sso-session: ${name} must be a function`)
  }
  return Object.freeze({
    policy: Object.freeze(parsePolicy(opts.policy ?? 'single')),
    policyFor: opts.policyFor,
    onReplaced: opts.onReplaced
  })
}
