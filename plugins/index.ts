/**
 * fastify-jwt-sessions: Fastify plugins that turn JWTs into sessions a server
 * controls. Each plugin also has its own subpath export
 * (`fastify-jwt-sessions/token-lifecycle`, ...).
 */
export { default as tokenLifecycle, authRoutes, TokenService, readAuthorization, authOrNull, NotAuthenticatedError } from './token-lifecycle/index.js'
export type { TokenLifecycleOptions, AuthRoutesOptions, VerifiedUser, JwtOptions, JwtAlgorithm, Duration, AuthenticateHook } from './token-lifecycle/index.js'
export { default as ssoSession, parsePolicy } from './sso-session/index.js'
export type { SsoSessionOptions, SsoPolicyInput, SessionReplacedEvent, LoginPolicyContext, SsoService } from './sso-session/index.js'
export { default as replayGuard, accessTokenHash, dpopChallenge, DPOP_ALGORITHMS } from './replay-guard/index.js'
export type { ReplayGuardOptions, DpopOptions, DpopAlgorithm, ReplayGuardRouteConfig, ReplayGuardHookOptions } from './replay-guard/index.js'
export { default as refreshRotation, RefreshTokenCodec } from './refresh-rotation/index.js'
export type { RefreshRotationOptions, RefreshRotationService, ReuseEvent, RateLimitSetting, RefreshToken } from './refresh-rotation/index.js'
export * from '../lib/errors.js'
export type * from '../lib/types.js'
export { createKeyspace } from '../lib/keys.js'
export { acceptEmptyJsonBody } from '../lib/json-body.js'
