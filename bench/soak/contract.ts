/**
 * What the soak sends, and which answers the HTTP contract
 * (shared/spec/http-contract.md) allows for it. Narrower than the contract's
 * list for each route: only the answers that can happen to these requests.
 * The soak presents only tokens the server issued, seconds old, never
 * changes roles and never presents a rotated refresh token after its grace
 * window, so a missing, invalid, expired or stale token, a DPoP error, a
 * validation error or a reuse verdict would be a bug, not load.
 */
export type Route = 'login' | 'verify' | 'refresh' | 'logout' | 'logout-all'

/** The routes in the order the report prints them. */
export const ROUTES: readonly Route[] = ['login', 'verify', 'refresh', 'logout', 'logout-all']

export const HTTP: Record<Route, { method: 'GET' | 'POST', path: string }> = {
  login: { method: 'POST', path: '/auth/login' },
  verify: { method: 'GET', path: '/api/me' },
  refresh: { method: 'POST', path: '/auth/refresh' },
  logout: { method: 'POST', path: '/auth/logout' },
  'logout-all': { method: 'POST', path: '/auth/logout-all' }
}

/** A request of the soak: the route it calls, and what it is for. */
export type Kind = Route | 'login, wrong password'

export const ROUTE_OF: Record<Kind, Route> = {
  login: 'login',
  'login, wrong password': 'login',
  verify: 'verify',
  refresh: 'refresh',
  logout: 'logout',
  'logout-all': 'logout-all'
}

// Another virtual user of the same user may end this session at any time:
// by logout-all (revoked) or by a login over the SSO limit (replaced).
const SESSION_ENDED = ['401 AUTH_SESSION_REVOKED', '401 AUTH_SESSION_REPLACED']

/** `status` for a success, `status CODE` for an error, `status *` for any code. */
const EXPECTED: Record<Kind, readonly string[]> = {
  login: ['200', '429 *'],
  'login, wrong password': ['401 AUTH_INVALID_CREDENTIALS', '429 *'],
  verify: ['200', ...SESSION_ENDED],
  // A session ended elsewhere may answer AUTH_REFRESH_INVALID instead ("refresh semantics").
  refresh: ['200', ...SESSION_ENDED, '401 AUTH_REFRESH_INVALID', '429 *'],
  logout: ['204', ...SESSION_ENDED],
  'logout-all': ['204', ...SESSION_ENDED]
}

/** An answer as the report names it: `401 AUTH_SESSION_REVOKED`, `200`. */
export function answerName (status: number, code: string): string {
  return code ? `${status} ${code}` : String(status)
}

/** Whether the contract allows this answer to this request; never a 5xx (nor no answer, status 0). */
export function isContractAnswer (kind: Kind, status: number, code: string): boolean {
  if (status === 0 || status >= 500) return false
  const allowed = EXPECTED[kind]
  return allowed.includes(answerName(status, code)) || allowed.includes(`${status} *`)
}
