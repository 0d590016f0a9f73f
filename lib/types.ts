import type { FastifyReply, FastifyRequest } from 'fastify'

/**
 * Your app's own claims, with their exact types (README "Typing your claims").
 * Declare them on `fastify-jwt-sessions/types`, the one module that declares
 * this interface, whichever entry points the app imports:
 *
 *   declare module 'fastify-jwt-sessions/types' {
 *     interface SessionClaims { roles: string[], tenant?: string }
 *   }
 *
 * `request.auth.claims.roles` is then `string[]`, and every login
 * (`openSession`, `verifyCredentials`) and refresh (`loadClaims`) must hand
 * in `roles`. Declare a claim optional when some tokens may lack it (tokens
 * issued before it existed). Undeclared claims still pass through, typed `unknown`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface SessionClaims {}

/** The app claims a login or a refresh hands in: the declared SessionClaims, and any other claims. */
export type AppClaims = SessionClaims & Record<string, unknown>

/**
 * The `claims` member of a login's input: optional while SessionClaims
 * declares no required claim, required once it does (a token must not
 * lack a claim its type promises).
 */
export type WithAppClaims = {} extends SessionClaims
  ? { /** App claims for the access token (for example `{ roles: ['user'] }`). */ claims?: AppClaims }
  : { /** App claims for the access token (for example `{ roles: ['user'] }`). */ claims: AppClaims }

/** The claims of an access token as verified. */
export interface AccessTokenPayload extends Record<string, unknown> {
  sub: string
  sid: string
  jti: string
  iat: number
  exp: number
  /** Claims version: compared with the session's on every request. */
  cv: number
}

/** What an authenticated request knows about its caller (`request.auth`). */
export interface AuthContext {
  userId: string
  sessionId: string
  jti: string
  /** Every claim of the access token: the core's, and the app's as SessionClaims declares them (others `unknown`). */
  claims: AccessTokenPayload & SessionClaims
  /** When the access token expires (ms since epoch). */
  expiresAt: number
  /**
   * Up to when the session is known live, as of this request (ms since epoch):
   * its absolute deadline, or its idle deadline when that comes first. Using
   * the session slides the idle deadline; nothing moves the absolute one.
   */
  sessionLiveUntil: number
  /** The raw access token, for plugins that bind proofs to it (DPoP's `ath`); never log it. */
  token: string
}

export interface DeviceInfo {
  id?: string
  type?: string
  name?: string
}

export interface SessionInfo {
  sessionId: string
  deviceId: string | null
  deviceType: string
  deviceName: string | null
  createdAt: Date
  lastSeenAt: Date
}

export interface ReplacedSession {
  sessionId: string
  deviceId: string | null
  deviceType: string
  deviceName: string | null
}

/** The SSO policy applied when a session opens (sso-session sets it). */
export type SsoPolicy =
  | { mode: 'off' }
  | { mode: 'single' }
  | { mode: 'device-type' }
  | { mode: 'max', max: number }

export interface OpenSessionInput extends WithAppClaims {
  userId: string
  device?: DeviceInfo
  /** The login request, when there is one: handed to extensions (rate keys, proofs of possession, audit). */
  request?: FastifyRequest
  /** Overrides the SSO policy for this login only. */
  policy?: SsoPolicy
  /**
   * When `claims` were read (ms, the plugin's clock); default: now. A role
   * change (`invalidateClaims`) after it makes the first access token stale,
   * so a login racing a role change never hands out the old claims as current.
   */
  claimsLoadedAt?: number
}

/**
 * What a login or a refresh answers (the contract's token pair, plus what
 * extensions add); built in one place, lib/token-pair.ts.
 */
export interface TokenPair extends Record<string, unknown> {
  access_token: string
  /** 'Bearer', or the scheme an extension bound the tokens to (IssueContext.tokenType). */
  token_type: string
  expires_in: number
  /** With refresh-rotation: the session's refresh token, and how long it lasts unused (s). */
  refresh_token?: string
  refresh_expires_in?: number
  session_id: string
}

export interface OpenSessionResult {
  sessionId: string
  tokens: TokenPair
  replaced: ReplacedSession[]
}

/**
 * Handed to extensions whenever tokens are issued: at login (`kind: 'login'`,
 * before the session is written) and at refresh (`kind: 'refresh'`, before the
 * rotation script runs). Extensions add to it; the issuer reads it back.
 * Made by lib/issue-context.ts (`tokens.newIssueContext`).
 */
export interface IssueContext extends OnceKeys {
  readonly kind: 'login' | 'refresh'
  /** The HTTP request that asked for tokens, when there is one. */
  readonly request: FastifyRequest | undefined
  readonly userId: string
  readonly sessionId: string
  readonly now: number
  readonly absoluteDeadline: number
  /** Login only: the device signing in, normalised (type defaults to 'unknown'). */
  readonly device: DeviceInfo
  /** Login only: the app claims the first access token carries. */
  readonly claims: Record<string, unknown>
  /** Login only: the SSO policy to apply (default 'off'; sso-session sets it; OpenSessionInput.policy overrides it). */
  policy: SsoPolicy
  /**
   * Login only: extra fields of the session, stored as `<sid>:<name>` in the
   * user's sessions hash and deleted with the session (see session-record.ts).
   * Short names, no ':'; the core uses 'd'. Keep values short (under about 40
   * bytes) so the hash keeps Redis's compact encoding.
   */
  readonly fields: Record<string, string | number | Buffer>
  /**
   * What binds the session to something the client proves at every issue (a
   * key, a device): at login, each binding with a value is stored as the
   * session field `<sid>:<field>`; at refresh, the rotation script refuses,
   * changing nothing, when the session holds that field with another value
   * (a value of '' means "the request proved none"), and the refresh answers
   * `error()`. An extension that binds adds its binding at every issue.
   */
  readonly bindings: SessionBinding[]
  /** Extra claims for the access token (for example a key confirmation claim, RFC 7800). */
  readonly tokenClaims: Record<string, unknown>
  /** Extra members of the answer (for example the refresh token). */
  readonly response: Record<string, unknown>
  /** The answer's `token_type`: 'Bearer' unless an extension binds the tokens to a scheme of its own. */
  tokenType: string
  // OnceKeys: spent first by the issuing script (login's OPEN, refresh's ROTATE), whatever it answers
  // (unless it reached Redis after the store guard gave up: then nothing is spent).
}

/** One session binding (IssueContext.bindings). */
export interface SessionBinding {
  /** The session field (`<sid>:<field>`): short, no ':'. */
  readonly field: string
  /** What this request proved; '' when it proved nothing (a bound session then refuses the refresh). */
  readonly value: string
  /** The refusal when the session is bound to another value. */
  readonly error: () => Error
}

/**
 * One-time keys a script spends along with its own work (SET NX semantics, all
 * or none), each with its TTL (ms) and the error to answer when it was already
 * spent. Keys of the request's user only (`keys.once(userId, ...)`): one slot.
 */
export interface OnceKeys {
  readonly onceKeys: string[]
  readonly onceTtls: number[]
  readonly onceErrors: Array<() => Error>
}

/** Collected by the authenticate hook; turned into one script call. */
export interface VerifyPlan extends OnceKeys {
  /** The Authorization scheme the token came with, lower case: 'bearer', or one an extension accepts (SessionExtension.schemes). */
  readonly scheme: string
  /** The raw access token (a proof of possession may hash it). Never log it. */
  readonly token: string
}

export interface SessionExtension {
  name: string
  /**
   * Authorization schemes besides Bearer whose tokens `authenticate` reads
   * (case-insensitive); VerifyPlan.scheme tells onVerify which one came.
   */
  schemes?: readonly string[]
  /** Runs before tokens are issued (login and refresh): may add fields, bindings, one-time keys, claims, answer members, set the token type or the policy. */
  onIssue?: (ctx: IssueContext) => void | Promise<void>
  /** Runs after a session opened (login). */
  afterOpen?: (ctx: IssueContext, result: OpenSessionResult) => void | Promise<void>
  /**
   * Runs on every authenticated request after the JWT verified, before the one
   * store call: may add one-time keys to the plan, or throw to refuse. It may
   * return a promise (a proof's signature may verify asynchronously) but never
   * calls the store itself; return nothing when there is nothing to wait for.
   */
  onVerify?: (request: FastifyRequest, reply: FastifyReply, payload: AccessTokenPayload, plan: VerifyPlan) => void | Promise<void>
  /**
   * Whether this request's access token can be accepted only once (replay-guard's
   * guarded routes): such tokens skip the JWT verifier's cache, where they
   * could only ever miss. Runs before the JWT is verified.
   */
  oneTime?: (request: FastifyRequest) => boolean
}
