import t from 'tap'
import { bearer, exampleApp, login, me, uniquePrefix } from './helpers/app.js'
import { runFailover } from './helpers/failover-load.js'
import { nodeClient, sentinelMasterPort, until } from './helpers/replication.js'
import { startRedisSentinel } from './helpers/redis-server.js'

t.test('a Sentinel primary killed under load: only 503 AUTH_STORE_UNAVAILABLE until the replica is promoted, never a 2xx for a revoked token, service back by itself within 5 s; the local cache of a second instance resubscribes', async (t) => {
  const setup = await startRedisSentinel(t)
  // The example server's own Sentinel client; limits high enough for the load.
  const config = {
    sentinels: setup.sentinelNodes,
    sentinelName: setup.name,
    keyPrefix: uniquePrefix('failover'),
    sso: 'off',
    refreshRateMax: 1_000_000,
    loginRateMax: 1_000_000
  }
  const app = await exampleApp(t, config)
  // A second instance on the same keys, with the local cache on: invalidations must reach it after the failover.
  const cached = await exampleApp(t, { ...config, localCache: true })
  await Promise.all([app.ready(), cached.ready()])
  const cache = cached.tokens.localCache!
  await until('the second instance\'s cache to be subscribed', () => cache.usable())

  // Reconnecting: the promotion closes the replica's client connections.
  const heir = nodeClient(t, setup.replica.port, true)
  const sentinels = setup.sentinels.map((s) => nodeClient(t, s.port))
  const promoted = async () => {
    const named = await Promise.all(sentinels.map(async (s) => await sentinelMasterPort(s, setup.name).catch(() => null)))
    // The earliest a client asking the sentinels can learn of it.
    return named.includes(setup.dataPort(setup.replica))
  }
  await runFailover(t, { label: 'Sentinel failover', app, victim: setup.primary, heir, promoted })

  // Heartbeats reach the cache again only through a subscription on the new master.
  await until('the cache to be usable after the failover', () => cache.usable(), 10_000)
  const pair = await login(app, 'bob')
  t.equal((await me(cached, pair.access_token)).statusCode, 200, 'the second instance accepts a live session')
  t.ok(cache.size > 0, 'and caches it')
  const invalidations: string[] = []
  cache.subscriber.on('message', (_channel: string, message: string) => { if (message !== '') invalidations.push(message) })
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(pair.access_token) })).statusCode, 204, 'the first instance ends it')
  await until('the invalidation to reach the second instance', () => invalidations.length > 0, 10_000)
  t.ok(cache.usable(), 'its cache is still on: it was told, not emptied for silence')
  const refused = await me(cached, pair.access_token)
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'AUTH_SESSION_REVOKED', 'the second instance refuses the revoked session')
})
