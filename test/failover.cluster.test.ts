import t from 'tap'
import { exampleApp } from './helpers/app.js'
import { VICTIM_USER, runFailover } from './helpers/failover-load.js'
import { isMaster, masterOf, nodeClient } from './helpers/replication.js'
import { startReplicatedRedisCluster } from './helpers/redis-server.js'

t.test('a master killed under load: only 503 AUTH_STORE_UNAVAILABLE until a replica is promoted, never a 2xx for a revoked token, service back by itself within 5 s', async (t) => {
  const cluster = await startReplicatedRedisCluster(t)
  // The example server's own Cluster client; limits high enough for the load.
  const app = await exampleApp(t, { clusterNodes: cluster.nodes, sso: 'off', refreshRateMax: 1_000_000, loginRateMax: 1_000_000 })
  await app.ready()

  // The victim: the master holding the victim user's sessions; its replica should take over.
  const masterId = await masterOf(nodeClient(t, cluster.masters[0]!.port), app.tokens.keys.sessions(VICTIM_USER))
  const victim = cluster.masters.find((n) => n.id === masterId)!
  const heir = nodeClient(t, cluster.replicas.find((n) => n.replicaOf === masterId)!.port)
  await heir.readonly()

  await runFailover(t, { label: 'Cluster failover', app, victim, heir, promoted: () => isMaster(heir) })
})
