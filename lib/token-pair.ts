import type { IssueContext, TokenPair } from './types.js'

/**
 * The answer of a login and of a refresh, built here only: the access token,
 * its type (the issue context's, which an extension may set), its lifetime,
 * what extensions added (the refresh token ...), the session id last.
 */
export function tokenPair (access: { readonly token: string, readonly expiresIn: number }, ctx: IssueContext): TokenPair {
  return {
    access_token: access.token,
    token_type: ctx.tokenType,
    expires_in: access.expiresIn,
    ...ctx.response,
    session_id: ctx.sessionId
  }
}
