import { randomBytes } from 'node:crypto'

/** The example server's settings, read from the environment (see the HTTP contract). */
export interface ExampleConfig {
  port: number
  host: string
  redisUrl: string
  clusterNodes: Array<{ host: string, port: number }> | null
  keyPrefix: string
  jwtSecret: string
  /** True when no AUTH_JWT_SECRET was given and one was generated. */
  jwtSecretGenerated: boolean
  accessTtl: number
  refreshTtl: number
  sessionMaxAge: number
  refreshGrace: number
  sso: string
  refreshRateMax: number
  refreshRateWindow: number
  loginRateMax: number
  loginRateWindow: number
  localCache: boolean
}

function int (env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min} (got ${JSON.stringify(raw)})`)
  return value
}

function clusterNodes (raw: string | undefined): ExampleConfig['clusterNodes'] {
  if (!raw) return null
  return raw.split(',').map((entry) => {
    const [host, port] = entry.trim().split(/:(?=\d+$)/)
    if (!host || !port) throw new Error(`REDIS_CLUSTER_NODES: expected host:port, got ${JSON.stringify(entry)}`)
    return { host, port: Number(port) }
  })
}

export function configFromEnv (env: NodeJS.ProcessEnv = process.env): ExampleConfig {
  const secret = env.AUTH_JWT_SECRET
  const localCache = env.AUTH_LOCAL_CACHE ?? 'off'
  if (localCache !== 'on' && localCache !== 'off') throw new Error('AUTH_LOCAL_CACHE must be on or off')
  return {
    port: int(env, 'PORT', 3000),
    host: env.HOST || '127.0.0.1',
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
    clusterNodes: clusterNodes(env.REDIS_CLUSTER_NODES),
    keyPrefix: env.AUTH_KEY_PREFIX || 'auth',
    jwtSecret: secret || randomBytes(32).toString('base64url'),
    jwtSecretGenerated: !secret,
    accessTtl: int(env, 'AUTH_ACCESS_TTL', 300, 1),
    refreshTtl: int(env, 'AUTH_REFRESH_TTL', 1_209_600, 1),
    sessionMaxAge: int(env, 'AUTH_SESSION_MAX_AGE', 2_592_000, 1),
    refreshGrace: int(env, 'AUTH_REFRESH_GRACE', 10),
    sso: env.AUTH_SSO || 'single',
    refreshRateMax: int(env, 'AUTH_REFRESH_RATE_MAX', 10, 1),
    refreshRateWindow: int(env, 'AUTH_REFRESH_RATE_WINDOW', 60, 1),
    loginRateMax: int(env, 'AUTH_LOGIN_RATE_MAX', 10, 1),
    loginRateWindow: int(env, 'AUTH_LOGIN_RATE_WINDOW', 60, 1),
    localCache: localCache === 'on'
  }
}
