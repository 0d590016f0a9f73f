/**
 * Variants of this project, all built with the example server's `buildApp`
 * (the public API only), one per process, chosen by the first argument:
 *   me        GET /api/me: session + SSO + claims check, one script call
 *             (AUTH_LOCAL_CACHE=on: the opt-in local cache, the 'project-cache' variant)
 *   replay    POST /api/transfer: the same plus the one-time replay guard
 *   login     POST /auth/login: SSO applied, a session opened, tokens signed
 * Variants whose plugin is not on this branch yet answer `skip` (no numbers faked).
 * Refresh rotation has its own server (refresh.ts): its users must exist for `loadClaims`.
 */
import { buildApp } from '../../example-server/app.js'
import { configFromEnv } from '../../example-server/config.js'
import { BENCH_SECRET, inBatches, POOL_SIZE, REDIS_URL, serve, TOKEN_TTL_S } from './common.js'

const variant = process.argv[2] ?? 'me'
const config = {
  ...configFromEnv({
    REDIS_URL,
    AUTH_JWT_SECRET: BENCH_SECRET,
    // Own sessions per process: with SSO 'single', two processes sharing a prefix would replace each other's.
    AUTH_KEY_PREFIX: `b${variant}${process.env.AUTH_LOCAL_CACHE === 'on' ? '-cache' : ''}`,
    AUTH_SSO: 'single',
    AUTH_ACCESS_TTL: String(TOKEN_TTL_S),
    // Rate limits are a feature, not what is measured here.
    AUTH_LOGIN_RATE_MAX: '1000000000',
    AUTH_REFRESH_RATE_MAX: '1000000000',
    AUTH_LOCAL_CACHE: process.env.AUTH_LOCAL_CACHE ?? 'off'
  })
}
const app = await buildApp(config, { logger: false })
await app.ready()

const route: Record<string, [string, string]> = {
  me: ['GET', '/api/me'],
  replay: ['POST', '/api/transfer'],
  login: ['POST', '/auth/login']
}
const [method, url] = route[variant] ?? ['', '']
const skip = !method
  ? `unknown variant ${variant}`
  : app.hasRoute({ method: method as 'GET', url }) ? undefined : `${method} ${url} is not on this branch yet (plugin not merged)`

/** Each pool entry is one request's credential: a fresh session for a distinct user. */
async function pool (): Promise<string[]> {
  if (variant === 'login') {
    return ['alice', 'bob', 'root'].map((u) => JSON.stringify({ username: u, password: `${u}-pass`, device_id: 'bench', device_type: 'phone', device_name: 'Bench phone' }))
  }
  const oneTime = Number(process.env.BENCH_POOL_FOR_ONE_TIME ?? POOL_SIZE)
  const sessions = await inBatches(POOL_SIZE, 100, async (i) => {
    const { tokens } = await app.tokens.openSession({
      userId: `bench-${i}`,
      claims: { roles: ['user'] },
      device: { id: 'phone-1', type: 'phone', name: 'Bench phone' }
    })
    return { userId: `bench-${i}`, sessionId: tokens.session_id, access: tokens.access_token }
  })
  if (variant === 'me') return sessions.map((s) => s.access)
  // replay: one fresh access token per request, spread over the pool's sessions.
  const deadline = Date.now() + 86_400_000
  return Array.from({ length: oneTime }, (_, i) => {
    const s = sessions[i % sessions.length]
    return app.tokens.signAccessToken({ userId: s.userId, sessionId: s.sessionId, claimsVersion: 1, claims: { roles: ['user'] }, absoluteDeadline: deadline }).token
  })
}

await serve(app, pool, skip)
