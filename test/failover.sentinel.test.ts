import t from 'tap'
import { exampleApp, uniquePrefix } from './helpers/app.js'
import { checkLocalCacheAfterFailover, runFailover } from './helpers/failover-load.js'
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
  await checkLocalCacheAfterFailover(t, app, cached)
})
