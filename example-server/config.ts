import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'

/** The example server's settings, read from the environment (see the HTTP contract). */
export interface ExampleConfig {
  port: number
  host: string
  redisUrl: string
  clusterNodes: HostPort[] | null
  /** REDIS_SENTINELS: Redis Sentinel instead of REDIS_URL (REDIS_CLUSTER_NODES wins over both). */
  sentinels: HostPort[] | null
  sentinelName: string
  /** The PEM read from REDIS_CA_FILE: when set, every connection is TLS, checked against this CA. */
  redisCa: string | null
  /** REDIS_USERNAME and REDIS_PASSWORD: the ACL login on every data node, over the URL's own. */
  redisUsername: string | null
  redisPassword: string | null
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
  /** Seconds (AUTH_REFRESH_RATE_WINDOW, per the contract). */
  refreshRateWindow: number
  loginRateMax: number
  /** Seconds (AUTH_LOGIN_RATE_WINDOW, per the contract). */
  loginRateWindow: number
  localCache: boolean
  /**
   * token-lifecycle's `storeTimeout`, in ms; its default (800 ms) when absent.
   * Not read from the environment: the fault tests shorten it to stay fast.
   */
  storeTimeoutMs?: number
}

export interface HostPort { host: string, port: number }

function int (env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min} (got ${JSON.stringify(raw)})`)
  return value
}

function hostPorts (name: string, raw: string | undefined): HostPort[] | null {
  if (!raw) return null
  return raw.split(',').map((entry) => {
    const [host, port] = entry.trim().split(/:(?=\d+$)/)
    if (!host || !port || Number(port) < 1 || Number(port) > 65535) throw new Error(`${name}: expected host:port, got ${JSON.stringify(entry)}`)
    return { host, port: Number(port) }
  })
}

/** The URL without its password, fit for an error message or a log line. */
export function redactedUrl (url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@')
}

function parsedRedisUrl (url: string): URL {
  let parsed: URL | null = null
  try {
    parsed = new URL(url)
  } catch {}
  if (parsed === null || (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || !parsed.hostname) {
    throw new Error(`REDIS_URL must be a redis:// or rediss:// URL with a host (got ${JSON.stringify(redactedUrl(url))})`)
  }
  return parsed
}

function caFile (path: string | undefined): string | null {
  if (!path) return null
  let pem: string
  try {
    pem = readFileSync(path, 'utf8')
  } catch (err) {
    throw new Error(`REDIS_CA_FILE: cannot read ${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code})`)
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`REDIS_CA_FILE: ${JSON.stringify(path)} holds no PEM certificate`)
  return pem
}

/**
 * The Redis the example connects to: REDIS_CLUSTER_NODES, else
 * REDIS_SENTINELS, else REDIS_URL (the contract's precedence). Mistakes that
 * would otherwise surface as endless reconnects, or as a plaintext connection
 * where TLS was meant, stop the start instead.
 */
function redisConfig (env: NodeJS.ProcessEnv) {
  const urlText = env.REDIS_URL || 'redis://127.0.0.1:6379'
  const url = parsedRedisUrl(urlText)
  const clusterNodes = hostPorts('REDIS_CLUSTER_NODES', env.REDIS_CLUSTER_NODES)
  const sentinels = hostPorts('REDIS_SENTINELS', env.REDIS_SENTINELS)
  const redisCa = caFile(env.REDIS_CA_FILE)
  const usesUrl = !clusterNodes && !sentinels
  if (usesUrl && redisCa !== null && url.protocol !== 'rediss:') {
    throw new Error('REDIS_CA_FILE is set but REDIS_URL is not a rediss:// URL: the connection would not use TLS')
  }
  const redisUsername = env.REDIS_USERNAME || null
  const redisPassword = env.REDIS_PASSWORD || null
  if (redisUsername !== null && redisPassword === null && !(usesUrl && url.password)) {
    throw new Error('REDIS_USERNAME is set without a password: set REDIS_PASSWORD too')
  }
  return {
    redisUrl: urlText,
    clusterNodes,
    sentinels,
    sentinelName: env.REDIS_SENTINEL_NAME || 'mymaster',
    redisCa,
    redisUsername,
    redisPassword
  }
}

export function configFromEnv (env: NodeJS.ProcessEnv = process.env): ExampleConfig {
  const secret = env.AUTH_JWT_SECRET
  const localCache = env.AUTH_LOCAL_CACHE ?? 'off'
  if (localCache !== 'on' && localCache !== 'off') throw new Error('AUTH_LOCAL_CACHE must be on or off')
  return {
    port: int(env, 'PORT', 3000),
    host: env.HOST || '127.0.0.1',
    ...redisConfig(env),
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
