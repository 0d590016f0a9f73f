import type { FastifyRequest } from 'fastify'
import type { DeviceInfo, ReplacedSession, SsoPolicy } from '../../lib/types.js'

/** `'single'`, `'device-type'`, `'off'`, `'max:N'` or `{ mode: 'max', max: N }`. */
export type SsoPolicyInput = SsoPolicy | 'single' | 'device-type' | 'off' | `max:${number}`

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

const MAX_SESSIONS_LIMIT = 1000

export function parsePolicy (input: SsoPolicyInput, name = 'policy'): SsoPolicy {
  if (typeof input === 'object' && input !== null) {
    if (input.mode === 'max') return checkedMax(input.max, name)
    if (input.mode === 'single' || input.mode === 'device-type' || input.mode === 'off') return { mode: input.mode }
  } else if (typeof input === 'string') {
    if (input === 'single' || input === 'device-type' || input === 'off') return { mode: input }
    const match = /^max:(\d+)$/.exec(input)
    if (match) return checkedMax(Number(match[1]), name)
  }
  throw new TypeError(`sso-session: ${name} must be 'single', 'device-type', 'off' or 'max:N' (got ${JSON.stringify(input)})`)
}

function checkedMax (max: number, name: string): SsoPolicy {
  if (!Number.isInteger(max) || max < 1 || max > MAX_SESSIONS_LIMIT) {
    throw new TypeError(`sso-session: ${name} max must be an integer from 1 to ${MAX_SESSIONS_LIMIT}`)
  }
  return { mode: 'max', max }
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
