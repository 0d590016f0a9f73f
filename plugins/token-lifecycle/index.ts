import { createSigner, createVerifier } from 'fast-jwt'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { DurableWrites } from '../../lib/durable-writes.js'
import { createKeyspace } from '../../lib/keys.js'
import { createStoreGuard, resolveRedis } from '../../lib/redis.js'
import { ScriptLane, laneSettingsOf } from '../../lib/script-lane.js'
import { kAuth, readAuth } from '../../lib/request-auth.js'
import type { AuthContext } from '../../lib/types.js'
import { createAuthenticate } from './authenticate.js'
import { cachedVerifier } from './verify-cache.js'
import { checkNumericDates } from './numeric-dates.js'
import { LocalCache } from './local-cache.js'
import type { TokenLifecycleOptions } from './options.js'
import { checkOptions } from './options.js'
import { TokenService } from './service.js'

export const PLUGIN_NAME = 'fastify-jwt-sessions/token-lifecycle'

/** Claims every access token must carry; anything without them is not ours. */
const REQUIRED_CLAIMS = ['sub', 'sid', 'jti', 'iat', 'exp', 'cv']

/**
 * fast-jwt checks `allowedIss`/`allowedAud` only on tokens that carry the
 * claim: a configured issuer or audience must also be required.
 */
function requiredClaims (jwt: { issuer: string | undefined, audience: string | undefined }): string[] {
  return [...REQUIRED_CLAIMS, ...(jwt.issuer === undefined ? [] : ['iss']), ...(jwt.audience === undefined ? [] : ['aud'])]
}

/** Verified tokens remembered (verify-cache.ts): a hit skips the signature check, never the Redis check. */
const VERIFY_CACHE_SIZE = 10_000

const tokenLifecycle: FastifyPluginAsync<TokenLifecycleOptions> = async (fastify, opts) => {
  const options = checkOptions(opts)
  const redis = resolveRedis(fastify, opts, PLUGIN_NAME)
  const { jwt } = options

  const verifyOptions = {
    algorithms: [jwt.algorithm],
    allowedIss: jwt.issuer,
    allowedAud: jwt.audience,
    requiredClaims: requiredClaims(jwt),
    clockTolerance: jwt.clockToleranceMs
  }
  // fast-jwt directly, not @fastify/jwt: registering that would add
  // fastify.jwt, request.user and its request/reply methods to the host app,
  // beside (or in the way of) the host's own @fastify/jwt.
  // Created at register time, so a key fast-jwt cannot use refuses to start.
  const sign = jwt.signKey === undefined
    ? () => { throw new Error(`${PLUGIN_NAME}: this instance only verifies (no jwt.privateKey); it cannot sign tokens`) }
    : createSigner({ key: jwt.signKey, algorithm: jwt.algorithm, iss: jwt.issuer, aud: jwt.audience })
  // Every path to a payload goes through the NumericDate check, cached or not.
  const verifyOnce = checkNumericDates(createVerifier({ ...verifyOptions, key: jwt.verifyKey, cache: false }))
  // Tokens a route accepts only once (replay-guard) skip the cache: they could
  // only ever miss, and measured, filling the cache with them cost more than
  // the verify itself.
  const verifyToken = cachedVerifier(verifyOnce, VERIFY_CACHE_SIZE, jwt.clockToleranceMs)

  // The hot path's own connection, beside the shared client (lib/script-lane.ts says why).
  const laneSettings = options.verifyConnection === 'dedicated' ? laneSettingsOf(redis) : null
  const lane = laneSettings === null ? null : new ScriptLane(laneSettings, fastify.log)
  if (lane !== null) {
    // Serve the first requests through the lane already (the shared client carries them until it is ready).
    fastify.addHook('onReady', async () => { await lane.firstAttempt })
    fastify.addHook('onClose', async () => { lane.close() })
  }

  // With `durability`, logins and rotations over a connection of their own (lib/durable-writes.ts says why).
  const durableWrites = options.durability === null ? null : new DurableWrites(redis, options.durability, options.storeTimeoutMs, fastify.log)
  if (durableWrites !== null) {
    fastify.addHook('onReady', async () => { await durableWrites.firstAttempt })
    fastify.addHook('onClose', async () => { durableWrites.close() })
  }

  const localCache = options.localCache === null ? null : new LocalCache(redis, options.keyPrefix, options.localCache)
  if (localCache !== null) fastify.addHook('onClose', async () => { localCache.close() })

  const service = new TokenService({
    options,
    keys: createKeyspace(options.keyPrefix),
    redis,
    guard: createStoreGuard(redis, options.storeTimeoutMs, fastify.log),
    sign,
    log: fastify.log,
    lane,
    durableWrites,
    localCache
  })

  fastify.decorate('tokens', service)
  fastify.decorate('authenticate', createAuthenticate(service, verifyToken, verifyOnce))
  // The caller's slot, null on every request until authenticate passes; `request.auth` reads it (lib/request-auth.ts).
  fastify.decorateRequest(kAuth, null)
  fastify.decorateRequest('auth', { getter: readAuth })
}

export default fp(tokenLifecycle, {
  fastify: '5.x',
  name: PLUGIN_NAME
})

export { tokenLifecycle }
export { authRoutes } from './routes.js'
export type { AuthRoutesOptions, VerifiedUser } from './routes.js'
export { LocalCache } from './local-cache.js'
export type { TokenLifecycleOptions, LocalCacheOptions, DurabilityOptions, JwtOptions, JwtAlgorithm, Duration } from './options.js'
export { MAX_TOMBSTONES, TokenService } from './service.js'
export { readAuthorization } from './authenticate.js'
export { authOrNull, NotAuthenticatedError } from '../../lib/request-auth.js'

/** `fastify.authenticate`: an onRequest (or preHandler) hook. */
export type AuthenticateHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

// Inside `declare module 'fastify'`, name only types declared in this file (or
// in the block): declaration emit dropped the import of `FastifyReply`, a name
// fastify itself exports, used only in here, and the type shipped unimported
// (an error under skipLibCheck false, `any` otherwise). test/types.test.ts checks.
declare module 'fastify' {
  interface FastifyInstance {
    /** Session services: open, end, list, invalidate claims (token-lifecycle). */
    tokens: TokenService
    /** The hook that protects a route: `{ onRequest: fastify.authenticate }`. */
    authenticate: AuthenticateHook
  }
  interface FastifyRequest {
    /**
     * The caller, on a request `fastify.authenticate` passed. Read anywhere
     * else it throws AUTH_NOT_AUTHENTICATED (500, naming the route): where a
     * caller is optional, use `authOrNull(request)`.
     */
    readonly auth: AuthContext
  }
}
