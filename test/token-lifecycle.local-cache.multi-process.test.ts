import t from 'tap'
import { cleanupPrefix, uniquePrefix, REDIS_URL } from './helpers/app.js'
import { freePort } from './helpers/redis-server.js'
import { spawnTsServer } from './helpers/spawn.js'

/*
 * Two example-server PROCESSES on one Redis, both with AUTH_LOCAL_CACHE=on:
 * what one instance revokes, the other refuses although it had the session
 * cached. The wait is bounded (5 s) far below the cache's own limit (the touch
 * interval), so a refusal proves the invalidation arrived. How fast it
 * arrives is measured and printed, not asserted: speed is the benchmarks'
 * job, and a 50 ms budget here failed on a loaded machine. (Spawned children
 * are excluded from coverage by design; token-lifecycle.local-cache.test.ts
 * covers the same code in-process.)
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const REFUSAL_WAIT_MS = 5000

const prefix = uniquePrefix('lcmp')
cleanupPrefix(t, prefix)

async function startPair (t: { teardown: (fn: () => unknown) => void }, extra: Record<string, string>) {
  const env = {
    REDIS_URL,
    AUTH_KEY_PREFIX: prefix,
    AUTH_JWT_SECRET: 'multi-process-secret-multi-process-secret',
    AUTH_LOCAL_CACHE: 'on',
    AUTH_SSO: 'off',
    AUTH_LOGIN_RATE_MAX: '1000',
    ...extra
  }
  const urls: string[] = []
  for (let i = 0; i < 2; i++) {
    const port = await freePort()
    await spawnTsServer(t, 'example-server/server.ts', { ...env, PORT: String(port), LOG_LEVEL: 'info' }, 'listening on')
    urls.push(`http://127.0.0.1:${port}`)
  }
  // Let both subscribers see a heartbeat: until then every request goes to Redis.
  await sleep(300)
  return urls as [string, string]
}

async function call (base: string, method: string, path: string, token?: string, body?: unknown) {
  const headers: Record<string, string> = {}
  if (token) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, json: text ? JSON.parse(text) : null }
}

async function loginAs (base: string, username: string, deviceType = 'phone') {
  const res = await call(base, 'POST', '/auth/login', undefined, { username, password: `${username}-pass`, device_type: deviceType })
  if (res.status !== 200) throw new Error(`login failed: ${res.status}`)
  return res.json as { access_token: string, refresh_token: string, session_id: string }
}

/** Warms the caches: a few accepted requests on each instance. */
async function warm (urls: string[], token: string) {
  for (const base of urls) {
    for (let i = 0; i < 3; i++) {
      const res = await call(base, 'GET', '/api/me', token)
      if (res.status !== 200) throw new Error(`warm-up refused: ${res.status}`)
    }
  }
}

/** Polls until `base` refuses `token` (at most REFUSAL_WAIT_MS): the refusal's code (null if none) and the ms since `since`. */
async function refusal (base: string, token: string, since: number): Promise<{ code: string | null, ms: number }> {
  for (;;) {
    const res = await call(base, 'GET', '/api/me', token)
    if (res.status === 401) return { code: res.json.code, ms: performance.now() - since }
    if (performance.now() - since > REFUSAL_WAIT_MS) return { code: null, ms: Infinity }
    await sleep(1)
  }
}

t.test('two processes, one Redis: revocations reach the other instance\'s cache', async (t) => {
  const [a, b] = await startPair(t, { AUTH_REFRESH_GRACE: '0', AUTH_SSO: 'device-type' })
  const measured: Record<string, number> = {}
  const refusedWithin = async (base: string, token: string, code: string, since: number): Promise<number> => {
    const seen = await refusal(base, token, since)
    t.equal(seen.code, code, `refused with ${code} within ${REFUSAL_WAIT_MS} ms`)
    return seen.ms
  }

  // logout on A -> B
  let s = await loginAs(a, 'alice', 'phone')
  await warm([a, b], s.access_token)
  t.equal((await call(a, 'POST', '/auth/logout', s.access_token)).status, 204)
  let at = performance.now()
  measured.logout = await refusedWithin(b, s.access_token, 'AUTH_SESSION_REVOKED', at)

  // admin role change -> stale on both
  s = await loginAs(a, 'alice', 'laptop')
  await warm([a, b], s.access_token)
  const root = await loginAs(b, 'root', 'desk')
  t.equal((await call(b, 'PUT', '/admin/users/alice/roles', root.access_token, { roles: ['user', 'auditor'] })).status, 204)
  at = performance.now()
  measured.roleChangeB = await refusedWithin(b, s.access_token, 'AUTH_TOKEN_STALE', at)
  measured.roleChangeA = await refusedWithin(a, s.access_token, 'AUTH_TOKEN_STALE', at)

  // SSO replacement (device-type policy): a second login on A from the same device type
  s = await loginAs(a, 'bob', 'phone')
  await warm([a, b], s.access_token)
  await loginAs(a, 'bob', 'phone')
  at = performance.now()
  measured.ssoReplace = await refusedWithin(b, s.access_token, 'AUTH_SESSION_REPLACED', at)

  // refresh reuse past the grace window (0) on A ends the session: B refuses its access token
  s = await loginAs(a, 'bob', 'tablet')
  await warm([a, b], s.access_token)
  t.equal((await call(a, 'POST', '/auth/refresh', undefined, { refresh_token: s.refresh_token })).status, 200)
  await warm([b], s.access_token)
  const reused = await call(a, 'POST', '/auth/refresh', undefined, { refresh_token: s.refresh_token })
  at = performance.now()
  t.equal(reused.status, 401)
  measured.refreshReuse = await refusedWithin(b, s.access_token, 'AUTH_SESSION_REVOKED', at)

  t.comment(`propagation (ms from the revoking answer to the first refusal on the other instance): ${JSON.stringify(Object.fromEntries(Object.entries(measured).map(([k, v]) => [k, Math.round(v * 10) / 10])))}`)
})
