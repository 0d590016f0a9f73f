import t from 'tap'
import { createRedisClient } from '../example-server/app.js'
import { pluginApp, testConfig } from './helpers/app.js'
import { startReplicatedRedisCluster } from './helpers/redis-server.js'
import { isMaster, masterOf, nodeClient, until } from './helpers/replication.js'

/** The contract: service resumes within 5 s of a new master being promoted. */
const RESUME_WITHIN_MS = 5000

// The example server's Cluster client, with durability on.
t.test('durability on a Cluster: each WAIT goes to the node holding the key, acknowledged logins survive a failover, and logins resume within 5 s of the promotion', async (t) => {
  const cluster = await startReplicatedRedisCluster(t)
  const redis = createRedisClient(testConfig({ clusterNodes: cluster.nodes }))
  redis.on('error', () => {})
  t.teardown(() => { redis.disconnect() })
  // The guard leaves the WAIT room to answer on a loaded machine, yet gives up on a dead master well within 5 s.
  const app = await pluginApp(t, { redis, storeTimeout: '2s', durability: { timeout: '300ms' } })
  const anyNode = nodeClient(t, cluster.masters[0]!.port)

  // alice's master and its replica, and a user whose sessions live on another master.
  const victimId = await masterOf(anyNode, app.tokens.keys.sessions('alice'))
  const victim = cluster.masters.find((n) => n.id === victimId)!
  const replica = cluster.replicas.find((n) => n.replicaOf === victimId)!
  let other = ''
  for (let i = 0; other === '' && i < 100; i++) {
    if (await masterOf(anyNode, app.tokens.keys.sessions(`u${i}`)) !== victimId) other = `u${i}`
  }

  // A stalled replica holds up the writes of its own master only.
  replica.pause()
  await t.rejects(app.tokens.openSession({ userId: 'alice' }), { code: 'AUTH_STORE_UNAVAILABLE' }, 'alice\'s replica stalled: her login answers 503')
  t.ok((await app.tokens.openSession({ userId: other })).sessionId, 'a user on another master logs in')
  replica.resume()
  t.same(await app.tokens.listSessions('alice'), [], 'the 503\'d login left no session')

  // Logins answered just before the master dies: each one acknowledged by the replica.
  const heir = nodeClient(t, replica.port)
  await until('the replica to acknowledge again', async () => {
    try { await app.tokens.openSession({ userId: 'alice' }); return true } catch { return false }
  })
  const opened = []
  for (let i = 0; i < 10; i++) opened.push((await app.tokens.openSession({ userId: 'alice' })).sessionId)
  victim.kill()
  await until('the replica to be promoted', () => isMaster(heir))
  const promotedAt = performance.now()
  await until('logins to resume', async () => {
    try { await app.tokens.openSession({ userId: 'alice' }); return true } catch { return false }
  })
  const resumedIn = performance.now() - promotedAt
  t.comment(`durable logins resumed ${Math.round(resumedIn)} ms after the promotion`)
  t.ok(resumedIn <= RESUME_WITHIN_MS, `logins resumed within ${RESUME_WITHIN_MS} ms of the promotion`)
  const kept = await heir.hmget(app.tokens.keys.sessions('alice'), ...opened)
  t.equal(kept.filter((v) => v === null).length, 0, 'the promoted replica holds every session whose login was answered')
})
