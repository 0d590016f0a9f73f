import createError from '@fastify/error'

/**
 * Every error this package answers with. Codes and statuses are the public
 * contract (see README "Error codes"): clients switch on `code`, so a code
 * never changes meaning. Messages stay generic on purpose; details go to logs.
 *
 * Stack traces are off: these errors are expected outcomes on the hot path,
 * and capturing a stack for every rejected token is measurable work.
 */
const make = <C extends string, S extends number>(code: C, message: string, status: S) =>
  createError(code, message, status, Error, false)

export const TokenMissingError = make('AUTH_TOKEN_MISSING', 'Authorization bearer token required', 401)
export const TokenInvalidError = make('AUTH_TOKEN_INVALID', 'Access token is invalid', 401)
export const TokenExpiredError = make('AUTH_TOKEN_EXPIRED', 'Access token has expired', 401)
export const TokenStaleError = make('AUTH_TOKEN_STALE', 'Access token claims are out of date; refresh the token', 401)
export const TokenReplayedError = make('AUTH_TOKEN_REPLAYED', 'Access token was already used for this operation', 401)
export const DpopInvalidError = make('AUTH_DPOP_INVALID', 'DPoP proof is missing or invalid', 401)
export const SessionRevokedError = make('AUTH_SESSION_REVOKED', 'Session has ended', 401)
export const SessionReplacedError = make('AUTH_SESSION_REPLACED', 'Session was replaced by a newer sign-in', 401)
export const SessionExpiredError = make('AUTH_SESSION_EXPIRED', 'Session reached its maximum lifetime; sign in again', 401)
export const RefreshInvalidError = make('AUTH_REFRESH_INVALID', 'Refresh token is invalid', 401)
export const RefreshReusedError = make('AUTH_REFRESH_REUSED', 'Refresh token was already used; the session has ended', 401)
export const InvalidCredentialsError = make('AUTH_INVALID_CREDENTIALS', 'Invalid credentials', 401)
export const WrongPasswordError = make('AUTH_INVALID_CREDENTIALS', 'Invalid credentials', 403)
export const ForbiddenError = make('AUTH_FORBIDDEN', 'Insufficient permissions', 403)
export const SessionNotFoundError = make('AUTH_SESSION_NOT_FOUND', 'Session not found', 404)
export const UserNotFoundError = make('AUTH_USER_NOT_FOUND', 'User not found', 404)
export const StoreUnavailableError = make('AUTH_STORE_UNAVAILABLE', 'Authentication store is unavailable', 503)
export const RateLimitedError = make('AUTH_RATE_LIMITED', 'Too many requests; retry later', 429)

export type AuthErrorCode =
  | 'AUTH_TOKEN_MISSING'
  | 'AUTH_TOKEN_INVALID'
  | 'AUTH_TOKEN_EXPIRED'
  | 'AUTH_TOKEN_STALE'
  | 'AUTH_TOKEN_REPLAYED'
  | 'AUTH_DPOP_INVALID'
  | 'AUTH_SESSION_REVOKED'
  | 'AUTH_SESSION_REPLACED'
  | 'AUTH_SESSION_EXPIRED'
  | 'AUTH_REFRESH_INVALID'
  | 'AUTH_REFRESH_REUSED'
  | 'AUTH_INVALID_CREDENTIALS'
  | 'AUTH_FORBIDDEN'
  | 'AUTH_SESSION_NOT_FOUND'
  | 'AUTH_USER_NOT_FOUND'
  | 'AUTH_STORE_UNAVAILABLE'
  | 'AUTH_RATE_LIMITED'

export interface AuthError extends Error {
  code: AuthErrorCode
  statusCode: number
  headers?: Record<string, string>
}

/**
 * RFC 6750 section 3: every 401 from a Bearer-protected resource names the
 * scheme; `error="invalid_token"` only when a token was actually presented.
 */
export function bearerChallenge (err: AuthError, tokenPresented: boolean): AuthError {
  err.headers = {
    'www-authenticate': tokenPresented
      ? `Bearer error="invalid_token", error_description="${err.code}"`
      : 'Bearer'
  }
  return err
}
