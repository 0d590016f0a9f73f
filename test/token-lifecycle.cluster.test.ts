import t from 'tap'
import { bearer, exampleApp, login, me } from './helpers/app.js'
import { startRedisCluster } from './helpers/redis-server.js'

t.test('every script runs on a 3-master Redis Cluster (one hash tag per user, no CROSSSLOT)', async (t) => {
  const clusterNodes = await startRedisCluster(t)
  const app = await exampleApp(t, { clusterNodes, sso: 'max:2' })
  t.same((await app.inject({ url: '/healthz' })).json(), { redis: 'ok' })

  // Users whose tags hash to different slots, so several masters take part.
  const users = ['alice', 'bob', 'root']
  const pairs = new Map<string, Awaited<ReturnType<typeof login>>[]>()
  for (const user of users) {
    pairs.set(user, [await login(app, user, { device_id: 'a' }), await login(app, user, { device_id: 'b' }), await login(app, user, { device_id: 'c' })])
  }
  const [a1, a2, a3] = pairs.get('alice')!
  t.equal((await me(app, a1.access_token)).json().code, 'AUTH_SESSION_REPLACED', 'open script with eviction')
  t.equal((await me(app, a3.access_token)).statusCode, 200, 'verify script')

  const list = await app.inject({ url: '/auth/sessions', headers: bearer(a3.access_token) })
  t.same(list.json().sessions.map((s: { session_id: string }) => s.session_id), [a2.session_id, a3.session_id], 'list script')

  const root = pairs.get('root')![2]
  const roles = await app.inject({ method: 'PUT', url: '/admin/users/alice/roles', headers: bearer(root.access_token), payload: { roles: ['user'] } })
  t.equal(roles.statusCode, 204)
  t.equal((await me(app, a3.access_token)).json().code, 'AUTH_TOKEN_STALE', 'claims script')

  const revoke = await app.inject({ method: 'POST', url: '/admin/users/bob/revoke?device_id=c', headers: bearer(root.access_token) })
  t.equal(revoke.statusCode, 204)
  t.equal((await me(app, pairs.get('bob')![2].access_token)).json().code, 'AUTH_SESSION_REVOKED', 'device revocation script')
  t.equal((await me(app, pairs.get('bob')![1].access_token)).statusCode, 200)

  const del = await app.inject({ method: 'DELETE', url: `/auth/sessions/${a2.session_id}`, headers: bearer(a3.access_token) })
  t.equal(del.json().code, 'AUTH_TOKEN_STALE', 'a stale token cannot manage sessions')
  const fresh = await login(app, 'alice', { device_id: 'd' })
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(fresh.access_token) })).statusCode, 204, 'end-all script')
  t.equal((await me(app, fresh.access_token)).json().code, 'AUTH_SESSION_REVOKED')
  const last = await login(app, 'bob', { device_id: 'e' })
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(last.access_token) })).statusCode, 204, 'end-session script')

  // The local cache on a Cluster: a duplicate Cluster client subscribes; PUBLISH from a script is broadcast.
  const cached = await exampleApp(t, { clusterNodes, localCache: true, sso: 'off' })
  const cache = cached.tokens.localCache!
  for (let i = 0; i < 500 && !cache.usable(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.ok(cache.usable(), 'subscribed and heartbeats seen')
  const pair = await login(cached, 'bob', { device_id: 'f' })
  t.equal((await me(cached, pair.access_token)).statusCode, 200)
  t.equal(cache.size, 1, 'cached')
  await cached.tokens.endSession('bob', pair.session_id)
  for (let i = 0; i < 100 && cache.size !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal(cache.size, 0, 'the invalidation came through the cluster')
  t.equal((await me(cached, pair.access_token)).json().code, 'AUTH_SESSION_REVOKED')
})
