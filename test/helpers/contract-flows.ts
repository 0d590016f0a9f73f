import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import type { ExampleConfig } from '../../example-server/config.js'
import { configFromEnv } from '../../example-server/config.js'
import type { LocalCache } from '../../plugins/token-lifecycle/local-cache.js'
import { bearer, exampleApp, login, me, uniquePrefix } from './app.js'
import { dpopKey, proof } from './dpop.js'
import { refresh } from './refresh.js'

/**
 * The Redis part of the example's configuration, read from environment
 * variables as a user sets them (REDIS_URL, REDIS_SENTINELS, REDIS_CA_FILE,
 * ...): the tests go through the same parsing as `npm run example`.
 */
export function redisDeployment (env: NodeJS.ProcessEnv): Partial<ExampleConfig> {
  const { redisUrl, clusterNodes, sentinels, sentinelName, redisCa, redisUsername, redisPassword } = configFromEnv(env)
  return { redisUrl, clusterNodes, sentinels, sentinelName, redisCa, redisUsername, redisPassword }
}

async function until (what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 10 s`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const untilUsable = (cache: LocalCache) => until('local cache usable', () => cache.usable())

const code = (res: { json: () => { code?: string } }) => res.json().code

/**
 * The contract's flows through the example app on one Redis deployment:
 * login, refresh, concurrent refreshes of one token, SSO replacement, the
 * replay guard, the session list, logout, logout-all, admin revocation and
 * role change, and the local cache across two instances. Returns the first
 * app, for checks of the deployment's own (the script lane, say).
 */
export async function runContractFlows (t: Test, deployment: Partial<ExampleConfig>): Promise<FastifyInstance> {
  // High limits: the concurrent refreshes below all count.
  const base = { keyPrefix: uniquePrefix('deploy'), ...deployment, sso: 'single', refreshRateMax: 1000, loginRateMax: 1000 }
  const app = await exampleApp(t, base)
  t.same((await app.inject({ url: '/healthz' })).json(), { redis: 'ok' }, 'healthz')

  const first = await login(app, 'alice', { device_id: 'laptop' })
  t.equal((await me(app, first.access_token)).json().user_id, 'alice', 'login: the access token works')

  const rotated = await refresh(app, first.refresh_token)
  t.equal(rotated.statusCode, 200, 'refresh')
  const second = rotated.json()
  t.equal(second.session_id, first.session_id)
  t.not(second.refresh_token, first.refresh_token, 'a new refresh token')
  t.equal((await me(app, second.access_token)).statusCode, 200)

  const burst = await Promise.all(Array.from({ length: 15 }, () => refresh(app, second.refresh_token)))
  t.same(burst.map((r) => r.statusCode), burst.map(() => 200), '15 concurrent refreshes of one token all answer 200')
  t.equal(new Set(burst.map((r) => r.json().refresh_token)).size, 1, 'and converge on one successor')
  const third = burst[0]!.json()
  t.equal((await refresh(app, third.refresh_token)).statusCode, 200, 'the successor rotates in turn')

  const transfer = () => app.inject({ method: 'POST', url: '/api/transfer', headers: bearer(third.access_token), payload: { amount: 1 } })
  t.equal((await transfer()).statusCode, 200, 'replay guard: a guarded route takes the token once')
  t.equal(code(await transfer()), 'AUTH_TOKEN_REPLAYED', 'and refuses it again')
  t.equal((await me(app, third.access_token)).statusCode, 200, 'other routes still accept it')

  // DPoP: a key-bound session; a guarded request spends the proof and the token in one script.
  const key = await dpopKey()
  const dpopProof = (htm: string, htu: string, token?: string) => proof(key, { htm, htu, token })
  const bound = await app.inject({ method: 'POST', url: '/auth/login', headers: { dpop: await dpopProof('POST', '/auth/login') }, payload: { username: 'root', password: 'root-pass' } })
  t.equal(bound.json().token_type, 'DPoP', 'DPoP: a login with a proof binds the session')
  const boundRefresh = await refresh(app, bound.json().refresh_token, { dpop: await dpopProof('POST', '/auth/refresh') })
  t.equal(boundRefresh.statusCode, 200, 'and it refreshes with a proof')
  const boundToken = boundRefresh.json().access_token
  const boundTransfer = (dpop: string) => app.inject({ method: 'POST', url: '/api/transfer', headers: { authorization: `DPoP ${boundToken}`, dpop }, payload: { amount: 1 } })
  t.equal((await boundTransfer(await dpopProof('POST', '/api/transfer', boundToken))).statusCode, 200, 'a guarded route with a proof')
  const fresh = await dpopProof('POST', '/api/transfer', boundToken)
  t.equal(code(await boundTransfer(fresh)), 'AUTH_TOKEN_REPLAYED', 'the spent token is refused, with a fresh proof')
  t.equal(code(await boundTransfer(fresh)), 'AUTH_TOKEN_REPLAYED', 'and that proof was given back (all or nothing), not spent')

  const replacing = await login(app, 'alice', { device_id: 'phone' })
  t.equal(code(await me(app, third.access_token)), 'AUTH_SESSION_REPLACED', 'SSO: a newer login replaces the session')
  t.equal(code(await refresh(app, third.refresh_token)), 'AUTH_SESSION_REPLACED', 'and its refresh token')
  const list = await app.inject({ url: '/auth/sessions', headers: bearer(replacing.access_token) })
  t.same(list.json().sessions.map((s: { session_id: string }) => s.session_id), [replacing.session_id], 'the session list')

  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(replacing.access_token) })).statusCode, 204, 'logout')
  t.equal(code(await me(app, replacing.access_token)), 'AUTH_SESSION_REVOKED')
  t.equal((await refresh(app, replacing.refresh_token)).statusCode, 401, 'a logged-out session does not refresh')

  const bob = await login(app, 'bob')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(bob.access_token) })).statusCode, 204, 'logout-all')
  t.equal(code(await me(app, bob.access_token)), 'AUTH_SESSION_REVOKED')

  const root = await login(app, 'root')
  const user = await login(app, 'bob')
  const roles = await app.inject({ method: 'PUT', url: '/admin/users/bob/roles', headers: bearer(root.access_token), payload: { roles: ['user', 'auditor'] } })
  t.equal(roles.statusCode, 204, 'admin role change')
  t.equal(code(await me(app, user.access_token)), 'AUTH_TOKEN_STALE', 'the old token is stale')
  const renewed = (await refresh(app, user.refresh_token)).json()
  t.same((await me(app, renewed.access_token)).json().roles, ['user', 'auditor'], 'a refresh carries the new roles')
  const revoke = await app.inject({ method: 'POST', url: '/admin/users/bob/revoke', headers: bearer(root.access_token) })
  t.equal(revoke.statusCode, 204, 'admin revocation')
  t.equal(code(await me(app, renewed.access_token)), 'AUTH_SESSION_REVOKED')

  // Two instances on one prefix (as behind a load balancer), each with its local cache.
  const cached = { ...base, localCache: true, sso: 'off' }
  const [a, b] = [await exampleApp(t, cached), await exampleApp(t, cached)]
  await untilUsable(a.tokens.localCache!)
  await untilUsable(b.tokens.localCache!)
  const pair = await login(a, 'alice', { device_id: 'cached' })
  t.equal((await me(b, pair.access_token)).statusCode, 200, 'local cache: the other instance checks the token')
  t.equal(b.tokens.localCache!.size, 1, 'and caches it')
  t.equal((await a.inject({ method: 'POST', url: '/auth/logout', headers: bearer(pair.access_token) })).statusCode, 204)
  await until('the revocation empties the other instance\'s cache', () => b.tokens.localCache!.size === 0)
  t.equal(code(await me(b, pair.access_token)), 'AUTH_SESSION_REVOKED', 'which then refuses the token')
  return app
}
