/**
 * Reading what the server sends: the token pair answer of a login or a
 * refresh, and the claims of an access token (unverified: the client has no
 * key and only needs `exp` and the claims for display).
 */
import { AuthClientError } from './errors.js'
import type { StoredTokens } from './storage.js'

/** The claims of a JWT, unverified: the client only needs `exp`. */
export function decodeJwtPayload (token: string): Record<string, unknown> | null {
  const part = token.split('.')[1]
  if (part === undefined) return null
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/')
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes))
    return typeof claims === 'object' && claims !== null ? claims as Record<string, unknown> : null
  } catch {
    return null
  }
}

/** A login's or refresh's answer as the pair to store; `receivedAt` on the device clock. */
export async function readTokenPair (response: Response, receivedAt: number): Promise<StoredTokens> {
  const body = await response.json() as Partial<Record<'access_token' | 'refresh_token' | 'session_id' | 'expires_in' | 'refresh_expires_in', unknown>>
  if (typeof body.access_token !== 'string' || typeof body.refresh_token !== 'string' || typeof body.session_id !== 'string' || typeof body.expires_in !== 'number') {
    throw new AuthClientError('The server answered without a token pair', response.status, null)
  }
  const exp = decodeJwtPayload(body.access_token)?.exp
  // Trust `exp` when this device's clock agrees with the server's; when it is
  // off by more than a few seconds, count `expires_in` from receipt instead
  // (one second less: the server's `iat` and `exp` are whole seconds).
  const byReceipt = receivedAt + (body.expires_in - 1) * 1000
  const byClaim = typeof exp === 'number' ? exp * 1000 : Number.NaN
  const expiresAt = Math.abs(byClaim - byReceipt) <= 5000 ? byClaim : byReceipt
  const tokens: StoredTokens = { access_token: body.access_token, refresh_token: body.refresh_token, session_id: body.session_id, expires_at: expiresAt, obtained_at: receivedAt }
  if (typeof body.refresh_expires_in === 'number') tokens.refresh_expires_at = receivedAt + body.refresh_expires_in * 1000
  return tokens
}

/** What the app may know about the current session (no tokens). */
export interface SessionInfo {
  sessionId: string
  userId: string | undefined
  claims: Record<string, unknown>
  /** Access token expiry and planned refresh, epoch milliseconds on this device's clock. */
  expiresAt: number
  refreshAt: number
}

export function describePair (tokens: StoredTokens, refreshAt: number): SessionInfo {
  const claims = decodeJwtPayload(tokens.access_token) ?? {}
  return {
    sessionId: tokens.session_id,
    userId: typeof claims.sub === 'string' ? claims.sub : undefined,
    claims,
    expiresAt: tokens.expires_at,
    refreshAt
  }
}
