import t from 'tap'
import { exampleApp, uniquePrefix } from './helpers/app.js'
import { VICTIM_USER, checkLocalCacheAfterFailover, runFailover } from './helpers/failover-load.js'
import { isMaster, masterOf, nodeClient, until } from './helpers/replication.js'
import { startReplicatedRedisCluster } from './helpers/redis-server.js'

t.test('a master killed under load: only 503 AUTH_STORE_UNAVAILABLE until a replica is promoted, never a 2xx for a revoked token, service back by itself within 5 s; the local cache of a second instance follows', async (t) => {
  const cluster = await startReplicatedRedisCluster(t)
  // The example server's own Cluster client; limits high enough for the load.
  const config = { clusterNodes: cluster.nodes, keyPrefix: uniquePrefix('failover'), sso: 'off', refreshRateMax: 1_000_000, loginRateMax: 1_000_000 }
  const app = await exampleApp(t, config)
  // A second instance on the same keys, with the local cache on: its
  // subscriber is on some node of the cluster, the victim perhaps; either way
  // invalidations must reach it after the failover.
  const cached = await exampleApp(t, { ...config, localCache: true })
  await Promise.all([app.ready(), cached.ready()])
  await until('the second instance\'s cache to be subscribed', () => cached.tokens.localCache!.usable())

  // The victim: the master holding the victim user's sessions; its replica should take over.
  const masterId = await masterOf(nodeClient(t, cluster.masters[0]!.port), app.tokens.keys.sessions(VICTIM_USER))
  const victim = cluster.masters.find((n) => n.id === masterId)!
  const heir = nodeClient(t, cluster.replicas.find((n) => n.replicaOf === masterId)!.port)
  await heir.readonly()

  await runFailover(t, { label: 'Cluster failover', app, victim, heir, promoted: () => isMaster(heir) })
  await checkLocalCacheAfterFailover(t, app, cached)
})
