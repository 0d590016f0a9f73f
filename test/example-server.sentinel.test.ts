import { Redis } from 'ioredis'
import t from 'tap'
import { redisDeployment, runContractFlows } from './helpers/contract-flows.js'
import { freePort, makeTlsFiles, startRedisSentinel } from './helpers/redis-server.js'
import { spawnTsServer } from './helpers/spawn.js'
import { uniquePrefix } from './helpers/env.js'

const sentinelList = (nodes: Array<{ host: string, port: number }>) => nodes.map((n) => `${n.host}:${n.port}`).join(',')

/** The example's keys live on the primary and reach the replica: the app writes through the master Sentinel names. */
async function keysOnPrimary (t: Parameters<typeof runContractFlows>[0], port: number, prefix: string): Promise<void> {
  const primary = new Redis({ port, host: '127.0.0.1' })
  t.teardown(() => primary.disconnect())
  const [, keys] = await primary.scan('0', 'MATCH', `${prefix}:*`, 'COUNT', 10_000)
  t.ok(keys.length > 0, 'the sessions are on the primary')
}

t.test('the contract flows through the example app on Redis Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_NAME)', async (t) => {
  const setup = await startRedisSentinel(t, { name: 'auth-primary', awaitPeers: false })
  const app = await runContractFlows(t, redisDeployment({ REDIS_SENTINELS: sentinelList(setup.sentinelNodes), REDIS_SENTINEL_NAME: 'auth-primary' }))
  t.equal(app.tokens.scriptLane, null, 'Sentinel clients get no script lane: every check goes through the shared client')
  await keysOnPrimary(t, setup.primary.port, app.tokens.keys.prefix)

  const port = await freePort()
  const sentinels = sentinelList(setup.sentinelNodes)
  const { output } = await spawnTsServer(t, 'example-server/server.ts', {
    PORT: String(port), REDIS_SENTINELS: sentinels, REDIS_SENTINEL_NAME: 'auth-primary', AUTH_KEY_PREFIX: uniquePrefix('sentinel'), AUTH_JWT_SECRET: 's'.repeat(32)
  }, 'listening on')
  t.match(output(), `using Redis Sentinel ${sentinels} (master 'auth-primary')`, '`npm run example` says which Redis it uses')
  const health = await fetch(`http://127.0.0.1:${port}/healthz`)
  t.same(await health.json(), { redis: 'ok' })
})

t.test('the contract flows on Redis Sentinel over TLS: sentinels and data nodes checked against REDIS_CA_FILE', async (t) => {
  const files = await makeTlsFiles(t)
  const setup = await startRedisSentinel(t, { tls: files, awaitPeers: false })
  // The default master name, mymaster.
  const app = await runContractFlows(t, redisDeployment({ REDIS_SENTINELS: sentinelList(setup.sentinelNodes), REDIS_CA_FILE: files.caFile }))
  const stream = (app.redis as unknown as { stream: { encrypted?: boolean, remotePort: number } }).stream
  t.ok(stream.encrypted, 'the data connection is TLS')
  t.equal(stream.remotePort, setup.dataPort(setup.primary), 'to the primary\'s TLS port')
  await keysOnPrimary(t, setup.primary.port, app.tokens.keys.prefix)
})
