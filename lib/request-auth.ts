import createError from '@fastify/error'
import type { FastifyRequest } from 'fastify'
import type { AuthContext } from './types.js'

/**
 * `request.auth`, one home: where `fastify.authenticate` keeps the caller's
 * context, the getter that hands it to routes, and `authOrNull` for code that
 * also runs on routes authenticate does not protect.
 *
 * The context lives in a symbol slot declared on every request
 * (`decorateRequest(kAuth, null)`), so request objects keep one shape; the
 * public `request.auth` is a getter over it, typed `AuthContext` (no `!`
 * behind authenticate), that throws rather than answer null where no caller
 * was authenticated.
 */
export const kAuth = Symbol('fastify-jwt-sessions.auth')

interface AuthSlot { [kAuth]?: AuthContext | null }

/**
 * Reading `request.auth` on a request `fastify.authenticate` did not pass is a
 * bug in the route, not something a client did: a 500 that names the route.
 * (Not one of the AUTH_* answers clients switch on: the stack is kept.)
 */
export const NotAuthenticatedError = createError<'AUTH_NOT_AUTHENTICATED', 500, [route: string]>(
  'AUTH_NOT_AUTHENTICATED',
  'request.auth read on %s, which fastify.authenticate did not pass: add { onRequest: fastify.authenticate } to the route, or use authOrNull(request) where a caller is optional',
  500
)

/** The caller, when `fastify.authenticate` passed on this request; null otherwise (optional-auth routes, hooks on every route). */
export function authOrNull (request: FastifyRequest): AuthContext | null {
  return (request as AuthSlot)[kAuth] ?? null
}

/** Called by the authenticate hook only, once the session checked out. */
export function setAuth (request: FastifyRequest, auth: AuthContext): void {
  (request as AuthSlot)[kAuth] = auth
}

/** The `request.auth` getter. */
export function readAuth (this: FastifyRequest): AuthContext {
  const auth = (this as AuthSlot)[kAuth]
  if (auth == null) throw new NotAuthenticatedError(`${this.method} ${this.routeOptions.url ?? this.url}`)
  return auth
}
