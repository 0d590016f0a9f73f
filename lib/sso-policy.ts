import type { SsoPolicy } from './types.js'

/** `'single'`, `'device-type'`, `'off'`, `'max:N'` or `{ mode: 'max', max: N }`. */
export type SsoPolicyInput = SsoPolicy | 'single' | 'device-type' | 'off' | `max:${number}`

const MAX_SESSIONS_LIMIT = 1000

/**
 * The one rule of a valid SSO policy, checked wherever a policy comes in
 * (sso-session's options and policyFor() result, openSession's `policy`), so
 * that the open script never sees one it cannot apply. `owner` and `name`
 * say where in the message.
 */
export function parsePolicy (input: SsoPolicyInput, name = 'policy', owner = 'sso-session'): SsoPolicy {
  if (typeof input === 'object' && input !== null) {
    if (input.mode === 'max') return checkedMax(input.max, name, owner)
    if (input.mode === 'single' || input.mode === 'device-type' || input.mode === 'off') return { mode: input.mode }
  } else if (typeof input === 'string') {
    if (input === 'single' || input === 'device-type' || input === 'off') return { mode: input }
    const match = /^max:(\d+)$/.exec(input)
    if (match) return checkedMax(Number(match[1]), name, owner)
  }
  throw new TypeError(`${owner}: ${name} must be 'single', 'device-type', 'off' or 'max:N' (got ${JSON.stringify(input)})`)
}

function checkedMax (max: number, name: string, owner: string): SsoPolicy {
  if (!Number.isInteger(max) || max < 1 || max > MAX_SESSIONS_LIMIT) {
    throw new TypeError(`${owner}: ${name} max must be an integer from 1 to ${MAX_SESSIONS_LIMIT}`)
  }
  return { mode: 'max', max }
}
