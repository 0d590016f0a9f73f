/**
 * Claims of an access token the issuer sets on every token itself
 * (TokenService.signAccessToken and its signer): an app claim may not shadow
 * them, and a token re-signed from another (refresh-rotation's renewal) takes
 * everything but these from the one it renews.
 */
export const ISSUER_CLAIMS: ReadonlySet<string> = new Set(['sub', 'sid', 'jti', 'iat', 'exp', 'nbf', 'cv', 'iss', 'aud'])

/**
 * Claim names app claims may not use: the issuer's, and `cnf` (RFC 7800),
 * the confirmation claim extensions bind tokens to a key with
 * (IssueContext.tokenClaims), which an app claim must never forge.
 */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([...ISSUER_CLAIMS, 'cnf'])

/** The app claims of a login or refresh, checked: an object (or nothing), no reserved name. */
export function checkAppClaims (claims: Record<string, unknown> | undefined | null): Record<string, unknown> {
  if (claims === undefined || claims === null) return {}
  if (typeof claims !== 'object' || Array.isArray(claims)) throw new TypeError('claims must be an object')
  for (const name of Object.keys(claims)) {
    if (RESERVED_CLAIMS.has(name)) throw new TypeError(`claim '${name}' is reserved by fastify-jwt-sessions`)
  }
  return claims
}

/** The claims of `payload` that are not the issuer's: what a token re-signed from it carries over. */
export function carriedClaims (payload: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const carried: Record<string, unknown> = {}
  for (const name of Object.keys(payload)) if (!ISSUER_CLAIMS.has(name)) carried[name] = payload[name]
  return carried
}
